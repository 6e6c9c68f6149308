"""Two appliances sharing a real redis-server (Debian's, with the ACL users
of docs/cluster.md) for what the proxy workers ask per request: source-ip
persistence entries and per-source request-rate buckets. The workers ask
without blocking (a connection waits in STORE_WAIT); with the store stopped
they do not wait for it either: persistence falls back to rendezvous
hashing on the same key (both appliances agree), the rate to each
appliance's share. Everything is checked at the client and at the real
servers (a Python backend and nginx: two kinds), by marker."""
import os
import re
import signal
import subprocess
import time

from harness import check, free_port, service, test, wait_until
from t_q_chain_timeouts import From, get, own_logs
from t_zb_cluster import start_redis


def appliances(env, services, extra_store="", rport=None, called=("appliance-a", "appliance-b")):
    """A Redis (unless rport names one) and appliances A and B with the
    same services (text with PORT_<name> placeholders), named as called says:
    {name: (port on A, port on B)}, the Redis process (None when given) and
    its port."""
    pwfile = env.write("redis.pw", "gh-pw\n")
    os.chmod(pwfile, 0o600)
    red = None
    if rport is None:
        rport = free_port()
        red = start_redis(env, rport, None, acl=True)
    store = ("store redis {\n    address 127.0.0.1:%d\n    user gatehouse\n"
             "    password-file %s\n    timeout 200ms\n    wait-replicas 0\n"
             "    name NAME\n%s}\n" % (rport, pwfile, extra_store))
    names = re.findall(r"PORT_(\w+)", services)
    ports = {n: (free_port(), free_port()) for n in names}
    appliances.last = []
    for i, tag in enumerate(("a", "b")):
        text = own_logs(env, tag) + store.replace("NAME", called[i]) + services
        for n, pp in ports.items():
            text = text.replace("PORT_%s" % n, str(pp[i]))
        g = env.gatehouse(text, name="%s.conf" % tag)
        check("store redis: 127.0.0.1:%d answers" % rport in g.output(), "%s's log" % tag)
        appliances.last.append(g)
    return ports, red, rport


def keys(rport):
    """The number of keys Redis holds (INFO keyspace, as the probe user)."""
    r = subprocess.run(["redis-cli", "-p", str(rport), "--user", "probe", "--pass", "probe-pw",
                        "--no-auth-warning", "INFO", "keyspace"], capture_output=True, timeout=10)
    m = re.search(rb"db0:keys=(\d+)", r.stdout)
    return int(m.group(1)) if m else 0


def maint(g, lines, on):
    """The server lines of appliance g in maint (on) or not, reloaded."""
    text = open(g.conf).read()
    for line in lines:
        text = text.replace(line + " state maint", line)
        if on:
            text = text.replace(line, line + " state maint")
    with open(g.conf, "w") as f:
        f.write(text)
    n = g.output().count("configuration reloaded")
    g.signal(signal.SIGHUP)
    wait_until(lambda: g.output().count("configuration reloaded") > n, 10, "reload")


def reached(env, py_port, ng_port, marker):
    """Which real servers a request with ?m=marker reached: the Python
    backend logs 'REQ <line>', nginx its access log."""
    tag = "?m=%s " % marker
    at = []
    for name, log in (("py", "backend-%d.log" % py_port), ("nginx", "nginx-%d.access" % ng_port)):
        try:
            with open(env.path(log), errors="replace") as f:
                if tag in f.read():
                    at.append(name)
        except FileNotFoundError:
            pass
    return at


def nginx_lines(env, port, marker):
    try:
        with open(env.path("nginx-%d.access" % port)) as f:
            return [ln for ln in f if ("?m=%s " % marker) in ln]
    except FileNotFoundError:
        return []


