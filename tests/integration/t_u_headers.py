"""Header rules per service (issue 14, Kemp's "Add HTTP Headers"):
request-header and response-header add/set/remove, rewrite-host for
Location, Content-Location and Set-Cookie Domain, version headers stripped
by default. Requests are checked byte for byte at the recording backend
(rawbackend.py) and again at nginx; responses come from canned raw answers;
refused rules are checked through `gatehouse -t` with their file:line:col."""
import signal
import subprocess

from harness import GATEHOUSE, base_conf, check, free_port, service, test, wait_until
from rawpeer import Client, Problems, RawBackend, short

REQ_RULES = """    request-header add X-Site edge1
    request-header set X-Lync-Client "gatehouse edge"
    request-header remove X-Secret
    request-header add X-Empty ""
"""


def get(port, ca, target, fields=(), body=None, tls=True):
    """One request on a fresh connection; returns the final response."""
    c = Client(port, ca, tls=tls)
    lines = ["GET %s HTTP/1.1" % target if body is None else "POST %s HTTP/1.1" % target,
             "Host: localhost"] + ["%s: %s" % kv for kv in fields]
    raw = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + (body or b"")
    c.send(raw)
    r = c.final()
    c.close()
    return r


def one_request(rb, mark, marker):
    reqs = [r for r in rb.requests_since(mark) if marker.encode() in r["line"]]
    check(len(reqs) == 1, "server got %d requests carrying %s: %s" % (
        len(reqs), marker, short(rb.since(mark), 600)))
    return reqs[0]


@test
def headers_u_request_rules_byte_for_byte_at_rawbackend(env):
    rb = RawBackend(env)
    port = free_port()
    text = base_conf(env, workers=1) + service("front", port, servers=[("raw", rb.port)],
                                                extra=REQ_RULES.rstrip("\n"))
    g = env.gatehouse(text)
    # The client's own X-Secret copies (any case) and its X-Lync-Client go;
    # X-Keep stays where it was; the rules' lines follow the client's, before
    # gatehouse's forwarding headers. A Connection option naming X-Site
    # removes only the client's copy, never the rule's.
    m = rb.mark()
    r = get(port, env.ca, "/headers?u=1", [("X-Secret", "1"), ("X-Keep", "k"),
                                           ("x-secret", "2"), ("X-Lync-Client", "forged"),
                                           ("Connection", "X-Site"), ("X-Site", "client")])
    check(r.status == 200, "client got %r" % r)
    got = one_request(rb, m, "?u=1")["head"]
    want = (b"GET /headers?u=1 HTTP/1.1\r\nHost: localhost\r\nX-Keep: k\r\n"
            b"X-Site: edge1\r\nX-Lync-Client: gatehouse edge\r\nX-Empty: \r\n"
            b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
            b"X-Forwarded-Host: localhost\r\nX-Real-IP: 127.0.0.1\r\n"
            b"Forwarded: for=127.0.0.1;proto=https;host=localhost\r\nVia: 1.1 gatehouse\r\n\r\n")
    check(got == want, "server got\n%s\nwant\n%s" % (got.decode("latin-1"), want.decode("latin-1")))
    check(r.body == want, "client saw the head the server got: %s" % short(r.body, 400))

    # A chunked body: the rules' lines, then the one framing header; the
    # body arrives whole.
    m = rb.mark()
    c = Client(port, env.ca)
    c.send(b"POST /echo?u=2 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
           b"X-Secret: 3\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    r = c.final()
    c.close()
    check(r.status == 200 and r.body == b"hello", "echo: %r %s" % (r, short(r.body)))
    req = one_request(rb, m, "?u=2")
    head = req["head"]
    check(head.startswith(b"POST /echo?u=2 HTTP/1.1\r\nHost: localhost\r\nX-Site: edge1\r\n"
                          b"X-Lync-Client: gatehouse edge\r\nX-Empty: \r\nX-Forwarded-For: "),
          "chunked request head: %s" % short(head, 400))
    check(head.endswith(b"Via: 1.1 gatehouse\r\nTransfer-Encoding: chunked\r\n\r\n"),
          "framing header last: %s" % short(head[-120:]))
    check(b"X-Secret" not in head and req["body"] == b"hello", "body %r" % req["body"])

    # Rules are compiled per generation: a reload brings the new ones.
    env.write("gh.conf", text.replace("add X-Site edge1", "add X-Site edge2"))
    g.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in g.output(), 5, "reload")
    m = rb.mark()
    r = get(port, env.ca, "/headers?u=3")
    got = one_request(rb, m, "?u=3")["head"]
    check(b"\r\nX-Site: edge2\r\n" in got and b"edge1" not in got,
          "after the reload: %s" % short(got, 300))


