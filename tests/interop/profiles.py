"""NAS and application profiles: the searches, binds and controls of QNAP, Synology DSM,
TrueNAS, Keycloak, Nextcloud and GitLab, as shared/research/clients.md records them,
replayed with python ldap3 against a Tessera loaded with tests/interop/seed.sh.

Run by nas-apps.sh. Each client uses the credentials an admin would type into its form:
the NAS boxes a service account's read-only token (nas01, directory-readers), the apps a
read-write token of app01 (directory-sync + people-admins). ldap3's own name checking is
off where the real client (PHP, Java, Ruby, C) sends names the schema does not know.
Prints one "ok   - NAME" or "FAIL - NAME: WHY" line per check.
"""

import argparse
import re
import ssl
import sys
import time
from datetime import datetime, timezone

from ldap3 import (ALL, ALL_ATTRIBUTES, BASE, LEVEL, MODIFY_REPLACE, NONE, SUBTREE,
                   Connection, Server, Tls)

PAGED = "1.2.840.113556.1.4.319"
PPOLICY = "1.3.6.1.4.1.42.2.27.8.5.1"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PEOPLE_NAMES = {"alice", "bob", "carol"} | {f"user{i:02d}" for i in range(1, 15)}
POSIX_GROUPS = {"nas-users", "developers", "engineering", "admins"}
FAILED = 0


