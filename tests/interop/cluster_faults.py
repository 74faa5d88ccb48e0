"""A Jepsen-style fault run against a three-node Tessera cluster (run by cluster-faults.sh
inside a network namespace it made, as root; every address is on that namespace's
loopback).

Nodes n1..n3 listen on 127.0.0.11..13. Worker threads spread a write load over the nodes
(adds, modifies, token mints and revocations, through each node's LDAPI socket: a write to
a follower is forwarded to the leader) and bind with revoked tokens. A nemesis SIGKILLs
the leader and restarts it, SIGSTOPs a node, restarts a node, and partitions one node from
the others (policy-routing rules that blackhole traffic between its address and theirs).
While a node is cut off past the staleness bound, it must refuse binds with 52.

After the run every fault is healed and the checker requires: every acknowledged write
present on every node; acknowledged revocations absent everywhere; every modified entry
holding its last acknowledged value (or a later unacknowledged one); no revoked token
accepted by a node of the majority after its revocation was acknowledged; the nodes'
exports identical. Prints "ok   - " / "FAIL - " lines and the counts: writes, faults,
elections, time without a leader.
"""

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

from ldap3 import BASE, EXTERNAL, MODIFY_REPLACE, SASL, SUBTREE, Connection, Server
from ldap3.core.exceptions import LDAPException

SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=people,{SUFFIX}"
SVC = f"uid=faultsvc,ou=services,{SUFFIX}"
GENERATE = "2.25.235497813471364094925541187040296631981.4.1"
STALENESS = 3.0
FAILED = 0
PASSED = 0


def ok(name):
    global PASSED
    PASSED += 1
    print(f"ok   - {name}", flush=True)


def fail(name):
    global FAILED
    FAILED += 1
    print(f"FAIL - {name}", flush=True)


def now():
    return time.monotonic()


class Node:
    def __init__(self, i, work, tessera):
        self.id = i
        self.ip = f"127.0.0.1{i}"
        self.dir = os.path.join(work, f"n{i}")
        self.data = os.path.join(self.dir, "data")
        self.config = os.path.join(self.dir, "tessera.toml")
        self.sock = os.path.join(self.data, "ldapi.sock")
        self.tessera = tessera
        self.proc = None
        self.paused = False
        self.log = os.path.join(self.dir, "server.log")
        os.makedirs(self.dir, exist_ok=True)
        with open(self.config, "w") as f:
            f.write(f"""data_dir = "{self.data}"
[listen]
ldaps = "{self.ip}:636"
ldap = "{self.ip}:389"
ldapi = "{self.sock}"
https = "{self.ip}:8443"
[tls]
hostnames = ["{self.ip}"]
[security]
require_tls_for_bind = false
[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
[cluster]
node_id = {i}
listen = "{self.ip}:7389"
heartbeat = "100ms"
election_timeout = "500ms"
max_staleness = "{int(STALENESS)}s"
token_use_flush = "2s"
write_timeout = "5s"
snapshot_every = 200
""")

    @property
    def ldapi(self):
        return "ldapi://" + self.sock.replace("/", "%2F")

    @property
    def ldap(self):
        return f"ldap://{self.ip}:389"

    def start(self):
        out = open(self.log, "a")
        self.proc = subprocess.Popen([self.tessera, "serve", "--config", self.config],
                                     stdout=subprocess.DEVNULL, stderr=out)
        self.paused = False
        for _ in range(200):
            if os.path.exists(self.sock):
                try:
                    c = admin(self)
                    c.unbind()
                    return
                except LDAPException:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"n{self.id} exited: {open(self.log).read()[-2000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"n{self.id} did not come up")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.running():
            if self.paused:
                self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(sig)
            self.proc.wait()
        self.proc = None
        self.paused = False

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.running():
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def cli(self, *args, check=True):
        r = subprocess.run([self.tessera, *args, "--config", self.config],
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"tessera {' '.join(args)} on n{self.id}: {r.stdout}{r.stderr}")
        return r


def admin(node, timeout=8):
    c = Connection(Server(node.ldapi, connect_timeout=3), authentication=SASL,
                   sasl_mechanism=EXTERNAL, receive_timeout=timeout, raise_exceptions=False)
    c.bind()
    return c