@test
def headers_u_request_rules_at_nginx(env):
    names = ["x-site", "x-lync-client", "x-secret", "x-empty", "x-keep", "host"]
    listing = "\\n".join("%s=[$http_%s]" % (n, n.replace("-", "_")) for n in names) + "\\n"
    ng = env.nginx(extra='default_type text/plain;\n        location /headers { return 200 "%s"; }'
                   % listing)
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service("front", port, servers=[("ng", ng)],
                                                      extra=REQ_RULES.rstrip("\n")))
    r = get(port, env.ca, "/headers?n=1", [("X-Secret", "1"), ("X-Keep", "k"),
                                           ("X-Lync-Client", "forged")])
    check(r.status == 200, "client got %r %s" % (r, short(r.body)))
    want = (b"x-site=[edge1]\nx-lync-client=[gatehouse edge]\nx-secret=[]\nx-empty=[]\n"
            b"x-keep=[k]\nhost=[localhost]\n")
    check(r.body == want, "nginx saw\n%s" % r.body.decode("latin-1"))
    acc = env.path("nginx-%d.access" % ng)
    wait_until(lambda: "/headers?n=1" in open(acc).read(), 5, "nginx access line")
    check(open(acc).read().count("/headers?n=1") == 1, "nginx got the request once")


VERSIONS = (b"Server: Microsoft-IIS/10.0\r\nX-Powered-By: ASP.NET\r\n"
            b"X-AspNet-Version: 4.0.30319\r\nX-AspNetMvc-Version: 5.2\r\n")
CANNED = (b"HTTP/1.1 200 OK\r\n" + VERSIONS +
          b"X-Frame-Options: SAMEORIGIN\r\nX-Internal: secret\r\nX-Kept: 1\r\n"
          b"Content-Length: 2\r\n\r\nok")
VERSION_NAMES = ["server", "x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"]


@test
def headers_u_response_rules_and_version_headers(env):
    rb = RawBackend(env)
    rb.script("ver", CANNED)
    ports = {k: free_port() for k in ("default", "rules", "off", "off-strip", "pass")}
    text = base_conf(env, workers=1)
    text += service("default", ports["default"], servers=[("raw", rb.port)])
    text += service("rules", ports["rules"], servers=[("raw", rb.port)],
                    extra="    response-header set X-Frame-Options DENY\n"
                          "    response-header remove X-Internal\n"
                          "    response-header add X-Edge gatehouse\n"
                          "    response-header add X-Powered-By gatehouse")
    text += service("off", ports["off"], servers=[("raw", rb.port)],
                    extra="    strip-version-headers off")
    text += service("off-strip", ports["off-strip"], servers=[("raw", rb.port)],
                    extra="    strip-version-headers off\n    server-header strip")
    text += service("pass", ports["pass"], servers=[("raw", rb.port)],
                    extra="    server-header pass")
    env.gatehouse(text)
    # (service, version headers the client must see, other checks)
    rows = [
        ("default", [], {"x-frame-options": ["SAMEORIGIN"], "x-internal": ["secret"]}),
        ("rules", ["x-powered-by"], {"x-frame-options": ["DENY"], "x-internal": [],
                                     "x-edge": ["gatehouse"], "x-powered-by": ["gatehouse"]}),
        ("off", VERSION_NAMES, {"server": ["Microsoft-IIS/10.0"], "x-powered-by": ["ASP.NET"],
                                "x-aspnet-version": ["4.0.30319"],
                                "x-aspnetmvc-version": ["5.2"]}),
        ("off-strip", VERSION_NAMES[1:], {"x-powered-by": ["ASP.NET"]}),
        ("pass", ["server"], {"server": ["Microsoft-IIS/10.0"]}),
    ]
    p = Problems("response-rules")
    for svc, seen, fields in rows:
        ok = p.row(svc)
        m = rb.mark()
        r = get(ports[svc], env.ca, "/resp/ver?s=" + svc)
        ok(r.status == 200 and r.body == b"ok", "client got %r %s" % (r, short(r.body)))
        for n in VERSION_NAMES:
            ok((n in seen) == bool(r.all(n)), "%s: client saw %s %r" % (svc, n, r.all(n)))
        for n, v in fields.items():
            ok(r.all(n) == v, "%s: %s is %r, want %r" % (svc, n, r.all(n), v))
        ok(r.all("x-kept") == ["1"], "X-Kept %r" % r.all("x-kept"))
        ok(len(r.all("content-length")) == 1, "framing %r" % r.fields)
        names = [k for k, _ in r.fields]
        if svc == "rules":  # the rules' lines come before gatehouse's framing header
            ok("x-edge" in names and "content-length" in names and
               names.index("x-edge") < names.index("content-length"), "order %r" % names)
        reqs = [q for q in rb.requests_since(m) if b"?s=%s " % svc.encode() in q["line"]]
        ok(len(reqs) == 1, "server got %d requests" % len(reqs))
    p.done()


