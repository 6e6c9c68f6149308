"""Hostile clients and careless operators against the issue-14 features
(services sharing a listener, tls passthrough, mode udp, redirects, header
rules, the persistence key). Each test is the regression test of one fix:
it failed before it and checks what the client got and what reached the
real server."""
import socket
import ssl
import struct

from harness import base_conf, check, curl, free_port, service, test, wait_until
from rawpeer import security
from t_i_tls import cert_block, make_cert
from t_x_tcp import Peer


def client_hello(names=(), extra_ext=b""):
    """A ClientHello record as a TLS client writes it (the fields
    tls_hello.c reads, nothing more), naming each of names (bytes) in one
    server_name extension."""
    ext = b""
    if names:
        lst = b"".join(b"\x00" + struct.pack(">H", len(n)) + n for n in names)
        body = struct.pack(">H", len(lst)) + lst
        ext += struct.pack(">HH", 0, len(body)) + body
    ext += struct.pack(">HHHH", 10, 4, 2, 29) + extra_ext  # supported_groups: x25519
    hs = b"\x03\x03" + b"\xab" * 32 + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    hs += struct.pack(">H", len(ext)) + ext
    hs = b"\x01" + struct.pack(">I", len(hs))[1:] + hs
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def passthrough(env, port, hosts, peer, name="pass", extra=""):
    return ("service %s {\n    listen 127.0.0.1:%d\n    mode tcp\n    tls passthrough\n"
            "    allowed-hosts %s\n    server s 127.0.0.1:%d\n%s}\n" % (
                name, port, hosts, peer.port, extra))


