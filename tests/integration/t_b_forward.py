"""Forwarding through the real proxy to real TLS backends."""
import hashlib
import os
import re
import time

from harness import (base_conf, check, curl, free_port, raw_exchange, read_response, service,
                     test, tls_client, wait_until)


def setup(env, extra="", backends=1, nginx_files=None):
    ports = [env.backend() for _ in range(backends)]
    servers = [("b%d" % i, p) for i, p in enumerate(ports)]
    ngx = env.nginx(nginx_files) if nginx_files is not None else None
    front = free_port()
    text = base_conf(env) + service("front", front, servers=servers, extra=extra)
    if ngx:
        ngxfront = free_port()
        text += service("static", ngxfront, servers=[("ngx", ngx)])
    else:
        ngxfront = None
    g = env.gatehouse(text)
    return g, front, ngxfront


def url(port, path):
    return "https://localhost:%d%s" % (port, path)


@test
def keepalive_reuses_connection(env):
    g, front, _ = setup(env)
    r = curl("--cacert", env.ca, "-w", "%{http_code} %{num_connects}\n", "-o", "/dev/null",
             url(front, "/conn-id"), "-o", "/dev/null", url(front, "/conn-id"))
    lines = r.stdout.decode().split()
    check(lines == ["200", "1", "200", "0"], "two requests on one client connection: %r" % lines)
    # The real-server connection is reused too: same backend connection id.
    s = tls_client(front, env.ca)
    ids = []
    for _ in range(3):
        s.sendall(b"GET /conn-id HTTP/1.1\r\nHost: localhost\r\n\r\n")
        st, h, body, _ = read_response(s)
        check(st == 200, "status")
        ids.append(body)
    s.close()
    check(len(set(ids)) == 1, "pooled backend connection reused: %r" % ids)


