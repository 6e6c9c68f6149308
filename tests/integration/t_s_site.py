"""Publishing a whole site from one appliance (issue 14): the parts that keep
a request and the checks that refuse a site that would fail in production.

- `redirect https` on a plain (port-80 style) service keeps host, path and
  query, for curl and for a raw client sending hostile heads; what the
  parser or normaliser refuses gets its refusal, never a redirect.
- rule redirects with $host, $path and $query.
- `allowed-dirs-case insensitive`: IIS paths in any case pass, and the real
  server sees the path unchanged.
- `gatehouse -t` (and a reload) refuse allowed hosts no certificate covers,
  two real servers with one address, and names no block defines, each at
  its exact file:line:col.
Every row checks what the client got and what reached the real server."""
import os
import signal
import subprocess
import sys

from harness import GATEHOUSE, base_conf, check, curl, free_port, service, test, wait_until
from rawpeer import Problems, RawBackend, exchange, security


def plain_service(name, port, extra, hosts="localhost", dirs="/*"):
    """A plain service block that answers with a redirect (no target)."""
    return ("service %s {\n    listen 127.0.0.1:%d\n    allowed-hosts %s\n"
            "    allowed-dirs %s\n%s\n}\n" % (name, port, hosts, dirs, extra))


def access_lines(env, service_name):
    try:
        with open(env.path("access.log")) as f:
            return [l for l in f if l.split(" ")[1:2] == [service_name]]
    except FileNotFoundError:
        return []


def got_requests(rb, mark):
    rb.settle()
    return [r["line"] for r in rb.requests_since(mark)]


# ------------------------------------------------------------ redirect https