def closed_unanswered(port, data):
    """Sends data; True when the connection is closed with nothing read."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    try:
        got = s.recv(100)
    except OSError:
        got = b""
    s.close()
    return got == b""


# A server name longer than the 127 bytes the connection used to keep: cut
# there, "a{115}.example.com.evil.org" read as "a{115}.example.com", which
# *.example.com allows, and the connection was passed through.
LONG_EVIL = b"a" * 115 + b".example.com.evil.org"
# A real name of 194 bytes (labels of 60): cut, it no longer equalled Host.
LONG_OK = ".".join(["a" * 60, "b" * 60, "c" * 60]) + ".example.com"


@test
def z3_long_server_name_is_read_whole(env):
    peer = Peer("P")
    rb = env.backend()
    p, h = free_port(), free_port()
    crt, key = make_cert(env, "long", ["long.example.com", LONG_OK])
    text = base_conf(env) + cert_block("long", crt, key) + passthrough(env, p, "*.example.com", peer)
    text += service("web", h, servers=[("b", rb)], hosts=LONG_OK).replace(
        "certificate main", "certificate long")
    env.gatehouse(text)
    # passthrough: the cut name must not pass for an allowed one
    check(closed_unanswered(p, client_hello([LONG_EVIL])), "a long foreign name passed through")
    wait_until(lambda: any(r["reason"] == "sni-not-allowed" for r in security(env)), 5,
               "sni-not-allowed in the security log")
    check(peer.raw == [], "the real server got a connection: %r" % [len(r) for r in peer.raw])
    # an allowed name within the bound still passes
    s = socket.create_connection(("127.0.0.1", p), timeout=5)
    s.sendall(client_hello([b"x.example.com"]))
    check(s.recv(3) == b"P:\x16", "an allowed name was not passed through")
    s.close()
    # HTTP over TLS: a long real name equals its Host (no false sni-host-mismatch)
    r = curl("--cacert", env.ca, "--resolve", "%s:%d:127.0.0.1" % (LONG_OK, h),
             "-o", "/dev/null", "-w", "%{http_code}", "https://%s:%d/whoami?long" % (LONG_OK, h))
    check(r.stdout == b"200", "a 194-byte server name and Host: %r %r" % (r.stdout, r.stderr))
    with open(env.path("backend-%d.log" % rb)) as f:
        check("whoami?long" in f.read(), "the request reached the real server")


@test
def z3_udp_wildcard_listener_answers_from_the_address_written_to(env):
    """listen 0.0.0.0 (the docs' A/V Edge): replies left from the address the
    route picked (127.0.0.1), not the one the client wrote to, and a client
    on a connected socket (or behind a NAT) never saw them. The listener is
    on every address for the test's length; the traffic stays on 127/8."""
    from t_w_udp import Echo, free_port_udp
    a = Echo(env, "a")
    port = free_port_udp()
    env.gatehouse(base_conf(env) + "service av {\n    listen 0.0.0.0:%d\n    mode udp\n"
                  "    server a 127.0.0.1:%d\n}\n" % (port, a.port))
    for dst in ("127.0.0.2", "127.0.0.3", "127.0.0.1"):
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind(("127.0.0.1", 0))
        c.connect((dst, port))  # hears only (dst, port), as a NAT would
        c.settimeout(2)
        c.send(b"to " + dst.encode())
        try:
            got = c.recv(100)
        except socket.timeout:
            got = None
        check(got == b"a:to " + dst.encode(), "the reply to a datagram sent to %s: %r" % (dst, got))
        c.close()
    check(len(a.seen()) == 3, "each datagram reached the server once: %r" % a.seen())


# (name, listen, mode, server, error expected)
LOOPS = [
    ("udp to its own address", "127.0.0.1:%d", "udp", "127.0.0.1:%d", True),
    ("tcp to its own address", "127.0.0.1:%d", "tcp", "127.0.0.1:%d", True),
    ("http to its own address", "127.0.0.1:%d", "http", "127.0.0.1:%d", True),
    ("wildcard listener, loopback server", "0.0.0.0:%d", "udp", "127.0.0.2:%d", True),
    ("unspecified server, loopback listener", "127.0.0.1:%d", "tcp", "0.0.0.0:%d", True),
    ("ipv6 wildcard, ::1 server", "[::]:%d", "udp", "[0::1]:%d", True),
    ("another loopback address", "127.0.0.1:%d", "udp", "127.0.0.2:%d", False),
    ("ipv4 server, ipv6 wildcard (V6ONLY)", "[::]:%d", "tcp", "127.0.0.1:%d", False),
]


@test
def z3_server_that_is_its_own_listener_refused_at_check(env):
    """A server that is the service's own listener looped: one datagram to a
    mode udp service opened flows until max-flows (and the descriptors of
    the whole process), a mode tcp one connected to itself without end."""
    import subprocess
    from harness import GATEHOUSE
    from rawpeer import Problems
    port = free_port()
    p = Problems("loops at -t")
    for name, listen, mode, server, bad in LOOPS:
        ok = p.row(name)
        conf = env.write("loop.conf", "service s {\n    listen %s\n    mode %s\n"
                         "    server a %s\n}\n" % (listen % port, mode, server % port))
        r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
        out = r.stderr + r.stdout
        if bad:
            ok(r.returncode != 0 and out.startswith(conf + ":4:5: ") and
               "the service's own listener %s" % (listen % port) in out and conf + ":2:5" in out,
               "refused with both places: %r" % out)
        else:
            ok(r.returncode == 0, "accepted: %r" % out)
    # a service may front another one (a chain, as the default topology's
    # public service in front of its applications' services)
    for name, extra in (("a server that is another service's listener",
                         "service f {\n    listen 127.0.0.1:%d\n    mode tcp\n"
                         "    server a 127.0.0.1:%d\n}\n" % (port + 1, port)),):
        ok = p.row(name)
        conf = env.write("loop.conf", "service t {\n    listen 127.0.0.1:%d\n    mode tcp\n"
                         "    server a 127.0.0.2:1\n}\n" % port + extra)
        r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
        ok(r.returncode == 0, "accepted: %r" % (r.stderr + r.stdout))
    p.done()


@test
def z3_one_listen_address_written_two_ways_refused_at_check(env):
    """Listeners are matched by their text: "[::1]:P" and "[0::1]:P" passed
    -t as two listeners (skipping the overlap checks of a shared one), and
    the second bind() failed at start with "Address already in use"."""
    import subprocess
    from harness import GATEHOUSE
    from rawpeer import Problems
    port = free_port()
    rows = [  # (name, mode, first, second)
        ("ipv6 tcp", "tcp", "[::1]:%d", "[0::1]:%d"),
        ("ipv6 udp", "udp", "[::1]:%d", "[0:0::1]:%d"),
        ("port with a leading zero", "tcp", "127.0.0.1:%d", "127.0.0.1:0%d"),
    ]
    p = Problems("listen spellings")
    for name, mode, first, second in rows:
        ok = p.row(name)
        conf = env.write("sp.conf", "service a {\n    listen %s\n    mode %s\n    server a 127.0.0.2:1\n}\n"
                         "service b {\n    listen %s\n    mode %s\n    server a 127.0.0.2:2\n}\n" % (
                             first % port, mode, second % port, mode))
        r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
        out = r.stderr + r.stdout
        ok(r.returncode != 0 and out.startswith(conf + ":7:5: ") and conf + ":2:5" in out and
           "write one address the same way" in out, "refused with both places: %r" % out)
    ok = p.row("a UDP and a TCP service on one address, two spellings: two sockets")
    conf = env.write("sp.conf", "service a {\n    listen [::1]:%d\n    mode tcp\n    server a 127.0.0.2:1\n}\n"
                     "service b {\n    listen [0::1]:%d\n    mode udp\n    server a 127.0.0.2:2\n}\n" % (
                         port, port))
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
    ok(r.returncode == 0, "accepted: %r" % (r.stderr + r.stdout))
    p.done()


def dribble(port, data, piece=6):
    """Sends data a few bytes per segment, as a slow or hostile client does;
    returns the first bytes answered."""
    import time
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(data), piece):
        s.send(data[i:i + piece])
        time.sleep(0.0002)  # one segment each, not coalesced by the sender
    got = s.recv(3)
    s.close()
    return got


