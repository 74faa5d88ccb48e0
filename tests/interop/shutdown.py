"""Shutdown under load: the client side, on raw sockets so every PDU is counted.

Several connections pipeline adds and searches (up to --window requests outstanding on
each) over LDAPI as the local administrator, and a few more search anonymously over
plain LDAP on TCP. Once every connection has had answers, the file --ready appears; the
caller then signals the server. If some connection has had none after 10 s, --ready never
appears and the client exits 1 at once. Each connection keeps sending until it reads a Notice of
Disconnection (and stops, as a client should) or its socket ends, then reads to the end.

What a connection must show (RFC 4511 §4.4.1):
  * every response answers a request sent on it and not answered before (a search is
    answered by its SearchResultDone), with no entries or results after the Done;
  * a Notice of Disconnection (msgid 0, 1.3.6.1.4.1.1466.20036) is the last message, and
    the stream then ends in an orderly close, not a reset;
  * a request left unanswered is allowed only when the connection got that notice.
Writes: the adds answered with success are written to --acked, the adds sent but never
answered to --unanswered; the caller checks after a restart that the first are all
there and the second are all absent (the server never performs what it did not answer).
"""

import argparse
import os
import random
import socket
import sys
import threading
import time

NOTICE_OID = b"1.3.6.1.4.1.1466.20036"
PEOPLE = b"ou=people,dc=example,dc=com"