def role(node):
    """The node's role from its rootDSE (answered even when cut off), or None."""
    try:
        c = Connection(Server(node.ldap, connect_timeout=1), receive_timeout=1)
        c.open()
        c.search("", "(objectClass=*)", BASE, attributes=["tesseraClusterRole"])
        r = c.entries[0].tesseraClusterRole.value if c.entries else None
        c.unbind()
        return r
    except (LDAPException, IndexError, AttributeError):
        return None


def bind_code(node, dn, password, timeout=3):
    """The result code of a simple bind on node's plain LDAP port; None if unanswered."""
    try:
        c = Connection(Server(node.ldap, connect_timeout=timeout), user=dn, password=password,
                       receive_timeout=timeout, raise_exceptions=False)
        c.open()
        c.bind()
        code = c.result.get("result")
        c.unbind()
        return code
    except LDAPException:
        return None


def tlv(tag, value):
    n = len(value)
    if n < 0x80:
        head = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        head = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + head + value


def parse_tlvs(data):
    out = []
    i = 0
    while i < len(data):
        tag = data[i]
        n = data[i + 1]
        i += 2
        if n & 0x80:
            k = n & 0x7F
            n = int.from_bytes(data[i:i + k], "big")
            i += k
        out.append((tag, data[i:i + n]))
        i += n
    return out


def mint(conn, label):
    value = tlv(0x30, tlv(0x80, SVC.encode()) + tlv(0x81, label.encode()) + tlv(0x83, b"1h"))
    conn.extended(GENERATE, value, no_encode=True)
    if conn.result.get("result") != 0:
        return None
    body = parse_tlvs(conn.result["responseValue"])[0][1]
    fields = dict(parse_tlvs(body))
    return fields[0x80].decode(), fields[0x81].decode()