REWRITE = """    rewrite-host fe1.contoso.local meet.example.com
    rewrite-host [fd00::5] meet.example.com"""
# (name, canned response head lines, {field: values the client must see})
REWRITE_ROWS = [
    ("location absolute, internal port", b"Location: http://fe1.contoso.local:4443/meet/abc?x=1\r\n",
     {"location": ["https://meet.example.com%(port)s/meet/abc?x=1"]}),
    ("location any case", b"Location: HTTP://FE1.Contoso.LOCAL/x\r\n",
     {"location": ["https://meet.example.com%(port)s/x"]}),
    ("location IPv6 internal", b"Location: http://[fd00::5]:8080/x\r\n",
     {"location": ["https://meet.example.com%(port)s/x"]}),
    ("location other host kept", b"Location: http://fe2.contoso.local/x\r\n",
     {"location": ["http://fe2.contoso.local/x"]}),
    ("location relative kept", b"Location: /meet/abc\r\n", {"location": ["/meet/abc"]}),
    ("content-location", b"Content-Location: http://fe1.contoso.local/a.html\r\n",
     {"content-location": ["https://meet.example.com%(port)s/a.html"]}),
    ("set-cookie domain", b"Set-Cookie: s=1; Domain=.fe1.contoso.local; Path=/; Secure; HttpOnly\r\n"
     b"Set-Cookie: t=2; domain=FE1.contoso.local\r\n",
     {"set-cookie": ["s=1; Domain=.meet.example.com; Path=/; Secure; HttpOnly",
                     "t=2; domain=meet.example.com"]}),
    ("set-cookie other domain kept", b"Set-Cookie: s=1; Domain=contoso.local; Path=/fe1.contoso.local\r\n",
     {"set-cookie": ["s=1; Domain=contoso.local; Path=/fe1.contoso.local"]}),
]


@test
def headers_u_rewrite_location_and_cookie_domain(env):
    rb = RawBackend(env)
    for i, (_, lines, _) in enumerate(REWRITE_ROWS):
        rb.script("w%d" % i, b"HTTP/1.1 302 Found\r\n" + lines + b"Content-Length: 0\r\n\r\n")
    a, b = free_port(), free_port()
    text = base_conf(env, workers=1)
    # a: the listener's own port is the published one (kept: it is not 443)
    text += service("a", a, servers=[("raw", rb.port)], extra=REWRITE)
    # b: published on 443 through NAT: no port in the rewritten URLs
    text += service("b", b, servers=[("raw", rb.port)],
                    extra=REWRITE.replace("meet.example.com", "meet.example.com:443"))
    env.gatehouse(text)
    p = Problems("rewrite")
    for svc, port, shown in (("a", a, ":%d" % a), ("b", b, "")):
        for i, (name, lines, want) in enumerate(REWRITE_ROWS):
            ok = p.row("%s: %s" % (svc, name))
            m = rb.mark()
            r = get(port, env.ca, "/resp/w%d?r=%s%d" % (i, svc, i))
            ok(r.status == 302, "client got %r" % r)
            for n, v in want.items():
                v = [x % {"port": shown} for x in v]
                ok(r.all(n) == v, "%s is %r, want %r" % (n, r.all(n), v))
            reqs = [q for q in rb.requests_since(m) if b"?r=%s%d " % (svc.encode(), i) in q["line"]]
            ok(len(reqs) == 1, "server got %d requests" % len(reqs))
    p.done()