@test
def pipelined_requests_answered_in_order(env):
    g, front, _ = setup(env)
    s = tls_client(front, env.ca)
    s.sendall(b"GET /echo?1 HTTP/1.1\r\nHost: localhost\r\n\r\n"
              b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"
              b"GET /headers?third HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s1, _, b1, _ = read_response(s)
    s2, _, b2, _ = read_response(s)
    rest = getattr(s, "_gh_extra", b"")
    check(s1 == 200 and b1.startswith(b"0 "), "first: empty body hash")
    check(s2 == 200 and b2 == b"5 " + hashlib.sha256(b"hello").hexdigest().encode(),
          "second: body of 5 bytes: %r" % b2)
    data = rest
    while b"third" not in data:
        d = s.recv(65536)
        if not d:
            break
        data += d
    check(b"GET /headers?third HTTP/1.1" in data, "third answered after the others")
    s.close()


@test
def forwarded_headers_and_hop_by_hop(env):
    g, front, _ = setup(env)
    r = curl("--cacert", env.ca, url(front, "/headers"), "-H", "X-Forwarded-For: 6.6.6.6",
             "-H", "Connection: keep-alive, X-Secret", "-H", "X-Secret: s3cr3t",
             "-H", "Keep-Alive: timeout=5", "-H", "X-Keep: yes", "-H", "Proxy-Connection: x")
    body = r.stdout.decode()
    check("X-Forwarded-For: 127.0.0.1" in body, "X-Forwarded-For set to the client")
    check("6.6.6.6" not in body, "a client's X-Forwarded-For is not trusted")
    check("X-Forwarded-Proto: https" in body, "X-Forwarded-Proto")
    check("X-Forwarded-Host: localhost:%d" % front in body, "X-Forwarded-Host")
    check("Via: 1.1 gatehouse" in body, "Via")
    check("X-Keep: yes" in body, "end-to-end header kept")
    for gone in ("X-Secret", "Keep-Alive", "Proxy-Connection", "Connection:"):
        check(gone not in body, "hop-by-hop %s removed" % gone)


@test
def chunked_both_ways(env):
    g, front, _ = setup(env)
    data = os.urandom(300000)
    p = env.path("up.bin")
    with open(p, "wb") as f:
        f.write(data)
    r = curl("--cacert", env.ca, "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + p,
             url(front, "/echo"))
    want = "%d %s" % (len(data), hashlib.sha256(data).hexdigest())
    check(r.stdout.decode() == want, "chunked upload arrives whole: %r" % r.stdout[:80])
    r = curl("--cacert", env.ca, "-D", env.path("h.txt"), url(front, "/big?n=1000000"))
    pattern = (bytes(range(256)) * 256)
    expect = (pattern * 16)[:1000000]
    check(hashlib.sha256(r.stdout).hexdigest() == hashlib.sha256(expect).hexdigest(),
          "chunked download intact (%d bytes)" % len(r.stdout))
    with open(env.path("h.txt")) as f:
        check("transfer-encoding: chunked" in f.read().lower(), "re-chunked to the client")


@test
def close_delimited_response_rechunked(env):
    g, front, _ = setup(env)
    s = tls_client(front, env.ca)
    s.sendall(b"GET /close?n=70000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st, h, body, _ = read_response(s)
    check(st == 200 and h.get("transfer-encoding") == "chunked", "close-delimited -> chunked")
    check(body.endswith(b"0\r\n\r\n"), "terminated")
    s.sendall(b"GET /conn-id HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st, _, _, _ = read_response(s)
    check(st == 200, "client connection still usable after a close-delimited response")
    s.close()


@test
def head_204_304_framing(env):
    g, front, static = setup(env, nginx_files={"f.txt": 5000})
    s = tls_client(static, env.ca)
    s.sendall(b"HEAD /f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st, h, body, _ = read_response(s, head_request=True)
    check(st == 200 and h.get("content-length") == "5000", "HEAD keeps Content-Length")
    s.sendall(b"GET /nocontent HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st, h, body, _ = read_response(s)
    check(st == 204 and body == b"", "204 has no body (and HEAD had none before it)")
    r = curl("--cacert", env.ca, "-D", "-", "-o", "/dev/null", url(static, "/f.txt"))
    etag = re.search(r"(?i)etag: (\S+)", r.stdout.decode()).group(1)
    s.sendall(b"GET /f.txt HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: %s\r\n\r\n"
              % etag.encode())
    st, h, body, _ = read_response(s)
    check(st == 304 and body == b"", "304 without body")
    s.sendall(b"GET /f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st, h, body, _ = read_response(s)
    check(st == 200 and len(body) == 5000, "connection in sync after HEAD/204/304")
    s.close()


@test
def expect_100_continue(env):
    g, front, _ = setup(env)
    p = env.write("small.txt", "x" * 2000)
    r = curl("-v", "--cacert", env.ca, "-H", "Expect: 100-continue", "--data-binary", "@" + p,
             url(front, "/echo"))
    err = r.stderr.decode()
    check("HTTP/1.1 100" in err, "interim 100 reached the client")
    check(r.stdout.decode().startswith("2000 "), "body forwarded after 100")


@test
def websocket_upgrade_tunnel(env):
    g, front, _ = setup(env)
    s = tls_client(front, env.ca)
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n"
              b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(4096)
    check(head.startswith(b"HTTP/1.1 101"), "101 Switching Protocols: %r" % head[:40])
    check(b"Upgrade: websocket" in head, "Upgrade header forwarded")
    for msg in (b"\x81\x05hello", os.urandom(100000)):
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            got += s.recv(65536)
        check(got == msg, "tunnelled bytes echoed unchanged")
    s.close()


@test
def windows_auth_connection_stays_private(env):
    g, front, _ = setup(env)
    a = tls_client(front, env.ca)
    a.sendall(b"GET /ntlm HTTP/1.1\r\nHost: localhost\r\n\r\n")
    st, h, id1, _ = read_response(a)
    check(st == 401 and h.get("www-authenticate") == "NTLM", "NTLM challenge forwarded")
    # Another client must never get the connection that carried the challenge.
    others = []
    for _ in range(4):
        b = tls_client(front, env.ca)
        b.sendall(b"GET /conn-id HTTP/1.1\r\nHost: localhost\r\n\r\n")
        others.append(read_response(b)[2])
        b.close()
    check(id1 not in others, "private connection %r not shared: %r" % (id1, others))
    a.sendall(b"GET /ntlm HTTP/1.1\r\nHost: localhost\r\nAuthorization: NTLM TlRMTVNTUAAB\r\n\r\n")
    st, h, id2, _ = read_response(a)
    check(st == 200 and id2 == id1, "same backend connection for the handshake: %r %r" % (id1, id2))
    a.close()


@test
def kerberos_sized_header_passes(env):
    g, front, _ = setup(env)
    token = "Y" * (48 * 1024 - 200)
    s = tls_client(front, env.ca)
    s.sendall(("GET /headers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Negotiate %s\r\n\r\n"
               % token).encode())
    st, h, body, _ = read_response(s)
    check(st == 200 and token.encode() in body, "48 KiB Negotiate header forwarded whole")
    s.close()


@test
def access_log_line_format(env):
    g, front, _ = setup(env)
    curl("--cacert", env.ca, url(front, "/echo"), "--data-binary", "abc")
    line = {}

    def logged():
        try:
            with open(env.path("access.log")) as f:
                for l in f:
                    if "/echo" in l:
                        line["l"] = l
                        return True
        except FileNotFoundError:
            pass
        return False
    wait_until(logged, 5, "access log line")
    m = re.match(r'^\S+Z front 127\.0\.0\.1:\d+ "POST /echo HTTP/1\.1" 200 (\d+) (\d+) b0 \d+ \d+ -$',
                 line["l"].strip())
    check(m is not None, "access line format: %r" % line["l"])
    check(int(m.group(1)) > 3 and int(m.group(2)) > 0, "byte counts")


@test
def tls_sessions_to_real_servers_resumed(env):
    ngx = env.nginx({"f.txt": 100})
    front = free_port()
    # No pooled connections: every request makes a new TLS connection to nginx.
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("n", ngx)],
                                               extra="    server-keepalive 0"))
    for i in range(5):
        r = curl("--cacert", env.ca, "https://localhost:%d/f.txt?%d" % (front, i))
        check(r.returncode == 0 and len(r.stdout) == 100, "request %d" % i)
    log = env.path("nginx-%d.access" % ngx)
    wait_until(lambda: os.path.exists(log) and open(log).read().count("f.txt") == 5, 5, "nginx log")
    lines = [l.split() for l in open(log) if "f.txt" in l]
    check(lines[0][3] == ".", "first connection is a full handshake: %r" % lines[0])
    check(all(l[3] == "r" for l in lines[1:]), "later connections resumed: %r" % lines)
    check(all(l[4] == "TLSv1.3" for l in lines), "TLS 1.3 to real servers")


@test
def http10_without_host_gets_one_upstream(env):
    g, front, static = setup(env, nginx_files={"f.txt": 10})
    from harness import raw_exchange
    st, h, body, closed = raw_exchange(static, env.ca, b"GET /f.txt HTTP/1.0\r\n\r\n")
    check(st == 200 and len(body) == 10, "nginx accepts the forwarded request: %r" % st)
    st, h, body, closed = raw_exchange(front, env.ca, b"GET /headers HTTP/1.0\r\n\r\n")
    check(b"Host: localhost" in body, "Host supplied from SNI: %r" % body[:200])
