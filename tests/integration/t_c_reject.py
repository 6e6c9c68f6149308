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


def get_from(port, ca, source, target, headers=b""):
    """One GET over TLS from a chosen loopback source address; (status, body)."""
    import socket
    import ssl
    from harness import read_response
    ctx = ssl.create_default_context(cafile=ca)
    s = socket.socket()
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    t = ctx.wrap_socket(s, server_hostname="localhost")
    t.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + headers +
              b"Connection: close\r\n\r\n")
    st, h, body, head = read_response(t)
    t.close()
    return st, body


@test
def metrics_scrapes_only_from_allowed_sources_or_with_the_token(env):
    """An application's /metrics (and the management application's
    /api/v1/stats) answers loopback by default; metrics-allow names other
    sources; metrics-token-file's bearer token lets anyone in. Every other
    scrape gets 403, a security-log line metrics-not-allowed and never
    reaches the application (the access line names no server), whatever the
    spelling of the path; the application's other pages are not affected."""
    import os
    token = "s3cret-metrics-token-0123456789"
    env.write("metrics.token", token + "\n")
    os.chmod(env.path("metrics.token"), 0o600)
    dflt, narrow, tok = free_port(), free_port(), free_port()
    env.gatehouse(base_conf(env) +
                  service("mgmt", dflt, app="management", hosts="localhost") +
                  service("narrow", narrow, app="management", hosts="localhost",
                          extra="    metrics-allow 127.0.0.5/32") +
                  service("tok", tok, app="management", hosts="localhost",
                          extra="    metrics-allow none\n    metrics-token-file %s" %
                          env.path("metrics.token")))
    ok = lambda st, body: st == 200 and b"gatehouse_" in body  # noqa: E731
    st, body = get_from(dflt, env.ca, "127.0.0.1", b"/metrics")
    check(ok(st, body), "default, from loopback: %r %r" % (st, body[:100]))
    st, body = get_from(narrow, env.ca, "127.0.0.5", b"/metrics")
    check(ok(st, body), "from the allowed source: %r" % st)
    refused = []
    for target in (b"/metrics", b"/%6detrics", b"//metrics", b"/metrics?x=1", b"/./metrics",
                   b"/api/v1/stats", b"/metrics/", b"/METRICS", b"/metrics;x=1"):
        st, body = get_from(narrow, env.ca, "127.0.0.1", target)
        check(st == 403 and b"gatehouse_" not in body and b"services" not in body,
              "%r from elsewhere: %r %r" % (target, st, body[:80]))
        refused.append(target)
    st, body = get_from(narrow, env.ca, "127.0.0.1", b"/healthcheck.html")
    check(st == 200, "the application's other pages: %r" % st)
    # The token, from an address metrics-allow does not name (none here).
    for scheme in (b"Bearer ", b"bearer "):
        st, body = get_from(tok, env.ca, "127.0.0.1", b"/metrics",
                            b"Authorization: " + scheme + token.encode() + b"\r\n")
        check(ok(st, body), "with the token (%r): %r" % (scheme, st))
    for bad in (b"Bearer " + token.encode()[:-1], b"Bearer " + token.encode() + b"x",
                b"Basic " + token.encode(), b"Bearer "):
        st, body = get_from(tok, env.ca, "127.0.0.1", b"/metrics",
                            b"Authorization: " + bad + b"\r\n")
        check(st == 403, "with %r: %r" % (bad, st))
    st, body = get_from(tok, env.ca, "127.0.0.1", b"/metrics")
    check(st == 403, "no token, no allowed address: %r" % st)

    def logged():
        try:
            with open(env.path("security.log")) as f:
                recs = [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return None
        recs = [r for r in recs if r["reason"] == "metrics-not-allowed"]
        return recs if len(recs) == len(refused) + 5 else None
    wait_until(logged, 5, "a security-log line per refused scrape")
    check({r["service"] for r in logged()} == {"narrow", "tok"}, "services: %r" % logged())

    def access_lines():
        try:
            with open(env.path("access.log")) as f:
                return [line.split() for line in f if "metrics-not-allowed" in line]
        except FileNotFoundError:
            return []
    wait_until(lambda: len(access_lines()) == len(refused) + 5, 5, "access lines")
    for f in access_lines():
        check(f[9] == "-" and f[6] == "403", "a refused scrape reached a server: %r" % f)
    with open(env.path("access.log")) as f:
        served = [line.split() for line in f if " 200 " in line and "/metrics" in line]
    check(served and all(x[9] != "-" for x in served),
          "served scrapes name their server (the field checked above): %r" % served)


@test
def metrics_token_file_and_allow_list_checked_by_t(env):
    import os
    import subprocess
    from harness import GATEHOUSE
    env.write("open.token", "s3cret-metrics-token-0123456789\n")
    os.chmod(env.path("open.token"), 0o644)
    env.write("short.token", "short\n")
    os.chmod(env.path("short.token"), 0o600)
    for extra, words in (("    metrics-token-file %s" % env.path("open.token"), "chmod 600"),
                         ("    metrics-token-file %s" % env.path("short.token"),
                          "at least 16 characters"),
                         ("    metrics-token-file %s" % env.path("missing.token"),
                          "No such file"),
                         ("    metrics-allow 10.0.0.0/33", "metrics-allow: '10.0.0.0/33'")):
        conf = env.write("m.conf", base_conf(env) + service("m", free_port(), app="management",
                                                           hosts="localhost", extra=extra))
        r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, timeout=30)
        err = r.stderr.decode()
        check(r.returncode == 1 and words in err and "m.conf:" in err,
              "%s: %d %s" % (extra.strip(), r.returncode, err))
