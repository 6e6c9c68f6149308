"""Real-server pools: health checks (rise/fall), least connections, drain,
failover when a server dies under load, and metrics checked against the
traffic actually sent."""
import json
import os
import re
import signal
import ssl
import socket
import subprocess
import threading
import time

from harness import base_conf, check, curl, free_port, read_response, service, test, wait_until

CHECK = "    check get /healthcheck.html interval 300ms timeout 250ms rise 2 fall 2 start down"


def mgmt(port):
    return service("mgmt", port, app="management")


def stats(env, port):
    r = curl("--cacert", env.ca, "https://localhost:%d/api/v1/stats" % port)
    return json.loads(r.stdout) if r.returncode == 0 else None


def server_health(env, port, svc, name):
    st = stats(env, port)
    if st is None:
        return None
    for s in st["services"]:
        if s["name"] == svc:
            for srv in s["servers"]:
                if srv["name"] == name:
                    return srv
    return None


def whoami(port, n, ca):
    got = {}
    for _ in range(n):
        r = curl("--cacert", ca, "https://localhost:%d/whoami" % port)
        got[r.stdout.decode()] = got.get(r.stdout.decode(), 0) + 1
    return got


@test
def health_checks_take_servers_down_and_up(env):
    a, b = env.backend(), env.backend()
    front, m = free_port(), free_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("a", a), ("b", b)],
                                               extra=CHECK) + mgmt(m))
    wait_until(lambda: all((server_health(env, m, "front", n) or {}).get("health") == "up"
                           for n in ("a", "b")), 10, "both servers proven up (start down, rise 2)")
    got = whoami(front, 10, env.ca)
    check(set(got) == {str(a), str(b)}, "both serve: %r" % got)
    before = server_health(env, m, "front", "b")["checks_fail"]
    open(env.path("down-%d" % b), "w").close()
    wait_until(lambda: server_health(env, m, "front", "b")["health"] == "down", 10, "b down")
    sb = server_health(env, m, "front", "b")
    check(sb["checks_fail"] - before >= 2, "down only after fall=2 failed checks: %r" % sb)
    check("503" in sb["last_check"], "last check result shown: %r" % sb["last_check"])
    check("is DOWN: status 503, expected 200" in g.output(), "transition logged")
    got = whoami(front, 10, env.ca)
    check(got == {str(a): 10}, "only a serves while b is down: %r" % got)
    ok_before = server_health(env, m, "front", "b")["checks_ok"]
    os.unlink(env.path("down-%d" % b))
    wait_until(lambda: server_health(env, m, "front", "b")["health"] == "up", 10, "b up again")
    sb = server_health(env, m, "front", "b")
    check(sb["checks_ok"] - ok_before >= 2, "up only after rise=2 good checks: %r" % sb)
    check(sb["transitions"] >= 3, "up, down, up counted: %r" % sb)
    got = whoami(front, 10, env.ca)
    check(str(b) in got, "b serves again: %r" % got)