@test
def redirect_https_keeps_host_path_and_query(env):
    rb = RawBackend(env)
    tport, p80, p8080 = free_port(), free_port(), free_port()
    g = env.gatehouse(
        base_conf(env) +
        service("site", tport, servers=[("raw", rb.port)], hosts="localhost") +
        plain_service("site-80", p80, "    redirect https port %d" % tport) +
        plain_service("site-8080", p8080, "    redirect https code 307"))
    want = "https://localhost:%d/user/ID?x=1" % tport

    # As an operator checks it: curl -sI.
    r = curl("-sI", "http://localhost:%d/user/ID?x=1" % p80)
    head = r.stdout.decode("latin-1")
    check(head.startswith("HTTP/1.1 301 Moved Permanently\r\n"), "curl -sI: %r" % head)
    check("\r\nLocation: %s\r\n" % want in head, "Location keeps path and query: %r" % head)
    # ... and curl following it reaches the real server with path and query.
    mark = rb.mark()
    r = curl("-sL", "--cacert", env.ca, "-o", "/dev/null", "-w", "%{http_code} %{url_effective}",
             "http://localhost:%d/ok/user/ID?x=1" % p80)
    check(r.stdout.decode() == "200 https://localhost:%d/ok/user/ID?x=1" % tport,
          "curl -L lands on the same path over https: %r %r" % (r.stdout, r.stderr))
    check(got_requests(rb, mark) == [b"GET /ok/user/ID?x=1 HTTP/1.1"],
          "the real server got the path and query once, over the https service")

    H = b"Host: localhost:%d\r\n" % p80
    loc = lambda path: "https://localhost:%d%s" % (tport, path)
    # (name, port, raw request, status, Location or None)
    rows = [
        ("host with its port", p80, b"GET /user/ID?x=1 HTTP/1.1\r\n" + H + b"\r\n", 301, want),
        ("host without a port", p80, b"GET /user/ID?x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n",
         301, want),
        ("host in another case", p80, b"GET /user/ID?x=1 HTTP/1.1\r\nHost: LocalHost:%d\r\n\r\n"
         % p80, 301, want),
        ("absolute-form target", p80, b"GET http://localhost:%d/user/ID?x=1 HTTP/1.1\r\n" % p80
         + H + b"\r\n", 301, want),
        ("absolute-form, another authority", p80,
         b"GET http://evil.example/user/ID HTTP/1.1\r\n" + H + b"\r\n", 400, None),
        ("encoded bytes kept as sent", p80,
         b"GET /caf%C3%A9/%7euser/%41?q=%E2%82%AC HTTP/1.1\r\n" + H + b"\r\n", 301,
         loc("/caf%C3%A9/%7euser/%41?q=%E2%82%AC")),
        ("dot segments kept as sent", p80, b"GET /a/./b/../c?x HTTP/1.1\r\n" + H + b"\r\n", 301,
         loc("/a/./b/../c?x")),
        ("bytes a URI may not hold are encoded", p80,
         b'GET /p<q>?a="<b>"|{}&c=%zz HTTP/1.1\r\n' + H + b"\r\n", 301,
         loc("/p%3Cq%3E?a=%22%3Cb%3E%22%7C%7B%7D&c=%25zz")),
        ("encoded CR LF stays encoded", p80,
         b"GET /x%0d%0aSet-Cookie:%20a=b?y=%0D%0ALocation:%20http://evil HTTP/1.1\r\n" + H +
         b"\r\n", 301, loc("/x%0d%0aSet-Cookie:%20a=b?y=%0D%0ALocation:%20http://evil")),
        ("raw CR in the target", p80, b"GET /x\rSet-Cookie: a=b HTTP/1.1\r\n" + H + b"\r\n",
         400, None),
        ("refused path: traversal", p80, b"GET /a/../../etc/passwd HTTP/1.1\r\n" + H + b"\r\n",
         400, None),
        ("refused path: encoded slash", p80, b"GET /a%2fb HTTP/1.1\r\n" + H + b"\r\n", 400, None),
        ("refused path: bad escape", p80, b"GET /a%zz HTTP/1.1\r\n" + H + b"\r\n", 400, None),
        ("refused path: nul", p80, b"GET /a%00 HTTP/1.1\r\n" + H + b"\r\n", 400, None),
        ("HEAD", p80, b"HEAD /user/ID?x=1 HTTP/1.1\r\n" + H + b"\r\n", 301, want),
        ("POST with a body", p80, b"POST /user/ID?x=1 HTTP/1.1\r\n" + H +
         b"Content-Length: 5\r\n\r\nhello", 301, want),
        ("chunked POST", p80, b"POST /user/ID?x=1 HTTP/1.1\r\n" + H +
         b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 301, want),
        ("HTTP/1.0 with Host", p80, b"GET /user/ID?x=1 HTTP/1.0\r\nHost: localhost\r\n\r\n",
         301, want),
        ("HTTP/1.0 without Host", p80, b"GET /user/ID HTTP/1.0\r\n\r\n", 403, None),
        ("host not allowed", p80, b"GET /user/ID HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403,
         None),
        ("method not allowed", p80, b"TRACE /user/ID HTTP/1.1\r\n" + H + b"\r\n", 405, None),
        ("307 keeps the method, default port left out", p8080, b"POST /user/ID?x=1 HTTP/1.1\r\n"
         b"Host: localhost:%d\r\nContent-Length: 2\r\n\r\nhi" % p8080, 307,
         "https://localhost/user/ID?x=1"),
    ]
    mark = rb.mark()
    sec0 = len(security(env))
    p = Problems("redirect https")
    for name, port, raw, status, location in rows:
        ok = p.row(name)
        r = exchange(port, env.ca, raw, tls=False, expect=status)
        ok(r.status == status, "status %r, want %d" % (r, status))
        ok(r.get("location") == location, "Location %r, want %r" % (r.get("location"), location))
        ok(r.all("set-cookie") == [], "no header line injected: %r" % r.head)
        ok(r.closed, "connection closed")
        if status in (301, 307):
            ok(r.get("content-length") == "0" and r.body == b"", "empty body: %r" % r.body)
            ok(r.get("connection") == "close", "Connection: close")
            ok(b"\r\n\r\n" not in r.head and all(0x20 <= c < 0x7f for c in
                                                 r.head.replace(b"\r\n", b"")),
               "a head of printable lines: %r" % r.head)
    p.done()
    check(got_requests(rb, mark) == [], "nothing reached the real server from the plain services")
    refusals = [x for x in rows if x[3] >= 400]
    wait_until(lambda: len(security(env)) >= sec0 + len(refusals), 5,
               "a security line per refusal")
    recs = security(env)[sec0:]
    check(len(recs) == len(refusals) and all(x["status"] >= 400 for x in recs),
          "redirects are no security event, refusals are: %r" % [x["status"] for x in recs])
    n80 = len([x for x in rows if x[1] == p80 and x[3] == 301]) + 1  # + curl -sI
    wait_until(lambda: len([l for l in access_lines(env, "site-80") if '" 301 ' in l]) >= n80,
               5, "an access-log line per redirect")
    g.stop()