class Run:
    def __init__(self, nodes, seconds):
        self.nodes = nodes
        self.seconds = seconds
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.added = set()          # acknowledged adds (uid)
        self.attempted_adds = set()
        self.mods = {}              # uid -> (last acked value, [later attempts])
        self.tokens = {}            # id -> secret, acked mints
        self.revoked = {}           # id -> monotonic time the revocation was acknowledged
        # Revocations sent: one not acknowledged (its answer lost with a leader) may still
        # have been applied, so its token may be gone or present.
        self.revoke_sent = set()
        self.binds = []             # (node id, started, code, token id)
        self.cut_off = set()        # ids partitioned now
        self.partitions = []        # (node id, from, to)
        self.faults = {"kill-leader": 0, "pause": 0, "restart": 0, "partition": 0}
        self.counts = {"add": 0, "modify": 0, "mint": 0, "revoke": 0, "failed": 0}
        self.leaderless = 0.0
        self.cutoff_checks = []
        # A token never revoked: a cut-off node must refuse even it.
        self.probe = None

    def live(self):
        return [n for n in self.nodes if n.running() and not n.paused]

    def worker(self, w):
        rng = random.Random(w)
        n = 0
        mine_people = []
        mine_tokens = []
        while not self.stop.is_set():
            n += 1
            live = self.live()
            if not live:
                time.sleep(0.05)
                continue
            node = rng.choice(live)
            try:
                conn = admin(node)
            except LDAPException:
                time.sleep(0.05)
                continue
            try:
                kind = n % 5
                if kind in (0, 1) or not mine_people:
                    uid = f"w{w}-{n}"
                    with self.lock:
                        self.attempted_adds.add(uid)
                    conn.add(f"uid={uid},{PEOPLE}", ["inetOrgPerson"],
                             {"uid": uid, "cn": uid, "sn": "fault", "description": "v0"})
                    if conn.result.get("result") == 0:
                        with self.lock:
                            self.added.add(uid)
                            self.mods[uid] = ("v0", [])
                            self.counts["add"] += 1
                        mine_people.append(uid)
                    else:
                        self.counts["failed"] += 1
                elif kind == 2:
                    uid = rng.choice(mine_people)
                    value = f"v{n}"
                    with self.lock:
                        self.mods[uid][1].append(value)
                    conn.modify(f"uid={uid},{PEOPLE}", {"description": [(MODIFY_REPLACE, [value])]})
                    if conn.result.get("result") == 0:
                        with self.lock:
                            self.mods[uid] = (value, [])
                            self.counts["modify"] += 1
                    else:
                        self.counts["failed"] += 1
                elif kind == 3:
                    minted = mint(conn, f"w{w}-{n}")
                    if minted:
                        with self.lock:
                            self.tokens[minted[0]] = minted[1]
                            self.counts["mint"] += 1
                        mine_tokens.append(minted[0])
                    else:
                        self.counts["failed"] += 1
                elif kind == 4 and mine_tokens:
                    tid = mine_tokens.pop(0)
                    with self.lock:
                        self.revoke_sent.add(tid)
                    conn.delete(f"tokenId={tid},{SVC}")
                    if conn.result.get("result") == 0:
                        with self.lock:
                            self.revoked[tid] = now()
                            self.counts["revoke"] += 1
                    else:
                        self.counts["failed"] += 1
                        mine_tokens.append(tid)
            except LDAPException:
                self.counts["failed"] += 1
            finally:
                try:
                    conn.unbind()
                except LDAPException:
                    pass
            # Bind with a revoked token on a random node now and then.
            if n % 2 == 0:
                with self.lock:
                    revoked = list(self.revoked.items())
                if revoked:
                    tid, _ = rng.choice(revoked)
                    target = rng.choice(self.nodes)
                    if target.running() and not target.paused:
                        started = now()
                        code = bind_code(target, "dn=token", self.tokens[tid], timeout=2)
                        with self.lock:
                            partitioned = target.id in self.cut_off
                        self.binds.append((target.id, started, code, tid, partitioned))

    def leader(self):
        for node in self.live():
            if role(node) == "leader":
                return node
        return None

    def watch_leader(self):
        last = now()
        while not self.stop.is_set():
            t = now()
            led = any(role(n) == "leader" for n in self.live())
            time.sleep(max(0.0, 0.1 - (now() - t)))
            if not led:
                self.leaderless += now() - last
            last = now()

    def partition(self, node, seconds):
        others = [n for n in self.nodes if n is not node]
        rules = []
        for o in others:
            rules.append(f"from {node.ip} to {o.ip}")
            rules.append(f"from {o.ip} to {node.ip}")
        for pref, r in enumerate(rules, start=10):
            subprocess.run(["ip", "rule", "add", "pref", str(pref), *r.split(), "blackhole"], check=True)
        with self.lock:
            self.cut_off.add(node.id)
        start = now()
        # Past the staleness bound (and an election), the cut-off node refuses binds.
        time.sleep(STALENESS + 1.5)
        if node.running() and not node.paused:
            code = bind_code(node, "dn=token", self.probe, timeout=2)
            self.cutoff_checks.append((node.id, code))
        time.sleep(max(0.0, seconds - (now() - start)))
        for pref in range(10, 10 + len(rules)):
            subprocess.run(["ip", "rule", "del", "pref", str(pref)], check=False)
        with self.lock:
            self.cut_off.discard(node.id)
        self.partitions.append((node.id, start, now()))

    def nemesis(self):
        rng = random.Random(7)
        schedule = ["kill-leader", "pause", "partition", "restart"]
        i = 0
        time.sleep(2)
        while not self.stop.is_set():
            fault = schedule[i % len(schedule)]
            i += 1
            if fault == "kill-leader":
                node = self.leader()
                if node:
                    node.kill()
                    self.faults[fault] += 1
                    time.sleep(rng.uniform(1.5, 3))
                    node.start()
            elif fault == "pause":
                node = rng.choice(self.live())
                node.pause()
                self.faults[fault] += 1
                time.sleep(rng.uniform(1, 4))
                node.resume()
            elif fault == "partition":
                node = rng.choice(self.live())
                self.faults[fault] += 1
                self.partition(node, STALENESS + 3)
            elif fault == "restart":
                node = rng.choice(self.live())
                node.kill(signal.SIGTERM)
                self.faults[fault] += 1
                time.sleep(rng.uniform(0.5, 1.5))
                node.start()
            self.stop.wait(rng.uniform(2, 4))

    def go(self):
        threads = [threading.Thread(target=self.worker, args=(w,)) for w in range(4)]
        threads.append(threading.Thread(target=self.watch_leader))
        nemesis = threading.Thread(target=self.nemesis)
        for t in threads:
            t.start()
        nemesis.start()
        time.sleep(self.seconds)
        self.stop.set()
        nemesis.join()
        for t in threads:
            t.join()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tessera", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--seconds", type=int, default=60)
    a = p.parse_args()
    started = now()
    nodes = [Node(i, a.work, a.tessera) for i in (1, 2, 3)]
    try:
        return run(nodes, a, started)
    finally:
        for n in nodes:
            n.kill(signal.SIGKILL)


