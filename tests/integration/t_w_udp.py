"""mode udp (issue 14; the seeds' A/V Edge on 3478/UDP): datagrams forwarded
per flow (client address and port) to real UDP servers, checked by
`check send ... recv ...`. Two real UDP echo servers (below) answer each
datagram with their name in front and log where each came from, so every
row is checked at the client (which server answered) and at the servers
(how many flows, that is source ports of gatehouse, reached them)."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

from harness import GATEHOUSE, base_conf, check, curl, free_port, service, test, wait_until

# A real UDP server: answers the check text with PONG, logs "PORT LEN" for
# every other datagram and echoes it as NAME:DATA; "TRICKLE N" gets N
# replies 0.4 s apart instead (the server talking on a quiet flow).
ECHO = r'''
import socket, sys, threading, time
name, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("127.0.0.1", port))
out = open(log, "a", buffering=1)
out.write("ready\n")


def trickle(addr, n):
    for i in range(n):
        time.sleep(0.4)
        s.sendto(b"%s:trickle %d" % (name.encode(), i), addr)


while True:
    data, addr = s.recvfrom(65535)
    if data == b"PING\r\n":
        s.sendto(b"PONG " + name.encode() + b"\r\n", addr)
        continue
    if len(data) == 20 and data[:2] == b"\x00\x01" and data[4:8] == b"\x21\x12\xa4\x42":
        s.sendto(b"\x01\x01\x00\x00" + data[4:], addr)  # a STUN Binding success response
        continue
    out.write("%d %d\n" % (addr[1], len(data)))
    if data.startswith(b"TRICKLE "):
        threading.Thread(target=trickle, args=(addr, int(data[8:])), daemon=True).start()
        continue
    s.sendto(name.encode() + b":" + data, addr)
'''

CHECK = "    check send PING\\r\\n recv PONG interval 200ms timeout 200ms rise 1 fall 1\n"
# the STUN Binding probe of docs/config.md ("UDP flows")
STUN_CHECK = (r"    check send \x00\x01\x00\x00\x21\x12\xa4\x42ghcheck00001 recv \x01\x01"
              " interval 200ms timeout 200ms rise 1 fall 1\n")


class Echo:
    def __init__(self, env, name):
        self.name, self.port = name, free_port_udp()
        self.log = env.path("udp-%s.log" % name)
        script = env.path("udp_echo.py")
        if not os.path.exists(script):
            env.write("udp_echo.py", ECHO)
        self.proc = env.spawn([sys.executable, script, name, str(self.port), self.log],
                              "udp-%s.out" % name)
        wait_until(lambda: os.path.exists(self.log) and "ready" in open(self.log).read(), 10,
                   "UDP server %s" % name)

    def seen(self):
        """(source port, length) of every datagram that reached it."""
        with open(self.log) as f:
            return [tuple(map(int, l.split())) for l in f if l.strip() != "ready"]

    def ports(self):
        return {p for p, _ in self.seen()}

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)


def free_port_udp():
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(200):  # bounded: a busy machine frees some port in far fewer
        p = free_port()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            u.close()
    raise OSError("no port free for both TCP and UDP in 200 tries")


class Client:
    """One client flow: a UDP socket with its own source port."""

    def __init__(self, port, src="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((src, 0))
        self.s.settimeout(5)
        self.dst = ("127.0.0.1", port)
        self.port = self.s.getsockname()[1]

    def ask(self, data, tries=1):
        """Sends data; returns the name of the server that echoed it."""
        for i in range(tries):
            self.s.sendto(data, self.dst)
            try:
                reply, addr = self.s.recvfrom(70000)
                break
            except socket.timeout:
                if i == tries - 1:
                    raise
        check(addr == self.dst, "the reply came from the listener's address: %r" % (addr,))
        name, _, body = reply.partition(b":")
        check(body == data, "echo of %r intact: %r" % (data[:24], reply[:40]))
        return name.decode()

    def close(self):
        self.s.close()


def udp_service(name, port, servers, extra="", check_line=CHECK):
    lines = ["service %s {" % name, "    listen 127.0.0.1:%d" % port, "    mode udp"]
    lines += ["    server %s 127.0.0.1:%d" % (e.name, e.port) for e in servers]
    return "\n".join(lines) + "\n" + check_line + extra + "}\n"


def mgmt(port):
    return service("mgmt", port, app="management")


def metrics(env, m):
    text = curl("--cacert", env.ca, "https://localhost:%d/metrics" % m).stdout.decode()
    return {(n, l): float(v) for n, l, v in
            re.findall(r'^(gatehouse_\w+)\{([^}]*)\} (\S+)$', text, re.M)}


def metric(env, m, name, **labels):
    sel = ",".join('%s="%s"' % kv for kv in labels.items())
    return metrics(env, m).get((name, sel))


def flows(env, m, svc="av"):
    got = metrics(env, m)
    return {k: got.get(("gatehouse_udp_" + k, 'service="%s"' % svc)) for k in
            ("flows", "flows_total", "flows_refused_total")}


def start(env, servers, extra="", check_line=CHECK):
    """gatehouse with service av (mode udp) on a fresh port and mgmt; waits
    until the check has brought every server up."""
    port, m = free_port_udp(), free_port()
    conf = base_conf(env) + udp_service("av", port, servers, extra, check_line) + mgmt(m)
    g = env.gatehouse(conf)
    for e in servers:
        wait_until(lambda: metric(env, m, "gatehouse_server_up", service="av", server=e.name,
                                  state="up") == 1, 10, "server %s up by its check" % e.name)
    return g, port, m, conf


def access_lines(env):
    try:
        with open(env.path("access.log")) as f:
            return [l.split() for l in f if " av " in l]
    except FileNotFoundError:
        return []


def udp_inode(port):
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if parts[1] == "0100007F:%04X" % port:
                return parts[9]
    return None


@test
def udp_flows_stick_and_spread_by_least_connections(env):
    a, b = Echo(env, "a"), Echo(env, "b")
    g, port, m, _ = start(env, [a, b])
    c1, c2 = Client(port), Client(port)
    first = {c1.ask(b"one %d" % i) for i in range(20)}
    check(len(first) == 1, "one client port, one server: %r" % first)
    second = {c2.ask(b"two %d" % i) for i in range(20)}
    check(len(second) == 1 and second != first,
          "the second flow went to the other server (least connections): %r %r" % (first, second))
    srv1 = a if first == {"a"} else b
    srv2 = b if srv1 is a else a
    # a datagram near the 64 KiB bound crosses whole, on the same flow
    big = bytes(range(256)) * 253 + b"x" * 232  # 65000 bytes
    check(c1.ask(big) == srv1.name, "the big datagram stayed on its flow")
    # at the servers: each saw one flow (one source port of gatehouse)
    check(len(srv1.seen()) == 21 and len(srv1.ports()) == 1,
          "server %s: 21 datagrams on one flow: %r" % (srv1.name, srv1.seen()[:3]))
    check(len(srv2.seen()) == 20 and len(srv2.ports()) == 1, "server %s: 20 on one flow"
          % srv2.name)
    check((srv1.ports() & srv2.ports()) == set() and 65000 in {n for _, n in srv1.seen()},
          "distinct flows; the big datagram arrived whole")
    got = metrics(env, m)
    sel = 'service="av"'
    check(got[("gatehouse_udp_flows", sel)] == 2 and got[("gatehouse_udp_flows_total", sel)] == 2,
          "two flows open, two opened")
    check(got[("gatehouse_udp_datagrams_total", sel + ',direction="in"')] == 41 and
          got[("gatehouse_udp_datagrams_total", sel + ',direction="out"')] == 41, "datagrams")
    sent = sum(len(b"one %d" % i) for i in range(20)) + sum(len(b"two %d" % i) for i in range(20))
    check(got[("gatehouse_service_bytes_total", sel + ',direction="in"')] == sent + 65000,
          "bytes from clients: %r" % got[("gatehouse_service_bytes_total", sel + ',direction="in"')])
    check(got[("gatehouse_service_bytes_total", sel + ',direction="out"')] == sent + 65000 + 41 * 2,
          "bytes to clients (each reply has NAME: in front)")
    check(got[("gatehouse_server_active", sel + ',server="a"')] == 1 and
          got[("gatehouse_server_active", sel + ',server="b"')] == 1, "in flight = flows")
    check(got[("gatehouse_udp_flows_refused_total", sel)] == 0, "nothing refused")


@test
def udp_source_ip_persistence_keeps_an_address_on_its_server(env):
    a, b = Echo(env, "a"), Echo(env, "b")
    # checked with the STUN Binding probe of the docs: it brings both up
    g, port, m, _ = start(env, [a, b], extra="    persistence source-ip\n", check_line=STUN_CHECK)
    c1 = Client(port)
    s1 = c1.ask(b"hello")
    c2 = Client(port)  # same address, another port: least connections would pick the other
    check(c2.ask(b"hello") == s1, "a second port of 127.0.0.1 went to %s too" % s1)
    c3 = Client(port, src="127.0.0.2")
    s3 = c3.ask(b"hello")
    check(s3 != s1, "another address is balanced (least connections): %s" % s3)
    srv = a if s1 == "a" else b
    check(len(srv.ports()) == 2, "two flows (source ports) reached %s" % s1)
    check(flows(env, m)["flows"] == 3, "three flows")


@test
def udp_dead_server_taken_out_by_its_check(env):
    """A server stopped by PID: its check takes it down, its flows end, and
    their clients' next datagrams open flows on the other server."""
    a, b = Echo(env, "a"), Echo(env, "b")
    g, port, m, _ = start(env, [a, b])
    c1, c2 = Client(port), Client(port)
    s1, s2 = c1.ask(b"x"), c2.ask(b"x")
    check(s1 != s2, "one flow each")
    dead, alive = (a, b) if s1 == "a" else (b, a)
    dead.kill()
    wait_until(lambda: metric(env, m, "gatehouse_server_up", service="av", server=dead.name,
                              state="up") == 0, 10, "check takes %s down" % dead.name)
    before = len(alive.seen())
    check(c1.ask(b"again") == alive.name, "the dead server's client moved to %s" % alive.name)
    check(Client(port).ask(b"new") == alive.name, "a new flow goes to the server that is up")
    check(len(alive.seen()) == before + 2, "both datagrams reached %s" % alive.name)
    wait_until(lambda: any(l[9] == dead.name and l[-1] == "upstream:down"
                           for l in access_lines(env)), 5, "the ended flow's line")
    f = flows(env, m)
    check(f["flows"] == 3 and f["flows_total"] == 4, "c1's old flow ended, three open: %r" % f)
    check(metric(env, m, "gatehouse_server_active", service="av", server=dead.name) == 0,
          "no flow counted on the dead server")