# ---------------------------------------------------- rule redirects with $names

@test
def rule_redirect_with_host_path_and_query(env):
    rb = RawBackend(env)
    port = free_port()
    rules = """rules moves {
    rule old redirect 301 https://$host/new$path?$query if path prefix /old/
    rule find redirect 302 /search?$query if path exact /find
    rule back redirect 308 "https://$host:8443$path" if path prefix /back/
}
"""
    g = env.gatehouse(base_conf(env) + rules + service(
        "site", port, servers=[("raw", rb.port)], hosts="localhost",
        extra="    rule-set moves"))
    H = b"Host: localhost:%d\r\n" % port
    rows = [
        ("all three", b"/old/a/b?x=1&y=2", 301, "https://localhost/new/old/a/b?x=1&y=2"),
        ("no query: no dangling ?", b"/old/a", 301, "https://localhost/new/old/a"),
        ("empty query: no dangling ?", b"/old/a?", 301, "https://localhost/new/old/a"),
        ("$path is the normalised path", b"/old/x/%2e%2e/b%7e", 301,
         "https://localhost/new/old/b~"),
        ("$query is escaped where it must be", b'/old/q?a="<x>"&b=%41', 301,
         "https://localhost/new/old/q?a=%22%3Cx%3E%22&b=%41"),
        ("relative target with the query", b"/find?q=lync&w=1", 302, "/search?q=lync&w=1"),
        ("relative target, no query", b"/find", 302, "/search"),
        ("$host$path with a port", b"/back/x?dropped", 308, "https://localhost:8443/back/x"),
    ]
    mark = rb.mark()
    p = Problems("rule redirect")
    for name, target, status, location in rows:
        ok = p.row(name)
        r = exchange(port, env.ca, b"GET " + target + b" HTTP/1.1\r\n" + H + b"\r\n",
                     expect=status)
        ok(r.status == status, "status %r, want %d" % (r, status))
        ok(r.get("location") == location, "Location %r, want %r" % (r.get("location"), location))
        ok(r.closed, "connection closed")
    # A path no rule names is forwarded (prefixes are case-sensitive).
    ok = p.row("no rule matches")
    r = exchange(port, env.ca, b"GET /Old/a HTTP/1.1\r\n" + H + b"\r\n", expect=404)
    ok(r.status == 404 and r.get("location") is None, "forwarded, the server's 404: %r" % r)
    p.done()
    check(got_requests(rb, mark) == [b"GET /Old/a HTTP/1.1"],
          "only the unmatched request reached the real server")
    wait_until(lambda: len([x for x in security(env) if x["reason"].startswith("rule")]) >=
               len(rows), 5, "redirect rules in the security log")
    check(all(x["action"] == "redirect" for x in security(env)), "each logged as a redirect")


# -------------------------------------------------------- allowed-dirs-case