def main():
    a = parse_args()
    tls = Tls(ca_certs_file=a.ca, validate=ssl.CERT_REQUIRED)
    ldaps = Server(a.ldaps, use_ssl=True, tls=tls, get_info=NONE)
    starttls = Server(a.ldap, tls=tls, get_info=NONE)
    people, groups, suffix = f"ou=people,{a.suffix}", f"ou=groups,{a.suffix}", a.suffix
    nas01 = f"uid=nas01,ou=services,{suffix}"
    alice = f"uid=alice,{people}"

    # --- QNAP: PADL nss_ldap, rootbinddn + password, one-level scope, rfc2307 ---------
    check("QNAP: the token fits the 64-character password field",
          lambda: expect(len(a.nas_token) <= 64, f"{len(a.nas_token)} characters"))
    for label, server in (("ldap+TLS", starttls), ("ldap+SSL", ldaps)):
        def qnap(server=server):
            c = bound(server, nas01, a.nas_token, start_tls=server is starttls)
            c.search(people, "(objectClass=posixAccount)", LEVEL,
                     attributes=["uid", "uidNumber", "gidNumber", "homeDirectory", "loginShell",
                                 "gecos", "cn", "userPassword"])
            names = {str(e.uid) for e in c.entries}
            expect(names == PEOPLE_NAMES, f"one-level posixAccount under ou=people: {names}")
            expect(all("userPassword" not in r["raw_attributes"] or not r["raw_attributes"]["userPassword"]
                       for r in c.response if r["type"] == "searchResEntry"),
                   "userPassword was returned to the NAS")
            c.search(groups, "(objectClass=posixGroup)", LEVEL, attributes=["cn", "gidNumber",
                                                                          "memberUid"])
            by_cn = {str(e.cn): e for e in c.entries}
            expect(set(by_cn) == POSIX_GROUPS, f"one-level posixGroup: {set(by_cn)}")
            uids = set(by_cn["nas-users"].memberUid.values)
            expect(uids == PEOPLE_NAMES, f"nas-users memberUid: {uids}")
            expect(set(by_cn["engineering"].memberUid.values) == {"carol"},
                   f"engineering memberUid (groups are not memberUid): "
                   f"{by_cn['engineering'].memberUid.values}")
            c.search(people, "(objectClass=shadowAccount)", LEVEL, attributes=["uid"])
            expect(len(c.entries) == len(PEOPLE_NAMES), f"shadowAccount: {len(c.entries)}")
            c.unbind()
        check(f"QNAP ({label}): bind with the service DN and token, one-level posixAccount, "
              "posixGroup with memberUid, shadowAccount", qnap)
    check("QNAP: alice logs in by binding as her DN",
          lambda: bound(starttls, alice, "alice-secret", start_tls=True).unbind())

    # --- Synology DSM -------------------------------------------------------------------
    def synology_anonymous():
        c = Connection(ldaps, auto_bind=True)  # anonymous
        c.search("", "(objectClass=*)", BASE, attributes=["namingContexts", "subschemaSubentry"])
        expect(len(c.entries) == 1, f"anonymous rootDSE: {c.result}")
        nc = c.entries[0].namingContexts.values
        expect(nc == [suffix], f"namingContexts is the single suffix: {nc}")
        c.search(suffix, "(objectClass=*)", BASE, attributes=["*"])
        expect(c.result["result"] == 0 and len(c.entries) == 1,
               f"anonymous base read of the suffix: {c.result}")
        ocs = {v.lower() for v in c.entries[0].objectClass.values}
        expect("dcobject" in ocs or "domain" in ocs or "organization" in ocs,
               f"suffix objectClass: {ocs}")
        c.search(suffix, "(objectClass=posixAccount)", SUBTREE, attributes=["uid"])
        expect(len(c.entries) == 0, f"anonymous sees no people: {len(c.entries)}")
        c.search(people, "(objectClass=*)", BASE, attributes=["*"])
        expect(c.result["result"] == 32, f"anonymous base read of ou=people: {c.result}")
        c.unbind()
    check("Synology: anonymous rootDSE (single namingContexts) and base read of the suffix; "
          "nothing below it", synology_anonymous)

    def synology_bound():
        server = Server(a.ldaps, use_ssl=True, tls=tls, get_info=ALL)
        c = Connection(server, user=nas01, password=a.nas_token, auto_bind=True,
                       check_names=True)
        expect(server.schema is not None and server.schema.is_valid(), "cn=Subschema not read")
        for name in ("posixAccount", "shadowAccount", "posixGroup", "inetOrgPerson"):
            expect(name in server.schema.object_classes, f"{name} not in the schema")
        c.search("cn=Subschema", "(objectClass=subschema)", BASE,
                 attributes=["objectClasses", "attributeTypes"])
        expect(len(c.entries) == 1, f"cn=Subschema: {c.result}")
        c.search(suffix, "(objectClass=posixAccount)", SUBTREE,
                 attributes=["uid", "uidNumber", "gidNumber", "memberOf", "homeDirectory"])
        expect(len(c.entries) == len(PEOPLE_NAMES), f"people: {len(c.entries)}")
        for e in c.entries:
            for attr in ("uidNumber", "gidNumber"):
                v = e[attr].value
                expect(isinstance(v, int), f"{e.entry_dn} {attr} is {v!r}, not an integer")
        a_e = [e for e in c.entries if str(e.uid) == "alice"][0]
        member_of = {v.lower() for v in a_e.memberOf.values}
        want = {f"cn={g},{groups}".lower() for g in ("nas-users", "developers")}
        expect(want <= member_of, f"alice memberOf: {member_of}")
        c.search(groups, "(objectClass=posixGroup)", SUBTREE,
                 attributes=["cn", "gidNumber", "member", "memberUid"])
        for e in c.entries:
            expect(isinstance(e.gidNumber.value, int), f"{e.entry_dn} gidNumber")
            expect(len(e.member.values) > 0, f"{e.entry_dn} has no member")
        c.unbind()
    check("Synology: bound with the token, cn=Subschema parsed (check server schema), "
          "integer uidNumber/gidNumber, memberOf on people and member on groups", synology_bound)

    # --- TrueNAS ------------------------------------------------------------------------
    def truenas_health():
        c = bound(ldaps, nas01, a.nas_token)
        c.search("", "(objectclass=*)", BASE, attributes=["*"], paged_size=1024,
                 paged_criticality=False)
        expect(c.result["result"] == 0 and len(c.entries) == 1, f"rootDSE: {c.result}")
        ctrl = c.result.get("controls", {}).get(PAGED)
        expect(ctrl is not None, f"no paged response control on the base search: {c.result}")
        expect(ctrl["value"]["cookie"] in (b"", None), f"cookie: {ctrl['value']['cookie']!r}")
        c.unbind()
    check("TrueNAS: health check reads the rootDSE with a paged control (1024) on base scope",
          truenas_health)

    # --- Keycloak -----------------------------------------------------------------------
    app = bound(ldaps, a.app_dn, a.app_token)

    def keycloak_paged():
        names, cookie, pages = set(), None, 0
        while True:
            app.search(people, "(&(objectclass=inetOrgPerson)(objectclass=organizationalPerson))",
                       LEVEL, attributes=["entryUUID", "objectclass", "uid", "cn", "mail"],
                       paged_size=5, paged_criticality=True, paged_cookie=cookie)
            expect(app.result["result"] == 0, f"critical paged search: {app.result}")
            ctrl = app.result.get("controls", {}).get(PAGED)
            expect(ctrl is not None, "Did not receive response controls for paginated query")
            pages += 1
            for e in app.entries:
                expect(UUID_RE.match(str(e.entryUUID)), f"{e.entry_dn} entryUUID")
                names.add(str(e.uid))
            cookie = ctrl["value"]["cookie"]
            expect(not cookie or all(0x21 <= b <= 0x7E for b in cookie), f"cookie {cookie!r}")
            if not cookie:
                break
            expect(pages < 20, "paging does not end")
        expect(names == PEOPLE_NAMES, f"users: {names}")
        expect(pages == 4, f"{pages} pages of 5 for 17 users")
    check("Keycloak: critical paged one-level user search (batch 5) with entryUUID",
          keycloak_paged)

    new_dn = f"uid=kc-user,{people}"
    # Keycloak's "last sync" time, to the second (.0Z), after the seed was loaded.
    time.sleep(1.1)
    since = datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S.0Z")

    def keycloak_add():
        ok = app.add(new_dn, ["inetOrgPerson", "organizationalPerson", "person", "top"],
                     {"uid": "kc-user", "cn": "Keycloak User", "sn": "User",
                      "mail": "kc-user@example.com", "userPassword": "kc-initial"})
        expect(ok, f"add: {app.result}")
        app.search(new_dn, "(objectclass=*)", BASE, attributes=["entryUUID", "objectclass"])
        expect(len(app.entries) == 1, f"read back: {app.result}")
        uuid = str(app.entries[0].entryUUID)
        expect(UUID_RE.match(uuid), f"Could not retrieve identifier for entry: {uuid!r}")
        app.search(people, f"(entryUUID={uuid})", LEVEL, attributes=["uid"])
        expect([str(e.uid) for e in app.entries] == ["kc-user"], "getFilterById")
        app.search(people, f"(|(createTimestamp>={since})(modifyTimestamp>={since}))", LEVEL,
                   attributes=["uid"])
        expect([str(e.uid) for e in app.entries] == ["kc-user"],
               f"changed-users sync since {since}: {[str(e.uid) for e in app.entries]}")
        app.search(new_dn, "(objectclass=*)", BASE, attributes=["userPassword"])
        pw = app.entries[0].userPassword.values if "userPassword" in app.entries[0] else []
        expect(not pw, "cleartext userPassword came back")
        expect(app.extend.standard.modify_password(new_dn, None, "kc-changed") is True,
               f"Password Modify (dn, null, new): {app.result}")
        bound(ldaps, new_dn, "kc-changed").unbind()
    check("Keycloak: Add, entryUUID read back by name, (entryUUID=) lookup, "
          "changed-users sync by createTimestamp/modifyTimestamp with .0Z, Password Modify "
          "(dn, null, new), the new password binds", keycloak_add)

    def keycloak_group():
        dn = f"cn=kc-group,{groups}"
        ok = app.add(dn, ["groupOfNames", "top"],
                     {"cn": "kc-group", "member": f"cn=empty-membership-placeholder"})
        expect(ok, f"group with the placeholder member: {app.result}")
        ok = app.modify(dn, {"member": [("MODIFY_ADD", [new_dn])]})
        expect(ok, f"member add: {app.result}")
        app.search(groups, f"(member={new_dn.upper()})", LEVEL, attributes=["cn"])
        expect([str(e.cn) for e in app.entries] == ["kc-group"],
               f"(member=<DN>) with DN normalisation: {app.entries}")
    check("Keycloak: new groupOfNames with the dangling placeholder member, member ADD, "
          "(member=<user DN>) lookup", keycloak_group)

    def keycloak_auth():
        c = Connection(starttls, user=alice, password="alice-secret")
        c.open()
        expect(c.start_tls(), f"StartTLS: {c.result}")
        expect(c.bind(controls=[(PPOLICY, False, None)]), f"bind with ppolicy: {c.result}")
        c.unbind()
    check("Keycloak: user authentication on a new StartTLS connection with a non-critical "
          "ppolicy control", keycloak_auth)

    # --- Nextcloud ----------------------------------------------------------------------
    nc = bound(ldaps, a.app_dn, a.app_token, check_names=False)

    def nextcloud():
        nc.search(people, "(memberOf=*)", SUBTREE, attributes=["dn"])
        expect(len(nc.entries) == len(PEOPLE_NAMES) + 1,
               f"countUsers('memberOf=*'): {len(nc.entries)}")
        nc.search(suffix, f"(&(objectclass=inetOrgPerson)(memberof=cn=developers,{groups}))",
                  SUBTREE, attributes=["uid"])
        expect({str(e.uid) for e in nc.entries} == {"alice", "bob"},
               f"(memberof=<group>): {nc.entries}")
        nc.search(people, "(objectclass=inetOrgPerson)", SUBTREE, attributes=ALL_ATTRIBUTES,
                  types_only=True, size_limit=1)
        expect(len(nc.entries) == 1, f"sizelimit=1 gave {len(nc.entries)} entries")
        expect(nc.result["result"] == 4, f"sizelimit=1: {nc.result['description']}")
        raw = nc.response[0]["raw_attributes"]
        expect(raw and all(not v for v in raw.values()), f"typesOnly values: {raw}")
        nc.search(alice, "(objectClass=*)", BASE,
                  attributes=["entryuuid", "nsuniqueid", "objectguid", "guid", "ipauniqueid"])
        expect(len(nc.entries) == 1 and UUID_RE.match(str(nc.entries[0]["entryUUID"])),
               f"UUID detection: {nc.result}")
        nc.search(groups, "(&(|(objectclass=posixGroup)(objectclass=group)"
                          "(objectclass=zimbraDistributionList)(objectclass=groupOfNames))(cn=*))",
                  SUBTREE, attributes=["cn", "member", "uniqueMember", "memberUid"],
                  paged_size=500)
        names = {str(e.cn) for e in nc.entries}
        expect(POSIX_GROUPS <= names and "service-owners" in names, f"group discovery: {names}")
        ok = nc.extend.standard.modify_password(new_dn, "", "nc-changed")
        expect(ok is True, f"ldap_exop_passwd(dn, '', new): {nc.result}")
        bound(ldaps, new_dn, "nc-changed").unbind()
    check("Nextcloud: memberOf=* and memberof= filters, typesOnly + sizeLimit=1, UUID "
          "auto-detection, group discovery filter (paged 500), exop_passwd(dn, '', new)",
          nextcloud)

    # --- GitLab (Net::LDAP) -------------------------------------------------------------
    gl = bound(ldaps, a.app_dn, a.app_token, check_names=False)

    def gitlab():
        gl.search("", "(objectClass=*)", BASE,
                  attributes=["altServer", "namingContexts", "supportedCapabilities",
                              "supportedControl", "supportedExtension", "supportedFeatures",
                              "supportedLdapVersion", "supportedSASLMechanisms"])
        expect(len(gl.entries) == 1, f"search_root_dse: {gl.result}")
        expect(PAGED in gl.entries[0].supportedControl.values, "paged results not advertised")
        # Every search is paged (126), non-critical, and the DN is the identity.
        gl.search(people, "(&(uid=alice))", SUBTREE,
                  attributes=["dn", "uid", "cn", "mail"], paged_size=126)
        expect([e.entry_dn for e in gl.entries] == [alice], f"login search: {gl.entries}")
        bound(ldaps, alice, "alice-secret").unbind()
        for _ in range(2):
            gl.search(alice, "(objectClass=inetOrgPerson)", BASE,
                      attributes=["dn", "uid", "cn", "mail"], paged_size=126)
            expect(len(gl.entries) == 1, f"periodic access check of {alice}: {gl.result}")
            gl.modify(f"uid=carol,{people}", {"description": [(MODIFY_REPLACE, [str(time.time())])]})
        gl.search(f"uid=nobody,{people}", "(objectClass=*)", BASE, attributes=["dn"],
                  paged_size=126)
        expect(gl.result["result"] == 32, f"a removed DN: {gl.result}")
        gl.search(groups, "(cn=nas-users)", SUBTREE,
                  attributes=["dn", "cn", "memberuid", "member", "submember", "uniquemember",
                              "memberof"], paged_size=126)
        expect(len(gl.entries) == 1 and len(gl.entries[0].member.values) == len(PEOPLE_NAMES),
               f"EE group sync: {gl.result}")
        cookies, cookie = [], None
        while True:
            gl.search(people, "(objectClass=inetOrgPerson)", SUBTREE, attributes=["uid"],
                      paged_size=5, paged_cookie=cookie)
            cookie = gl.result["controls"][PAGED]["value"]["cookie"]
            if not cookie:
                break
            cookies.append(cookie)
        expect(cookies and all(c.decode("ascii").isprintable() for c in cookies),
               f"cookies: {cookies}")
    check("GitLab: rootDSE capabilities, every search paged (126), login search then bind, "
          "base re-read of a stable DN, 32 for a gone DN, EE group sync attributes, "
          "printable cookies", gitlab)

    for c in (app, nc, gl):
        c.unbind()
    return 1 if FAILED else 0


def bound(server, user, password, start_tls=False, check_names=True):
    c = Connection(server, user=user, password=password, check_names=check_names)
    c.open()
    if start_tls and not c.start_tls():
        raise AssertionError(f"StartTLS failed: {c.result}")
    if not c.bind():
        raise AssertionError(f"bind as {user} failed: {c.result}")
    return c


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    for name in ("ldaps", "ldap", "ca", "suffix", "nas-token", "app-dn", "app-token"):
        p.add_argument(f"--{name}", required=True)
    return p.parse_args()


def check(name, body):
    global FAILED
    try:
        body()
    except Exception as e:  # noqa: BLE001 - every failure is a reported check
        FAILED += 1
        print(f"FAIL - {name}: {type(e).__name__}: {e}")
    else:
        print(f"ok   - {name}")
    sys.stdout.flush()


def expect(cond, why):
    if not cond:
        raise AssertionError(why)


if __name__ == "__main__":
    sys.exit(main())
