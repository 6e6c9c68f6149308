"""Hostile peers (review of issue 13): a request smuggler, a hostile real
server and an operator's proxy chain, each row checked at the client AND at
the real server. Rows that pass document an attack that held; rows that
fail are findings (see the review report). A class reports all of its
failing rows at once.

Two real servers are used: rawbackend.py (records every byte, canned
answers) and Scripted, a plain-HTTP server in this process whose handler a
row writes, for timings rawbackend cannot script (an answer before the
request body was read, a flood of interim responses)."""
import re
import socket
import ssl
import threading
import time

from harness import base_conf, curl, free_port, service, test, wait_until
from rawpeer import Client, Problems, RawBackend, send_while_reading, short
from t_n_integrity import conf, req, ws_fields


# ---------------------------------------------------------------- helpers

class Scripted:
    """A plain-HTTP real server: each accepted connection runs
    handler(self, sock, cid); recv() records every byte per connection."""

    def __init__(self, handler):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.handler = handler
        self.data = {}
        self.lock = threading.Lock()
        self.n = 0
        self.info = {}
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            with self.lock:
                self.n += 1
                cid = self.n
                self.data[cid] = b""
                self.socks.append(c)
            threading.Thread(target=self._run, args=(c, cid), daemon=True).start()

    def _run(self, c, cid):
        try:
            self.handler(self, c, cid)
        except (OSError, EOFError):
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass

    def recv(self, c, cid):
        d = c.recv(65536)
        if not d:
            raise EOFError
        with self.lock:
            self.data[cid] += d
        return d

    def request(self, c, cid, buf):
        """Reads one request (Content-Length bodies only): (head, body, rest)."""
        while b"\r\n\r\n" not in buf:
            buf += self.recv(c, cid)
        head, _, buf = buf.partition(b"\r\n\r\n")
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        n = int(m.group(1)) if m else 0
        while len(buf) < n:
            buf += self.recv(c, cid)
        return head, buf[:n], buf[n:]

    def conns(self):
        with self.lock:
            return dict(self.data)

    def drop_all(self):
        """Closes every connection (so no leftover state reaches the next row)."""
        with self.lock:
            socks, self.socks = self.socks, []
        for c in socks:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def answer(c, head, tag=b""):
    target = head.split(b" ", 2)[1]
    body = b"ok " + target + tag
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def metrics(env, mport, svc):
    text = curl("--cacert", env.ca, "https://localhost:%d/metrics" % mport).stdout.decode()
    out = {}
    for name, labels, value in re.findall(r'^(gatehouse_\w+)\{([^}]*)\} (\S+)$', text, re.M):
        if 'service="%s"' % svc in labels:
            key = name + ("{server}" if "server=" in labels else "")
            out[key] = out.get(key, 0) + float(value)
    return out


def access_lines(env):
    try:
        with open(env.path("access.log")) as f:
            return [l.split() for l in f if l.strip()]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------- a) pooled desync

def early_server(s, c, cid):
    """Answers a POST /early as soon as its head is in, before reading its
    body (like a 401/413 from an application), waits without reading, then
    reads (and discards) the body; other requests are answered normally."""
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            buf += s.recv(c, cid)
        early = buf.startswith(b"POST /early")
        if early:
            time.sleep(0.6)  # gatehouse's writes fill the kernel buffers meanwhile
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly")
            time.sleep(0.6)
        head, body, buf = s.request(c, cid, buf)
        if not early:  # an early answer was the answer: the body is read and discarded
            answer(c, head, b" conn=%d" % cid)


def body_runs(data, marker):
    """For the server's bytes of one connection: (declared length, body bytes
    before anything else, where the marker request starts inside the body)."""
    i = data.find(b"\r\n\r\n")
    m = re.search(rb"content-length: *(\d+)", data[:i], re.I)
    declared = int(m.group(1)) if m else 0
    body = data[i + 4:i + 4 + declared]
    run = len(body) - len(body.lstrip(b"B"))
    return declared, run, body.find(marker)