@test
def udp_closed_server_port_ends_its_flows_at_once(env):
    """Without a check noticing (interval 60 s), the ICMP port unreachable
    on a flow's socket ends the flow and holds the server back; the client's
    next datagram goes to the other server."""
    a, b = Echo(env, "a"), Echo(env, "b")
    port, m = free_port_udp(), free_port()
    conf = base_conf(env) + udp_service("av", port, [a, b]).replace(
        "interval 200ms timeout 200ms rise 1 fall 1", "interval 60s timeout 1s fall 3 start up") + mgmt(m)
    g = env.gatehouse(conf)
    c1, c2 = Client(port), Client(port)
    s1, s2 = c1.ask(b"x"), c2.ask(b"x")
    dead, alive = (a, b) if s1 == "a" else (b, a)
    dead.kill()
    c1.s.settimeout(1)
    check(c1.ask(b"y", tries=4) == alive.name, "moved to %s after the ICMP error" % alive.name)
    wait_until(lambda: any(l[9] == dead.name and l[-1] == "upstream:refused"
                           for l in access_lines(env)), 5, "the refused flow's line")
    check(metric(env, m, "gatehouse_server_up", service="av", server=dead.name, state="up") == 1,
          "the check has not run again: the flow ended by the ICMP error alone")


@test
def udp_max_flows_holds_under_a_flood_of_source_ports(env):
    a, b = Echo(env, "a"), Echo(env, "b")
    g, port, m, _ = start(env, [a, b], extra="    max-flows 32\n")
    keep = [Client(port) for _ in range(100)]
    for i, c in enumerate(keep):
        c.s.sendto(b"k%d" % i, c.dst)
    wait_until(lambda: (lambda f: f["flows_total"] + f["flows_refused_total"] == 100)(
        flows(env, m)), 10, "first 100 datagrams handled")
    for c in keep[:32]:
        reply, _ = c.s.recvfrom(100)
        check(reply.split(b":", 1)[1].startswith(b"k"), "the first 32 flows answered")
    for c in keep[32:]:
        c.s.setblocking(False)
        try:
            c.s.recv(100)
            check(False, "a refused datagram got an answer")
        except BlockingIOError:
            pass
    rss0, hwm0 = g.vmrss_kb(), g.vmhwm_kb()
    sent = 100
    for rnd in range(9):  # 900 more source ports, then 9000 more datagrams from them
        batch = [Client(port) for _ in range(100)]
        for k in range(10):
            for c in batch:
                c.s.sendto(b"f" * 1200, c.dst)
        sent += 1000
        wait_until(lambda: (lambda f: f["flows_total"] + f["flows_refused_total"] == sent)(
            flows(env, m)), 10, "round %d handled" % rnd)
        for c in batch:
            c.close()
    f = flows(env, m)
    check(f["flows"] == 32 and f["flows_total"] == 32, "the table held at 32 flows: %r" % f)
    check(f["flows_refused_total"] == sent - 32, "every other datagram refused and counted: %r"
          % f)
    seen = a.seen() + b.seen()
    check(len({p for p, _ in seen}) == 32 and len(seen) == 32,
          "32 flows of one datagram each reached the servers: %d datagrams" % len(seen))
    rss, hwm = g.vmrss_kb(), g.vmhwm_kb()
    check(os.environ.get("GH_SANITIZER") or (rss - rss0 < 8 * 1024 and hwm - hwm0 < 8 * 1024),
          "RSS stayed bounded: %d -> %d KiB (peak %d -> %d KiB)" % (rss0, rss, hwm0, hwm))
    # the flows held still work
    check(keep[0].ask(b"still") in ("a", "b"), "an existing flow still forwards")
    check(any("max-flows 32 reached" in l for l in g.output().splitlines()),
          "the refusals were reported in the error log")


