"""Services sharing a listener (issue 14; Kemp's SubVS): the TLS server name
picks the certificate among every service on the listener, then Host picks
the service; each keeps its own pool, rules and logs. Checked at the client
(certificate served, status) and at each real server (what reached which)."""
import json
import subprocess

from harness import (GATEHOUSE, base_conf, check, curl, free_port, service, test, tls_client,
                     read_response, wait_until)
from rawpeer import Client
from t_i_tls import cert_block, make_cert, s_client, served_cert


def two_services(env, port, a_port, b_port, extra_a="", extra_b="", tls=True):
    """sa (a.example.com -> backend a) and sb (b.example.com -> backend b),
    both on 127.0.0.1:port."""
    text = ""
    if tls:
        text += cert_block("a", *make_cert(env, "a", ["a.example.com"]))
        text += cert_block("b", *make_cert(env, "b", ["b.example.com"]))
    sa = service("sa", port, servers=[("a", a_port)], hosts="a.example.com", tls=tls,
                 extra=extra_a)
    sb = service("sb", port, servers=[("b", b_port)], hosts="b.example.com", tls=tls,
                 extra=extra_b)
    if tls:
        sa = sa.replace("    certificate main", "    certificate a")
        sb = sb.replace("    certificate main", "    certificate b")
    return text + sa + sb


def seen(env, port, what):
    with open(env.path("backend-%d.log" % port)) as f:
        return what in f.read()


@test
def shared_listener_by_sni_then_host(env):
    a, b = env.backend(), env.backend()
    p = free_port()
    rules = "rules only-a {\n    rule no-secret deny 403 if path prefix /secret\n}\n"
    g = env.gatehouse(base_conf(env) + rules + two_services(
        env, p, a, b, extra_a="    rule-set only-a"))
    # the certificate follows the TLS server name, across both services
    for name in ("a.example.com", "b.example.com"):
        cn, _ = served_cert(p, "-servername", name, "-CAfile", env.ca)
        check(cn == name, "SNI %s served %r" % (name, cn))
    cn, _ = served_cert(p, "-servername", "unknown.example.org")
    check(cn == "a.example.com", "an unknown name gets the listener's default (the first "
          "service's first certificate): %r" % cn)
    # Host chooses the service: each its own pool
    for name, want in (("a.example.com", a), ("b.example.com", b)):
        r = curl("--cacert", env.ca, "--resolve", "%s:%d:127.0.0.1" % (name, p),
                 "https://%s:%d/whoami" % (name, p))
        check(r.stdout.decode() == str(want), "%s answered by %r, want %d" % (
            name, r.stdout, want))
    # each its own rules: the deny rule is sa's only
    r = curl("--cacert", env.ca, "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
             "a.example.com:%d:127.0.0.1" % p, "https://a.example.com:%d/secret/x1" % p)
    check(r.stdout == b"403", "sa's rule refused /secret: %r" % r.stdout)
    check(not seen(env, a, "/secret/x1"), "the refused request reached sa's server")
    r = curl("--cacert", env.ca, "-o", "/dev/null", "-w", "%{http_code}", "--resolve",
             "b.example.com:%d:127.0.0.1" % p, "https://b.example.com:%d/secret/x2" % p)
    check(r.stdout == b"404", "sb has no such rule, its server answered: %r" % r.stdout)
    check(seen(env, b, "/secret/x2") and not seen(env, a, "/secret/x2"),
          "sb's request went to sb's server only")
    # a server name of one service with the Host of the other: no fronting
    ctx_ca = env.ca
    s = tls_client(p, ctx_ca, sni="a.example.com")
    s.sendall(b"GET /whoami?front HTTP/1.1\r\nHost: b.example.com\r\n\r\n")
    st, h, body, _ = read_response(s)
    s.close()
    check(st == 421, "SNI a + Host b: %r" % st)
    check(not seen(env, a, "front") and not seen(env, b, "front"), "fronting reached a server")
    # a Host no service allows: the first service refuses it, nothing forwarded
    s = tls_client(p, ctx_ca, sni="a.example.com")
    s.sendall(b"GET /whoami?nohost HTTP/1.1\r\nHost: intranet.corp\r\n\r\n")
    st, h, body, _ = read_response(s)
    s.close()
    check(st == 403, "unknown Host: %r" % st)
    check(not seen(env, a, "nohost") and not seen(env, b, "nohost"), "unknown Host forwarded")
    # each its own logs and counters
    def lines():
        with open(env.path("access.log")) as f:
            return f.read().splitlines()
    wait_until(lambda: any(" sb " in l and "/secret/x2" in l for l in lines()), 5, "sb's line")
    check(any(" sa " in l and "/secret/x1" in l for l in lines()), "sa's refusal logged as sa")
    with open(env.path("security.log")) as f:
        sec = [json.loads(l) for l in f if l.strip()]
    check(any(r["service"] == "sa" and r["reason"].startswith("rule") for r in sec),
          "sa's rule in the security log as sa: %r" % sec)
    check(any(r["service"] == "sb" and r["reason"] == "sni-not-allowed" for r in sec),
          "the fronting refusal is sb's (Host chose it): %r" % sec)


