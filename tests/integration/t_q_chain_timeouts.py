"""Two gatehouses in a chain (seed 002's reverse proxy chain) with
`trusted-proxies` on the inner one: the real client is the address the
outer one saw, in the inner one's logs, proxy headers, per-source limits and
source-ip persistence, and only a trusted peer can name it. Then the bounds
on a request body: client-body-timeout, client-header-timeout for a chunked
body that never begins, idle-timeout as its default, and the 100 Continue
gatehouse sends itself for a held chunked body.

Clients bind 127.0.0.5, .6, .7 ... as their source address (all of
127.0.0.0/8 is local on Linux); the outer gatehouse reaches the inner one
from 127.0.0.1, the only trusted proxy."""
import json
import re
import socket
import ssl
import threading
import time

from harness import base_conf, check, free_port, service, test, wait_until
from rawpeer import READ_TIMEOUT, Client, RawBackend, short, values

ACCESS = re.compile(r'^(\S+) (\S+) (\S+) "(\S+) (\S+) (HTTP/1\.\d)" (\d+) (\d+) (\d+) (\S+) '
                    r'(\S+) (\S+) (\S+)$')


class From(Client):
    """A rawpeer client whose connection comes from a chosen local address."""

    def __init__(self, port, ca, source, sni="localhost"):
        s = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT,
                                     source_address=(source, 0))
        self.local = s.getsockname()
        ctx = ssl.create_default_context(cafile=ca)
        self.s = ctx.wrap_socket(s, server_hostname=sni)
        self.buf = b""
        self.eof = False


def get(port, ca, source, target, fields=()):
    """One GET on a new connection from source; (response, client port)."""
    c = From(port, ca, source)
    head = "GET %s HTTP/1.1\r\nHost: localhost\r\n" % target
    head += "".join("%s: %s\r\n" % kv for kv in fields)
    c.send(head.encode() + b"\r\n")
    r = c.final()
    c.close()
    return r, c.local[1]


def own_logs(env, tag):
    """base_conf with this instance's own logs and state-dir: two gatehouses
    share the test's folder."""
    text = base_conf(env, extra="state-dir %s" % env.path(tag + "-state"))
    return (text.replace(env.path("access.log"), env.path(tag + "-access.log"))
            .replace(env.path("security.log"), env.path(tag + "-security.log")))


def access(env, log, marker):
    """Parsed lines of the access log named log whose path holds marker."""
    try:
        with open(env.path(log)) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for l in lines:
        m = ACCESS.match(l)
        if m and marker in m.group(5):
            out.append({"client": m.group(3), "path": m.group(5), "status": int(m.group(7)),
                        "server": m.group(10), "reason": m.group(13), "line": l})
    return out


def wait_access(env, log, marker, n=1):
    """Access lines are buffered per worker (written at least once a second)."""
    wait_until(lambda: len(access(env, log, marker)) >= n, 5,
               "%d line(s) for %s in %s" % (n, marker, log))
    return access(env, log, marker)


def security(env, tag):
    try:
        with open(env.path(tag + "-security.log")) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def reqs(rb, marker):
    """Requests carrying ?m=marker that reached the raw backend."""
    tag = ("?m=%s" % marker).encode()
    return [r for r in rb.requests_since({}) if tag in r["line"]]


def one_req(rb, marker):
    got = reqs(rb, marker)
    check(len(got) == 1 and got[0]["complete"],
          "one complete request %s at the server, got %d: %s" % (marker, len(got), short(
              b"".join(r["head"] for r in got))))
    return got[0]


def chain(env):
    """rawbackends, the inner gatehouse (three services, trusted-proxies
    127.0.0.1/32) and the outer one (one service in front of each)."""
    rb, s1, s2 = RawBackend(env), RawBackend(env), RawBackend(env)
    inner = {"inner": free_port(), "limited": free_port(), "sticky": free_port()}
    outer = {k: free_port() for k in inner}
    trust = "    trusted-proxies 127.0.0.1/32\n    sni-host-match on"
    dirs = "/headers* /ok*"
    text = own_logs(env, "inner")
    text += service("inner", inner["inner"], servers=[("raw", rb.port)], hosts="localhost",
                    dirs=dirs, extra=trust)
    text += service("limited", inner["limited"], servers=[("raw", rb.port)], hosts="localhost",
                    dirs=dirs, extra=trust + "\n    request-rate-per-source 2\n"
                                         "    request-burst-per-source 2")
    text += service("sticky", inner["sticky"], servers=[("s1", s1.port), ("s2", s2.port)],
                    hosts="localhost", dirs=dirs, extra=trust + "\n    persistence source-ip")
    env.gatehouse(text, name="inner.conf")
    text = own_logs(env, "outer")
    for k, port in outer.items():
        text += service("outer-" + k, port, servers=[("inner", inner[k])],
                        hosts="localhost").replace(
            "server inner 127.0.0.1:%d" % inner[k],
            "server inner 127.0.0.1:%d verify-name localhost" % inner[k])
    env.gatehouse(text, name="outer.conf")
    return rb, s1, s2, inner, outer