def run(nodes, a, started):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    # Policy rules ahead of the local table, so a partition's blackhole rules come first.
    subprocess.run(["ip", "rule", "add", "pref", "100", "table", "local"], check=True)
    subprocess.run(["ip", "rule", "del", "pref", "0"], check=True)
    n1 = nodes[0]
    n1.start()
    n1.cli("cluster", "init")
    bundle = os.path.join(a.work, "join.json")
    n1.cli("cluster", "bundle", bundle)
    for n in nodes[1:]:
        n.cli("cluster", "join", bundle)
        n.start()
        n1.cli("cluster", "add-replica", str(n.id), f"{n.ip}:7389")
        n1.cli("cluster", "promote", str(n.id))
    c = admin(n1)
    c.add(SVC, ["tesseraServiceAccount"], {"uid": "faultsvc", "cn": "faultsvc"})
    if c.result.get("result") != 0:
        fail(f"service account: {c.result}")
        return 1
    c.unbind()
    ok("a cluster of three formed (init, bundle, join, add-replica, promote)")

    r = Run(nodes, a.seconds)
    c = admin(n1)
    probe = mint(c, "probe")
    c.unbind()
    if not probe:
        fail("the probe token")
        return 1
    r.probe = probe[1]
    r.go()

    # Heal: every node running and resumed, no rules, then wait for agreement.
    for n in nodes:
        if n.paused:
            n.resume()
        if not n.running():
            n.start()
    deadline = now() + 60
    while now() < deadline:
        roles = [role(n) for n in nodes]
        if roles.count("leader") == 1 and roles.count("follower") == 2:
            break
        time.sleep(0.2)
    else:
        fail(f"the cluster did not settle after healing: {roles}")
    # Every node applied the same log: wait until their applied indexes agree.
    while now() < deadline:
        applied = set()
        for n in nodes:
            out = n.cli("cluster", "status", check=False).stdout
            m = re.search(r'"last_applied":\s*(\d+)', out)
            applied.add(m.group(1) if m else None)
        if len(applied) == 1 and None not in applied:
            break
        time.sleep(0.2)

    check_writes(r, nodes)
    check_revocations(r)
    check_cutoff(r)
    elections = count_elections(nodes)

    # The exports of the stopped nodes are identical.
    for n in nodes:
        n.kill(signal.SIGTERM)
    exports = []
    for n in nodes:
        exports.append(n.cli("db", "export").stdout)
    if exports[0] and all(e == exports[0] for e in exports):
        ok(f"the three exports are identical ({exports[0].count('dn: ')} entries)")
    else:
        fail("the exports differ: " + ", ".join(str(e.count("dn: ")) for e in exports))

    writes = sum(r.counts[k] for k in ("add", "modify", "mint", "revoke"))
    if writes >= 50:
        ok(f"acknowledged writes: {writes} (at least 50)")
    else:
        fail(f"acknowledged writes: {writes}, fewer than 50")
    if all(v > 0 for v in r.faults.values()):
        ok(f"every kind of fault happened: {r.faults}")
    else:
        fail(f"a kind of fault never happened: {r.faults}")
    print(f"     writes acknowledged: {r.counts['add']} adds, {r.counts['modify']} modifies, "
          f"{r.counts['mint']} token mints, {r.counts['revoke']} revocations "
          f"({r.counts['failed']} writes not acknowledged)")
    print(f"     faults: {sum(r.faults.values())} ({', '.join(f'{k} {v}' for k, v in r.faults.items())})")
    print(f"     elections: {elections}; time without a leader: {r.leaderless:.1f} s of {a.seconds} s")
    print(f"     binds with revoked tokens: {len(r.binds)}; run took {now() - started:.0f} s")
    return 0