def blen(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(t, v):
    return bytes([t]) + blen(len(v)) + v


def integer(i, tag=0x02):
    return tlv(tag, i.to_bytes(max(1, (i.bit_length() + 8) // 8), "big", signed=True))


def msg(mid, op):
    return tlv(0x30, integer(mid) + op)


def bind_external():
    return tlv(0x60, integer(3) + tlv(0x04, b"") + tlv(0xA3, tlv(0x04, b"EXTERNAL")))


def add(dn, uid):
    attrs = b"".join(
        tlv(0x30, tlv(0x04, name) + tlv(0x31, b"".join(tlv(0x04, v) for v in values)))
        for name, values in [(b"objectClass", [b"inetOrgPerson"]), (b"uid", [uid]), (b"cn", [b"s"]), (b"sn", [b"s"])]
    )
    return tlv(0x68, tlv(0x04, dn) + tlv(0x30, attrs))


def search(base, flt, scope):
    return tlv(0x63, tlv(0x04, base) + integer(scope, 0x0A) + integer(0, 0x0A) + integer(0) + integer(0)
               + tlv(0x01, b"\x00") + flt + tlv(0x30, tlv(0x04, b"1.1")))


def equality(attr, value):
    return tlv(0xA3, tlv(0x04, attr) + tlv(0x04, value))


def present(attr):
    return tlv(0x87, attr)


def header(buf, pos):
    """(tag, content start, content end) of the TLV at pos, or None if not all there."""
    if pos + 2 > len(buf):
        return None
    tag, first = buf[pos], buf[pos + 1]
    pos += 2
    if first & 0x80:
        n = first & 0x7F
        if pos + n > len(buf):
            return None
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > len(buf):
        return None
    return tag, pos, pos + length


class Conn:
    def __init__(self, name, sock, kind, run, window, admin):
        self.name, self.sock, self.kind, self.run, self.window, self.admin = name, sock, kind, run, window, admin
        self.pending = {}  # msgid -> (op, dn or None)
        self.answered = 0
        self.acked, self.problems = [], []
        self.notice = False
        self.ending = None  # "eof" or "reset"
        self.outstanding_at_notice = 0
        self.lock = threading.Condition()
        self.next_id = 1
        self.stop = False

    def send(self, op, what, dn=None):
        with self.lock:
            while len(self.pending) >= self.window and not self.stop:
                self.lock.wait(0.5)
            if self.stop:
                return False
            mid = self.next_id
            self.next_id += 1
            self.pending[mid] = (what, dn)
        try:
            self.sock.sendall(msg(mid, op))
        except OSError:
            with self.lock:
                # Never reached the server as far as we know: it may still have; keep it.
                self.stop = True
            return False
        return True

    def writer(self, stats):
        n = 0
        if self.admin and not self.send(bind_external(), "bind"):
            return
        while not self.stop:
            n += 1
            if self.admin and n % 2:
                uid = f"sd-{self.run}-{self.name}-{n}".encode()
                if not self.send(add(b"uid=" + uid + b"," + PEOPLE, uid), "add", uid.decode()):
                    return
            elif self.admin:
                uid = f"sd-{self.run}-{self.name}-{random.randrange(1, n + 1)}".encode()
                if not self.send(search(PEOPLE, equality(b"uid", uid), 2), "search"):
                    return
            else:
                base = random.choice([b"", b"dc=example,dc=com"])
                if not self.send(search(base, present(b"objectClass"), 0), "search"):
                    return

    def reader(self, stats):
        buf = b""
        done_ids = set()
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                self.ending = "reset"
                break
            except OSError as e:
                self.ending = f"error {e}"
                break
            if not data:
                self.ending = "eof"
                break
            buf += data
            pos = 0
            while True:
                h = header(buf, pos)
                if h is None:
                    break
                _, start, end = h
                self.message(buf[start:end], done_ids, stats)
                pos = end
            buf = buf[pos:]
        if buf:
            self.problems.append(f"{len(buf)} bytes of a partial message at the end")
        with self.lock:
            self.stop = True
            self.lock.notify_all()

    def message(self, body, done_ids, stats):
        h = header(body, 0)
        mid = int.from_bytes(body[h[1]:h[2]], "big", signed=True)
        op = header(body, h[2])
        tag = body[h[2]]
        content = body[op[1]:op[2]]
        if self.notice:
            self.problems.append(f"a message (msgid {mid}, tag {tag:#x}) after the notice")
            return
        if mid == 0:
            if tag == 0x78 and NOTICE_OID in content:
                with self.lock:
                    self.notice = True
                    self.outstanding_at_notice = len(self.pending)
                    self.stop = True
                    self.lock.notify_all()
            else:
                self.problems.append(f"an unsolicited message that is not a notice (tag {tag:#x})")
            return
        with self.lock:
            if mid in done_ids or mid not in self.pending:
                self.problems.append(f"a response to msgid {mid}, which was not outstanding")
                return
            what, dn = self.pending[mid]
            if tag == 0x64:  # a search entry: the search is not answered until its Done
                return
            code_tlv = header(content, 0)
            code = content[code_tlv[1]] if code_tlv and code_tlv[2] > code_tlv[1] else -1
            del self.pending[mid]
            done_ids.add(mid)
            self.answered += 1
            self.lock.notify_all()
        if what == "add" and code == 0:
            self.acked.append(dn)
        elif what == "bind" and code != 0:
            self.problems.append(f"the EXTERNAL bind got {code}")
        elif what == "search" and code not in (0, 32):
            self.problems.append(f"a search got {code}")
        elif what == "add" and code not in (0, 52, 80):
            self.problems.append(f"an add got {code}")
        stats[f"{what}:{code}"] = stats.get(f"{what}:{code}", 0) + 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ldapi", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--run", required=True)
    p.add_argument("--ready", required=True)
    p.add_argument("--acked", required=True)
    p.add_argument("--unanswered", required=True)
    p.add_argument("--admins", type=int, default=4)
    p.add_argument("--anonymous", type=int, default=2)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--timeout", type=float, default=30)
    args = p.parse_args()

    conns = []
    for i in range(args.admins):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(args.ldapi)
        conns.append(Conn(f"a{i}", s, "ldapi", args.run, args.window, True))
    for i in range(args.anonymous):
        s = socket.create_connection(("127.0.0.1", args.port))
        conns.append(Conn(f"t{i}", s, "tcp", args.run, args.window, False))
    stats = {}
    threads = []
    for c in conns:
        for f in (c.reader, c.writer):
            t = threading.Thread(target=f, args=(stats,), daemon=True)
            t.start()
            threads.append(t)
    # Ready once every connection has had answers: the load is under way everywhere. If
    # that does not happen, there is nothing for a shutdown to interrupt: say so and stop,
    # without --ready, so the caller fails the run instead of signalling an idle server.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(c.answered >= 3 for c in conns):
        time.sleep(0.01)
    if not all(c.answered >= 3 for c in conns):
        answered = {c.name: c.answered for c in conns}
        print(f"problem: not every connection had 3 answers within 10 s: {answered}; "
              f"{[f'{c.name}: {pr}' for c in conns for pr in c.problems][:5]}")
        return 1
    open(args.ready, "w").close()
    deadline = time.monotonic() + args.timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    hung = [c.name for c in conns if c.ending is None]

    problems = []
    for c in conns:
        for pr in c.problems:
            problems.append(f"{c.name}: {pr}")
        if c.ending != "eof":
            problems.append(f"{c.name}: ended by {c.ending}, not an orderly close")
        if c.pending and not c.notice:
            problems.append(f"{c.name}: {len(c.pending)} requests unanswered without a Notice of Disconnection")
    with open(args.acked, "w") as f:
        for c in conns:
            for dn in c.acked:
                f.write(f"uid={dn},ou=people,dc=example,dc=com\n")
    with open(args.unanswered, "w") as f:
        for c in conns:
            for what, dn in c.pending.values():
                if what == "add":
                    f.write(f"uid={dn},ou=people,dc=example,dc=com\n")
    sent = sum(c.next_id - 1 for c in conns)
    answered = sum(c.answered for c in conns)
    noticed = sum(c.notice for c in conns)
    in_flight = sum(c.outstanding_at_notice for c in conns)
    print(f"{len(conns)} connections: {sent} requests, {answered} answered, {sent - answered} unanswered; "
          f"{noticed} notices, {in_flight} requests outstanding when they came; "
          f"{sum(len(c.acked) for c in conns)} adds acknowledged; {dict(sorted(stats.items()))}")
    if hung:
        problems.append(f"connections still open after {args.timeout}s: {hung}")
    for pr in problems[:20]:
        print(f"problem: {pr}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