@test
def cluster_source_ip_persistence_follows_the_client_to_any_appliance(env):
    """Twelve clients are placed on A while nginx is in maintenance (on
    both): all on the Python backend. Once nginx is back, the entries in
    Redis keep every one of them there on A and on B, where rendezvous
    hashing alone (B never saw them) would move about half. New clients
    keep one server across A and B; with Redis stopped they still do, and
    so do the clients placed while every server was up."""
    py = env.backend()
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    ports, red, rport = appliances(env, service(
        "sticky", 0, servers=[("py", py), ("ng", ng)],
        extra="    persistence source-ip").replace("listen 127.0.0.1:0",
                                                 "listen 127.0.0.1:PORT_sticky"))
    pa, pb = ports["sticky"]
    ga, gb = appliances.last

    def reload_both(on):
        for g in (ga, gb):
            maint(g, ["server ng 127.0.0.1:%d" % ng], on)

    def one(port, src, m):
        r, _ = get(port, env.ca, src, "/whoami?m=" + m)
        check(r.status == 200, "%s: %r" % (m, r))
        wait_until(lambda: reached(env, py, ng, m) != [], 5, "%s at a server" % m)
        at = reached(env, py, ng, m)
        check(len(at) == 1, "%s reached %r" % (m, at))
        return at[0]

    def walk(clients, tag, ports=(pa, pb, pa, pb)):
        return {src: [one(port, src, "%s-%s-%d" % (tag, src, i)) for i, port in enumerate(ports)]
                for src in clients}

    def short(where):
        return ", ".join("%s->%s" % (s.rsplit(".", 1)[1], "/".join(sorted(set(w))))
                         for s, w in where.items())

    placed = ["127.0.0.%d" % i for i in range(31, 43)]
    reload_both(True)
    before = keys(rport)
    where = walk(placed, "maint", ports=(pa,))
    check(all(w == ["py"] for w in where.values()), "nginx in maint got clients: %r" % where)
    check(keys(rport) >= before + 12, "an entry per client in Redis: %d -> %d" % (
        before, keys(rport)))
    reload_both(False)
    where = walk(placed, "back", ports=(pb, pa, pb))
    print("    (placed on A while nginx was in maint, then on B and A: %s)" % short(where))
    for src, w in where.items():
        check(w == ["py"] * 3, "client %s left its server once nginx was back: %r" % (src, w))

    fresh = ["127.0.0.%d" % i for i in range(51, 63)]
    where = walk(fresh, "up")
    print("    (new clients, every server up: %s)" % short(where))
    for src, w in where.items():
        check(len(set(w)) == 1, "client %s moved between servers across A and B: %r" % (src, w))
    check({w[0] for w in where.values()} == {"py", "nginx"},
          "the clients are spread over both servers: %r" % where)
    placed_up = {src: w[0] for src, w in where.items()}

    # The store stopped: nobody waits for it; new clients go where every
    # appliance's rendezvous sends them, and those placed while every
    # server was up stay.
    red.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        where = walk(["127.0.0.%d" % i for i in range(71, 79)], "away")
        kept = walk(fresh, "kept", ports=(pb, pa))
        took = time.monotonic() - t0
    finally:
        red.send_signal(signal.SIGCONT)
    print("    (store stopped: new %s; placed before: %s; %.1f s)" % (short(where), short(kept),
                                                                    took))
    for src, w in where.items():
        check(len(set(w)) == 1, "client %s, store away: A and B disagree: %r" % (src, w))
    for src, w in kept.items():
        check(set(w) == {placed_up[src]}, "client %s moved while the store was away: %r -> %r"
              % (src, placed_up[src], w))
    # 48 requests: the 200 ms timeout is paid while the connection is
    # found dead, not on every request
    check(took < 48 * 0.2, "requests waited on the stopped store: %.1f s" % took)

    # Back: new clients are written again.
    n = keys(rport)

    def written():
        get(pa, env.ca, "127.0.0.91", "/whoami?m=back")
        return keys(rport) > n
    wait_until(written, 15, "entries written again once the store is back")