@test
def trusted_chain_names_the_real_client(env):
    rb, s1, s2, inner, outer = chain(env)
    want_log = {}  # marker: (inner access-log client, outer access-log client or None)
    # Through the chain, once plainly and once with the client's own
    # (spoofed) proxy headers, which the outer one must replace.
    for marker, spoof in (("plain", ()), ("spoofed", (("X-Forwarded-For", "1.2.3.4"),
                                                      ("X-Real-IP", "6.6.6.6"),
                                                      ("Forwarded", "for=6.6.6.6")))):
        r, cport = get(outer["inner"], env.ca, "127.0.0.5", "/headers?m=" + marker, spoof)
        check(r.status == 200, "%s: through the chain: %r %s" % (marker, r, short(r.head)))
        q = one_req(rb, marker)
        check(values(q, "X-Forwarded-For") == ["127.0.0.5, 127.0.0.1"],
              "%s: X-Forwarded-For at the server: %r" % (marker, values(q, "X-Forwarded-For")))
        check(values(q, "X-Real-IP") == ["127.0.0.5"],
              "%s: X-Real-IP: %r" % (marker, values(q, "X-Real-IP")))
        check(values(q, "Forwarded") == ["for=127.0.0.5;proto=https;host=localhost"],
              "%s: Forwarded: %r" % (marker, values(q, "Forwarded")))
        via = ",".join(values(q, "Via"))
        check(via.count("1.1 gatehouse") == 2, "%s: one Via per gatehouse: %r" % (marker, via))
        want_log[marker] = ("127.0.0.5", "127.0.0.5:%d" % cport)
    # Refused by the inner one only (outside its allowed-dirs): its security
    # log names the real client; the real server saw nothing.
    r, _ = get(outer["inner"], env.ca, "127.0.0.5", "/secret?m=refused")
    check(r.status == 403, "refusal at the inner gatehouse reaches the client: %r" % r)
    want_log["refused"] = ("127.0.0.5", None)
    # A client that is not a trusted proxy cannot name anyone: its
    # X-Forwarded-For is replaced and it is logged by its own address.
    r, cport = get(inner["inner"], env.ca, "127.0.0.7", "/headers?m=direct",
                   (("X-Forwarded-For", "1.2.3.4"),))
    check(r.status == 200, "direct to the inner one: %r" % r)
    q = one_req(rb, "direct")
    check(values(q, "X-Forwarded-For") == ["127.0.0.7"],
          "direct: X-Forwarded-For: %r" % values(q, "X-Forwarded-For"))
    check(values(q, "X-Real-IP") == ["127.0.0.7"], "direct: X-Real-IP: %r" % values(q, "X-Real-IP"))
    check(values(q, "Forwarded") == ["for=127.0.0.7;proto=https;host=localhost"],
          "direct: Forwarded: %r" % values(q, "Forwarded"))
    want_log["direct"] = ("127.0.0.7:%d" % cport, None)
    r, dport = get(inner["inner"], env.ca, "127.0.0.7", "/secret?m=denied7",
                   (("X-Forwarded-For", "1.2.3.4"),))
    check(r.status == 403, "direct refusal: %r" % r)
    want_log["denied7"] = ("127.0.0.7:%d" % dport, None)
    # The security logs (written at once).
    sec = {m: [x for x in security(env, "inner") if "m=" + m in x["path"]]
           for m in ("refused", "denied7")}
    check([(x["client"], x["reason"]) for x in sec["refused"]] ==
          [("127.0.0.5", "dir-not-allowed")],
          "inner security log for the refusal through the chain: %r" % sec["refused"])
    check([x["client"] for x in sec["denied7"]] == ["127.0.0.7:%d" % dport],
          "direct refusal logged by the peer's address and port: %r" % sec["denied7"])
    check(security(env, "outer") == [],
          "the outer one refused nothing: %r" % security(env, "outer"))
    rb.settle()
    check(reqs(rb, "refused") == [] and reqs(rb, "denied7") == [],
          "the refused requests never reached the server")
    # The access logs (buffered: one wait covers every line).
    for marker, (in_client, out_client) in want_log.items():
        lines = wait_access(env, "inner-access.log", "m=" + marker)
        check([l["client"] for l in lines] == [in_client],
              "%s: inner access log client, want %s: %r" % (marker, in_client,
                                                            [l["line"] for l in lines]))
        if out_client:
            lines = wait_access(env, "outer-access.log", "m=" + marker)
            check([l["client"] for l in lines] == [out_client],
                  "%s: outer access log client (its TCP peer), want %s: %r" % (
                      marker, out_client, [l["line"] for l in lines]))