@test
def udp_flow_timeout_frees_idle_flows(env):
    a, b = Echo(env, "a"), Echo(env, "b")
    g, port, m, _ = start(env, [a, b], extra="    flow-timeout 1s\n")
    cs = [Client(port) for _ in range(5)]
    for c in cs:
        c.ask(b"ab")
        c.ask(b"cd")
    check(flows(env, m)["flows"] == 5, "five flows")
    wait_until(lambda: flows(env, m)["flows"] == 0, 5, "idle flows freed")
    check(metric(env, m, "gatehouse_server_active", service="av", server="a") == 0 and
          metric(env, m, "gatehouse_server_active", service="av", server="b") == 0,
          "nothing in flight after they ended")
    wait_until(lambda: len(access_lines(env)) == 5, 5, "one line per flow")
    ports = {"127.0.0.1:%d" % c.port for c in cs}
    for l in access_lines(env):
        # time service client "UDP IN/OUT -" status bytes_in bytes_out server ms first-reply reason
        check(l[2] in ports and l[3:6] == ['"UDP', '2/2', '-"'] and l[6] == "-", "fields: %r" % l)
        check(l[7] == "4" and l[8] == "8" and l[9] in ("a", "b"), "bytes both ways: %r" % l)
        check(int(l[10]) >= 1000 and l[11] != "-" and l[12] == "-", "ended idle: %r" % l)
    # a server that keeps talking keeps its flow, as a client does
    t = Client(port)
    t.s.sendto(b"TRICKLE 5", t.dst)
    for i in range(5):
        reply, _ = t.s.recvfrom(100)
        check(reply.endswith(b"trickle %d" % i), "reply %d of the quiet client: %r" % (i, reply))
    busy = Client(port)
    for i in range(6):
        busy.ask(b"tick %d" % i)
        if i < 5:
            time.sleep(0.4)  # the client's pace is what is tested (2 s > flow-timeout), not a wait
    f = flows(env, m)
    check(f["flows_total"] == 7 and f["flows"] >= 1,
          "the trickled flow and the busy flow lived past 1 s each on one flow: %r" % f)