@test
def cluster_request_rate_is_one_bucket_across_appliances(env):
    """request-rate-per-source 2 burst 4: one client alternating between A
    and B gets 4 (plus the refill) through, not 8; what nginx saw is exactly
    what was let through. With Redis stopped each appliance limits at its
    share (appliances 2: a burst of 2 each)."""
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    ports, red, rport = appliances(env, service(
        "limited", 0, servers=[("ng", ng)],
        extra="    request-rate-per-source 2\n    request-burst-per-source 4").replace(
            "listen 127.0.0.1:0", "listen 127.0.0.1:PORT_limited"), "    appliances 2\n")
    pa, pb = ports["limited"]

    def burst(tag, n):
        got = {pa: [], pb: []}
        t0 = time.monotonic()
        for i in range(n):
            port = (pa, pb)[i % 2]
            r, _ = get(port, env.ca, "127.0.0.61", "/?m=%s-%d" % (tag, i))
            got[port].append((r.status, "%s-%d" % (tag, i)))
        return got, time.monotonic() - t0

    got, took = burst("shared", 16)
    through = [m for v in got.values() for st, m in v if st == 200]
    statuses = [st for v in got.values() for st, m in v]
    print("    (shared bucket: %d of 16 through in %.2f s; A %r, B %r)" % (
        len(through), took, [s for s, _ in got[pa]], [s for s, _ in got[pb]]))
    check(set(statuses) <= {200, 429}, "statuses: %r" % statuses)
    check(4 <= len(through) <= 4 + int(took * 2) + 1,
          "one bucket for both: %d through in %.2f s" % (len(through), took))
    check(any(st == 200 for st, _ in got[pb]) and any(st == 429 for st, _ in got[pa]),
          "both appliances take from one bucket: %r" % got)
    wait_until(lambda: all(nginx_lines(env, ng, m) for m in through), 5,
               "nginx logged what was let through")
    for v in got.values():
        for st, m in v:
            n = len(nginx_lines(env, ng, m))
            check(n == (1 if st == 200 else 0), "%s (%d) reached nginx %d times" % (m, st, n))

    red.send_signal(signal.SIGSTOP)
    try:
        got, took = burst("local", 16)
    finally:
        red.send_signal(signal.SIGCONT)
    for port, tag in ((pa, "A"), (pb, "B")):
        ok = sum(st == 200 for st, _ in got[port])
        print("    (store stopped, %s: %d of 8 through in %.2f s)" % (tag, ok, took))
        check(2 <= ok <= 2 + int(took * 1) + 1,
              "local share on %s: %r in %.2f s" % (tag, got[port], took))


@test
def cluster_persistence_cookie_from_one_appliance_sticks_at_another(env):
    """persistence cookie: the cookie keys are the cluster's (seeded by the
    first appliance, adopted by the other), so a cookie A set names the same
    server at B; after a rotation by one appliance (the one holding the
    rotation lock) the other adopts the new keys and cookies signed with
    them hold there too."""
    py = env.backend()
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    ports, red, rport = appliances(env, "persistence-key-rotation 6s\n" + service(
        "cookied", 0, servers=[("py", py), ("ng", ng)],
        extra="    persistence cookie GHP timeout 6s").replace(
            "listen 127.0.0.1:0", "listen 127.0.0.1:PORT_cookied"))
    pa, pb = ports["cookied"]
    logs = {"A": env.path("gatehouse-%d.log" % (len(env.procs) - 2)),
            "B": env.path("gatehouse-%d.log" % (len(env.procs) - 1))}

    def log(tag):
        with open(logs[tag], errors="replace") as f:
            return f.read()
    seeded = [t for t in "AB" if "the cluster's keys are now this appliance's" in log(t)]
    adopted = [t for t in "AB" if "adopted the cluster's keys" in log(t)]
    check(seeded == ["A"] and adopted == ["B"], "seeded by %r, adopted by %r" % (seeded, adopted))
    # B one step ahead in its rotation (see the source-ip test): a cookie B
    # could not check would send its client to the other server.
    r, _ = get(pb, env.ca, "127.0.0.30", "/whoami?m=offset")
    check(r.status == 200, "offset: %r" % r)

    def sticky(tag, n, first):
        where = {}
        for k in range(n):
            src = "127.0.0.%d" % (81 + k)
            cookie = None
            for i, port in enumerate((first, pa if first == pb else pb, first)):
                m = "%s-%d-%d" % (tag, k, i)
                r, _ = get(port, env.ca, src, "/whoami?m=" + m,
                           [("Cookie", cookie)] if cookie else [])
                check(r.status == 200, "%s: %r" % (m, r))
                if cookie is None:
                    sc = r.get("set-cookie") or ""
                    check(sc.startswith("GHP="), "%s: no cookie: %r" % (m, r.fields))
                    cookie = sc.split(";")[0]
                wait_until(lambda: reached(env, py, ng, m) != [], 5, "%s at a server" % m)
                where.setdefault(k, []).append(reached(env, py, ng, m)[0])
        for k, w in where.items():
            check(len(set(w)) == 1, "%s: client %d moved: %r" % (tag, k, w))
        return where

    w = sticky("before", 6, pa)
    check({v[0] for v in w.values()} == {"py", "nginx"}, "spread: %r" % w)

    # A rotation within 6 s (the rotation and the cookie timeout), by one.
    wait_until(lambda: any("persistence key rotated" in log(t) for t in "AB"), 20,
               "a rotation")
    rotated = [t for t in "AB" if "persistence key rotated" in log(t)]
    other = "B" if rotated[0] == "A" else "A"
    wait_until(lambda: log(other).count("adopted the cluster's keys") >= (2 if other == "B" else 1),
               15, "%s adopts %s's rotated keys" % (other, rotated[0]))
    print("    (seeded by A, adopted by B; rotated by %s, adopted by %s)" % (rotated[0], other))
    sticky("after", 4, pa if rotated[0] == "A" else pb)


