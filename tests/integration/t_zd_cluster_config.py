"""The configuration as the cluster's (store redis { share-config on }), in
network namespaces this test makes and removes: a Redis (with the ACL
users of docs/cluster.md) in one, appliances A and B each in their own,
joined to it by veth pairs, each with its own pair of real servers on the
same loopback ports. Both appliances' files name the same services on the
same addresses; what differs is each one's own part (state folder, logs,
the store block with its name and its address of Redis). An admin change
on A runs on B; a starting B with an older file takes the cluster's
version; a version B cannot run (an address only A has) is refused there
while B keeps serving, and each appliance's running version is in the
admin API."""
import hashlib
import json
import os
import re
import subprocess
import sys

from harness import GATEHOUSE, HERE, ROOT, check, test, wait_until
from t_q_chain_timeouts import own_logs
from t_zb_cluster import GATEHOUSE_ACL, PROBE_ACL

WEB, ADMIN, S1, S2, REDIS = 8443, 8444, 9443, 9444, 6379


def ip(*args):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
    check(r.returncode == 0, "ip %s: %s" % (" ".join(args), r.stderr))


class Namespaces:
    """nsR (Redis), nsA and nsB, each appliance joined to nsR by a veth pair:
    10.201.1.1 (A) - 10.201.1.2 (R), 10.201.2.1 (B) - 10.201.2.2 (R).
    Programs enter a namespace with nsenter (its network only): `ip netns
    exec` and `ip -n` also remount /sys, which fails in a chroot (a fresh
    Debian root made by debootstrap, as the newcomer check runs)."""

    def __init__(self):
        tag = "%d" % (os.getpid() % 100000)
        self.ns = {k: "gh%s%s" % (k, tag) for k in "RAB"}
        self.made = []
        try:
            for n in self.ns.values():
                ip("netns", "add", n)
                self.made.append(n)
            for k in "RAB":
                self.ip(k, "link", "set", "lo", "up")
            for k, sub in (("A", 1), ("B", 2)):
                va, vr = "v%s%s" % (k.lower(), tag), "r%s%s" % (k.lower(), tag)
                ip("link", "add", va, "netns", self.ns[k], "type", "veth", "peer", "name", vr,
                   "netns", self.ns["R"])
                self.ip(k, "addr", "add", "10.201.%d.1/30" % sub, "dev", va)
                self.ip("R", "addr", "add", "10.201.%d.2/30" % sub, "dev", vr)
                self.ip(k, "link", "set", va, "up")
                self.ip("R", "link", "set", vr, "up")
        except BaseException:
            self.close()
            raise

    def run(self, k):
        return ["nsenter", "--net=/run/netns/%s" % self.ns[k]]

    def ip(self, k, *args):
        r = subprocess.run(self.run(k) + ["ip"] + list(args), capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 0, "ip %s in %s: %s" % (" ".join(args), k, r.stderr))

    def close(self):
        for n in self.made:
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=20)


def in_ns(nss, k, args, **kw):
    return subprocess.run(nss.run(k) + args, capture_output=True, timeout=60, **kw)


def shared_part(env, extra=""):
    """The services both appliances run (the same addresses in each
    namespace)."""
    return """service web {
    listen 127.0.0.1:%d
    certificate main
    allowed-hosts *
    allowed-dirs /*
    server s1 127.0.0.1:%d
    server s2 127.0.0.1:%d
    reencrypt verify internal
}
service admin {
    listen 127.0.0.1:%d
    certificate main
    allowed-hosts localhost
    allowed-dirs /*
    app admin
}
%s""" % (WEB, S1, S2, ADMIN, extra)


def appliance_conf(env, k, shared):
    sub = 1 if k == "A" else 2
    store = ("store redis {\n    address 10.201.%d.2:%d\n    user gatehouse\n"
             "    password-file %s\n    timeout 300ms\n    wait-replicas 0\n"
             "    name appliance-%s\n    share-config on\n}\n" % (
                 sub, REDIS, env.path("redis.pw"), k.lower()))
    return own_logs(env, k.lower()) + store + shared