@test
def least_connections_favours_the_fast_server(env):
    fast, slow = env.backend(), env.backend(delay_ms=150)
    front = free_port()
    g = env.gatehouse(base_conf(env) + service("front", front,
                                               servers=[("fast", fast), ("slow", slow)]))
    counts = {}
    lock = threading.Lock()
    end = time.time() + 2.0

    def client():
        ctx = ssl.create_default_context(cafile=env.ca)
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", front)),
                            server_hostname="localhost")
        while time.time() < end:
            s.sendall(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
            st, _, body, _ = read_response(s)
            with lock:
                counts[body] = counts.get(body, 0) + 1
        s.close()
    ts = [threading.Thread(target=client) for _ in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    nf, ns = counts.get(str(fast).encode(), 0), counts.get(str(slow).encode(), 0)
    check(nf > 3 * ns and ns > 0, "fast %d vs slow %d requests" % (nf, ns))
    print("    (least-conn: fast server %d requests, slow (150 ms) server %d)" % (nf, ns))


@test
def drain_and_maint_take_no_new_requests(env):
    a, b = env.backend(), env.backend()
    front, m = free_port(), free_port()
    conf = lambda st: base_conf(env) + service("front", front, servers=[("a", a), ("b", b)]).replace(
        "server b 127.0.0.1:%d" % b, "server b 127.0.0.1:%d state %s" % (b, st)) + mgmt(m)
    g = env.gatehouse(conf("up"))
    check(set(whoami(front, 8, env.ca)) == {str(a), str(b)}, "both serve")
    for st in ("drain", "maint"):
        env.write("gh.conf", conf(st))
        n = g.output().count("configuration reloaded")
        g.signal(signal.SIGHUP)
        wait_until(lambda: g.output().count("configuration reloaded") > n, 5, "reload")
        check(whoami(front, 8, env.ca) == {str(a): 8}, "%s: only a serves" % st)
        check(server_health(env, m, "front", "b")["state"] == st, "state in the stats")


@test
def a_refused_reload_leaves_the_health_of_running_servers(env):
    """A candidate is built before anything commits; a server's health is
    the running generation's. b is proven down (its check fails and the next
    one is a minute away); a reload that would drop the check (so b would
    count as up) and then fails on an address in use must leave b down:
    nothing but a is sent a request, and the statistics still say down."""
    a, b = env.backend(), env.backend()
    front, m = free_port(), free_port()
    chk = "    check get /healthcheck.html interval 60s timeout 1s rise 1 fall 1 start down"
    open(env.path("down-%d" % b), "w").close()
    conf = base_conf(env) + service("front", front, servers=[("a", a), ("b", b)], extra=chk) + \
        mgmt(m)
    g = env.gatehouse(conf)
    wait_until(lambda: (server_health(env, m, "front", "a") or {}).get("health") == "up" and
               server_health(env, m, "front", "b")["checks_fail"] >= 1, 10, "a up, b checked")
    check(server_health(env, m, "front", "b")["health"] == "down", "b down at start")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        env.write("gh.conf", conf.replace(chk + "\n", "") +
                  service("late", busy.getsockname()[1], app="status"))
        n = g.output().count("reload refused")
        g.signal(signal.SIGHUP)
        wait_until(lambda: g.output().count("reload refused") > n, 5, "the refused reload")
    finally:
        busy.close()
    check("in use" in g.output(), "the reason is logged")
    sb = server_health(env, m, "front", "b")
    check(sb["health"] == "down", "the refused candidate changed b's health: %r" % sb)
    reqs = lambda port: [l for l in open(env.path("backend-%d.log" % port))
                         if l.startswith("REQ GET /whoami")]
    before = len(reqs(b))
    got = whoami(front, 12, env.ca)
    check(got == {str(a): 12}, "only a serves while b is down: %r" % got)
    check(len(reqs(b)) == before == 0, "requests reached b: %r" % reqs(b))


@test
def silent_servers_do_not_hold_up_the_checks_of_others(env):
    """Three real servers accept connections and never answer (each check
    of them lasts its whole 3 s timeout); the healthy server of another
    service is still checked every 300 ms or so, since checks run side by side
    (one after another, it would wait 9 s between checks)."""
    holes = []
    for _ in range(3):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)  # accepted by the kernel, never read
        holes.append(s)
    try:
        a = env.backend()
        front, slow, m = free_port(), free_port(), free_port()
        chk = "    check get /healthcheck.html interval %s timeout %s rise 1 fall 1 start up"
        env.gatehouse(base_conf(env) +
                      service("slow", slow, reencrypt=False, extra=chk % ("3s", "3s"),
                              servers=[("h%d" % i, h.getsockname()[1])
                                       for i, h in enumerate(holes)]) +
                      service("front", front, servers=[("a", a)],
                              extra=chk % ("300ms", "250ms")) + mgmt(m))
        wait_until(lambda: (server_health(env, m, "front", "a") or {}).get("checks_ok", 0) >= 6,
                   timeout=10, what="six checks of the healthy server")
        h0 = server_health(env, m, "slow", "h0")
        check(h0["checks_ok"] == 0, "a silent server passed a check: %r" % h0)
    finally:
        for h in holes:
            h.close()


@test
def metrics_match_the_traffic_sent(env):
    a = env.backend()
    front, m = free_port(), free_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("a", a)],
                                               hosts="localhost") + mgmt(m))
    for _ in range(7):
        curl("--cacert", env.ca, "https://localhost:%d/whoami" % front)
    for _ in range(3):
        curl("--cacert", env.ca, "https://localhost:%d/no-such-endpoint" % front)
    for _ in range(2):
        curl("--cacert", env.ca, "-H", "Host: other.example", "https://localhost:%d/" % front)
    text = curl("--cacert", env.ca, "https://localhost:%d/metrics" % m).stdout.decode()

    def metric(name, **labels):
        sel = ",".join('%s="%s"' % kv for kv in labels.items())
        mm = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(sel)), text, re.M)
        check(mm is not None, "metric %s{%s} present" % (name, sel))
        return float(mm.group(1))
    check(metric("gatehouse_service_requests_total", service="front", code="2xx") == 7, "2xx")
    check(metric("gatehouse_service_requests_total", service="front", code="4xx") == 5, "4xx")
    check(metric("gatehouse_service_rejections_total", service="front",
                 reason="host-not-allowed") == 2, "rejections by reason")
    check(metric("gatehouse_server_requests_total", service="front", server="a", code="2xx") == 7,
          "server 2xx")
    check(metric("gatehouse_server_requests_total", service="front", server="a", code="4xx") == 3,
          "server 4xx (refusals never reached it)")
    check(metric("gatehouse_service_request_duration_seconds_count", service="front") == 12,
          "histogram count")
    check(metric("gatehouse_server_up", service="front", server="a", state="up") == 1, "up")
    check(metric("gatehouse_service_bytes_total", service="front", direction="out") > 0, "bytes")
    check(metric("gatehouse_service_connections_total", service="front") == 12,
          "one connection per curl")
    check(1 <= metric("gatehouse_server_connections_total", service="front", server="a") <= 2,
          "pooled connections (one per worker at most) carried all ten")
    # the public service forwards /metrics to its real server, never answers it
    r = curl("--cacert", env.ca, "https://localhost:%d/metrics" % front)
    check(b"gatehouse_" not in r.stdout, "public service does not expose metrics")