@test
def udp_reload_keeps_flows_and_the_socket(env):
    a, b = Echo(env, "a"), Echo(env, "b")
    g, port, m, conf = start(env, [a, b])
    c1, c2 = Client(port), Client(port)
    s1, s2 = c1.ask(b"x"), c2.ask(b"x")
    inode = udp_inode(port)
    check(inode is not None, "listener in /proc/net/udp")
    reloads = [0]

    def reload(text):
        env.write("gh.conf", text)
        g.signal(signal.SIGHUP)
        reloads[0] += 1
        wait_until(lambda: g.output().count("configuration reloaded") == reloads[0], 10,
                   "reload %d" % reloads[0])

    reload(conf.replace("    mode udp\n", "    mode udp\n    flow-timeout 5m\n"))
    check(udp_inode(port) == inode, "the same socket after a reload")
    check(c1.ask(b"y") == s1 and c2.ask(b"y") == s2, "flows kept their servers")
    check(flows(env, m)["flows_total"] == 2, "no flow was opened again")
    # drain: its flow stays, new flows go elsewhere
    first = a if s1 == "a" else b
    line = "    server %s 127.0.0.1:%d" % (first.name, first.port)
    reload(conf.replace(line, line + " state drain"))
    check(c1.ask(b"z") == s1, "a drained server keeps its flows")
    check(Client(port).ask(b"z") == s2 and Client(port).ask(b"z") == s2,
          "new flows avoid the drained server")
    # maint: its flow ends and the client moves
    reload(conf.replace(line, line + " state maint"))
    check(c1.ask(b"w") == s2, "maint ends the flow: the client moved to %s" % s2)
    wait_until(lambda: any(l[9] == s1 and l[-1] == "upstream:maint" for l in access_lines(env)),
               5, "the ended flow's line")
    check(udp_inode(port) == inode, "still the same socket")
    f = flows(env, m)
    check(f["flows"] == 4 and f["flows_total"] == 5, "flows across three reloads: %r" % f)
    # SIGTERM ends the open flows, each with its line
    check(g.stop() == 0, "clean exit")
    check(sum(l[-1] == "shutdown" for l in access_lines(env)) == 4, "four flows ended at exit")