@test
def z3_passthrough_hello_in_tiny_records_costs_no_more_than_one(env):
    """A ClientHello split into one-byte records, a record per segment: each
    read walked (and copied) every record that came before, so 16 KB sent
    this way cost gatehouse three to five times the CPU of the same bytes in
    one record. Both shapes are dribbled alike, so the syscalls and wake-ups
    are the same; only the hello's reading differs."""
    import threading
    peer = Peer("P")
    p = free_port()
    g = env.gatehouse(base_conf(env, workers=1) + passthrough(
        env, p, "a.example.com", peer, extra="    client-header-timeout 30s\n"))
    hs = client_hello([b"a.example.com"], extra_ext=struct.pack(">HH", 21, 2600) + b"\0" * 2600)[5:]
    tiny = b"".join(b"\x16\x03\x01\x00\x01" + hs[i:i + 1] for i in range(len(hs)))
    one = client_hello([b"a.example.com"], extra_ext=struct.pack(">HH", 21, len(tiny) - len(hs) + 2600)
                       + b"\0" * (len(tiny) - len(hs) + 2600))
    check(abs(len(one) - len(tiny)) < 16, "the same size both ways: %d %d" % (len(one), len(tiny)))

    def cpu_for(data, n=6):
        got = []
        c0 = g.cpu_seconds()
        ts = [threading.Thread(target=lambda: got.append(dribble(p, data))) for _ in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        check(got == [b"P:\x16"] * n, "every hello passed through: %r" % got)
        return g.cpu_seconds() - c0
    # the least of two rounds each: the machine's other load only adds
    base = min(cpu_for(one), cpu_for(one))
    spent = min(cpu_for(tiny), cpu_for(tiny))
    check(spent <= 2.0 * base + 0.02, "tiny records cost %.2fs of CPU, one record %.2fs" % (
        spent, base))
    check(len(peer.raw) == 24 and all(r.startswith(b"\x16\x03\x01\x00\x01\x01") or
                                      r.startswith(one[:5]) for r in peer.raw),
          "the real server got each hello as sent")


@test
def z3_allowed_address_must_be_covered_by_the_default_certificate(env):
    """A client connecting by address sends no server name and gets the
    listener's default certificate (the first one). -t counted an IP SAN of
    any of the service's certificates, so it passed a configuration whose
    clients by address then failed verification."""
    import os
    import subprocess
    from harness import GATEHOUSE
    rb = env.backend()
    a = make_cert(env, "a", ["a.example.com"])
    key, csr, crt = env.path("ip.key"), env.path("ip.csr"), env.path("ip.pem")
    subprocess.run(["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-keyout", key, "-out", csr, "-subj", "/CN=ip",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", env.ca, "-CAkey",
                    env.path("ca.key"), "-out", crt, "-days", "30", "-copy_extensions", "copy"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    p = free_port()

    def text(order):
        return base_conf(env) + cert_block("a", *a) + cert_block("ip", crt, key) + service(
            "s", p, servers=[("b", rb)], hosts="a.example.com 127.0.0.1").replace(
                "certificate main", "certificate " + order)
    conf = env.write("bad.conf", text("a ip"))
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
    out = r.stderr + r.stdout
    check(r.returncode != 0 and "allowed host '127.0.0.1' is an address" in out and
          "default certificate 'a'" in out, "refused, naming the host and the default: %r" % out)
    # with the address's certificate first, both ways of connecting verify
    env.gatehouse(text("ip a"))
    for url, extra in (("https://127.0.0.1:%d/whoami?ip" % p, []),
                       ("https://a.example.com:%d/whoami?name" % p,
                        ["--resolve", "a.example.com:%d:127.0.0.1" % p])):
        r = curl("--cacert", env.ca, "-o", "/dev/null", "-w", "%{http_code}", *(extra + [url]))
        check(r.stdout == b"200", "%s: %r %r" % (url, r.stdout, r.stderr[:200]))