@test
def metrics_label_values_are_escaped(env):
    """Names from the config may hold a quote or a backslash: /metrics still
    parses line by line as the Prometheus text format, and the JSON too."""
    a = env.backend()
    front, m = free_port(), free_port()
    conf = service("front", front, servers=[("a", a)]).replace(
        "service front", 'service "we\\"ird\\\\name"').replace(
        "server a ", 'server "x\\"y" ')
    env.gatehouse(base_conf(env) + conf + mgmt(m))
    text = curl("--cacert", env.ca, "https://localhost:%d/metrics" % m).stdout.decode()
    line = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*'
                      r'(\{[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\\n])*"'
                      r'(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\\n])*")*\})? \S+$')
    bad = [x for x in text.splitlines() if x and not x.startswith("#") and not line.match(x)]
    check(not bad, "lines that do not parse: %r" % bad[:5])
    check('gatehouse_server_up{service="we\\"ird\\\\name",server="x\\"y",state="up"}' in text,
          "escaped labels missing:\n%s" % text[:1500])
    stats = json.loads(curl("--cacert", env.ca, "https://localhost:%d/api/v1/stats" % m).stdout)
    names = [(s["name"], [x["name"] for x in s["servers"]]) for s in stats["services"]]
    check(('we"ird\\name', ['x"y']) in names, "JSON names: %r" % names)


def access_servers(env):
    """Server names in the access log so far (the field after bytes out)."""
    try:
        with open(env.path("access.log")) as f:
            return set(re.findall(r'" \d+ \d+ \d+ (\S+) ', f.read()))
    except FileNotFoundError:
        return set()


def nginx_requests(env, port):
    try:
        with open(env.path("nginx-%d.access" % port)) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def backend_requests(env, port):
    with open(env.path("backend-%d.log" % port)) as f:
        return sum(1 for l in f if l.startswith("REQ "))


def nginx_pids(proc):
    """The nginx master (started by the harness) and its workers."""
    with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
        return [proc.pid] + [int(x) for x in f.read().split()]