@test
def shared_listener_keepalive_follows_host_per_request(env):
    """On a plain listener (no SNI), each request's Host picks its service,
    even on one kept-alive connection."""
    a, b = env.backend(tls=False), env.backend(tls=False)
    p = free_port()
    g = env.gatehouse(base_conf(env) + two_services(env, p, a, b, tls=False).replace(
        "    reencrypt verify internal\n", ""))
    c = Client(p, env.ca, tls=False)
    got = []
    for host in ("a.example.com", "b.example.com", "a.example.com"):
        c.send(b"GET /whoami HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
        r = c.final()
        got.append((r.status, r.body))
    c.close()
    check(got == [(200, str(a).encode()), (200, str(b).encode()), (200, str(a).encode())],
          "per-request choice on one connection: %r" % got)


@test
def shared_listener_sni_default_off_sends_unrecognized_name(env):
    a, b = env.backend(), env.backend()
    p = free_port()
    text = two_services(env, p, a, b, extra_a="    sni-default off", extra_b="    sni-default off")
    g = env.gatehouse(base_conf(env) + text)
    rc, out = s_client(p, "-servername", "nobody.example.org")
    check(rc != 0 and "unrecognized name" in out, "unknown SNI refused with the alert: %s"
          % out[-400:])
    cn, _ = served_cert(p, "-servername", "b.example.com")
    check(cn == "b.example.com", "known names still served: %r" % cn)
    r = curl("--cacert", env.ca, "--resolve", "b.example.com:%d:127.0.0.1" % p,
             "https://b.example.com:%d/whoami" % p)
    check(r.stdout.decode() == str(b), "and reach their service: %r" % r.stdout)


CHECK_ROWS = [
    # (name, the second service's extra lines or replacement, expected error parts)
    ("overlapping exact names", ("b.example.com", "a.example.com"),
     ["allows 'a.example.com', which overlaps 'a.example.com' of service 'sa'"]),
    ("a wildcard over the other's name", ("b.example.com", "*.example.com"),
     ["overlaps 'a.example.com' of service 'sa'"]),
    ("a catch-all", ("b.example.com", "*"), ["allows '*', which overlaps"]),
    ("tls and plain on one listener", ("    certificate b\n", ""), ["TLS (certificate) or plain"]),
    ("other tls-versions", ("    certificate b\n", "    certificate b\n    tls-versions 1.3\n"),
     ["tls-versions"]),
    ("other header limits", ("    certificate b\n", "    certificate b\n    max-header-size 32k\n"),
     ["max-header-size"]),
]


@test
def shared_listener_conflicts_refused_at_check(env):
    a = env.backend()
    p = free_port()
    base = base_conf(env) + two_services(env, p, a, a)
    # the valid pair passes
    conf = env.write("ok.conf", base)
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
    check(r.returncode == 0, "two services with distinct hosts share a listener: %s" % r.stderr)
    lines = base.split("\n")
    sa_listen = next(i for i, l in enumerate(lines) if l.startswith("service sa")) + 2
    sa_hosts = sa_listen + 1
    for name, (old, new), parts in CHECK_ROWS:
        i = base.index("service sb")
        text = base[:i] + base[i:].replace(old, new, 1)
        conf = env.write("bad.conf", text)
        r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
        err = r.stderr + r.stdout
        check(r.returncode != 0, "%s: accepted" % name)
        for part in parts:
            check(part in err, "%s: error %r lacks %r" % (name, err, part))
        # both locations: the second service's (file:line:col at the start) and the first's
        check(err.startswith(conf + ":"), "%s: located: %r" % (name, err))
        first = "%s:%d:" % (conf, sa_hosts if "overlap" in parts[0] else sa_listen)
        check(first in err, "%s: names the first service's place %s: %r" % (name, first, err))