@test
def p_hostile_a_pool_desync_after_early_answer(env):
    """A client posts a body; the server answers before reading it, keeps the
    connection alive and reads slowly. Whatever gatehouse had not yet
    written of that body must never be dropped while the connection goes
    back to the pool: the next client's request would become the tail of
    the first client's body (its Cookie captured into someone's upload) and
    the next client would wait for an answer that never comes."""
    srv = Scripted(early_server)
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "early", port, servers=[("s", srv.port)], reencrypt=False, hosts="localhost"))
    p = Problems("a-pool-desync")

    # The kernel's buffers (gatehouse's send + the server's receive) are
    # measured with a body far larger than them: what arrived before the
    # connection closed is the capacity (or all of it, where gatehouse
    # forwards the rest of the body to a server that still reads).
    ok = p.row("probe: a body far larger than the buffers")
    big = 16 << 20
    before = set(srv.conns())
    c = Client(port, env.ca)
    c.send(req("POST", "/early?a=probe", [("Content-Length", str(big))]))
    # one thread both sends and reads: an SSL socket is not for two at once
    send_while_reading(c, b"B" * big, 3)
    r = c.final(timeout=5)
    ok(r.status == 200 and r.body == b"early", "client got %r %s" % (r, short(r.body)))
    c.close()
    time.sleep(0.8)
    new = [cid for cid in srv.conns() if cid not in before]
    ok(len(new) == 1, "probe used server conns %r" % new)
    cap = 0
    if new:
        declared, cap, _ = body_runs(srv.conns()[new[0]], b"")
    ok(1 << 16 < cap <= big, "capacity %d not measurable" % cap)
    if cap == big:
        # gatehouse went on forwarding the body after the early answer, as
        # long as the server read it: probe around the usual capacity then
        cap = 4 << 20
    # Bodies about the capacity: all of it leaves the client and gatehouse's
    # request is done, while its last bytes may still wait in gatehouse's
    # buffer when the early answer completes. The kernel's autotuning moves
    # the capacity a little per connection, hence several sizes.
    lost, cut = [], []
    for extra in (-6000, -2000, 2000, 5000, 8000, 11000, 14000):
        if not cap:
            break
        size = cap + extra
        srv.drop_all()
        time.sleep(0.3)  # gatehouse sees its pooled connections close
        before = dict(srv.conns())
        a = Client(port, env.ca)
        a.send(req("POST", "/early?a=%d" % extra, [("Content-Length", str(size))]))
        send_while_reading(a, b"B" * size, 5)
        ra = a.final(timeout=5)
        marker = b"victim%d" % extra
        b = Client(port, env.ca)
        b.send(req("GET", "/next?%s" % marker.decode(), [("Cookie", "session=victim-secret")]))
        rb_ = b.final(timeout=3)
        a.close()
        b.close()
        if not (rb_.status == 200 and rb_.body.startswith(b"ok /next?" + marker)):
            lost.append("%+d: A got %r %s, B got %r %s" % (
                extra, ra, short(ra.body, 20), rb_, short(rb_.body, 40)))
        for cid, data in srv.conns().items():
            data = data[len(before.get(cid, b"")):]
            if not data.startswith(b"POST /early?a=%d " % extra):
                continue
            declared, run, at = body_runs(data, b"GET /next?" + marker)
            if at >= 0:
                cut.append("%+d: server conn %d: A's body (%d declared) holds %d of its bytes, "
                           "then B's request (Cookie and all) at body offset %d: %s" % (
                               extra, cid, declared, run, at,
                               short(data[data.find(b"GET /next"):], 70)))
    ok = p.row("early answer: the next client's request is never cut into a body")
    ok(not cut, "; ".join(cut))
    ok = p.row("early answer: the next client gets its own answer")
    ok(not lost, "; ".join(lost))
    p.done()


# ---------------------------------------------------------------- b) response framing

