"""Every rejection class of the strict parser, over real TLS, with its
status, a closed connection, a security-log line and nothing forwarded."""
import json
import time

from harness import base_conf, check, free_port, raw_exchange, service, test, wait_until

H = b"Host: localhost\r\n"
CASES = [
    # (name, raw request, status, reason)
    ("cl+te", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "malformed:content-length-and-transfer-encoding"),
    ("two cl", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcd", 400, "malformed:duplicate-content-length"),
    ("bad cl", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 4x\r\n\r\nabcd", 400, "malformed:content-length"),
    ("te gzip", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, "malformed:transfer-encoding"),
    ("te not last chunked", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, identity\r\n\r\n", 400, "malformed:transfer-encoding"),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n", 400, "malformed:obs-fold"),
    ("bare cr", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400, "malformed:bare-cr"),
    ("bare lf", b"GET / HTTP/1.1\n" + H + b"\r\n", 400, "malformed:bare-lf"),
    ("nul", b"GET / HTTP/1.1\r\n" + H + b"X-A: \x00\r\n\r\n", 400, "malformed:control-char"),
    ("space before colon", b"GET / HTTP/1.1\r\n" + H + b"Host : x\r\n\r\n", 400, "malformed:space-before-colon"),
    ("missing host", b"GET / HTTP/1.1\r\n\r\n", 400, "malformed:missing-host"),
    ("duplicate host", b"GET / HTTP/1.1\r\n" + H + H + b"\r\n", 400, "malformed:duplicate-host"),
    ("authority mismatch", b"GET https://evil.example/ HTTP/1.1\r\n" + H + b"\r\n", 400, "malformed:authority-host-mismatch"),
    ("bad chunk size", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, "malformed:chunk"),
    ("chunk overflow", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 400, "malformed:chunk"),
    ("long chunk ext", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n1;" + b"e" * 2000 + b"\r\nx\r\n0\r\n\r\n", 400, "malformed:chunk-extension-too-long"),
    ("http/2 version", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505, "malformed:version-unsupported"),
    ("connect", b"CONNECT a:443 HTTP/1.1\r\n" + H + b"\r\n", 405, "method"),
    ("uri too long", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414, "limit:request-line"),
    ("header block too large", b"GET / HTTP/1.1\r\n" + H + (b"X-Pad: " + b"p" * 1000 + b"\r\n") * 70 + b"\r\n", 431, "limit:header-size"),
    ("too many headers", b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431, "limit:header-count"),
]


@test
def rejections_status_close_and_log(env):
    backend = env.backend()
    front = free_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("b", backend)]))
    bodies = {}
    for i, (name, raw, status, reason) in enumerate(CASES):
        raw = raw.replace(b"/echo ", b"/echo-case%d " % i, 1).replace(b"GET / ", b"GET /case%d " % i, 1)
        st, h, body, closed = raw_exchange(front, env.ca, raw)
        check(st == status, "%s: status %r, want %d" % (name, st, status))
        check(closed, "%s: connection closed after the refusal" % name)
        check(h.get("connection") == "close", "%s: Connection: close" % name)
        check(b"gatehouse" not in body and b"127.0.0.1" not in body, "%s: page reveals nothing" % name)
        bodies.setdefault(status, set()).add(body)
    for status, b in bodies.items():
        check(len(b) == 1, "one identical page per status (%d)" % status)
    want = [c[3] for c in CASES]

    def all_logged():
        try:
            with open(env.path("security.log")) as f:
                got = [json.loads(l)["reason"] for l in f if l.strip()]
        except FileNotFoundError:
            return False
        return got == want
    wait_until(all_logged, 5, "one security-log line per refusal, in order")
    with open(env.path("security.log")) as f:
        rec = json.loads(f.readline())
    for k in ("time", "service", "client", "sni", "method", "path", "status", "reason"):
        check(k in rec, "security record has " + k)
    check(rec["sni"] == "localhost" and rec["service"] == "front", "sni and service recorded")
    # Head-level refusals never reach the backend. The chunk-level ones are
    # found while the body streams, after the (valid) head went out: the
    # backend may see that head and a cut connection, never the bad bytes.
    seen = open(env.path("backend-%d.log" % backend)).read()
    for i, (name, raw, status, reason) in enumerate(CASES):
        if not reason.startswith("malformed:chunk"):
            check("case%d " % i not in seen, "%s reached the backend" % name)

@test
def slow_header_client_times_out(env):
    backend = env.backend()
    front = free_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("b", backend)],
                                               extra="    client-header-timeout 1s"))
    from harness import tls_client, read_response
    s = tls_client(front, env.ca)
    s.sendall(b"GET / HTTP/1.1\r\nHost: loc")
    t0 = time.time()
    st, h, body, _ = read_response(s)
    check(st == 408, "slowloris head gets 408, got %r" % st)
    check(0.8 < time.time() - t0 < 5, "after about client-header-timeout")
    s.close()