def check_writes(r, nodes):
    missing = {}
    wrong = []
    present_tokens = {}
    for n in nodes:
        c = admin(n, timeout=30)
        people = c.extend.standard.paged_search(PEOPLE, "(uid=w*)", SUBTREE,
                                                attributes=["uid", "description"],
                                                paged_size=500, generator=False)
        found = {}
        for e in people:
            if e.get("type") == "searchResEntry":
                attrs = e["attributes"]
                uid = attrs["uid"][0] if isinstance(attrs["uid"], list) else attrs["uid"]
                desc = attrs.get("description")
                found[uid] = desc[0] if isinstance(desc, list) and desc else desc
        c.search(SVC, "(objectClass=tesseraApiToken)", SUBTREE, attributes=["tokenId"])
        present_tokens[n.id] = {e["attributes"]["tokenId"] if isinstance(e["attributes"]["tokenId"], str)
                                else e["attributes"]["tokenId"][0]
                                for e in c.response if e.get("type") == "searchResEntry"}
        c.unbind()
        gone = r.added - set(found)
        if gone:
            missing[n.id] = sorted(gone)[:5]
        extra = set(found) - r.attempted_adds
        if extra:
            wrong.append(f"n{n.id} holds people nobody added: {sorted(extra)[:5]}")
        for uid, (acked, later) in r.mods.items():
            if uid in found and found[uid] != acked and found[uid] not in later:
                wrong.append(f"n{n.id}: {uid} has {found[uid]}, acknowledged {acked}")
    if missing:
        fail(f"acknowledged adds missing: {missing}")
    else:
        ok(f"every acknowledged add ({len(r.added)}) is on every node")
    if wrong:
        fail("; ".join(wrong[:5]))
    else:
        ok("every modified entry holds its last acknowledged value (or a later attempt) on every node")
    # Acknowledged, and never sent for revocation: on every node.
    live = set(r.tokens) - r.revoke_sent
    bad = [f"n{i}: {sorted(live - t)[:3]} missing, {sorted(t & set(r.revoked))[:3]} revoked but present"
           for i, t in present_tokens.items() if (live - t) or (t & set(r.revoked))]
    if bad:
        fail("tokens: " + "; ".join(bad))
    else:
        ok(f"every acknowledged token never sent for revocation ({len(live)}) is on every node "
           f"and every acknowledged revocation ({len(r.revoked)}) is on every node "
           f"({len(r.revoke_sent) - len(r.revoked)} revocations unacknowledged, either way)")


def check_revocations(r):
    accepted = [(node, tid) for node, started, code, tid, partitioned in r.binds
                if code == 0 and not partitioned and started > r.revoked[tid]]
    if accepted:
        fail(f"revoked tokens accepted by majority nodes after the revocation: {accepted[:5]}")
    else:
        ok(f"no revoked token accepted by a node of the majority ({len(r.binds)} binds tried)")


def check_cutoff(r):
    if not r.cutoff_checks:
        fail("no cut-off node was checked")
        return
    bad = [c for c in r.cutoff_checks if c[1] != 52]
    if bad:
        fail(f"a node cut off past the staleness bound answered a bind with: {bad}")
    else:
        ok(f"a node cut off past the staleness bound refused binds with 52 ({len(r.cutoff_checks)} times)")


def count_elections(nodes):
    terms = set()
    for n in nodes:
        with open(n.log, errors="replace") as f:
            for line in f:
                line = re.sub(r"\x1b\[[0-9;]*m", "", line)
                if "cluster-role" in line and "Leader" in line:
                    m = re.search(r"term[=:\"\s]+(\d+)", line)
                    if m:
                        terms.add(m.group(1))
    return len(terms)


if __name__ == "__main__":
    rc = main()
    print(f"{PASSED} passed, {FAILED} failed")
    sys.exit(1 if FAILED or rc else 0)
