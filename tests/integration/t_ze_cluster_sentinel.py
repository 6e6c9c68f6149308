"""Three appliances finding Redis through Sentinel: a primary, two replicas
and three redis-sentinels (quorum 2), all Debian's, on free loopback
ports. A per-source request-rate limit holds across the three within 5 %
of one bucket; a persistence cookie set by A sticks at B and C; and with
the primary killed (SIGKILL) under load every request is still answered
(the fallbacks decide while Sentinel promotes a replica), after which the
limit is one bucket again, on the promoted primary, with no restart."""
import os
import signal
import subprocess
import threading
import time

from harness import check, free_port, service, test, wait_until
from t_q_chain_timeouts import get, own_logs
from t_zc_cluster_proxy import nginx_lines, reached

PW = "s3cret-sentinel"


def redis_cli(port, *args):
    r = subprocess.run(["redis-cli", "-p", str(port), "--no-auth-warning"] +
                       (["-a", PW] if args and args[0] != "SENTINEL" else []) + list(args),
                       capture_output=True, timeout=10)
    return r.stdout.decode(errors="replace")


def sentinel_set(env):
    """The primary, two replicas (linked), three Sentinels that know each
    other. Returns (the primary's process, the Sentinels' ports)."""
    ports = [free_port() for _ in range(3)]
    procs = []
    for i, port in enumerate(ports):
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", env.dir, "--logfile", "",
                "--requirepass", PW, "--masterauth", PW]
        if i:
            args += ["--replicaof", "127.0.0.1", str(ports[0])]
        procs.append(env.spawn(args, "redis-%d.log" % port))
        wait_until(lambda: "PONG" in redis_cli(port, "PING"), 10, "redis on %d" % port)
    for port in ports[1:]:
        wait_until(lambda: "master_link_status:up" in redis_cli(port, "INFO", "replication"),
                   15, "replica %d linked" % port)
    sports = [free_port() for _ in range(3)]
    for i, sport in enumerate(sports):
        d = env.path("sentinel-%d" % i)
        os.makedirs(d)
        conf = os.path.join(d, "sentinel.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\ndir %s\n"
                    "sentinel monitor gm 127.0.0.1 %d 2\nsentinel auth-pass gm %s\n"
                    "sentinel down-after-milliseconds gm 1000\n"
                    "sentinel failover-timeout gm 10000\nsentinel parallel-syncs gm 2\n" % (
                        sport, d, ports[0], PW))
        env.spawn(["redis-sentinel", conf], "sentinel-%d.log" % i)
    for sport in sports:
        wait_until(lambda: "num-other-sentinels\n2\n" in redis_cli(sport, "SENTINEL", "MASTER",
                                                                      "gm"),
                   20, "Sentinel %d knows the others" % sport)
    return procs[0], ports, sports


def three(env, sports, services):
    pwfile = env.write("redis.pw", PW + "\n")
    os.chmod(pwfile, 0o600)
    store = ("store redis {\n    sentinels %s\n    master gm\n    password-file %s\n"
             "    timeout 200ms\n    wait-replicas 1\n    appliances 3\n}\n" % (
                 " ".join("127.0.0.1:%d" % p for p in sports), pwfile))
    ports, cports, gs = [], [], []
    for tag in "abc":
        port, cport = free_port(), free_port()
        text = services.replace("PORTC", str(cport)).replace("PORT", str(port))
        g = env.gatehouse(own_logs(env, tag) + store + text, name="%s.conf" % tag)
        check("store redis" in g.output() and "answers" in g.output(), "%s's log: %s" % (
            tag, g.output()[-500:]))
        ports.append(port)
        cports.append(cport)
        gs.append(g)
    return ports, cports, gs