@test
def allowed_dirs_case_insensitive(env):
    rb = RawBackend(env)
    iis, strict = free_port(), free_port()
    dirs = "/autodiscover/* /abs/*"
    g = env.gatehouse(
        base_conf(env) +
        service("iis", iis, servers=[("raw", rb.port)], hosts="localhost", dirs=dirs,
                extra="    allowed-dirs-case insensitive") +
        service("strict", strict, servers=[("raw", rb.port)], hosts="localhost", dirs=dirs))
    # (name, port, target, forwarded as) ; None: refused with 403
    rows = [
        ("Autodiscover", iis, b"/Autodiscover/Autodiscover.xml", b"/Autodiscover/Autodiscover.xml"),
        ("ABS with a query", iis, b"/ABS/Handler/x.ashx?Key=Val", b"/ABS/Handler/x.ashx?Key=Val"),
        ("lower case", iis, b"/abs/x", b"/abs/x"),
        ("mixed, escape decoded, case kept", iis, b"/%41bS/x", b"/AbS/x"),
        ("other directory", iis, b"/Secret/x", None),
        ("directory name alone", iis, b"/ABS", None),
        ("traversal out of it", iis, b"/ABS/../Secret/x", None),
        ("strict: other case refused", strict, b"/Autodiscover/Autodiscover.xml", None),
        ("strict: ABS refused", strict, b"/ABS/x", None),
        ("strict: same case passes", strict, b"/autodiscover/x", b"/autodiscover/x"),
    ]
    p = Problems("allowed-dirs-case")
    for name, port, target, fwd in rows:
        ok = p.row(name)
        mark = rb.mark()
        r = exchange(port, env.ca, b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % target,
                     check_close=False)
        seen = got_requests(rb, mark)
        if fwd is None:
            ok(r.status == 403, "refused: %r" % r)
            ok(seen == [], "nothing forwarded: %r" % seen)
        else:
            ok(r.status == 404, "forwarded (the real server's 404): %r" % r)
            ok(seen == [b"GET " + fwd + b" HTTP/1.1"], "the real server saw %r" % seen)
    p.done()


# ------------------------------------------------------------- gatehouse -t

def make_cert(env, name, cn, san):
    r = subprocess.run([GATEHOUSE, "certs", "server", "--ca", env.path("ca"), "--out",
                        env.path(name), "--cn", cn, "--san", san], capture_output=True)
    check(r.returncode == 0, "certs server %s: %r" % (name, r.stderr))
    return env.path(name + ".pem"), env.path(name + ".key")


