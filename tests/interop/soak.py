"""Soak: mixed load against a running Tessera for a bounded time, loopback only.

Workers connect over LDAPS and bind with good and bad passwords and with a token, search,
write over LDAPI, and drop connections abruptly (mid-PDU, mid-handshake, mid-search). A
sampler reads the server's RSS and open file descriptors. The run fails on any result a
client should not see, or when RSS or descriptors keep growing after the warm-up.
"""

import argparse
import random
import socket
import ssl
import sys
import threading
import time

from ldap3 import BASE, EXTERNAL, MODIFY_REPLACE, SASL, SUBTREE, Connection, Server, Tls


def tlv(tag, value):
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | 2]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + value


def search_request():
    """A base search of the rootDSE for everything, message id 1."""
    body = (tlv(0x04, b"") + tlv(0x0A, b"\x00") + tlv(0x0A, b"\x00") + tlv(0x02, b"\x00")
            + tlv(0x02, b"\x00") + tlv(0x01, b"\x00") + tlv(0x87, b"objectClass") + tlv(0x30, b""))
    return tlv(0x30, tlv(0x02, b"\x01") + tlv(0x63, body))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ldapi", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--seconds", type=int, default=600)
    p.add_argument("--workers", type=int, default=8)
    args = p.parse_args()

    tls = Tls(ca_certs_file=args.ca, validate=ssl.CERT_REQUIRED)
    ldaps = Server("localhost", port=args.port, use_ssl=True, tls=tls, connect_timeout=10)
    deadline = time.monotonic() + args.seconds
    counts, errors, lock = {}, [], threading.Lock()

    def count(kind):
        with lock:
            counts[kind] = counts.get(kind, 0) + 1

    def error(text):
        with lock:
            if len(errors) < 20:
                errors.append(text)
            counts["unexpected"] = counts.get("unexpected", 0) + 1

    people = "ou=people,dc=example,dc=com"

    def person_session():
        n = random.randrange(50)
        c = Connection(ldaps, f"uid=soak{n},{people}", "soak-password", receive_timeout=30)
        if not c.bind():
            return error(f"good bind of soak{n}: {c.result}")
        c.search(people, f"(uid=soak{random.randrange(50)})", SUBTREE, attributes=["uid", "memberOf"])
        if c.result["result"] != 0 or len(c.entries) != 1:
            error(f"search: {c.result}")
        c.unbind()
        count("person")

    def bad_bind():
        n = random.randrange(3)
        c = Connection(ldaps, f"uid=soak{n},{people}", "wrong", receive_timeout=60)
        if c.bind() or c.result["result"] != 49:
            error(f"bad bind: {c.result}")
        c.unbind()
        count("bad-bind")

    def token_session():
        c = Connection(ldaps, "dn=token", args.token, receive_timeout=30)
        if not c.bind():
            return error(f"token bind: {c.result}")
        c.extend.standard.paged_search(people, "(objectClass=posixAccount)", SUBTREE,
                                       attributes=["uid"], paged_size=20, generator=False)
        if c.result["result"] != 0:
            error(f"paged search: {c.result}")
        c.unbind()
        count("token")

    def write():
        c = Connection(Server(args.ldapi), authentication=SASL, sasl_mechanism=EXTERNAL)
        if not c.bind():
            return error(f"EXTERNAL bind: {c.result}")
        dn = f"uid=soak{random.randrange(50)},{people}"
        c.modify(dn, {"description": [(MODIFY_REPLACE, [f"soak {time.time()}"])]})
        if c.result["result"] != 0:
            error(f"modify: {c.result}")
        c.unbind()
        count("write")

    def abrupt():
        kind = random.randrange(3)
        s = socket.create_connection(("127.0.0.1", args.port), timeout=10)
        try:
            if kind == 0:
                s.sendall(b"\x16\x03\x01\x02\x00\x01")  # a TLS record header, then gone
            else:
                ctx = ssl.create_default_context(cafile=args.ca)
                t = ctx.wrap_socket(s, server_hostname="localhost")
                if kind == 1:
                    t.sendall(b"\x30\x84\x00\x00\x01\x00\x02\x01")  # half a PDU
                else:
                    t.sendall(search_request())  # then close without reading the result
                t.close()
        except OSError:
            pass
        finally:
            s.close()
        count("abrupt")

    actions = [person_session] * 4 + [bad_bind, token_session, token_session, write, abrupt, abrupt]

    def worker():
        while time.monotonic() < deadline:
            try:
                random.choice(actions)()
            except Exception as e:  # a client-side failure is a finding, not a crash
                error(f"{type(e).__name__}: {e}")

    samples = []

    def sampler():
        start = time.monotonic()
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{args.pid}/status") as f:
                    rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
                fds = len(__import__("os").listdir(f"/proc/{args.pid}/fd"))
            except (OSError, StopIteration):
                error("the server is gone")
                return
            samples.append((time.monotonic() - start, rss, fds))
            time.sleep(2)

    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    warm = [s for s in samples if s[0] <= args.seconds / 5]
    late = [s for s in samples if s[0] >= args.seconds * 4 / 5]
    ok = True
    if not warm or not late:
        print("FAIL - too few samples")
        return 1
    rss_warm, rss_late = max(s[1] for s in warm), max(s[1] for s in late)
    fds_warm, fds_late = max(s[2] for s in warm), max(s[2] for s in late)
    total = sum(v for k, v in counts.items() if k != "unexpected")
    print(f"     {args.seconds}s, {args.workers} workers: {total} sessions {dict(sorted(counts.items()))}")
    print(f"     RSS KiB: warm-up max {rss_warm}, last fifth max {rss_late}, overall max {max(s[1] for s in samples)}")
    print(f"     open fds: warm-up max {fds_warm}, last fifth max {fds_late}")
    for e in errors:
        print(f"     unexpected: {e}")
    kinds = ("person", "bad-bind", "token", "write", "abrupt")
    checks = [
        ("every kind of session ran (" + ", ".join(kinds) + ")", all(counts.get(k, 0) > 0 for k in kinds)),
        ("no unexpected results", counts.get("unexpected", 0) == 0),
        ("RSS does not grow after the warm-up (last fifth within 25% of the warm-up)", rss_late <= rss_warm * 1.25),
        ("open descriptors do not grow after the warm-up", fds_late <= fds_warm + 8),
    ]
    passed = 0
    for name, good in checks:
        print(("ok   - " if good else "FAIL - ") + name)
        passed += good
        ok &= good
    print(f"{passed} passed, {len(checks) - passed} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