@test
def headers_u_rewrite_keeps_persistence_cookie(env):
    """gatehouse's own persistence cookie comes after the rules and is not
    rewritten; the server's cookie is."""
    rb = RawBackend(env)
    rb.script("c", b"HTTP/1.1 200 OK\r\nSet-Cookie: app=1; Domain=fe1.contoso.local\r\n"
                   b"Content-Length: 2\r\n\r\nok")
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "front", port, servers=[("raw", rb.port)],
        extra=REWRITE + "\n    response-header add X-Edge 1\n    persistence cookie MS-WSMAN"))
    r = get(port, env.ca, "/resp/c")
    cookies = r.all("set-cookie")
    check(r.status == 200 and r.body == b"ok", "client got %r" % r)
    check(cookies[0] == "app=1; Domain=meet.example.com", "server cookie %r" % cookies)
    check(len(cookies) == 2 and cookies[1].startswith("MS-WSMAN=") and "Domain" not in cookies[1],
          "persistence cookie %r" % cookies)
    names = [k for k, _ in r.fields]
    check("x-edge" in names and "content-length" in names and
          names.index("x-edge") < names.index("content-length") <
          max(i for i, n in enumerate(names) if n == "set-cookie"),
          "order: rules, framing, then gatehouse's cookie: %r" % names)


# Each row: a rule written inside a service block (its line is found in the text), the
# column and message gatehouse -t must print.
T_ROWS = [
    ('    request-header add X-A "a\rb"', 30, "control character in string"),
    ('    request-header add X-A "a\x7fb"', 28, "'request-header': byte 0x7f in the value"),
    ('    request-header add X-A "a\x01b"', 30, "control character in string"),
    ('    request-header add X-A " a"', 28, "'request-header': the value may not begin or end"),
    ("    request-header set X-Forwarded-For 1.2.3.4", 24,
     "'request-header': X-Forwarded-For is not for rules: gatehouse sets the forwarding headers"),
    ("    request-header set Host evil", 24, "'request-header': Host is not for rules"),
    ("    request-header remove Via", 27, "'request-header': Via is not for rules"),
    ("    request-header add X_Real_IP 1", 24, "'request-header': X_Real_IP is not for rules"),
    ("    request-header add Sec-WebSocket-Key x", 24,
     "'request-header': Sec-WebSocket-Key is not for rules"),
    ("    response-header set Content-Length 0", 25,
     "'response-header': Content-Length is not for rules: gatehouse writes the one framing header"),
    ("    response-header add Transfer-Encoding chunked", 25,
     "'response-header': Transfer-Encoding is not for rules"),
    ("    response-header set Connection close", 25, "'response-header': Connection is not for rules"),
    ("    response-header set Strict-Transport-Security max-age=1", 25,
     "'response-header': Strict-Transport-Security is not for rules: hsts-max-age sets it"),
    ('    response-header add "X A" b', 25, "'response-header': 'X A' is not a header name"),
    ("    rewrite-host http://fe1 meet.example.com", 18, "'rewrite-host': 'http://fe1' is not"),
    ("    rewrite-host fe1 meet.example.com:0", 22, "'rewrite-host': 'meet.example.com:0' is not"),
    ("    strip-version-headers yes", 27, "'strip-version-headers' must be one of: on off"),
    ('    persistence cookie MS-WSMAN\n    response-header add Set-Cookie "MS-WSMAN=1"', 5,
     "'response-header': Set-Cookie MS-WSMAN is not for rules"),
]


@test
def headers_u_refused_at_check_with_location(env):
    p = Problems("-t rows")
    for k, (rule, col, msg) in enumerate(T_ROWS):
        ok = p.row(repr(rule))
        text = base_conf(env) + service("s", 1, servers=[("a", 2)], extra=rule)
        line = text.split("\n").index(rule.split("\n")[-1]) + 1
        path = env.write("bad%d.conf" % k, text)
        r = subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True)
        err = r.stderr.decode("latin-1")
        want = "%s:%d:%d: %s" % (path, line, col, msg)
        ok(r.returncode == 1, "exit %d" % r.returncode)
        ok(err.startswith(want), "got %r, want %r" % (err[:240], want))
    p.done()
    # A good file with rules passes -t, and -p prints them back to a fixed point.
    text = base_conf(env) + service("s", 1, servers=[("a", 2)], extra=REQ_RULES.rstrip("\n") +
                                    "\n" + REWRITE + "\n    strip-version-headers off")
    path = env.write("good.conf", text)
    r = subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True)
    check(r.returncode == 0, "-t: %r" % r.stderr)
    r = subprocess.run([GATEHOUSE, "-p", "-c", path], capture_output=True, text=True)
    for want in ('request-header set X-Lync-Client "gatehouse edge"', 'request-header add X-Empty ""',
                 "rewrite-host [fd00::5] meet.example.com", "strip-version-headers off",
                 "server-header pass"):
        check(want in r.stdout, "-p lacks %r:\n%s" % (want, r.stdout))
    again = env.write("again.conf", r.stdout)
    r2 = subprocess.run([GATEHOUSE, "-p", "-c", again], capture_output=True, text=True)
    check(r2.stdout == r.stdout, "canonical form is a fixed point")