R = b"HTTP/1.1 200 OK\r\n"
POISON = R + b"Content-Length: 6\r\n\r\nPOISON"
B_CASES = [
    # (name, version, method, fields, canned response, want status, want body,
    #  same: the client's connection must serve a next request)
    ("1.0 client, chunked response: no chunked to 1.0", "HTTP/1.0", "GET", [],
     R + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, b"hello", False),
    ("1.0 keep-alive client, chunked response: no chunked to 1.0", "HTTP/1.0", "GET",
     [("Connection", "keep-alive")],
     R + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 200, b"hello", False),
    ("1.0 client: interim 100 not passed", "HTTP/1.0", "GET", [],
     b"HTTP/1.1 100 Continue\r\n\r\n" + R + b"Content-Length: 2\r\n\r\nok", 200, b"ok", False),
    ("HEAD answered with a body and a second response", "HTTP/1.1", "HEAD", [],
     R + b"Content-Length: 5\r\n\r\nhello" + POISON, 200, b"", True),
    ("304 with a body and a second response", "HTTP/1.1", "GET", [],
     b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello" + POISON, 304, b"", True),
    ("204 claiming a body", "HTTP/1.1", "GET", [],
     b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", 502, None, False),
    ("extra response after a Content-Length body", "HTTP/1.1", "GET", [],
     R + b"Content-Length: 2\r\n\r\nok" + POISON, 200, b"ok", True),
    ("extra response after a chunked body", "HTTP/1.1", "GET", [],
     R + b"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + POISON, 200, b"ok", True),
    ("chunk extension and trailer are not passed", "HTTP/1.1", "GET", [],
     R + b"Transfer-Encoding: chunked\r\nTrailer: X-Trailer-Secret\r\n\r\n"
     b"5;evil=\"ext\"\r\nhello\r\n0\r\nX-Trailer-Secret: 1\r\n\r\n", 200, b"hello", True),
    ("two Content-Length", "HTTP/1.1", "GET", [],
     R + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok", 502, None, False),
    ("Content-Length and chunked", "HTTP/1.1", "GET", [],
     R + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
     502, None, False),
    ("obs-fold in a response header", "HTTP/1.1", "GET", [],
     R + b"X-A: a\r\n Set-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok", 502, None, False),
    ("bare CR in a response header", "HTTP/1.1", "GET", [],
     R + b"X-A: a\rSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok", 502, None, False),
    ("bare LF response head", "HTTP/1.1", "GET", [],
     b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 502, None, False),
    ("1xx claiming a body", "HTTP/1.1", "GET", [],
     b"HTTP/1.1 100 Continue\r\nContent-Length: 6\r\n\r\nPOISON" + R +
     b"Content-Length: 2\r\n\r\nok", 502, None, False),
]


@test
def p_hostile_b_response_framing(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    p = Problems("b-response-framing")
    for i, (name, version, method, fields, raw, status, body, same) in enumerate(B_CASES):
        rb.script("b%d" % i, raw)
        ok = p.row(name)
        m = rb.mark()
        c = Client(front, env.ca)
        c.send(req(method, "/resp/b%d" % i, fields, version=version))
        r = c.response(head_only=method == "HEAD")
        ok(r.status == status, "client got %r, want %d" % (r, status))
        framing = r.all("content-length") + r.all("transfer-encoding")
        ok(len(framing) <= 1, "client saw two framing headers: %r" % r.fields)
        if version == "HTTP/1.0":
            ok(not r.all("transfer-encoding"), "an HTTP/1.0 client got Transfer-Encoding %r "
               "(raw %s)" % (r.all("transfer-encoding"), short(r.head + b"\r\n\r\n" + r.body)))
        if body is not None and r.status == status:
            ok(r.body == body or (r.all("transfer-encoding") and body in r.body),
               "client body %s, want %s" % (short(r.body), short(body)))
        for h in ("x-trailer-secret", "trailer", "set-cookie"):
            ok(r.get(h) is None, "client saw %s: %r" % (h, r.get(h)))
        ok(b"evil" not in r.body and b"X-Trailer-Secret" not in r.body,
           "extension or trailer reached the client: %s" % short(r.body))
        if same and r.status == status and not c.is_closed(0.3):
            c.send(req("GET", "/ok?b=%d-same" % i))
            r2 = c.final()
            ok(r2.status == 200 and r2.body.startswith(b"ok /ok?b=%d-same " % i),
               "the same client's next request got %r %s" % (r2, short(r2.body)))
        ok(b"POISON" not in r.body + c.buf, "client got the server's extra response")
        c.close()
        nr = Client(front, env.ca)
        nr.send(req("GET", "/ok?b=%d-next" % i))
        r3 = nr.final()
        ok(r3.status == 200 and r3.body.startswith(b"ok /ok?b=%d-next " % i),
           "the next client got %r %s" % (r3, short(r3.body)))
        nr.close()
        ok(len([x for x in rb.requests_since(m) if b"/resp/b%d" % i in x["line"]]) == 1,
           "the server did not get the request exactly once")
    p.done()


# ---------------------------------------------------------------- c) interim flood

def interim_flood(s, c, cid):
    s.recv(c, cid)
    one = b"HTTP/1.1 102 Processing\r\nX-Pad: " + b"p" * 4000 + b"\r\n\r\n"
    blob = one * 64
    s.info["sent"] = 0
    c.settimeout(3)
    end = time.time() + 4
    while time.time() < end and s.info["sent"] < (64 << 20):
        c.sendall(blob)
        s.info["sent"] += len(blob)


@test
def p_hostile_c_interim_flood_to_a_client_that_does_not_read(env):
    """A real server sends 102 responses without end to a client that reads
    nothing. Back-pressure must stop reading the server (bounded memory, no
    CPU burnt), as for bodies."""
    srv = Scripted(interim_flood)
    port = free_port()
    g = env.gatehouse(base_conf(env, workers=1) + service(
        "flood", port, servers=[("s", srv.port)], reencrypt=False, hosts="localhost"))
    p = Problems("c-interim-flood")
    ok = p.row("102 flood, client not reading")
    rss0, cpu0 = g.vmrss_kb(), g.cpu_seconds()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    c = Client.__new__(Client)
    ctx = ssl.create_default_context(cafile=env.ca)
    c.s, c.buf, c.eof = ctx.wrap_socket(s, server_hostname="localhost"), b"", False
    c.send(req("GET", "/flood"))
    t0 = time.time()
    time.sleep(4.5)
    cpu = g.cpu_seconds() - cpu0
    rss = g.vmrss_kb() - rss0
    sent = srv.info.get("sent", 0)
    seen = "(server pushed %d MB of 102s, gatehouse used %.1f s CPU in %.1f s, RSS +%d MB)" % (
        sent >> 20, cpu, time.time() - t0, rss >> 10)
    ok(sent < (16 << 20), "no back-pressure on interim responses " + seen)
    ok(cpu < 1.5, "CPU burnt on one stalled exchange " + seen)
    ok(rss < 16 * 1024, "memory grew on one stalled exchange " + seen)
    c.close()
    p.done()


# ---------------------------------------------------------------- d) rules see what is sent

D_RULES = """rules edge {
    rule role deny 403 if header X-Role regex "(?i)admin"
    rule adm deny 403 if path prefix /admin
}
"""
D_CASES = [
    # (name, method, target, fields, want status, text the server must never see)
    ("one X-Role: admin", "GET", "/headers?d=0", [("X-Role", "admin")], 403, b"admin"),
    ("X-Role: user, then X-Role: admin", "GET", "/headers?d=1",
     [("X-Role", "user"), ("X-Role", "admin")], 403, b"X-Role: admin"),
    ("X-Role list 'user, admin'", "GET", "/headers?d=2", [("X-Role", "user, admin")], 403, b"admin"),
    ("x-role lower-case name", "GET", "/headers?d=3", [("x-role", "ADMIN")], 403, b"ADMIN"),
    ("X_Role (underscore) is dropped, not checked", "GET", "/headers?d=4", [("X_Role", "admin")],
     200, b"admin"),
    ("absolute-form /admin", "GET", "http://localhost/admin?d=5", [], 403, b"/admin"),
    ("//admin merged", "GET", "//admin?d=6", [], 403, b"/admin"),
    ("/%61dmin decoded", "GET", "/%61dmin?d=7", [], 403, b"dmin"),
    ("/./admin", "GET", "/./admin?d=8", [], 403, b"admin"),
    ("/x/../admin", "GET", "/x/../admin?d=9", [], 403, b"admin"),
]


@test
def p_hostile_d_rules_check_what_is_forwarded(env):
    rb = RawBackend(env)
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + D_RULES + service(
        "ruled", port, servers=[("raw", rb.port)], hosts="localhost", extra="    rule-set edge"))
    p = Problems("d-rules")
    for name, method, target, fields, status, never in D_CASES:
        ok = p.row(name)
        m = rb.mark()
        c = Client(port, env.ca)
        c.send(req(method, target, fields))
        r = c.final()
        c.close()
        ok(r.status == status, "client got %r, want %d" % (r, status))
        rb.settle()
        got = rb.since(m)
        ok(never not in got, "the server saw %r: %s" % (never, short(
            got[max(0, got.find(never) - 80):], 200)))
    p.done()


# ---------------------------------------------------------------- e) proxy chains

E_CASES = [
    # (name, trusted, XFF lines, want XFF at the server, want X-Real-IP,
    #  want Forwarded for=, want access-log client)
    ("untrusted client's XFF replaced", False, ["6.6.6.6"], "127.0.0.1", "127.0.0.1",
     "for=127.0.0.1", None),
    ("untrusted client's XFF list replaced", False, ["6.6.6.6, 127.0.0.1"], "127.0.0.1",
     "127.0.0.1", "for=127.0.0.1", None),
    ("trusted: one client address", True, ["203.0.113.7"], "203.0.113.7, 127.0.0.1",
     "203.0.113.7", "for=203.0.113.7", "203.0.113.7"),
    ("trusted: address with a port", True, ["203.0.113.7:5555"], "203.0.113.7:5555, 127.0.0.1",
     "203.0.113.7", "for=203.0.113.7", "203.0.113.7"),
    ("trusted: IPv6 in brackets with a port", True, ["[2001:db8::7]:443"],
     "[2001:db8::7]:443, 127.0.0.1", "2001:db8::7", 'for="[2001:db8::7]"', "2001:db8::7"),
    ("trusted: bare IPv6", True, ["2001:db8::7"], "2001:db8::7, 127.0.0.1", "2001:db8::7",
     'for="[2001:db8::7]"', "2001:db8::7"),
    ("trusted: spoofed left part, inner proxy trusted", True, ["6.6.6.6, 203.0.113.7, 10.1.2.3"],
     "6.6.6.6, 203.0.113.7, 10.1.2.3, 127.0.0.1", "203.0.113.7", "for=203.0.113.7",
     "203.0.113.7"),
    ("trusted: two XFF lines, rightmost wins", True, ["6.6.6.6", "203.0.113.7"],
     "6.6.6.6, 203.0.113.7, 127.0.0.1", "203.0.113.7", "for=203.0.113.7", "203.0.113.7"),
    ("trusted: junk right of a spoofed address", True, ["6.6.6.6, junk"],
     "6.6.6.6, junk, 127.0.0.1", "127.0.0.1", "for=127.0.0.1", None),
    ("trusted: 'unknown' then a real address", True, ["unknown, 203.0.113.7"],
     "unknown, 203.0.113.7, 127.0.0.1", "203.0.113.7", "for=203.0.113.7", "203.0.113.7"),
    ("trusted: empty elements", True, [" , 203.0.113.7 ,"], " , 203.0.113.7 ,, 127.0.0.1",
     "203.0.113.7", "for=203.0.113.7", "203.0.113.7"),
    ("trusted: IPv6 with a zone is junk", True, ["6.6.6.6, fe80::1%eth0"],
     "6.6.6.6, fe80::1%eth0, 127.0.0.1", "127.0.0.1", "for=127.0.0.1", None),
    ("trusted: bracket junk after the address", True, ["6.6.6.6, [2001:db8::7]x"],
     "6.6.6.6, [2001:db8::7]x, 127.0.0.1", None, None, None),
]


@test
def p_hostile_e_proxy_chains(env):
    rb = RawBackend(env)
    tport, uport = free_port(), free_port()
    text = base_conf(env, workers=1)
    text += service("chain", tport, servers=[("raw", rb.port)], hosts="localhost",
                    extra="    trusted-proxies 127.0.0.0/8 10.0.0.0/8")
    text += service("direct", uport, servers=[("raw", rb.port)], hosts="localhost")
    env.gatehouse(text)
    p = Problems("e-proxy-chains")
    for i, (name, trusted, lines, xff, real, fwd, logged) in enumerate(E_CASES):
        ok = p.row(name)
        m = rb.mark()
        n = len(access_lines(env))
        c = Client(tport if trusted else uport, env.ca)
        c.send(req("GET", "/headers?e%02d=x" % i, [("X-Forwarded-For", v) for v in lines]))
        r = c.final()
        c.close()
        ok(r.status == 200, "client got %r" % r)
        reqs = [x for x in rb.requests_since(m) if b"?e%02d=" % i in x["line"]]
        ok(len(reqs) == 1, "server got %d requests" % len(reqs))
        if not reqs:
            continue
        f = reqs[0]["fields"]

        def vals(h):
            return [v for k, v in f if k.lower() == h]
        ok(vals("x-forwarded-for") == [xff.strip()] or vals("x-forwarded-for") == [xff],
           "server X-Forwarded-For %r, want [%r]" % (vals("x-forwarded-for"), xff))
        if real is not None:
            ok(vals("x-real-ip") == [real], "server X-Real-IP %r, want [%r]" % (
                vals("x-real-ip"), real))
        else:  # the attacker-written address left of the junk is never the client
            ok(vals("x-real-ip") != ["6.6.6.6"], "X-Real-IP is the spoofed 6.6.6.6")
        fw = vals("forwarded")
        if fwd is not None:
            ok(len(fw) == 1 and fw[0].startswith(fwd + ";"), "server Forwarded %r, want %s;..." % (
                fw, fwd))
        else:
            ok(not any("6.6.6.6" in x for x in fw), "Forwarded names the spoofed 6.6.6.6")
        try:
            wait_until(lambda: len(access_lines(env)) > n, 2, "access-log line")
        except AssertionError:
            pass
        al = [l for l in access_lines(env)[n:] if any("e%02d=" % i in x for x in l)]
        if logged is not None and al:
            ok(al[0][2] == logged, "access-log client %r, want %r" % (al[0][2], logged))
        elif al:
            ok("6.6.6.6" not in al[0][2], "access-log client is the spoofed %r" % al[0][2])
    p.done()


# ---------------------------------------------------------------- f) pipelining

def pipe(*reqs_):
    return b"".join(reqs_)


F_CASES = [
    # (name, payload, want statuses in order, markers the server must see, must never see)
    ("allowed, then a forbidden Host", pipe(
        req("GET", "/ok?f=a0"), req("GET", "/secret?f=s0", host="evil.test")),
     [200, 403], [b"f=a0"], [b"/secret"]),
    ("forbidden Host first, then an allowed one", pipe(
        req("GET", "/secret?f=s1", host="evil.test"), req("GET", "/ok?f=a1")),
     [403], [], [b"/secret", b"f=a1"]),
    ("allowed, then CL+TE", pipe(
        req("GET", "/ok?f=a2"),
        req("POST", "/secret?f=s2", [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            b"0\r\n\r\n")), [200, 400], [b"f=a2"], [b"/secret"]),
    ("Connection: close, then another", pipe(
        req("GET", "/ok?f=a3", [("Connection", "close")]), req("GET", "/secret?f=s3")),
     [200], [b"f=a3"], [b"/secret"]),
    ("HTTP/1.0 without keep-alive, then another", pipe(
        req("GET", "/ok?f=a4", version="HTTP/1.0"), req("GET", "/secret?f=s4")),
     [200], [b"f=a4"], [b"/secret"]),
    ("a request inside a Content-Length body is only body", pipe(
        req("POST", "/echo?f=a5", [("Content-Length", "46")],
            b"GET /secret?f=s5 HTTP/1.1\r\nHost: evil.test\r\n\r\n"),
        req("GET", "/ok?f=b5")), [200, 200], [b"f=a5", b"f=b5"], []),
    ("GET with Content-Length 0 and a smuggled request for evil.test", pipe(
        req("GET", "/ok?f=a6", [("Content-Length", "0")]),
        req("GET", "/secret?f=s6", host="evil.test")), [200, 403], [b"f=a6"], [b"/secret"]),
    ("chunked with a trailer, then a forbidden one", pipe(
        req("POST", "/echo?f=a7", [("Transfer-Encoding", "chunked")],
            b"5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n"),
        req("GET", "/secret?f=s7", host="evil.test")), [200, 403], [b"f=a7"],
     [b"/secret", b"X-Trailer"]),
    ("websocket declined with 200, then a forbidden one", pipe(
        req("GET", "/resp/f-no101?f=a8", ws_fields()),
        req("GET", "/secret?f=s8", host="evil.test")), [200, 403], [b"f=a8"], [b"/secret"]),
    ("upgrade h2c stripped, then h2c preface", pipe(
        req("GET", "/ok?f=a9", [("Connection", "Upgrade"), ("Upgrade", "h2c")]),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), [200, 505], [b"f=a9"], [b"PRI"]),
    ("absolute-form goes out as origin-form", pipe(
        req("GET", "http://localhost/ok?f=a10"), req("GET", "/ok?f=b10")),
     [200, 200], [b"GET /ok?f=a10 ", b"f=b10"], [b"http://"]),
]


@test
def p_hostile_f_pipelining(env):
    rb = RawBackend(env)
    rb.script("f-no101", R + b"Content-Length: 2\r\n\r\nno")
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    p = Problems("f-pipelining")
    for name, payload, statuses, seen, never in F_CASES:
        ok = p.row(name)
        m = rb.mark()
        c = Client(front, env.ca)
        c.send(payload)
        got = []
        for _ in statuses:
            r = c.final(timeout=2)
            got.append(r.status)
            if r.status is None:
                break
        closed = c.is_closed(0.5)
        c.close()
        ok(got == statuses, "client got %r, want %r" % (got, statuses))
        if statuses[-1] >= 400 or len(statuses) == 1:
            ok(closed, "client connection left open after the last answer")
        rb.settle()
        data = rb.since(m)
        for s in seen:
            ok(s in data, "server never got %r" % s)
        lines = [x["line"] for x in rb.requests_since(m)]
        for s in never:
            if s.startswith(b"/"):
                ok(not any(s in l for l in lines), "server got a request line %r" % [
                    l for l in lines if s in l])
            else:
                ok(s not in data, "server saw %r: %s" % (s, short(data)))
    p.done()


# ---------------------------------------------------------------- g) every ending returns the counters

def slow_server(s, c, cid):
    buf = b""
    while True:
        head, body, buf = s.request(c, cid, buf)
        if b"/hang" in head.split(b"\r\n")[0]:
            time.sleep(30)
        elif b"/cut" in head.split(b"\r\n")[0]:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-ten!!")
            return
        else:
            answer(c, head)


@test
def p_hostile_g_counters_return_to_zero(env):
    srv = Scripted(slow_server)
    port, mport, dead = free_port(), free_port(), free_port()
    text = base_conf(env, workers=1)
    text += service("endings", port, servers=[("s", srv.port)], reencrypt=False,
                    hosts="localhost")
    text += service("mgmt", mport, app="management")
    env.gatehouse(text)
    p = Problems("g-counters")
    ends = [
        ("client gone in the middle of its body", lambda c: (
            c.send(req("POST", "/ok?g=0", [("Content-Length", "100000")], b"x" * 1000)))),
        ("server cuts its body", lambda c: (c.send(req("GET", "/cut?g=2")), c.final(2))),
        ("refused head", lambda c: (c.send(b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
                                    c.final(2))),
        ("bad chunk after a good first chunk", lambda c: (
            c.send(req("POST", "/ok?g=4", [("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n")),
            time.sleep(0.3), c.send(b"zz\r\n"), c.final(2))),
        ("normal keep-alive then close", lambda c: (c.send(req("GET", "/ok?g=5")), c.final(2))),
        # last: when it fails, its connection stays counted until server-timeout
        ("client gone while its request is at the server", lambda c: (
            c.send(req("GET", "/hang?g=1")), time.sleep(0.3))),
    ]
    names = ("gatehouse_service_connections", "gatehouse_server_active{server}")
    for name, act in ends:
        ok = p.row(name)
        base = metrics(env, mport, "endings")
        c = Client(port, env.ca)
        act(c)
        c.close()

        def settled():
            v = metrics(env, mport, "endings")
            return all(v.get(k) == base.get(k) for k in names)
        try:
            wait_until(settled, 3, "counters back")
        except AssertionError:
            v = metrics(env, mport, "endings")
            ok(False, "3 s after the client left: %s" % ", ".join(
                "%s %r (was %r)" % (k, v.get(k), base.get(k)) for k in names))
    ok = p.row("no internal errors, no tunnels left")
    v = metrics(env, mport, "endings")
    ok(v.get("gatehouse_internal_errors_total") == 0, "internal errors %r" % v.get(
        "gatehouse_internal_errors_total"))
    ok(v.get("gatehouse_tunnels_active") == 0, "tunnels active %r" % v.get(
        "gatehouse_tunnels_active"))
    p.done()
