"""The application firewall through the real binary: allowed hosts (and
SNI), allowed directories on the normalised path, rule sets, methods,
per-source limits, and a security-log line for each refusal."""
import json
import os
import socket
import ssl
import time

from harness import (base_conf, check, curl, free_port, read_response, service, test,
                     wait_until)


def conn(port, sni=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(s, server_hostname=sni)


def ask(port, path="/conn-id", host="localhost", sni=None, method="GET", extra=""):
    s = conn(port, sni)
    s.sendall(("%s %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n"
               % (method, path, host, extra)).encode())
    st, h, body, _ = read_response(s)
    s.close()
    return st, h, body


def security(env):
    try:
        with open(env.path("security.log")) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def wait_reason(env, reason, n=1):
    wait_until(lambda: sum(1 for r in security(env) if r["reason"] == reason) >= n, 5,
               "security log reason %s" % reason)
    return [r for r in security(env) if r["reason"] == reason][-1]


@test
def allowed_hosts_and_sni(env):
    b = env.backend()
    p = free_port()
    g = env.gatehouse(base_conf(env) + service(
        "front", p, servers=[("b", b)],
        hosts="localhost meet.example.com *.lync.example.com",
        # the test certificate names localhost only: a warning, not a refusal
        extra="    certificate-coverage warn"))
    for host in ("meet.example.com", "MEET.Example.COM.:443", "a.lync.example.com", "localhost"):
        st, _, _ = ask(p, host=host)
        check(st == 200, "allowed host %s: %r" % (host, st))
    for host in ("evil.example.com", "a.b.lync.example.com", "lync.example.com",
                 "meet.example.com.evil.net"):
        st, _, body = ask(p, host=host)
        check(st == 403, "refused host %s: %r" % (host, st))
    rec = wait_reason(env, "host-not-allowed", 4)
    check(rec["host"] == "meet.example.com.evil.net" and rec["status"] == 403, "logged: %r" % rec)
    # SNI must be allowed, and must be the Host (no domain fronting)
    st, _, _ = ask(p, host="localhost", sni="localhost")
    check(st == 200, "SNI = Host")
    st, _, _ = ask(p, host="meet.example.com", sni="localhost")
    check(st == 421, "Host differs from SNI: %r" % st)
    wait_reason(env, "sni-host-mismatch")
    st, _, _ = ask(p, host="localhost", sni="evil.example.net")
    check(st == 421, "SNI not allowed: %r" % st)
    rec = wait_reason(env, "sni-not-allowed")
    check(rec["sni"] == "evil.example.net", "SNI in the log")


@test
def sni_host_match_off_and_empty_list(env):
    b = env.backend()
    p, q = free_port(), free_port()
    g = env.gatehouse(base_conf(env) +
                      service("loose", p, servers=[("b", b)], hosts="localhost meet.example.com",
                              extra="    sni-host-match off\n    certificate-coverage warn") +
                      service("closed", q, servers=[("b", b)], hosts=None))
    st, _, _ = ask(p, host="meet.example.com", sni="localhost")
    check(st == 200, "mismatch allowed when configured: %r" % st)
    st, _, _ = ask(q, host="localhost")
    check(st == 403, "an empty allowed-hosts refuses everything: %r" % st)
    check("service 'closed' has no allowed-hosts" in g.output(), "warned at start")


@test
def allowed_dirs_on_normalised_path(env):
    b = env.backend()
    p = free_port()
    g = env.gatehouse(base_conf(env) + service(
        "front", p, servers=[("b", b)], dirs="/abs/* /meet/* /headers"))
    cases = [
        ("/abs/x.png", 404, None),                      # passed: the backend says 404
        ("/meet/user/1", 404, None),
        ("/other", 403, "dir-not-allowed"),
        ("/abs", 403, "dir-not-allowed"),
        ("/abs/../other", 403, "dir-not-allowed"),
        ("/abs/%2e%2e/headers", 200, None),             # resolves to /headers, allowed
        ("/abs/%2e%2e/%2e%2e/etc/passwd", 400, "malformed:path-traversal"),
        ("/abs/..;/..;/etc", 400, "malformed:path-traversal"),
        ("/abs/%252e%252e/x", 400, "malformed:path-double-encoding"),
        ("/abs/%2f..%2fetc", 400, "malformed:path-encoded-slash"),
        ("/abs/..%5c..%5cetc", 400, "malformed:path-backslash"),
        ("/abs/%C0%AE%C0%AE/x", 400, "malformed:path-utf8"),
        ("/abs/a%00.png", 400, "malformed:path-nul"),
        ("/abs/%zz", 400, "malformed:path-bad-escape"),
    ]
    for path, want, reason in cases:
        st, _, _ = ask(p, path=path)
        check(st == want, "%s: %r, want %d" % (path, st, want))
        if reason:
            rec = wait_reason(env, reason)
            check(rec["path"] in (path, path.split("?")[0]) or rec["reason"] == "dir-not-allowed",
                  "path logged: %r" % rec)
    # what was checked is what is forwarded
    st, _, body = ask(p, path="/abs/a/../b//c/./d?q=%2e%2e&x=/..")
    seen = open(env.path("backend-%d.log" % b)).read()
    check("REQ GET /abs/b/c/d?q=%2e%2e&x=/.. HTTP/1.1" in seen,
          "normalised path forwarded, raw query kept: %s" % seen[-300:])


@test
def rule_sets_methods_and_server_header(env):
    ngx = env.nginx({"index.html": 10, "admin.html": 10})
    p = free_port()
    rules = """rules edge {
    rule scanner log if header User-Agent regex "(?i)sqlmap"
    rule inside allow if source 10.0.0.0/8
    rule no-admin deny 403 if path prefix /admin
    rule sqli deny 400 if query regex "(?i)union(\\\\s|%20|\\\\+)+select"
    rule moved redirect 301 https://localhost/new if path exact /old
}
"""
    g = env.gatehouse(base_conf(env) + rules + service(
        "front", p, servers=[("n", ngx)],
        extra="    rule-set edge\n    allowed-methods GET HEAD"))
    st, h, _ = ask(p, path="/index.html")
    check(st == 200 and "server" not in h, "allowed, and the real server's Server header is gone")
    st, _, _ = ask(p, path="/admin.html")
    check(st == 403, "deny rule: %r" % st)
    rec = wait_reason(env, "rule:no-admin")
    check(rec["action"] == "refuse" and rec["status"] == 403, "rule id in the log: %r" % rec)
    st, _, _ = ask(p, path="/index.html?id=1%20UNION%20SELECT%20pw")
    check(st == 400, "regex on the raw query: %r" % st)
    wait_reason(env, "rule:sqli")
    st, h, _ = ask(p, path="/old")
    check(st == 301 and h.get("location") == "https://localhost/new", "redirect: %r %r" % (st, h))
    st, _, _ = ask(p, path="/index.html", extra="User-Agent: sqlmap/1.7\r\n")
    check(st == 200, "log-only rule lets it through")
    rec = wait_reason(env, "rule:scanner")
    check(rec["action"] == "log", "flagged: %r" % rec)
    for m in ("TRACE", "DELETE"):
        st, _, _ = ask(p, path="/index.html", method=m)
        check(st == 405, "%s refused: %r" % (m, st))
    wait_reason(env, "method", 2)


@test
def regex_that_does_not_compile_is_located(env):
    import subprocess
    from harness import GATEHOUSE
    text = base_conf(env) + 'rules r {\n    rule x deny if path regex "a(b"\n}\n' + service(
        "s", free_port(), app="status", extra="    rule-set r")
    path = env.write("bad.conf", text)
    r = subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True)
    line = text.split("\n").index('    rule x deny if path regex "a(b"') + 1
    check(r.returncode == 1 and ("bad.conf:%d:" % line) in r.stderr and "regex" in r.stderr,
          "located regex error: %r" % r.stderr)