def t_err(env, text):
    conf = env.write("udp.conf", text)
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
    return conf, r.returncode, r.stderr + r.stdout


UDP_ROWS = [
    # (name, lines added to service u (after "mode udp"), error text, the line it names)
    ("certificate", "    certificate main", "mode udp does not terminate TLS: no 'certificate'",
     "    certificate main"),
    ("reencrypt", "    reencrypt verify internal", "mode udp forwards bytes as they come",
     "    reencrypt verify internal"),
    ("http check", "    check get /health", "an HTTP check needs 'mode http'",
     "    check get /health"),
    ("tcp check", "    check tcp", "a UDP pool is checked with send ... recv ...", "    check tcp"),
    ("send without recv", "    check send PING", "check send needs: send TEXT recv TEXT",
     "    check send PING"),
    ("bad escape", "    check send PING\\q recv PONG", "check text: unknown escape",
     "    check send PING\\q recv PONG"),
    ("cookie persistence", "    persistence cookie GH", "cookie persistence needs 'mode http'",
     "service u {"),
    ("rule set", "    rule-set r", "a rule set needs 'mode http'", "    rule-set r"),
    ("passthrough", "    tls passthrough", "'tls passthrough' needs 'mode tcp'", "service u {"),
    ("max-flows too small", "    max-flows 8", "max-flows", "    max-flows 8"),
    ("flow-timeout too short", "    flow-timeout 500ms", "flow-timeout", "    flow-timeout 500ms"),
]


@test
def udp_configuration_errors_located(env):
    p, q = free_port(), free_port()
    head = base_conf(env)
    svc = "service u {\n    listen 127.0.0.1:%d\n    mode udp\n    server a 127.0.0.1:%d\n" % (p, q)
    ok = head + svc + "}\n"
    conf, rc, err = t_err(env, ok)
    check(rc == 0, "a minimal udp service passes: %s" % err)
    # a UDP service and a TCP one may share an address: two ports
    conf, rc, err = t_err(env, ok + service("w", p, servers=[("a", q)]))
    check(rc == 0, "udp and https on one address: %s" % err)
    for name, extra, want, at in UDP_ROWS:
        text = head + svc + extra + "\n}\n"
        lines = text.split("\n")
        line = next(i for i, l in enumerate(lines) if l == at) + 1
        col = len(at) - len(at.lstrip()) + 1
        if at.startswith("    check send") and "recv" not in at:
            col = at.index("send") + 1  # the argument that lacks its pair
        if "\\q" in at:
            col = at.index("PING") + 1  # the text with the bad escape
        if at.startswith("    max-flows") or at.startswith("    flow-timeout"):
            col = at.rindex(" ") + 2  # the value out of bounds
        conf, rc, err = t_err(env, text)
        check(rc != 0 and want in err, "%s: refused with %r: %r" % (name, want, err))
        check(err.startswith("%s:%d:%d:" % (conf, line, col)),
              "%s: located at %d:%d: %r" % (name, line, col, err))
    # two udp services on one address: the second's listen, naming the first's
    two = ok + svc.replace("service u", "service v") + "}\n"
    lines = two.split("\n")
    first = next(i for i, l in enumerate(lines) if l.startswith("service u")) + 2
    second = next(i for i, l in enumerate(lines) if l.startswith("service v")) + 2
    conf, rc, err = t_err(env, two)
    check(rc != 0 and "a UDP address carries one service" in err, "two on one: %r" % err)
    check(err.startswith("%s:%d:5:" % (conf, second)) and "(%s:%d:5)" % (conf, first) in err,
          "both places named: %r" % err)