@test
def cluster_three_appliances_through_sentinel_limit_cookie_and_failover(env):
    primary, rports, sports = sentinel_set(env)
    py = env.backend()
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    limited = service("limited", 0, servers=[("ng", ng)], extra=(
        "    request-rate-per-source 2\n    request-burst-per-source 10")).replace(
        "listen 127.0.0.1:0", "listen 127.0.0.1:PORT")
    cookied = service("cookied", 0, servers=[("py", py), ("ng", ng)], extra=(
        "    persistence cookie GHP")).replace("listen 127.0.0.1:0", "listen 127.0.0.1:PORTC")
    ports, cports, gs = three(env, sports, limited + cookied)

    # A persistence cookie set by A names the same server at B and C (B and
    # C one and two steps off A in their own rotation first).
    for k, n in ((1, 1), (2, 2)):
        for j in range(n):
            get(cports[k], env.ca, "127.0.0.30", "/whoami?m=offset-%d-%d" % (k, j))
    for c in range(6):
        cookie, where = None, []
        for k in (0, 1, 2, 0):
            m = "cookie-%d-%d-%d" % (c, k, len(where))
            r, _ = get(cports[k], env.ca, "127.0.0.%d" % (40 + c), "/whoami?m=" + m,
                       [("Cookie", cookie)] if cookie else [])
            check(r.status == 200, "%s: %r" % (m, r))
            if cookie is None:
                cookie = (r.get("set-cookie") or "").split(";")[0]
                check(cookie.startswith("GHP="), "no cookie from A: %r" % r.fields)
            wait_until(lambda: reached(env, py, ng, m) != [], 5, "%s at a server" % m)
            where.append(reached(env, py, ng, m)[0])
        check(len(set(where)) == 1, "client %d moved across A, B, C: %r" % (c, where))

    # One client, round robin over A, B and C, about 15 requests a second
    # for 12 s: one bucket of 10 refilled at 2/s lets through at most
    # 10 + 2 x 12 = 34 (plus 5 %), where three buckets would let 102.
    got = []
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 12 and i < 400:
        r, _ = get(ports[i % 3], env.ca, "127.0.0.61", "/?m=three-%d" % i)
        got.append((r.status, i))
        i += 1
        time.sleep(max(0, t0 + i / 15.0 - time.monotonic()))  # the load's pace, not a wait
    took = time.monotonic() - t0
    through = [n for st, n in got if st == 200]
    allowed = 10 + 2 * took
    print("    (three appliances, one bucket: %d of %d through in %.1f s; a bucket allows "
          "%.0f)" % (len(through), len(got), took, allowed))
    check(set(st for st, _ in got) <= {200, 429}, "statuses: %r" % set(st for st, _ in got))
    check(len(through) <= allowed * 1.05, "%d through, more than %.1f + 5 %%" % (
        len(through), allowed))
    check(len(through) >= 10, "fewer than the burst got through: %d" % len(through))
    check(all(any(n % 3 == k for n in through) for k in range(3)),
          "every appliance let some through: %r" % through)
    wait_until(lambda: all(nginx_lines(env, ng, "three-%d" % n) for n in through[-3:]), 5,
               "nginx logged the last ones")
    seen = sum(1 for n in range(len(got)) if nginx_lines(env, ng, "three-%d" % n))
    check(seen == len(through), "nginx saw %d, %d were let through" % (seen, len(through)))

    # The primary killed under load: every request is answered (no worker
    # waits for Redis; the local shares decide meanwhile), and once
    # Sentinel has promoted a replica the bucket is one again.
    statuses, stop = [], threading.Event()

    def load():
        k = 0
        while not stop.is_set() and k < 2000:
            r, _ = get(ports[k % 3], env.ca, "127.0.0.%d" % (100 + k % 50), "/?m=load-%d" % k)
            statuses.append((time.monotonic(), r.status))
            k += 1
    th = threading.Thread(target=load)
    th.start()
    time.sleep(1.0)  # load before the kill
    killed = time.monotonic()
    primary.kill()
    primary.wait()

    def promoted():
        out = redis_cli(sports[0], "SENTINEL", "get-master-addr-by-name", "gm")
        return str(rports[0]) not in out and any(str(p) in out for p in rports[1:])
    wait_until(promoted, 20, "Sentinel promotes a replica")
    promoted_after = time.monotonic() - killed
    time.sleep(2.0)  # load after the promotion
    stop.set()
    th.join(30)
    answered = [st for _, st in statuses]
    check(answered and set(answered) <= {200, 429},
          "under the failover some requests got no answer: %r" % sorted(set(answered)))
    print("    (primary killed: Sentinel promoted a replica after %.1f s; %d requests during "
          "and after, all answered)" % (promoted_after, len(answered)))

    tries = [0]

    def one_bucket_again():
        # a new client each try: twelve requests over A, B and C; one
        # bucket lets its burst of 10 through, the local shares (10 / 3
        # each while Redis is away) 9
        tries[0] += 1
        res = [get(ports[k % 3], env.ca, "127.0.0.%d" % (62 + tries[0]),
                   "/?m=again-%d-%d" % (tries[0], k))[0].status for k in range(12)]
        return 10 <= res.count(200) <= 11
    wait_until(one_bucket_again, 20, "one bucket again on the promoted primary")