@test
def per_source_limits_trip_and_recover(env):
    b = env.backend()
    p, q = free_port(), free_port()
    g = env.gatehouse(base_conf(env) +
                      service("rate", p, servers=[("b", b)],
                              extra="    request-rate-per-source 5\n"
                                    "    request-burst-per-source 5") +
                      service("conns", q, servers=[("b", b)],
                              extra="    max-conns-per-source 3"))
    s = conn(p)
    codes = []
    for _ in range(8):
        s.sendall(b"GET /conn-id HTTP/1.1\r\nHost: localhost\r\n\r\n")
        st, _, _, _ = read_response(s)
        codes.append(st)
        if st != 200:
            break
    s.close()
    check(codes[:5] == [200] * 5 and codes[5] == 429, "burst of 5 then 429: %r" % codes)
    wait_reason(env, "rate-limit")
    time.sleep(1.1)  # the bucket refills with time: this is the behaviour under test
    st, _, _ = ask(p)
    check(st == 200, "recovers after a second: %r" % st)
    held = [conn(q) for _ in range(3)]
    extra = socket.create_connection(("127.0.0.1", q), timeout=5)
    extra.settimeout(5)
    check(extra.recv(1) == b"", "fourth concurrent connection closed at once")
    extra.close()
    rec = wait_reason(env, "conn-limit")
    check(rec["client"] == "127.0.0.1" and rec["service"] == "conns", "logged: %r" % rec)
    held.pop().close()

    def can_connect():
        try:
            st, _, _ = ask(q)
            return st == 200
        except OSError:
            return False
    wait_until(can_connect, 5, "a slot frees when a connection closes")
    for s in held:
        s.close()
