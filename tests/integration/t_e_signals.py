"""Signals: SIGHUP reload under load with zero failed requests, a bad
reload refused, SIGTERM drains in-flight requests, SIGUSR1 reopens logs."""
import os
import re
import signal
import subprocess
import time

from harness import base_conf, check, curl, free_port, service, test, wait_until


def wrk(port, seconds, close=False, conns=16):
    # a request stuck for 2 s counts as a timeout error, so a stall cannot hide
    args = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--timeout", "2s"]
    if close:
        args += ["-H", "Connection: close"]
    args.append("https://127.0.0.1:%d/conn-id" % port)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wrk_result(p):
    out = p.communicate(timeout=60)[0].decode()
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (
        sum(int(x) for x in sock.groups()) if sock else 0)
    return reqs, errors, out


def tcp_established_to(port):
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if int(parts[2].split(":")[1], 16) == port and parts[3] == "01":
                        n += 1
        except FileNotFoundError:
            pass
    return n


@test
def reload_under_load_loses_nothing(env):
    b1, b2 = env.backend(), env.backend()
    front = free_port()
    conf_a = base_conf(env) + service("front", front, servers=[("b1", b1), ("b2", b2)])
    conf_b = base_conf(env) + service("front", front, servers=[("b1", b1), ("b2", b2)],
                                      extra="    scheduler round-robin")
    g = env.gatehouse(conf_a)
    ka, cl = wrk(front, 4), wrk(front, 4, close=True, conns=4)
    wait_until(lambda: tcp_established_to(b1) + tcp_established_to(b2) > 0, 5, "load flowing")
    for i in range(6):
        env.write("gh.conf", conf_b if i % 2 == 0 else conf_a)
        g.signal(signal.SIGHUP)
        wait_until(lambda: g.output().count("configuration reloaded") >= i + 1, 5, "reload %d" % i)
        time.sleep(0.3)  # spacing between reloads, not synchronisation
    ps = subprocess.run(["ps", "-eo", "pid,pcpu,etimes,args", "--sort=-pcpu"],
                        capture_output=True, text=True).stdout.splitlines()[:8]
    for p, what in ((ka, "keep-alive"), (cl, "new connection per request")):
        reqs, errors, out = wrk_result(p)
        out += "\n" + "\n".join(ps)
        check(reqs > 100, "%s load ran: %d requests\n%s" % (what, reqs, out))
        check(errors == 0, "%s: %d failed requests during 6 reloads\n%s" % (what, errors, out))


@test
def bad_reload_refused_old_config_serves(env):
    b = env.backend()
    front = free_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("b", b)]))
    env.write("gh.conf", "service broken {\n")
    g.signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in g.output(), 5, "refusal logged")
    check("gh.conf:1:1: block opened here is not closed" in g.output(), "with file:line:col")
    r = curl("--cacert", env.ca, "https://localhost:%d/conn-id" % front)
    check(r.returncode == 0 and r.stdout.isdigit(), "old configuration still serves")


@test
def sigterm_drains_in_flight(env):
    b = env.backend()
    front = free_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("b", b)]))
    p = subprocess.Popen(["curl", "-sS", "--cacert", env.ca, "-w", " %{http_code}",
                          "https://localhost:%d/slow?ms=1500" % front], stdout=subprocess.PIPE)
    wait_until(lambda: tcp_established_to(b) > 0, 5, "request in flight at the backend")
    t0 = time.time()
    g.signal(signal.SIGTERM)
    wait_until(lambda: "draining" in g.output(), 5, "drain started")
    r = curl("--cacert", env.ca, "-m", "2", "https://localhost:%d/conn-id" % front)
    check(r.returncode != 0, "no new connections while draining")
    out = p.communicate(timeout=10)[0]
    check(out == b"slow done 200", "in-flight request completed: %r" % out)
    rc = g.proc.wait(timeout=10)
    check(rc == 0, "exit 0 after drain")
    check(time.time() - t0 < 8, "exits once drained")


