"""python-ldap3, used the way sync scripts use it, against a running Tessera.

Run by python-ldap3.sh after it has seeded the directory. A person (alice) reads over LDAPS
with full certificate checks, get_info=ALL and check_names=True (ldap3's defaults for
names), so ldap3 loads and parses cn=Subschema and refuses any attribute it does not find
there. Writes are made by the local administrator through ldap3 over LDAPI with SASL
EXTERNAL. Prints one "ok   - NAME" or "FAIL - NAME: WHY" line per check; python-ldap3.sh
counts them, and the exit status is 1 if any check failed, whoever runs it.
"""

import argparse
import re
import ssl
import sys
import time
from datetime import datetime, timedelta, timezone

from ldap3 import ALL, BASE, EXTERNAL, MODIFY_REPLACE, SASL, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException

PAGED_RESULTS = "1.2.840.113556.1.4.319"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SYNC_ATTRS = ["uid", "cn", "uidNumber", "gidNumber", "memberOf", "entryUUID",
              "modifyTimestamp", "createTimestamp"]
# Checks that failed so far: any makes the exit status 1.
FAILED = 0


def main():
    args = parse_args()
    seeded = seeded_dns(args.seed_ldif)
    people = args.people_base
    groups = args.groups_base
    alice = f"uid=alice,{people}"
    bob = f"uid=bob,{people}"
    staff = f"cn=staff,{groups}"

    server = Server(args.ldaps, use_ssl=True, get_info=ALL,
                    tls=Tls(ca_certs_file=args.ca, validate=ssl.CERT_REQUIRED))
    conn = Connection(server, user=alice, password=args.alice_password, check_names=True)
    admin = Connection(Server(args.ldapi, get_info=ALL), authentication=SASL,
                       sasl_mechanism=EXTERNAL, check_names=True)

    # Binding with get_info=ALL reads the rootDSE and cn=Subschema and parses every
    # definition; a malformed one raises LDAPSchemaError here.
    if not check("bind as alice over LDAPS (rootDSE and schema read)",
                 lambda: expect_bind(conn)):
        return 1
    if not check("SASL EXTERNAL bind over LDAPI", lambda: expect_bind(admin)):
        return 1

    check("schema loaded, with inetOrgPerson, posixAccount, entryUUID, memberOf, "
          "modifyTimestamp", lambda: expect_schema(server))
    check("schema is self-consistent (syntaxes, matching rules, superiors, class members)",
          lambda: expect_schema_consistent(server.schema))
    check("every attribute returned for * and + is in the schema",
          lambda: expect_returned_in_schema(conn, server.schema, [args.suffix, people, alice,
                                                                  staff]))
    check("namingContexts has the suffix",
          lambda: expect(args.suffix in (server.info.naming_contexts or []),
                         f"naming_contexts={server.info.naming_contexts!r}"))
    check("supportedControl has paged results",
          lambda: expect(PAGED_RESULTS in [c[0] for c in server.info.supported_controls or []],
                         f"supported_controls={server.info.supported_controls!r}"))

    check("typed sync attributes of a person",
          lambda: expect_person_attrs(conn, alice, staff))
    check("typed sync attributes of a group",
          lambda: expect_group_attrs(conn, staff, alice, bob))

    want = {dn.lower() for dn in seeded if dn.lower().endswith((people.lower(), groups.lower()))}
    for size in (100, 500):
        check(f"paged_search(paged_size={size}) over people and groups returns each once",
              lambda size=size: expect_paged(conn, [people, groups], size, want))
    check("paged_search with a critical control", lambda: expect_paged(
        conn, [people, groups], 100, want, criticality=True))
    check("manual paging: pages hold at most paged_size, the last cookie is empty",
          lambda: expect_pages(conn, people, 100,
                               len([dn for dn in want if dn.endswith(people.lower())])))

    check("incremental pull by modifyTimestamp>= (fraction, Z and offset forms) "
          "returns exactly the modified entry",
          lambda: expect_incremental(conn, admin, args.suffix, bob))
    check("entryUUID stable across modify_dn and filterable by equality; membership follows",
          lambda: expect_rename_keeps_uuid(conn, admin, people, bob, staff))
    check("entryUUID and createTimestamp present after an add",
          lambda: expect_add_has_uuid(conn, admin, people))
    check("a mirror kept by entryUUID with incremental pulls equals the directory "
          "after adds, modifies, renames and deletes",
          lambda: expect_mirror(conn, admin, args.suffix, people, groups))

    conn.unbind()
    admin.unbind()
    return 1 if FAILED else 0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ldaps", required=True)
    p.add_argument("--ldapi", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--suffix", required=True)
    p.add_argument("--alice-password", required=True)
    p.add_argument("--seed-ldif", required=True)
    args = p.parse_args()
    args.people_base = f"ou=people,{args.suffix}"
    args.groups_base = f"ou=groups,{args.suffix}"
    return args


def seeded_dns(path):
    with open(path, encoding="utf-8") as f:
        return [line[4:].strip() for line in f if line.startswith("dn: ")]


# --- checks ---------------------------------------------------------------------------


def expect_bind(conn):
    if not conn.bind():
        raise AssertionError(f"bind failed: {conn.result}")


def expect_schema(server):
    schema = server.schema
    expect(schema is not None, "server.schema is None (no subschemaSubentry read)")
    expect(schema.is_valid(), "server.schema is empty")
    for oc in ("inetOrgPerson", "posixAccount", "posixGroup", "groupOfNames"):
        expect(oc in schema.object_classes, f"objectClass {oc} missing from the schema")
    for at in ("entryUUID", "memberOf", "modifyTimestamp", "createTimestamp", "uidNumber",
               "gidNumber", "memberUid", "member", "uid", "cn"):
        expect(at in schema.attribute_types, f"attributeType {at} missing from the schema")


def expect_schema_consistent(schema):
    problems = []
    for name, at in schema.attribute_types.items():
        if at.syntax and at.syntax not in schema.ldap_syntaxes:
            problems.append(f"{name}: syntax {at.syntax} not in ldapSyntaxes")
        for rule in (at.equality, at.ordering, at.substring):
            for r in rule if isinstance(rule, list) else [rule] if rule else []:
                if r not in schema.matching_rules:
                    problems.append(f"{name}: matching rule {r} not in matchingRules")
        for sup in at.superior or []:
            if sup not in schema.attribute_types:
                problems.append(f"{name}: SUP {sup} not in attributeTypes")
    for name, oc in schema.object_classes.items():
        for a in (oc.must_contain or []) + (oc.may_contain or []):
            if a not in schema.attribute_types:
                problems.append(f"objectClass {name}: {a} not in attributeTypes")
        for sup in oc.superior or []:
            if sup not in schema.object_classes:
                problems.append(f"objectClass {name}: SUP {sup} not in objectClasses")
    expect(not problems, "; ".join(sorted(set(problems))[:10]))


def expect_returned_in_schema(conn, schema, dns):
    for dn in dns:
        attrs = search_one(conn, dn, ["*", "+"])["attributes"]
        missing = [a for a in attrs if a not in schema.attribute_types]
        expect(not missing, f"{dn} returned {missing}, which the schema does not define")


def expect_person_attrs(conn, alice, staff):
    entry = search_one(conn, alice, SYNC_ATTRS)
    a = entry["attributes"]
    expect(isinstance(a["uidNumber"], int), f"uidNumber {a['uidNumber']!r} is not an int")
    expect(isinstance(a["gidNumber"], int), f"gidNumber {a['gidNumber']!r} is not an int")
    expect(a["uid"] == ["alice"], f"uid={a['uid']!r}")
    expect(a["cn"] == ["Alice Example"], f"cn={a['cn']!r}")
    expect([dn.lower() for dn in a["memberOf"]] == [staff.lower()], f"memberOf={a['memberOf']!r}")
    expect_uuid(a["entryUUID"])
    for name in ("modifyTimestamp", "createTimestamp"):
        expect(isinstance(a[name], datetime) and a[name].tzinfo is not None,
               f"{name} {a[name]!r} is not an aware datetime")


def expect_group_attrs(conn, staff, *members):
    entry = search_one(conn, staff, ["cn", "gidNumber", "member", "memberUid", "entryUUID",
                                     "modifyTimestamp", "createTimestamp"])
    a = entry["attributes"]
    expect(isinstance(a["gidNumber"], int), f"gidNumber {a['gidNumber']!r} is not an int")
    expect(sorted(dn.lower() for dn in a["member"]) == sorted(m.lower() for m in members),
           f"member={a['member']!r}")
    expect(sorted(a["memberUid"]) == ["alice", "bob"], f"memberUid={a['memberUid']!r}")
    expect_uuid(a["entryUUID"])


def expect_paged(conn, bases, size, want, criticality=False):
    got = []
    for base in bases:
        for r in conn.extend.standard.paged_search(
                base, "(|(objectClass=person)(objectClass=groupOfNames))", SUBTREE,
                attributes=SYNC_ATTRS, paged_size=size, paged_criticality=criticality):
            if r["type"] == "searchResEntry":
                got.append(r["dn"].lower())
        expect(conn.result["result"] == 0, f"paged search of {base} ended with {conn.result}")
    dups = sorted({dn for dn in got if got.count(dn) > 1})
    expect(not dups, f"{len(dups)} entries returned more than once, e.g. {dups[:3]}")
    missing = sorted(want - set(got))
    extra = sorted(set(got) - want)
    expect(not missing and not extra,
           f"{len(got)} returned, {len(want)} seeded; missing {missing[:3]}, extra {extra[:3]}")


def expect_pages(conn, base, size, want):
    cookie, pages, total = None, 0, 0
    while True:
        conn.search(base, "(objectClass=person)", SUBTREE, attributes=["1.1"],
                    paged_size=size, paged_cookie=cookie)
        expect(conn.result["result"] == 0, f"page {pages + 1}: {conn.result}")
        n = len([r for r in conn.response if r["type"] == "searchResEntry"])
        expect(n <= size, f"page {pages + 1} held {n} entries, paged_size {size}")
        pages, total = pages + 1, total + n
        control = conn.result.get("controls", {}).get(PAGED_RESULTS)
        expect(control is not None, f"page {pages}: no paged results control in the done")
        cookie = control["value"]["cookie"]
        if not cookie:
            break
        expect(pages < 1000, "paging does not end")
    expect(total == want, f"{total} entries in {pages} pages, wanted {want}")
    expect(pages == (want + size - 1) // size, f"{pages} pages for {want} entries of {size}")


def expect_incremental(conn, admin, suffix, bob):
    time.sleep(0.05)  # the seed's own timestamps must fall before the high-water mark
    now = datetime.now(timezone.utc)
    mark = now.replace(microsecond=now.microsecond // 1000 * 1000)  # millisecond fraction
    time.sleep(0.01)
    admin.modify(bob, {"mail": [(MODIFY_REPLACE, ["bob@changed.example.com"])]})
    expect(admin.result["result"] == 0, f"modify {bob}: {admin.result}")

    z_form = mark.strftime("%Y%m%d%H%M%S.") + f"{mark.microsecond // 1000:03d}Z"
    plus2 = mark.astimezone(timezone(timedelta(hours=2)))
    offset_form = plus2.strftime("%Y%m%d%H%M%S.") + f"{plus2.microsecond // 1000:03d}+0200"
    for form in (z_form, offset_form):
        flt = f"(&(|(objectClass=person)(objectClass=groupOfNames))(modifyTimestamp>={form}))"
        conn.search(suffix, flt, SUBTREE, attributes=["modifyTimestamp"])
        expect(conn.result["result"] == 0, f"search {flt}: {conn.result}")
        dns = [r["dn"] for r in conn.response if r["type"] == "searchResEntry"]
        expect([dn.lower() for dn in dns] == [bob.lower()],
               f"filter {flt} returned {dns}, wanted only {bob}")
        stamp = conn.response[0]["attributes"]["modifyTimestamp"]
        expect(stamp >= mark, f"modifyTimestamp {stamp} is before the mark {mark}")


MIRROR_FILTER = "(|(objectClass=person)(objectClass=groupOfNames))"
MIRROR_ATTRS = ["entryUUID", "modifyTimestamp", "uid", "cn", "mail", "description", "member"]


def full_pull(conn, suffix):
    """Everything a sync tool mirrors, keyed by entryUUID, by a paged pull."""
    out = {}
    for r in conn.extend.standard.paged_search(suffix, MIRROR_FILTER, SUBTREE,
                                               attributes=MIRROR_ATTRS, paged_size=100):
        if r["type"] == "searchResEntry":
            out[r["attributes"]["entryUUID"]] = mirrored(r)
    expect(conn.result["result"] == 0, f"full pull: {conn.result}")
    return out


def mirrored(r):
    a = r["attributes"]
    keep = {k: (sorted(v) if isinstance(v, list) else v) for k, v in a.items()
            if k not in ("entryUUID", "modifyTimestamp")}
    return (r["dn"].lower(), repr(sorted(keep.items())), a["modifyTimestamp"])


def expect_mirror(conn, admin, suffix, people, groups):
    mirror = full_pull(conn, suffix)
    expect(len(mirror) > 300, f"only {len(mirror)} entries pulled")
    mark = max(stamp for (_, _, stamp) in mirror.values())
    time.sleep(0.01)
    added = f"uid=mirror-new,{people}"
    admin.add(added, ["inetOrgPerson"], {"uid": "mirror-new", "cn": "New", "sn": "New"})
    expect(admin.result["result"] == 0, f"add: {admin.result}")
    modified = f"uid=user007,{people}"
    admin.modify(modified, {"description": [(MODIFY_REPLACE, ["changed by the mirror test"])]})
    expect(admin.result["result"] == 0, f"modify: {admin.result}")
    admin.modify_dn(f"uid=user008,{people}", "uid=user008-renamed")
    expect(admin.result["result"] == 0, f"rename: {admin.result}")
    admin.delete(f"uid=user009,{people}")
    expect(admin.result["result"] == 0, f"delete: {admin.result}")

    # Incremental: what changed since the mark, applied by entryUUID (renames included).
    stamp = mark.strftime("%Y%m%d%H%M%S.%fZ")
    changed = 0
    for r in conn.extend.standard.paged_search(
            suffix, f"(&{MIRROR_FILTER}(modifyTimestamp>={stamp}))", SUBTREE,
            attributes=MIRROR_ATTRS, paged_size=100):
        if r["type"] == "searchResEntry":
            mirror[r["attributes"]["entryUUID"]] = mirrored(r)
            changed += 1
    expect(changed >= 3, f"incremental pull returned {changed} entries")
    # Deletes: a pull of the keys alone, and what is gone goes.
    present = set()
    for r in conn.extend.standard.paged_search(suffix, MIRROR_FILTER, SUBTREE,
                                               attributes=["entryUUID"], paged_size=500):
        if r["type"] == "searchResEntry":
            present.add(r["attributes"]["entryUUID"])
    for gone in set(mirror) - present:
        del mirror[gone]
    truth = full_pull(conn, suffix)
    diff = sorted(set(mirror.items()) ^ set(truth.items()))
    expect(not diff, f"mirror and directory differ in {len(diff)} entries, e.g. {diff[:2]}")
    dns = {dn for (dn, _, _) in truth.values()}
    expect(f"uid=user008-renamed,{people}".lower() in dns and f"uid=user009,{people}".lower() not in dns,
           "the rename and the delete reached the mirror")


def expect_rename_keeps_uuid(conn, admin, people, bob, staff):
    before = search_one(conn, bob, ["entryUUID"])["attributes"]["entryUUID"]
    expect_uuid(before)
    robert = f"uid=robert,{people}"
    admin.modify_dn(bob, "uid=robert")
    expect(admin.result["result"] == 0, f"modify_dn {bob} -> uid=robert: {admin.result}")
    after = search_one(conn, robert, ["entryUUID", "uid", "memberOf"])["attributes"]
    expect(after["entryUUID"] == before, f"entryUUID {before} became {after['entryUUID']}")
    expect("robert" in after["uid"], f"uid after the rename: {after['uid']!r}")
    expect([dn.lower() for dn in after["memberOf"]] == [staff.lower()],
           f"memberOf after the rename: {after['memberOf']!r}")
    members = search_one(conn, staff, ["member"])["attributes"]["member"]
    expect(robert.lower() in [m.lower() for m in members]
           and bob.lower() not in [m.lower() for m in members],
           f"{staff} member after the rename: {members!r}")
    conn.search(bob, "(objectClass=*)", BASE, attributes=["1.1"])
    expect(conn.result["result"] == 32, f"old DN still answers: {conn.result}")
    conn.search(people, f"(entryUUID={before})", SUBTREE, attributes=["1.1"])
    dns = [r["dn"].lower() for r in conn.response if r["type"] == "searchResEntry"]
    expect(dns == [robert.lower()], f"(entryUUID={before}) found {dns}: {conn.result}")


def expect_add_has_uuid(conn, admin, people):
    carol = f"uid=carol,{people}"
    admin.add(carol, ["inetOrgPerson", "posixAccount"],
              {"uid": "carol", "cn": "Carol Example", "sn": "Example"})
    expect(admin.result["result"] == 0, f"add {carol}: {admin.result}")
    a = search_one(conn, carol, SYNC_ATTRS)["attributes"]
    expect_uuid(a["entryUUID"])
    expect(isinstance(a["uidNumber"], int), f"uidNumber {a['uidNumber']!r} was not filled in")
    expect(isinstance(a["createTimestamp"], datetime), f"createTimestamp {a['createTimestamp']!r}")
    conn.search(people, "(objectClass=person)", SUBTREE, attributes=["entryUUID"])
    uuids = [r["attributes"]["entryUUID"] for r in conn.response if r["type"] == "searchResEntry"]
    expect(len(uuids) == len(set(uuids)), "two people share an entryUUID")


# --- helpers --------------------------------------------------------------------------


def check(name, body):
    """Run one check; print ok or FAIL with the reason, and count a failure in FAILED.
    Returns whether it passed."""
    global FAILED
    try:
        body()
    except AssertionError as e:
        FAILED += 1
        print(f"FAIL - {name}: {e}", flush=True)
        return False
    except (LDAPException, KeyError, TypeError, IndexError) as e:
        FAILED += 1
        print(f"FAIL - {name}: {type(e).__name__}: {e}", flush=True)
        return False
    print(f"ok   - {name}", flush=True)
    return True


def expect(cond, why):
    if not cond:
        raise AssertionError(why)


def expect_uuid(value):
    expect(isinstance(value, str) and UUID_RE.match(value), f"entryUUID {value!r} is not a UUID")


def search_one(conn, dn, attrs):
    conn.search(dn, "(objectClass=*)", BASE, attributes=attrs)
    entries = [r for r in conn.response if r["type"] == "searchResEntry"]
    expect(conn.result["result"] == 0 and len(entries) == 1,
           f"base search of {dn} for {attrs}: {conn.result}, {len(entries)} entries")
    return entries[0]


if __name__ == "__main__":
    sys.exit(main())