@test
def cluster_client_gone_while_its_request_waits_for_the_store_sends_nothing(env):
    """Redis stopped: a client sends a whole request and resets the
    connection while the request waits for its persistence entry. Nothing
    of it reaches the real server (a pooled connection to it is ready);
    the next client's request, decided by the fallback, does."""
    import socket
    import struct
    from t_q_chain_timeouts import From
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    ports, red, rport = appliances(env, service(
        "sticky", 0, servers=[("ng", ng)], extra="    persistence source-ip").replace(
            "listen 127.0.0.1:0", "listen 127.0.0.1:PORT_sticky"))
    pa = ports["sticky"][0]
    r, _ = get(pa, env.ca, "127.0.0.41", "/?m=warm")  # a pooled connection to nginx
    check(r.status == 200, "warm-up: %r" % r)
    red.send_signal(signal.SIGSTOP)
    try:
        c = From(pa, env.ca, "127.0.0.42")
        c.send(b"POST /?m=gone HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello")
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.s.close()
        r, _ = get(pa, env.ca, "127.0.0.43", "/?m=next")
        check(r.status == 200, "the next client: %r" % r)
    finally:
        red.send_signal(signal.SIGCONT)
    wait_until(lambda: nginx_lines(env, ng, "next"), 5, "the next request at nginx")
    check(nginx_lines(env, ng, "gone") == [], "the gone client's request reached nginx: %r" %
          nginx_lines(env, ng, "gone"))


def layer4_sticky(env, a, b):
    """Two TCP echo servers named a and b, two UDP ones ua and ub, and the
    text of a mode tcp and a mode udp service with persistence source-ip
    over them (listeners PORT_tcp, PORT_udp)."""
    from t_w_udp import CHECK, Echo
    from t_x_tcp import Peer
    pa, pb = Peer(a), Peer(b)
    ua, ub = Echo(env, "ua"), Echo(env, "ub")
    services = ("service sticky {\n    listen 127.0.0.1:PORT_tcp\n    mode tcp\n"
                "    persistence source-ip\n    server a 127.0.0.1:%d\n"
                "    server b 127.0.0.1:%d\n}\n" % (pa.port, pb.port) +
                "service av {\n    listen 127.0.0.1:PORT_udp\n    mode udp\n"
                "    persistence source-ip\n    server ua 127.0.0.1:%d\n"
                "    server ub 127.0.0.1:%d\n%s}\n" % (ua.port, ub.port,
                                                    CHECK.replace("\n", " start up\n")))
    return pa, pb, ua, ub, services