def kill_under_load(env, a, b, count, kill):
    """wrk -c50 for 9 s on two real servers; b is SIGKILLed 3 s in. The
    service keeps the default retries (1): a request caught at b (connect
    refused, a pooled connection found dead, a GET written and never
    answered) is resent, so none may be lost."""
    front, m = free_port(), free_port()
    env.gatehouse(base_conf(env) + service("front", front, servers=[("a", a), ("b", b)]) +
                  mgmt(m))
    t0 = time.monotonic()
    p = subprocess.Popen(["wrk", "-t1", "-c50", "-d9s", "--timeout", "3s",
                          "https://127.0.0.1:%d/whoami" % front],
                         stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: {"a", "b"} <= access_servers(env), 3, "the load reaching both servers")
        ready = time.monotonic() - t0
        time.sleep(max(0.0, 3.0 - ready))  # the event time, once the load runs
        before, at_b = count(a), count(b)
        kill()
        killed_at = time.monotonic() - t0
        out = p.communicate(timeout=30)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    errs = [int(x) for x in sock.groups()] if sock else [0, 0, 0, 0]
    after = count(a) - before
    print("    (wrk -c50 9s, b SIGKILLed at %.1fs (load on both after %.2fs): %d requests, "
          "%d non-2xx, socket errors connect/read/write/timeout %s; a answered %d after the kill)"
          % (killed_at, ready, reqs, bad, "/".join(map(str, errs)), after))
    check(reqs > 500, "load ran: %d requests\n%s" % (reqs, out))
    check(bad == 0 and sum(errs) == 0,
          "lost with the default retries: %d non-2xx, socket errors %r of %d\n%s"
          % (bad, errs, reqs, out))
    check(at_b > 0, "b served before it was killed: %d" % at_b)
    check(after > 100, "the surviving server answered after the kill: %d requests" % after)
    text = {}

    def active():
        text["m"] = curl("--cacert", env.ca, "https://localhost:%d/metrics" % m).stdout.decode()
        got = {}
        for name in ("a", "b"):
            mm = re.search(r'^gatehouse_server_active\{service="front",server="%s"\} (\S+)$'
                           % name, text["m"], re.M)
            got[name] = float(mm.group(1)) if mm else None
        return got
    try:
        wait_until(lambda: active() == {"a": 0, "b": 0}, 5, "no requests in flight")
    except AssertionError:
        pass
    got = active()
    check(got["b"] == 0, "the dead server's in-flight count is back to 0: %r" % got)
    check(got["a"] == 0, "the survivor's in-flight count is back to 0 once wrk ended: %r" % got)


@test
def killing_a_server_under_load_loses_nothing(env):
    a, b = env.backend(), env.backend()
    kill_under_load(env, a, b, lambda port: backend_requests(env, port),
                    lambda: env.backends[b].send_signal(signal.SIGKILL))


@test
def killing_an_nginx_server_under_load_loses_nothing(env):
    loc = 'location /whoami { return 200 "$server_port"; }'
    a = env.nginx(extra=loc)
    b = env.nginx(extra=loc)
    pids = nginx_pids(env.procs[-1])
    check(len(pids) >= 2, "nginx master and worker: %r" % pids)

    def kill():
        for pid in pids:  # the master first, so no worker is started again
            os.kill(pid, signal.SIGKILL)
    kill_under_load(env, a, b, lambda port: nginx_requests(env, port), kill)


def sticky_run(env, front, n, cookie=None):
    """n requests on new connections; returns the backends that answered and
    the last Set-Cookie value seen."""
    seen, set_cookie = [], None
    for _ in range(n):
        args = ["--cacert", env.ca, "-D", env.path("h.txt"), "https://localhost:%d/whoami" % front]
        if cookie:
            args += ["-H", "Cookie: other=1; %s" % cookie]
        r = curl(*args)
        seen.append(r.stdout.decode())
        for line in open(env.path("h.txt")):
            if line.lower().startswith("set-cookie:"):
                set_cookie = line.split(":", 1)[1].strip().split(";")[0]
    return seen, set_cookie