@test
def trusted_chain_limits_and_persistence_follow_the_real_client(env):
    rb, s1, s2, inner, outer = chain(env)
    # request-rate-per-source 2, burst 2, on the inner one: the real client
    # .5 runs out, .6 behind the same outer gatehouse (the same peer) does not.
    got = []
    t0 = time.monotonic()
    for i in range(6):
        r, _ = get(outer["limited"], env.ca, "127.0.0.5", "/ok?m=rate5-%d" % i)
        got.append(r.status)
    took = time.monotonic() - t0
    r6, _ = get(outer["limited"], env.ca, "127.0.0.6", "/ok?m=rate6")
    print("    (rate 2/s burst 2: client .5 got %r in %.2fs, then .6 got %r)" % (got, took,
                                                                                r6.status))
    check(got[:2] == [200, 200], "the burst of two is served: %r" % got)
    check(got[2:].count(429) >= 3 and set(got) <= {200, 429},
          "client .5 limited by its own address (not the outer's): %r in %.2fs" % (got, took))
    check(r6.status == 200, "client .6 through the same outer gatehouse is served: %r" % r6)
    rb.settle()
    reached = [i for i in range(6) if reqs(rb, "rate5-%d" % i)]
    check(reached == [i for i, s in enumerate(got) if s == 200],
          "only the served requests reached the server: %r of %r" % (reached, got))
    check(len(reqs(rb, "rate6")) == 1, "client .6's request reached the server")
    sec = [x for x in security(env, "inner") if x["reason"] == "rate-limit"]
    check(sorted(x["client"] for x in sec) == ["127.0.0.5"] * got.count(429),
          "rate-limit lines name client .5, one per 429: %r" % sec)
    # persistence source-ip on the inner one, two real servers: each real
    # client keeps its server; keyed on the peer (the outer gatehouse) every
    # client would share one.
    clients = ["127.0.0.5"] + ["127.0.0.%d" % i for i in range(21, 27)]
    where = {}
    for src in clients:
        n = 8 if src == "127.0.0.5" else 3
        for i in range(n):
            m = "sticky-%s-%d" % (src, i)
            r, _ = get(outer["sticky"], env.ca, src, "/ok?m=" + m)
            check(r.status == 200, "%s: %r" % (m, r))
            at = [name for name, b in (("s1", s1), ("s2", s2)) if reqs(b, m)]
            where.setdefault(src, []).append(",".join(at))
    print("    (source-ip persistence behind the chain: %s)" % ", ".join(
        "%s->%s" % (s.rsplit(".", 1)[1], "/".join(sorted(set(w)))) for s, w in where.items()))
    for src, w in where.items():
        check(len(set(w)) == 1 and w[0] in ("s1", "s2"),
              "client %s keeps one server: %r" % (src, w))
    check({w[0] for w in where.values()} == {"s1", "s2"},
          "different real clients are spread over both servers: %r" % where)


# ------------------------------------------------------------ request bodies

def stall(port, ca, head_and_start, limit):
    """Sends the bytes, then nothing: (final response, seconds until it came,
    connection closed after)."""
    c = Client(port, ca)
    c.send(head_and_start)
    t0 = time.monotonic()
    r = c.final(timeout=limit)
    t = time.monotonic() - t0
    r.closed = c.is_closed()
    c.close()
    return r, t