@test
def cluster_layer4_source_ip_first_choice_agrees_across_appliances(env):
    """mode tcp and mode udp with persistence source-ip: their entries are
    each appliance's own, and in a cluster a client's first server is the
    rendezvous choice on the same key, so A and B agree without asking the
    store. Connections and flows stay open, so least-connection (which B,
    one connection ahead, would choose differently) cannot agree by
    chance; both servers take clients."""
    import socket
    from t_w_udp import Client
    pa, pb, ua, ub, services = layer4_sticky(env, "A", "B")
    ports, _, _ = appliances(env, services)
    held = []

    def tcp(port, src):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(b"hello")
        got = s.recv(100)
        held.append(s)  # open: it counts for least-connection
        return got.split(b":")[0].decode()
    tcp(ports["tcp"][1], "127.0.0.90")  # B one connection ahead
    flows = [Client(ports["udp"][1], "127.0.0.90")]
    wait_until(lambda: flows[0].ask(b"warm", tries=3) in ("ua", "ub"), 10, "B's UDP service")
    seen_tcp, seen_udp = [], []
    for i in range(12):
        src = "127.0.0.%d" % (70 + i)
        on_a, on_b = tcp(ports["tcp"][0], src), tcp(ports["tcp"][1], src)
        check(on_a == on_b, "TCP client %s: %s on A, %s on B" % (src, on_a, on_b))
        seen_tcp.append(on_a)
        fa, fb = Client(ports["udp"][0], src), Client(ports["udp"][1], src)
        flows += [fa, fb]
        u_a, u_b = fa.ask(b"a-%d" % i, tries=3), fb.ask(b"b-%d" % i, tries=3)
        check(u_a == u_b, "UDP client %s: %s on A, %s on B" % (src, u_a, u_b))
        seen_udp.append(u_a)
    check(set(seen_tcp) == {"A", "B"}, "TCP clients all on one server: %r" % seen_tcp)
    check(set(seen_udp) == {"ua", "ub"}, "UDP clients all on one server: %r" % seen_udp)
    for s in held:
        s.close()
    for f in flows:
        f.close()