def make_cn_only_cert(env, name, cn):
    """A certificate with a subject CN and no subjectAltName at all."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subj).issuer_name(subj)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=90)).sign(key, hashes.SHA256()))
    pem, kp = env.path(name + ".pem"), env.path(name + ".key")
    with open(pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return pem, kp


def make_p12(env, name, pem, key):
    p12, pw = env.path(name + ".p12"), env.path(name + ".pass")
    with open(pw, "w") as f:
        f.write("s3cret\n")
    os.chmod(pw, 0o600)
    r = subprocess.run(["openssl", "pkcs12", "-export", "-in", pem, "-inkey", key, "-out", p12,
                        "-passout", "pass:s3cret"], capture_output=True)
    check(r.returncode == 0, "openssl pkcs12: %r" % r.stderr)
    os.chmod(p12, 0o600)
    return p12, pw


def cert_block(name, src):
    if src[0].endswith(".p12"):
        return "certificate %s {\n    pkcs12 %s\n    passphrase-file %s\n}\n" % (name, src[0],
                                                                               src[1])
    return "certificate %s {\n    cert %s\n    key %s\n}\n" % (name, src[0], src[1])


def check_t(path):
    r = subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True)
    return r.returncode, r.stderr


@test
def certificate_coverage_at_check_and_reload(env):
    certs = {
        "exact": make_cert(env, "exact", "meet.example.com",
                           "DNS:meet.example.com,DNS:lyncdiscover.example.com"),
        "wild": make_cert(env, "wild", "*.example.com", "DNS:*.example.com"),
        "ip": make_cert(env, "ip", "edge", "IP:127.0.0.1,IP:::1"),
        "cnonly": make_cn_only_cert(env, "cnonly", "cn.example.com"),
    }
    certs["p12"] = make_p12(env, "p12", *certs["exact"])
    names = {"exact": "meet.example.com, lyncdiscover.example.com", "wild": "*.example.com",
             "ip": "IP:127.0.0.1, IP:::1", "cnonly": "none",
             "p12": "meet.example.com, lyncdiscover.example.com"}
    # (name, certificates, allowed hosts, uncovered host or None, extra)
    rows = [
        ("exact names", ["exact"], "meet.example.com lyncdiscover.example.com", None, ""),
        ("a name the certificate lacks", ["exact"], "meet.example.com lyncdiscover.contoso.com",
         "lyncdiscover.contoso.com", ""),
        ("host with port and case", ["exact"], "Meet.Example.COM:443", None, ""),
        ("wildcard covers one label", ["wild"], "meet.example.com dialin.example.com", None, ""),
        ("wildcard, two labels", ["wild"], "meet.example.com a.b.example.com", "a.b.example.com",
         ""),
        ("wildcard, not the apex", ["wild"], "example.com", "example.com", ""),
        ("wildcard host by the same wildcard", ["wild"], "*.example.com", None, ""),
        ("wildcard host, exact names only", ["exact"], "meet.example.com *.example.com",
         "*.example.com", ""),
        ("address by an IP SAN", ["ip"], "127.0.0.1 [::1]", None, ""),
        ("address, DNS names only", ["exact"], "127.0.0.1", "127.0.0.1", ""),
        ("the CN is not a name", ["cnonly"], "cn.example.com", "cn.example.com", ""),
        ("several certificates, any", ["ip", "exact"], "meet.example.com 127.0.0.1", None, ""),
        # a client by address sends no server name: only the default (first) counts
        ("address, not in the default certificate", ["exact", "ip"],
         "meet.example.com 127.0.0.1", "127.0.0.1", ""),
        ("several certificates, none", ["exact", "wild"], "meet.example.com other.example.net",
         "other.example.net", ""),
        ("allowed-hosts * names no host", ["cnonly"], "*", None, ""),
        ("PKCS#12", ["p12"], "lyncdiscover.example.com", None, ""),
        ("PKCS#12, a name it lacks", ["p12"], "dialin.example.com", "dialin.example.com", ""),
        ("warn for a staged roll-out", ["exact"], "meet.example.com dialin.example.com",
         "dialin.example.com", "    certificate-coverage warn\n"),
    ]
    p = Problems("certificate coverage")
    for i, (name, use, hosts, bad, extra) in enumerate(rows):
        ok = p.row(name)
        text = "".join(cert_block(c, certs[c]) for c in use)
        line = 4 * len(use) + 4  # allowed-hosts, after the blocks of 4 lines each
        text += ("service s {\n    listen 127.0.0.1:%d\n    certificate %s\n"
                 "    allowed-hosts %s\n    allowed-dirs /*\n%s    app status\n}\n"
                 % (free_port(), " ".join(use), hosts, extra))
        path = env.write("cover-%d.conf" % i, text)
        rc, err = check_t(path)
        if bad is None:
            ok(rc == 0, "accepted: %r" % err)
            continue
        msg = "%s:%d:5: service 's': allowed host '%s' is not covered by certificate%s %s" % (
            path, line, bad, "s" if len(use) > 1 else "",
            ", ".join("'%s' (names: %s)" % (c, names[c]) for c in use))
        if bad[0].isdigit() or bad[0] == "[":
            msg = ("%s:%d:5: service 's': allowed host '%s' is an address, so clients send no "
                   "server name and get the listener's default certificate '%s' (names: %s), "
                   "which does not cover it (list one that does first)" % (
                       path, line, bad, use[0], names[use[0]]))
        if extra:
            ok(rc == 0, "a warning, not a refusal: %r" % err)
            ok("[warn] " + msg + " (certificate-coverage warn)" in err, "warned: %r" % err)
        else:
            ok(rc == 1, "refused: rc %d" % rc)
            ok(err.splitlines()[:1] == [msg], "message %r\n   want %r" % (err, msg))
    p.done()

    # At reload: the running configuration stays when the new one fails.
    port = free_port()
    base = base_conf(env) + cert_block("exact", certs["exact"])
    svc = ("service s {\n    listen 127.0.0.1:%d\n    certificate main exact\n"
           "    allowed-hosts %%s\n    allowed-dirs /*\n%%s    app status\n}\n" % port)
    g = env.gatehouse(base + svc % ("localhost", ""))
    ask = lambda: curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", env.ca,
                       "https://localhost:%d/healthcheck.html" % port).stdout
    check(ask() == b"200", "serving before the reload")
    text = base + svc % ("localhost dialin.example.com", "")
    with open(g.conf, "w") as f:
        f.write(text)
    line = text.split("\n").index("    allowed-hosts localhost dialin.example.com") + 1
    g.signal(signal.SIGHUP)
    want = ("reload refused, previous configuration stays: %s:%d:5: service 's': allowed host "
            "'dialin.example.com' is not covered by certificates 'main' (names: localhost, "
            "IP:127.0.0.1), 'exact' (names: meet.example.com, lyncdiscover.example.com)"
            % (g.conf, line))
    wait_until(lambda: want in g.output(), 5, "the reload refused, naming host and certificates")
    check(ask() == b"200", "the old configuration still serves")
    with open(g.conf, "w") as f:
        f.write(base + svc % ("localhost dialin.example.com", "    certificate-coverage warn\n"))
    g.signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in g.output(), 5, "the warn reload accepted")
    check("(certificate-coverage warn)" in g.output() and ask() == b"200", "warned, serving")


@test
def check_refuses_duplicate_servers_and_undefined_names(env):
    uu = "0f5e2a36-6c1e-4d0b-9c41-5b7a2f0e9d11"
    cert = "certificate main {\n    cert %s\n    key %s\n}\n" % (env.cert, env.key)
    svc = "service s {\n    listen 127.0.0.1:%d\n" % free_port()
    idp = ("identity-provider i {\n    uuid %s\n    sp-certificate %%s\n"
           "    sp-entity-id https://m.example/sp\n    idp-sso-url https://idp.example/sso\n"
           "    idp-entity-id https://idp.example\n    idp-certificate %s\n"
           "    acs-url https://m.example/api/v1/samlconsumer/%s\n}\n" % (uu, env.cert, uu))
    # (name, text, line:col, message)
    rows = [
        ("two servers, one address", svc + "    server a 127.0.0.1:8001\n"
         "    server b 127.0.0.2:8001\n    server c 127.0.0.1:8001 weight 2\n}\n", "5:5",
         "service 's': server 'c' has the address 127.0.0.1:8001 of server 'a' (%s:3:5)"),
        ("IPv6 spellings of one address", svc + "    server a [::1]:8001\n"
         "    server b [0:0:0:0:0:0:0:1]:8001\n}\n", "4:5",
         "service 's': server 'b' has the address [0:0:0:0:0:0:0:1]:8001 of server 'a' "
         "(%s:3:5)"),
        ("undefined certificate", svc + "    certificate main web\n    app status\n}\n" + cert,
         "3:5", "service 's': no certificate named 'web'"),
        ("undefined client-certificate", cert + svc + "    server a 127.0.0.1:8001\n"
         "    client-certificate mtls\n}\n", "8:5",
         "service 's': no certificate named 'mtls' (client-certificate)"),
        ("undefined ca", svc + "    server a 127.0.0.1:8001\n    reencrypt verify corp-ca\n}\n",
         "4:5", "service 's': no ca named 'corp-ca'"),
        ("undefined rule set", svc + "    app status\n    rule-set edge\n}\n", "4:5",
         "service 's': no rules named 'edge'"),
        ("undefined sp-certificate", idp % "saml-key", "1:1",
         "identity-provider 'i': no certificate named 'saml-key'"),
        ("undefined identity provider of a group", cert + idp % "main" +
         "identity-provider-group staff {\n    identity-providers i contoso\n}\n", "15:5",
         "identity-provider-group 'staff': no identity-provider named 'contoso'"),
    ]
    p = Problems("-t")
    for i, (name, text, where, msg) in enumerate(rows):
        ok = p.row(name)
        path = env.write("refs-%d.conf" % i, text)
        rc, err = check_t(path)
        want = "%s:%s: %s" % (path, where, msg.replace("%s", path))
        ok(rc == 1, "refused: rc %d %r" % (rc, err))
        ok(err.splitlines()[:1] == [want], "message %r\n   want %r" % (err, want))
    # Another port of the same address is another server.
    path = env.write("refs-ok.conf", svc + "    server a 127.0.0.1:8001\n"
                     "    server b 127.0.0.1:8002\n}\n")
    rc, err = check_t(path)
    ok = p.row("same address, other port")
    ok(rc == 0, "accepted: %r" % err)
    p.done()