@test
def client_body_timeout_bounds_a_stalled_body(env):
    rbs = {k: RawBackend(env) for k in ("body", "first", "idle")}
    ports = {k: free_port() for k in rbs}
    extra = {"body": "    idle-timeout 20s\n    client-body-timeout 1s",
             "first": "    idle-timeout 20s\n    client-header-timeout 1s",
             "idle": "    idle-timeout 3s"}
    text = base_conf(env)
    for k, rb in rbs.items():
        text += service(k, ports[k], servers=[("raw", rb.port)], hosts="localhost",
                        extra=extra[k])
    env.gatehouse(text)
    cl = b"POST /echo?m=%s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789"
    cases = {
        # (payload, window in seconds, whether the head reaches the server)
        "body": (cl % b"body", (0.8, 4.0), True),
        "first": (b"POST /echo?m=first HTTP/1.1\r\nHost: localhost\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n", (0.8, 4.0), False),
        "idle": (cl % b"idle", (2.5, 6.0), True),
    }
    got, errors = {}, {}

    def run(k):
        try:
            got[k] = stall(ports[k], env.ca, cases[k][0], 10)
        except Exception as e:  # reported by the main thread
            errors[k] = "%s: %s" % (type(e).__name__, e)
    ts = [threading.Thread(target=run, args=(k,)) for k in cases]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=20)
    check(not errors, "cases raised: %r" % errors)
    print("    (408 after: %s)" % ", ".join("%s %.2fs" % (k, got[k][1]) for k in cases))
    for k, (_, (lo, hi), reaches) in cases.items():
        r, t = got[k]
        rb = rbs[k]
        check(r.status == 408 and lo <= t <= hi,
              "%s: 408 within %.1f-%.1fs, got %r after %.2fs" % (k, lo, hi, r, t))
        check(r.closed, "%s: the client connection is closed after the 408" % k)
        lines = wait_access(env, "access.log", "m=" + k)
        check(len(lines) == 1 and lines[0]["status"] == 408 and
              lines[0]["reason"] == "timeout:client-body",
              "%s: access log: %r" % (k, [l["line"] for l in lines]))
        rb.settle()
        q = reqs(rb, k)
        if reaches:
            check(len(q) == 1 and q[0]["body"] == b"0123456789" and not q[0]["complete"],
                  "%s: the server saw the head and the 10 bytes sent: %s" % (
                      k, short(rb.since({}))))
            cid = q[0]["conn"]
            wait_until(lambda: rb.closed(cid) is not None, 3, "%s: server connection closed" % k)
            check(rb.closed(cid) == "eof", "%s: closed by the proxy, not the server: %r" % (
                k, rb.closed(cid)))
        else:
            check(rb.since({}) == b"", "%s: a chunked body that never began: nothing reached "
                  "the server, got %s" % (k, short(rb.since({}))))


@test
def chunked_expect_gets_100_from_gatehouse(env):
    rb = RawBackend(env)  # it answers Expect with a 100 itself: none may arrive from it
    port = free_port()
    env.gatehouse(base_conf(env) + service("front", port, servers=[("raw", rb.port)],
                                           hosts="localhost"))
    c = Client(port, env.ca)
    c.send(b"POST /echo?m=expect HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
           b"Expect: 100-continue\r\n\r\n")
    r = c.response(timeout=3, head_only=True)
    check(r.status == 100 and r.head.startswith(b"HTTP/1.1 100 Continue"),
          "100 Continue before the body: %r %s" % (r, short(r.head)))
    rb.settle()
    check(rb.since({}) == b"", "the 100 came from gatehouse: the server had nothing yet, got %s"
          % short(rb.since({})))
    c.send(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    r = c.final()
    check(r.status == 200 and r.body == b"hello world" and r.interim == [],
          "body delivered, no second 100: %r interim %r body %r" % (
              r, getattr(r, "interim", None), r.body))
    c.close()
    q = one_req(rb, "expect")
    check(values(q, "Expect") == [], "the server got no Expect: %r" % values(q, "Expect"))
    check(values(q, "Transfer-Encoding") == ["chunked"] and q["body"] == b"hello world",
          "chunked body at the server: %r %r" % (values(q, "Transfer-Encoding"), q["body"]))