@test
def cluster_layer4_source_ip_entries_follow_a_client_moved_at_one_appliance(env):
    """mode tcp and mode udp with persistence source-ip keep their entries
    in the store: twelve clients placed on A while server b (and ub) is in
    maintenance at A only go to a; once b is back at A, every new
    connection and every new flow of theirs, through B (which never saw
    them, and for which rendezvous alone would send about half to b) and
    through A, still reaches a. The bytes are checked at the servers. A new
    flow's first datagrams, sent back to back while the store is asked,
    arrive all and in order. With the store stopped, nobody waits for it."""
    import socket
    from t_w_udp import Client
    pa, pb, ua, ub, services = layer4_sticky(env, "a", "b")
    ports, red, rport = appliances(env, services)
    ga, _ = appliances.last
    (ta, tb), (xa, xb) = ports["tcp"], ports["udp"]

    def maint_at_a(on):
        maint(ga, ["server b 127.0.0.1:%d" % pb.port, "server ub 127.0.0.1:%d" % ub.port], on)

    def tcp(port, src, marker):
        """Which server echoed marker, and checked there byte for byte."""
        with socket.socket() as s:
            s.bind((src, 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            s.sendall(marker)
            got = b""
            while not got.endswith(marker):
                d = s.recv(100)
                check(d, "%r: the connection ended before its echo (%r)" % (marker, got))
                got += d
        name = got.split(b":")[0].decode()
        peer = {"a": pa, "b": pb}[name]
        check(marker in peer.plain, "%r: %s echoed it, its bytes differ: %r" % (
            marker, name, [p for p in peer.plain if marker[:8] in p]))
        other = pb if name == "a" else pa
        check(not any(marker in p for p in other.plain), "%r reached both servers" % marker)
        return name

    def udp(port, src, marker):
        f = Client(port, src)
        try:
            return f.ask(marker, tries=3)
        finally:
            f.close()

    def ready(port, src):
        try:
            return udp(port, src, b"warm") in ("ua", "ub")
        except socket.timeout:
            return False
    maint_at_a(True)
    wait_until(lambda: ready(xa, "127.0.0.99") and ready(xb, "127.0.0.99"), 10,
               "the UDP services, their servers checked")
    placed = ["127.0.0.%d" % i for i in range(110, 122)]
    before = keys(rport)
    for src in placed:
        check(tcp(ta, src, b"maint-%s" % src.encode()) == "a", "b in maint at A took %s" % src)
        check(udp(xa, src, b"maint-%s" % src.encode()) == "ua", "ub in maint at A took %s" % src)
    check(keys(rport) >= before + 24, "an entry per client and service in Redis: %d -> %d" % (
        before, keys(rport)))
    maint_at_a(False)
    wait_until(lambda: ready(xa, "127.0.0.98"), 10, "A's UDP service after its reload")
    where = {}
    for src in placed:
        for tag, port in (("b", tb), ("a", ta)):
            m = b"back-%s-%s" % (tag.encode(), src.encode())
            where.setdefault(src, []).append(tcp(port, src, m))
        for tag, port in (("b", xb), ("a", xa)):
            where[src].append(udp(port, src, b"back-%s-%s" % (tag.encode(), src.encode())))
    print("    (placed at A while b was in maint there; then at B and A, TCP and UDP: %s)" %
          ", ".join("%s:%s" % (s.rsplit(".", 1)[1], "/".join(w)) for s, w in where.items()))
    for src, w in where.items():
        check(w == ["a", "a", "ua", "ua"], "client %s left its server: %r" % (src, w))

    # A new flow's burst while its question is out: held, then sent in order.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.130", 0))
    s.settimeout(5)
    burst = [b"burst-%d" % i for i in range(6)]
    for d in burst:
        s.sendto(d, ("127.0.0.1", xb))
    got = [s.recvfrom(1000)[0] for _ in burst]
    s.close()
    names = {g.split(b":")[0] for g in got}
    check(len(names) == 1 and [g.split(b":", 1)[1] for g in got] == burst,
          "the burst of a new flow, in order on one server: %r" % got)

    # The store stopped: connections and flows are placed at once (the
    # rendezvous choice), every held datagram answered within the timeout.
    red.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        away = [(tcp(ta, "127.0.0.140", b"away-a"), tcp(tb, "127.0.0.140", b"away-b")),
                (udp(xa, "127.0.0.141", b"away-ua"), udp(xb, "127.0.0.141", b"away-ub"))]
        took = time.monotonic() - t0
    finally:
        red.send_signal(signal.SIGCONT)
    print("    (store stopped: %r in %.2f s)" % (away, took))
    for x, y in away:
        check(x == y, "store away: A and B disagree: %r" % ((x, y),))
    check(took < 4 * 1.0, "connections waited on the stopped store: %.1f s" % took)
    pa.stop()
    pb.stop()


@test
def cluster_connection_rate_is_one_bucket_across_appliances(env):
    """conn-rate-per-source 2 (a bucket of 2, refilled at 2/s): one client
    opening connections alternately to A and B gets 2 (plus the refill)
    through, not 4; a refused connection is closed before any TLS work,
    with a conn-limit line; what nginx saw is exactly what was let through.
    Four at once to A alone get the cluster's 2, not A's share of 1; with
    Redis stopped A limits at its share (appliances 2: 1 a second), and
    once it is back the bucket is one again."""
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    ports, red, rport = appliances(env, service(
        "cr", 0, servers=[("ng", ng)], extra="    conn-rate-per-source 2").replace(
            "listen 127.0.0.1:0", "listen 127.0.0.1:PORT_cr"), "    appliances 2\n")
    pa, pb = ports["cr"]

    def one(port, tag):
        try:
            r, _ = get(port, env.ca, "127.0.0.62", "/?m=" + tag)
            return r.status
        except Exception:  # closed at accept: the handshake never completes
            return None

    def burst(tag, n):
        got = {pa: [], pb: []}
        t0 = time.monotonic()
        for i in range(n):
            port = (pa, pb)[i % 2]
            got[port].append((one(port, "%s-%d" % (tag, i)), "%s-%d" % (tag, i)))
        return got, time.monotonic() - t0

    got, took = burst("conn", 12)
    through = [m for v in got.values() for st, m in v if st == 200]
    print("    (one connection bucket: %d of 12 through in %.2f s; A %r, B %r)" % (
        len(through), took, [s for s, _ in got[pa]], [s for s, _ in got[pb]]))
    check(set(st for v in got.values() for st, _ in v) <= {200, None}, "statuses: %r" % got)
    check(2 <= len(through) <= 2 + int(took * 2) + 1,
          "one bucket for both: %d through in %.2f s" % (len(through), took))
    check(any(st == 200 for st, _ in got[pb]) and any(st is None for st, _ in got[pa]),
          "both appliances take from one bucket: %r" % got)
    wait_until(lambda: all(nginx_lines(env, ng, m) for m in through), 5,
               "nginx logged what was let through")
    for v in got.values():
        for st, m in v:
            check(len(nginx_lines(env, ng, m)) == (1 if st == 200 else 0),
                  "%s (%r) reached nginx" % (m, st))
    lines = []
    for tag in "ab":
        try:
            with open(env.path("%s-security.log" % tag)) as f:
                lines += [l for l in f if "conn-limit" in l]
        except FileNotFoundError:
            pass
    check(len(lines) == 12 - len(through), "conn-limit lines: %d" % len(lines))

    def alone(tag, n=4):
        """n at once to A alone: (through, seconds)."""
        t0 = time.monotonic()
        ok = sum(one(pa, "%s-%d" % (tag, i)) == 200 for i in range(n))
        return ok, time.monotonic() - t0
    # The bucket is the cluster's, not A's share (which would let 1 through).
    time.sleep(1.1)  # the bucket refills (the limit's own clock), not a wait for readiness
    ok, took = alone("alone")
    check(2 <= ok <= 2 + int(took * 2), "A alone, the cluster's bucket: %d in %.2f s" % (ok, took))

    # Redis stopped: A decides by its share (1 a second, a burst of 1).
    time.sleep(1.1)
    red.send_signal(signal.SIGSTOP)
    try:
        ok, took = alone("local")
    finally:
        red.send_signal(signal.SIGCONT)
    print("    (store stopped, A alone: %d of 4 through in %.2f s)" % (ok, took))
    check(1 <= ok <= 1 + int(took), "A's share: %d in %.2f s" % (ok, took))

    def one_again():
        # alternating A and B: one bucket (2 through); then A alone: the
        # cluster's (2), not A's share (1)
        time.sleep(1.1)  # the bucket's refill, not a readiness wait
        g, t = burst("again-%d" % int(time.monotonic() * 1000), 6)
        n = sum(st == 200 for v in g.values() for st, _ in v)
        if not 2 <= n <= 2 + int(t * 2) + 1:
            return False
        time.sleep(1.1)
        ok, t = alone("again-alone-%d" % int(time.monotonic() * 1000))
        return ok >= 2
    wait_until(one_again, 30, "one bucket again with Redis back")


def hold_open(env, port, source, tag, held):
    """A connection from source that asked once and stays open (appended
    to held as (port, connection)): the status, or None when it was closed
    at accept."""
    try:
        c = From(port, env.ca, source)
        c.send(("GET /?m=%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % tag).encode())
        r = c.final()
    except Exception:
        return None
    if r is None or r.status is None:
        return None
    held.append((port, c))
    return r.status


@test
def cluster_max_conns_per_source_of_two_appliances_of_one_name(env):
    """Two appliances given the same name (containers of one image) still
    count each other: 3 in all for one client over A and B."""
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    ports, red, rport = appliances(env, service(
        "mn", 0, servers=[("ng", ng)], extra="    max-conns-per-source 3").replace(
            "listen 127.0.0.1:0", "listen 127.0.0.1:PORT_mn"), "    appliances 2\n",
        called=("twin", "twin"))
    pa, pb = ports["mn"]
    held = []
    try:
        got = [hold_open(env, (pa, pb)[i % 2], "127.0.0.66", "mn-%d" % i, held) for i in range(6)]
        check(got == [200, 200, 200, None, None, None], "one name, one count: %r" % got)
    finally:
        for p, c in held:
            c.close()


@test
def cluster_max_conns_per_source_is_one_count_across_appliances(env):
    """max-conns-per-source 3 over two appliances: one client holding its
    connections open, alternately on A and B, gets 3 in all, not 3 each;
    the 4th and 5th are closed at accept (conn-limit) and reach nothing.
    One closed on A lets one more in at B. With Redis stopped each
    appliance holds the source to its share (3 / 2: 1); back, one count."""
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    ports, red, rport = appliances(env, service(
        "mc", 0, servers=[("ng", ng)], extra="    max-conns-per-source 3").replace(
            "listen 127.0.0.1:0", "listen 127.0.0.1:PORT_mc"), "    appliances 2\n")
    pa, pb = ports["mc"]
    held = []

    def hold(port, tag):
        return hold_open(env, port, "127.0.0.64", tag, held)

    def drop(port):
        for i, (p, c) in enumerate(held):
            if p == port:
                c.close()
                del held[i]
                return
        check(False, "no connection held at %d" % port)

    try:
        got = [(hold((pa, pb)[i % 2], "mc-%d" % i), "mc-%d" % i) for i in range(5)]
        print("    (one count: %r)" % [st for st, _ in got])
        check([st for st, _ in got][:3] == [200, 200, 200] and
              [st for st, _ in got][3:] == [None, None],
              "3 in all over A and B: %r" % got)
        wait_until(lambda: all(nginx_lines(env, ng, m) for st, m in got if st), 5,
                   "nginx logged what was let through")
        for st, m in got:
            check(len(nginx_lines(env, ng, m)) == (1 if st == 200 else 0),
                  "%s (%r) reached nginx" % (m, st))
        lines = []
        for tag in "ab":
            try:
                with open(env.path("%s-security.log" % tag)) as f:
                    lines += [l for l in f if "conn-limit" in l]
            except FileNotFoundError:
                pass
        check(len(lines) == 2, "conn-limit lines: %d" % len(lines))
        # One closed on A: A's count in the store goes down, B takes one.
        drop(pa)
        n = [0]

        def one_more():
            n[0] += 1
            return hold(pb, "more-%d" % n[0]) == 200
        wait_until(one_more, 10, "one more at B once A closed one")
        check(hold(pa, "over") is None and hold(pb, "over-b") is None, "3 again: the 4th refused")
        # Redis stopped: each appliance at its share of 1.
        for p, c in held:
            c.close()
        held.clear()
        time.sleep(0.3)  # the closes reach both appliances' counters; nothing to poll for
        red.send_signal(signal.SIGSTOP)
        try:
            local = [hold(pa, "local-a1"), hold(pa, "local-a2"), hold(pb, "local-b1"),
                     hold(pb, "local-b2")]
        finally:
            red.send_signal(signal.SIGCONT)
        print("    (store stopped: %r)" % local)
        check(local == [200, None, 200, None], "the shares with Redis stopped: %r" % local)
        for p, c in held:
            c.close()
        held.clear()

        def one_count_again():
            for p, c in held:
                c.close()
            held.clear()
            tag = "again-%d" % int(time.monotonic() * 1000)
            r = [hold((pa, pb)[i % 2], "%s-%d" % (tag, i)) for i in range(4)]
            return r == [200, 200, 200, None]
        wait_until(one_count_again, 20, "one count again with Redis back")
    finally:
        for p, c in held:
            c.close()


@test
def cluster_max_conns_counts_of_long_connections_are_written_again(env):
    """A count in the store lives 60 s unless its appliance writes it again
    (every 20 s while its connections last): after 65 s B's one long
    connection still counts at A, so A's own 2 + B's 1 leave no room for a
    4th; a count nobody writes lapses (the store conformance test shows the
    lapse itself)."""
    ng = env.nginx(extra="location / { return 200 'nginx'; }")
    ports, red, rport = appliances(env, service(
        "ml", 0, servers=[("ng", ng)], extra="    max-conns-per-source 3").replace(
            "listen 127.0.0.1:0", "listen 127.0.0.1:PORT_ml"), "    appliances 2\n")
    pa, pb = ports["ml"]
    held = []

    def hold(port, tag):
        return hold_open(env, port, "127.0.0.65", tag, held)

    try:
        check(hold(pb, "b1") == 200, "B's long connection")
        t0 = time.monotonic()
        check([hold(pa, "a1"), hold(pa, "a2")] == [200, 200], "A's two")
        # Keep the connections alive: idle-timeout is far off, and each side
        # is read by the kernel; wait out the store's 60 s lifetime.
        time.sleep(max(0.0, 65 - (time.monotonic() - t0)))  # the lifetime itself is the test
        check(hold(pa, "a3") is None, "a 4th after 65 s: B's count lapsed although B holds it")
        wait_until(lambda: len(nginx_lines(env, ng, "a2")) == 1, 5, "nginx saw a2")
        check(nginx_lines(env, ng, "a3") == [], "the refused 4th reached nginx")
    finally:
        for p, c in held:
            c.close()