def cluster_get(nss, env, k, token):
    r = in_ns(nss, k, ["curl", "-sS", "--cacert", env.ca, "-H", "Authorization: Bearer " + token,
                       "https://localhost:%d/api/v1/cluster" % ADMIN])
    return json.loads(r.stdout.decode()) if r.returncode == 0 else None


@test
def cluster_config_an_admin_change_on_one_appliance_runs_on_the_other(env):
    nss = Namespaces()
    try:
        run_cluster_config(env, nss)
    finally:
        env.close(keep=True)  # the processes inside first, then their namespaces
        nss.close()


def run_cluster_config(env, nss):
    pw = env.write("redis.pw", "gh-pw\n")
    os.chmod(pw, 0o600)
    env.spawn(nss.run("R") + [
        "redis-server", "--port", str(REDIS), "--bind", "10.201.1.2", "10.201.2.2", "127.0.0.1",
        "--save", "", "--appendonly", "no", "--dir", env.dir, "--logfile", "",
        "--user", "default", "off", "--user"] + GATEHOUSE_ACL + ["--user"] + PROBE_ACL,
        "redis-ns.log")

    def redis_up():
        r = in_ns(nss, "R", ["redis-cli", "-p", str(REDIS), "--user", "probe", "--pass",
                             "probe-pw", "--no-auth-warning", "PING"])
        return b"PONG" in r.stdout
    wait_until(redis_up, 10, "redis-server in its namespace")
    for k in "AB":
        for port in (S1, S2):
            p = env.spawn(nss.run(k) + [sys.executable, os.path.join(HERE, "backend.py"),
                                        str(port), env.cert, env.key, "0"],
                          "backend-%s-%d.log" % (k, port))
            wait_until(lambda: "ready" in open(env.path("backend-%s-%d.log" % (k, port))).read()
                       or p.poll() is not None, 10, "backend %s %d" % (k, port))

    # A starts first: the store has no version, A's shared part becomes it.
    a = env.gatehouse(appliance_conf(env, "A", shared_part(env)), name="a.conf",
                      wrapper=nss.run("A"))
    wait_until(lambda: "published as version" in a.output(), 10, "A publishes its version")
    ver1 = re.search(r"published as version ([0-9a-f]{16}) \(sequence 1\)", a.output())
    check(ver1, "A's log: %s" % a.output()[-800:])
    ver1 = ver1.group(1)
    # B starts with an older file (no s2): it takes the cluster's version.
    older = shared_part(env).replace("    server s2 127.0.0.1:%d\n" % S2, "")
    b = env.gatehouse(appliance_conf(env, "B", older), name="b.conf", wrapper=nss.run("B"))
    wait_until(lambda: "version %s (sequence 1) runs here" % ver1 in b.output(), 10,
               "B takes the cluster's version")
    btext = open(env.path("b.conf")).read()
    check("server s2 127.0.0.1:%d" % S2 in btext and "name appliance-b" in btext and
          env.path("b-state") in btext and env.path("a-state") not in btext,
          "B's file: its own part and the cluster's: %s" % btext)

    # An admin change on A (drain s1, through the API, with If-Match) ...
    def token(conf, user, role):
        """Users are each appliance's own (its state folder)."""
        r = subprocess.run([GATEHOUSE, "admin", "user", "add", user, "--role", role, "-c", conf],
                           input=b"a long enough password 1\n", capture_output=True,
                           cwd=env.dir, timeout=30)
        check(r.returncode == 0, "user add: %r" % r.stderr)
        r = subprocess.run([GATEHOUSE, "admin", "token", "add", user, "-c", conf],
                           capture_output=True, cwd=env.dir, timeout=30)
        return r.stdout.decode().strip()
    tok_a = token(env.path("a.conf"), "root", "admin")
    tok_b = token(env.path("b.conf"), "viewer", "read-only")
    check(len(tok_a) == 64 and len(tok_b) == 64, "tokens: %r %r" % (tok_a, tok_b))
    r = in_ns(nss, "A", ["curl", "-sS", "-D", "-", "-o", "/dev/null", "--cacert", env.ca,
                         "-H", "Authorization: Bearer " + tok_a,
                         "https://localhost:%d/api/v1/config" % ADMIN])
    etag = re.search(rb'(?i)etag: "([0-9a-f]{16})"', r.stdout)
    check(etag, "A's config ETag: %r" % r.stdout)
    r = in_ns(nss, "A", ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                         env.ca, "-H", "Authorization: Bearer " + tok_a,
                         "-H", 'If-Match: "%s"' % etag.group(1).decode(), "--data", "state=drain",
                         "https://localhost:%d/api/v1/servers/web/s1/state" % ADMIN])
    check(r.stdout == b"200", "drain on A: %r %r" % (r.stdout, r.stderr))
    wait_until(lambda: "(sequence 2)" in a.output(), 10, "A publishes the change")
    ver2 = re.search(r"published as version ([0-9a-f]{16}) \(sequence 2\)", a.output()).group(1)
    # ... runs on B: in its file, in what it serves.
    wait_until(lambda: "version %s (sequence 2) runs here" % ver2 in b.output(), 10,
               "B runs A's change")
    check(re.search(r"server s1 127\.0\.0\.1:%d .*state drain" % S1,
                    open(env.path("b.conf")).read()), "B's file has the drain")
    before = open(env.path("backend-B-%d.log" % S1)).read().count("REQ ")
    for i in range(6):
        r = in_ns(nss, "B", ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                             env.ca, "https://localhost:%d/whoami?m=after-%d" % (WEB, i)])
        check(r.stdout == b"200", "B serves: %r" % r.stdout)
    after = open(env.path("backend-B-%d.log" % S1)).read().count("REQ ")
    check(after == before, "B sent new requests to the drained s1: %d -> %d" % (before, after))

    # Each appliance's running version, in either's admin API.
    def both_in_step(tok, k):
        j = cluster_get(nss, env, k, tok)
        if not j or not j.get("shared"):
            return False
        got = {m["name"]: (m["running"], m["state"]) for m in j["appliances"]}
        return (j["cluster"]["version"] == ver2 and
                got.get("appliance-a") == (ver2, "in-step") and
                got.get("appliance-b") == (ver2, "in-step"))
    wait_until(lambda: both_in_step(tok_b, "B"), 10, "both appliances listed in step on B")
    # ... and on A's System page, in a real Chromium (run inside A's namespace).
    shot = env.path("cluster-system.png")
    r = in_ns(nss, "A", ["node", os.path.join(ROOT, "tests/browser/admin_cluster.mjs"),
                         "https://localhost:%d" % ADMIN, "root", "a long enough password 1", shot,
                         "appliance-a", "appliance-b"], cwd=os.path.join(ROOT, "tests/browser"))
    check(r.returncode == 0, "browser: %s %s" % (r.stdout[-1500:], r.stderr[-1500:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    check(res["boxVisible"] and not res["errors"] and ver2 in res["note"] and
          "appliance-a" in res["note"], "the System page's note: %r" % res)
    for name in ("appliance-a", "appliance-b"):
        check(res["rows"][name][:2] == [name, ver2] and res["rows"][name][3] == "in-step",
              "the System page's row for %s: %r" % (name, res["rows"]))
    check(os.path.getsize(shot) > 1000, "no screenshot")

    # A publisher that died between its claim of sequence 3 and its head
    # (planted: a claim with no head, expiring in 4 s) delays the next
    # change, and blocks nothing for good.
    r = in_ns(nss, "R", ["redis-cli", "-p", str(REDIS), "--user", "gatehouse", "--pass", "gh-pw",
                         "--no-auth-warning", "SET", "gatehouse:config-claim:3", "gone", "PX",
                         "4000"])
    check(b"OK" in r.stdout, "planting a claim: %r" % r.stdout)
    # A version B cannot run (a listener on A's own address): refused on B,
    # which keeps running sequence 2 and says why; A runs it.
    text = open(env.path("a.conf")).read() + (
        "service only-a {\n    listen 10.201.1.1:8445\n    certificate main\n"
        "    allowed-hosts *\n    allowed-dirs /*\n    app status\n}\n")
    with open(env.path("a.conf"), "w") as f:
        f.write(text)
    a.signal(__import__("signal").SIGHUP)
    wait_until(lambda: "(sequence 3)" in a.output(), 15, "A publishes the listener")
    wait_until(lambda: "(sequence 3) refused here" in b.output(), 10, "B refuses it")

    def b_refused():
        j = cluster_get(nss, env, "A", tok_a)
        m = [x for x in (j or {}).get("appliances", []) if x["name"] == "appliance-b"]
        return m and m[0]["state"] == "refused" and "10.201.1.1:8445" in m[0]["why"] and \
            m[0]["running"] == ver2
    wait_until(b_refused, 10, "A's API: B refused sequence 3, runs %s, and why" % ver2)
    check("only-a" not in open(env.path("b.conf")).read(), "B's file took the refused version")
    r = in_ns(nss, "B", ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert",
                         env.ca, "https://localhost:%d/whoami?m=still" % WEB])
    check(r.stdout == b"200", "B still serves after the refusal: %r" % r.stdout)
    with open(os.path.join(env.path("b-state"), "admin", "audit.log")) as f:
        audit = [json.loads(line) for line in f if line.strip()]
    check(any(e["action"] == "cluster-apply" and e["result"] == "failed" and
              "10.201.1.1:8445" in e.get("reason", "") for e in audit),
          "B's audit log says why: %r" % audit[-3:])
    # A change made on B while it does not run the cluster's newest version
    # is not published over it (it would take A's listener away): B says so.
    sig = __import__("signal")
    with open(env.path("b.conf"), "a") as f:
        f.write("# made on B while it refuses sequence 3\n")
    b.signal(sig.SIGHUP)
    wait_until(lambda: "is not published: it was made on another version" in b.output(), 10,
               "B's change refused for its base")
    check("(sequence 4)" not in a.output() + b.output(), "B's change was published")
    # The address appears in B's namespace: at its next reload B runs
    # sequence 3 (a refused version is tried again).
    nss.ip("B", "addr", "add", "10.201.1.1/32", "dev", "lo")
    n = b.output().count("(sequence 3) runs here")
    b.signal(sig.SIGHUP)
    wait_until(lambda: b.output().count("(sequence 3) runs here") > n, 10,
               "B runs sequence 3 once it can")
    check("only-a" in open(env.path("b.conf")).read() and
          "made on B while" not in open(env.path("b.conf")).read(), "B's file: %s" %
          open(env.path("b.conf")).read())
    # Whoever can write to Redis cannot give an appliance another state
    # folder: a version whose shared text holds an appliance's own
    # statements is refused everywhere.
    evil = "state-dir %s\n" % env.path("evil") + shared_part(env)
    ver = hashlib.sha256(evil.encode()).hexdigest()[:16]
    for key, val in (("gatehouse:config:99:0", evil), ("gatehouse:config-head",
                                                       "99 %s 1 %d" % (ver, len(evil)))):
        r = in_ns(nss, "R", ["redis-cli", "-p", str(REDIS), "--user", "gatehouse", "--pass",
                             "gh-pw", "--no-auth-warning", "SET", key, val])
        check(b"OK" in r.stdout, "planting %s: %r" % (key, r.stdout + r.stderr))
    for g, tag in ((a, "A"), (b, "B")):
        wait_until(lambda: "(sequence 99) refused here" in g.output(), 10, "%s refuses 99" % tag)
        check("each appliance's own" in g.output().split("(sequence 99) refused here")[1][:300],
              "%s's reason: %s" % (tag, g.output()[-400:]))
    check(not os.path.exists(env.path("evil")) and "evil" not in open(env.path("b.conf")).read(),
          "the planted state-dir was used")
    print("    (A published sequences 1..3; B took 1 at its start, ran 2 (the drain: nothing "
          "more to s1), refused 3 and kept serving 2, kept its own change made meanwhile off "
          "the cluster, ran 3 once it could; a planted version with a state-dir refused)")