@test
def cookie_persistence_sticks_and_fails_over(env):
    a, b, c = env.backend(), env.backend(), env.backend()
    front = free_port()
    servers = [("a", a), ("b", b), ("c", c)]
    conf = lambda extra_b: base_conf(env) + service("front", front, servers=servers,
                                                    extra="    persistence cookie MS-WSMAN timeout 20m"
                                                    ).replace("server b 127.0.0.1:%d" % b,
                                                              "server b 127.0.0.1:%d%s" % (b, extra_b))
    g = env.gatehouse(conf(""))
    first, cookie = sticky_run(env, front, 1)
    check(cookie and cookie.startswith("MS-WSMAN="), "cookie inserted: %r" % cookie)
    value = cookie.split("=", 1)[1]
    for port in (a, b, c):
        check(str(port) not in value and "127.0.0.1" not in value, "cookie reveals no address")
    seen, again = sticky_run(env, front, 12, cookie)
    check(set(seen) == {first[0]}, "12 new connections stick to %s: %r" % (first[0], seen))
    check(again is None, "a fresh cookie is not re-sent on every response")
    # forged: a valid-looking value with another MAC is ignored (balanced again)
    forged = "MS-WSMAN=" + value[:9] + ("0" * 24)
    seen, fresh = sticky_run(env, front, 9, forged)
    check(len(set(seen)) > 1 and fresh is not None, "forged cookie ignored: %r" % seen)
    # the pinned server goes into maintenance: the client moves and sticks
    pinned = {str(a): "a", str(b): "b", str(c): "c"}[first[0]]
    env.write("gh.conf", conf("").replace("server %s 127.0.0.1:%s" % (pinned, first[0]),
                                          "server %s 127.0.0.1:%s state maint" % (pinned, first[0])))
    n = g.output().count("configuration reloaded")
    g.signal(signal.SIGHUP)
    wait_until(lambda: g.output().count("configuration reloaded") > n, 5, "reload")
    seen, moved = sticky_run(env, front, 1, cookie)
    check(seen[0] != first[0] and moved is not None, "moved off the pinned server with a new cookie")
    seen2, _ = sticky_run(env, front, 8, moved)
    check(set(seen2) == {seen[0]}, "and sticks to the new one: %r" % seen2)


@test
def source_persistence_sticks_and_fails_over(env):
    a, b = env.backend(), env.backend()
    front = free_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("a", a), ("b", b)],
                                               extra="    persistence source-ip mask 24 timeout 20m\n"
                                                     "    retries 2"))
    seen, _ = sticky_run(env, front, 10)
    check(len(set(seen)) == 1, "one client address sticks to one server: %r" % seen)
    pinned = int(seen[0])
    env.backends[pinned].send_signal(signal.SIGKILL)
    env.backends[pinned].wait()
    seen2, _ = sticky_run(env, front, 6)
    check(all(s and int(s) != pinned for s in seen2), "failed over: %r" % seen2)
    check(len(set(seen2)) == 1, "and sticks to the new server: %r" % seen2)


@test
def weighted_round_robin_and_source_hash(env):
    a, b = env.backend(), env.backend()
    front, hashed = free_port(), free_port()
    g = env.gatehouse(base_conf(env) +
                      service("front", front, servers=[("a", a), ("b", b)],
                              extra="    scheduler round-robin").replace(
                          "server a 127.0.0.1:%d" % a, "server a 127.0.0.1:%d weight 3" % a) +
                      service("hashed", hashed, servers=[("a", a), ("b", b)],
                              extra="    scheduler source-hash"))
    got = whoami(front, 40, env.ca)
    check(got == {str(a): 30, str(b): 10}, "weights 3:1 give 30:10 of 40: %r" % got)
    got = whoami(hashed, 10, env.ca)
    check(len(got) == 1, "one client address, one server: %r" % got)


@test
def maxconn_queue_and_queue_timeout(env):
    slow = env.backend(delay_ms=400)
    front, short = free_port(), free_port()
    g = env.gatehouse(base_conf(env) +
                      service("front", front, servers=[("s", slow)],
                              extra="    queue-timeout 5s").replace(
                          "server s 127.0.0.1:%d" % slow, "server s 127.0.0.1:%d maxconn 1" % slow) +
                      service("short", short, servers=[("s", slow)],
                              extra="    queue-timeout 200ms").replace(
                          "server s 127.0.0.1:%d" % slow, "server s 127.0.0.1:%d maxconn 1" % slow))
    results = []

    def one(port):
        t0 = time.time()
        r = curl("--cacert", env.ca, "-o", "/dev/null", "-w", "%{http_code}",
                 "https://localhost:%d/whoami" % port)
        results.append((port, r.stdout.decode(), time.time() - t0))
    ts = [threading.Thread(target=one, args=(front,)) for _ in range(3)]
    t0 = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    codes = sorted(c for _, c, _ in results)
    check(codes == ["200"] * 3, "queued requests all served: %r" % results)
    check(time.time() - t0 >= 1.1, "one at a time through maxconn 1 (3 x 400 ms)")
    results.clear()
    ts = [threading.Thread(target=one, args=(short,)) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    codes = sorted(c for _, c, _ in results)
    check(codes == ["200", "503"], "second request times out in the queue: %r" % results)
    wait_until(lambda: os.path.exists(env.path("access.log")) and sum(
        1 for l in open(env.path("access.log")) if "upstream:queue-timeout" in l) == 1, 5,
        "the queue timeout logged with its reason")