@test
def sigusr1_reopens_logs(env):
    b = env.backend()
    front = free_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("b", b)]))
    curl("--cacert", env.ca, "https://localhost:%d/conn-id?before" % front)
    wait_until(lambda: os.path.exists(env.path("access.log")) and
               "before" in open(env.path("access.log")).read(), 5, "first line")
    os.rename(env.path("access.log"), env.path("access.log.1"))
    g.signal(signal.SIGUSR1)
    wait_until(lambda: "reopening logs" in g.output(), 5, "reopen")
    time.sleep(0.1)  # the signal is handled by main after the log line; let it finish
    curl("--cacert", env.ca, "https://localhost:%d/conn-id?after" % front)
    wait_until(lambda: os.path.exists(env.path("access.log")) and
               "after" in open(env.path("access.log")).read(), 5, "line in the new file")
    check("after" not in open(env.path("access.log.1")).read(), "old file not written")


@test
def reload_adds_and_removes_listeners(env):
    b = env.backend()
    one, two = free_port(), free_port()
    first = base_conf(env) + service("one", one, servers=[("b", b)])
    g = env.gatehouse(first)
    check(curl("--cacert", env.ca, "https://localhost:%d/conn-id" % two).returncode != 0,
          "second service not there yet")
    env.write("gh.conf", first + service("two", two, servers=[("b", b)]))
    g.signal(signal.SIGHUP)
    wait_until(lambda: g.output().count("configuration reloaded") == 1, 5, "reload")
    r = curl("--cacert", env.ca, "https://localhost:%d/conn-id" % two)
    check(r.returncode == 0 and r.stdout.isdigit(), "new listener serves after reload")
    env.write("gh.conf", base_conf(env) + service("two", two, servers=[("b", b)]))
    g.signal(signal.SIGHUP)
    wait_until(lambda: g.output().count("configuration reloaded") == 2, 5, "reload 2")
    check(curl("--cacert", env.ca, "https://localhost:%d/conn-id" % one).returncode != 0,
          "removed listener closed")
    check(curl("--cacert", env.ca, "https://localhost:%d/conn-id" % two).returncode == 0,
          "kept listener still serves")


def tcp_listen_ports(pid):
    """The TCP ports a process listens on (its socket inodes in LISTEN)."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@test
def applications_listen_only_on_private_unix_sockets(env):
    """The built-in applications are reached only through gatehouse's own
    listeners: each is a 0600 unix socket in a 0700 folder of the state
    directory, and the process listens on no TCP port but the configured
    ones; the sockets go when the process ends."""
    import stat
    port, m = free_port(), free_port()
    g = env.gatehouse(base_conf(env) + service("st", port, app="status") +
                      service("mg", m, app="management"))
    check(tcp_listen_ports(g.proc.pid) == {port, m},
          "TCP listeners: %r, configured %r" % (tcp_listen_ports(g.proc.pid), {port, m}))
    run = env.path("gatehouse-state/run")
    check(stat.S_IMODE(os.stat(run).st_mode) == 0o700, "run folder mode")
    socks = sorted(os.listdir(run))
    # conference-admin.sock: the conference admin API, which no listener serves.
    check(socks == ["admin.sock", "conference-admin.sock", "conference.sock", "management.sock",
                    "status.sock"], "sockets: %r" % socks)
    for s in socks:
        st = os.stat(os.path.join(run, s))
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, "%s mode" % s)
    r = curl("--cacert", env.ca, "https://localhost:%d/healthcheck.html" % port)
    check(r.returncode == 0 and b"OK" in r.stdout, "through the proxy: %r" % r.stdout)
    g.proc.send_signal(signal.SIGTERM)
    g.proc.wait(timeout=30)
    check(os.listdir(run) == [], "sockets left behind: %r" % os.listdir(run))
