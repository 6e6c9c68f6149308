"""Second hostile review (issue 13): attacks on the fixes of t_p_hostile and
on what it did not cover (WebSocket tunnels, HOLD_BODY, retries,
persistence with failover, trusted proxies with accept-time limits,
timeouts). Every row checks what the client got AND what reached the real
server. Rows that pass are attacks that held; rows that fail are findings
(see the review report). A class reports all of its failing rows at once.

The real server is Smart, a plain-HTTP server in this process (t_p_hostile's
Scripted with one handler that reads Content-Length and chunked bodies and
acts by path), or rawbackend.py where its recording is enough."""
import base64
import hashlib
import re
import select
import socket
import ssl
import threading
import time

from harness import base_conf, free_port, service, test, wait_until
from rawpeer import (Client, Problems, RawBackend, parse_requests, security, send_while_reading,
                     short)
from t_n_integrity import WS_GUID, req, ws_fields, ws_key
from t_p_hostile import Scripted, access_lines, metrics


# ---------------------------------------------------------------- the real server

class Smart(Scripted):
    """Scripted with a handler chosen by the request path (see act()).
    name tags every answer; shared holds flags several servers agree on;
    rcvbuf shrinks the receive buffer of accepted connections."""

    def __init__(self, name, shared=None, rcvbuf=None):
        self.name = name.encode()
        self.shared = shared if shared is not None else {}
        self.heads = []  # (cid, head bytes, body bytes) of every request read whole
        self.bodies_seen = []  # (cid, target, body length) of every body read
        Scripted.__init__(self, Smart.serve)
        if rcvbuf:
            self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)

    def read_head(self, c, cid, buf):
        while b"\r\n\r\n" not in buf:
            buf += self.recv(c, cid)
        head, _, buf = buf.partition(b"\r\n\r\n")
        return head, buf

    def read_body(self, c, cid, head, buf):
        if re.search(rb"\r\ntransfer-encoding: *chunked", head, re.I):
            body = b""
            while True:
                while b"\r\n" not in buf:
                    buf += self.recv(c, cid)
                line, _, buf = buf.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    while not buf.startswith(b"\r\n"):
                        if b"\r\n" in buf:
                            buf = buf.partition(b"\r\n")[2]  # a trailer line
                        else:
                            buf += self.recv(c, cid)
                    return body, buf[2:]
                while len(buf) < size + 2:
                    buf += self.recv(c, cid)
                body += buf[:size]
                buf = buf[size + 2:]
        m = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
        n = int(m.group(1)) if m else 0
        while len(buf) < n:
            buf += self.recv(c, cid)
        return buf[:n], buf[n:]

    def reply(self, c, text, status=200, extra=b""):
        c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" % (status, len(text), extra)
                  + text)

    @staticmethod
    def serve(s, c, cid):
        buf = b""
        while True:
            head, buf = s.read_head(c, cid, buf)
            line = head.split(b"\r\n")[0]
            target = line.split(b" ")[1]
            path = target.split(b"?")[0]
            r = s.act(c, cid, head, target, path, buf)
            if r is None:
                return
            buf = r

    def tag(self, cid, target):
        return b"%s conn=%d %s" % (self.name, cid, target)

    def act(self, c, cid, head, target, path, buf):
        """Returns what is left of buf after the request, or None to stop."""
        if path == b"/early":  # answers before reading the body, then drains it
            time.sleep(0.4)
            extra = b"WWW-Authenticate: NTLM\r\n" if b"ntlm" in target else b""
            status = 401 if extra else 304 if b"304" in target else 200
            if status == 304:
                c.sendall(b"HTTP/1.1 304 Not Modified\r\n\r\n")
            else:
                self.reply(c, b"early", status, extra)
            time.sleep(0.6)
            body, buf = self.read_body(c, cid, head, buf)
            with self.lock:
                self.bodies_seen.append((cid, target, len(body)))
            return buf
        if path == b"/die-head":  # the head arrived: close at once
            with self.lock:
                self.heads.append((cid, head, b""))
            return None
        body, buf = self.read_body(c, cid, head, buf)
        with self.lock:
            self.heads.append((cid, head, body))
            self.bodies_seen.append((cid, target, len(body)))
        if path == b"/die-body":
            return None
        if path == b"/die-mid-head":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Le")
            return None
        if path == b"/die-mid-body":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-ten!!")
            return None
        if path == b"/once-die":  # the first server to see it dies; the next answers
            with self.lock:
                first = not self.shared.get(target)
                self.shared[target] = self.name
            if first:
                return None
        if path == b"/hang":
            time.sleep(float(re.search(rb"t=([\d.]+)", target).group(1)))
        if path == b"/trickle":  # a 102 every 200 ms for 4 s, then the answer
            for _ in range(20):
                c.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")
                time.sleep(0.2)
        if path == b"/ntlm":  # a keep-alive answer, then (close=1) an idle close
            self.reply(c, self.tag(cid, target), 401, b"WWW-Authenticate: NTLM\r\n")
            if b"close=1" in target:
                time.sleep(0.3)
                return None
            return buf
        if path == b"/ws":
            return self.websocket(c, cid, head, target, buf)
        if path == b"/chunked":
            c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            return buf
        self.reply(c, self.tag(cid, target))
        return buf

    def websocket(self, c, cid, head, target, buf):
        key = re.search(rb"\r\nsec-websocket-key: *(\S+)", head, re.I).group(1)
        acc = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        pre = b""
        if b"interim" in target:
            pre = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        if b"badacc" in target:
            acc = b"dGhlIHNhbXBsZSBub25jZQ=="
        c.sendall(pre + b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc + b"\r\n\r\n")
        m = re.search(rb"tail=(\d+)", target)
        if m:  # a burst, then close
            n = int(m.group(1))
            blob = b"T" * 65536
            sent = 0
            while sent < n:
                k = min(len(blob), n - sent)
                c.sendall(blob[:k])
                sent += k
            c.shutdown(socket.SHUT_WR)
            time.sleep(3)
            return None
        if b"second" in target:  # a second HTTP response right behind the 101
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECOND")
        if b"sink" in target:  # reads late, counts until EOF
            time.sleep(1.0)
            total = len(buf)
            try:
                while True:
                    total += len(self.recv(c, cid))
            except EOFError:
                pass
            with self.lock:
                self.info["sink-%d" % cid] = total
            return None
        if b"pong" in target:  # "ping" in, "pong" out 300 ms later
            while b"ping" not in buf:
                try:
                    buf += self.recv(c, cid)
                except EOFError:
                    break
            time.sleep(0.3)
            c.sendall(b"pong")
            time.sleep(1)
            return None
        try:  # echo until EOF
            if buf:
                c.sendall(buf)
            while True:
                c.sendall(self.recv(c, cid))
        except EOFError:
            with self.lock:
                self.info["eof-%d" % cid] = time.time()
        return None

    def reqs(self, marker):
        with self.lock:
            return [(cid, h, b) for cid, h, b in self.heads if marker in h.split(b"\r\n")[0]]

    def raw_has(self, marker):
        return any(marker in d for d in self.conns().values())


def plain_client(port, src=None, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if src:
        s.bind((src, 0))
    s.settimeout(3)
    s.connect(("127.0.0.1", port))
    c = Client.__new__(Client)
    c.s, c.buf, c.eof = s, b"", False
    return c


def tls_client(port, ca, src=None, rcvbuf=None):
    c = plain_client(port, src, rcvbuf)
    ctx = ssl.create_default_context(cafile=ca)
    c.s = ctx.wrap_socket(c.s, server_hostname="localhost")
    return c


def read_until_eof(c, timeout):
    end = time.time() + timeout
    while c._more(end):
        pass
    return c.eof


def ws_req(target, extra=()):
    return req("GET", target, ws_fields() + list(extra))


def mgmt(env, mport):
    return service("mgmt", mport, app="management")


# ---------------------------------------------------------------- a) tunnels

@test
def r_hostile2_a_websocket_tunnels(env):
    srv = Smart("ws", rcvbuf=8192)
    port, plain, mport, tport = free_port(), free_port(), free_port(), free_port()
    text = base_conf(env, workers=1)
    text += service("ws", port, servers=[("s", srv.port)], reencrypt=False, hosts="localhost")
    text += service("wsplain", plain, servers=[("s", srv.port)], reencrypt=False,
                    hosts="localhost", tls=False)
    text += service("wst", tport, servers=[("s", srv.port)], reencrypt=False,
                    hosts="localhost", extra="    tunnel-timeout 1s\n    idle-timeout 30s")
    text += mgmt(env, mport)
    env.gatehouse(text)
    p = Problems("a-tunnels")

    ok = p.row("server sends 12 MiB then closes; a slow client still gets every byte")
    n = 12 << 20  # more than the kernel buffers on the way (tcp_wmem max 4 MiB)
    c = tls_client(port, env.ca, rcvbuf=8192)
    c.send(ws_req("/ws?tail=%d" % n))
    r = c.final()
    ok(r.status == 101, "client got %r" % r)
    time.sleep(1.0)  # the server has sent all and closed; gatehouse holds the tail
    read_until_eof(c, 10)
    ok(len(c.buf) == n, "client got %d of %d bytes before the close" % (len(c.buf), n))
    c.close()

    ok = p.row("client sends 12 MiB then half-closes; the slow server still gets every byte")
    before = set(srv.conns())
    c = plain_client(plain)
    c.send(ws_req("/ws?sink=1"))
    r = c.final()
    ok(r.status == 101, "client got %r" % r)
    c.s.settimeout(10)
    c.send(b"U" * n)
    c.s.shutdown(socket.SHUT_WR)
    new = [k for k in srv.conns() if k not in before]
    try:
        wait_until(lambda: new and ("sink-%d" % new[0]) in srv.info, 8, "server EOF")
    except AssertionError:
        pass
    got = srv.info.get("sink-%d" % new[0]) if new else None
    ok(got == n, "server got %r of %d bytes after the client's half-close" % (got, n))
    c.close()

    ok = p.row("client half-closes after 'ping'; the server's later 'pong' still arrives")
    c = plain_client(plain)
    c.send(ws_req("/ws?pong=1"))
    r = c.final()
    ok(r.status == 101, "client got %r" % r)
    c.send(b"ping")
    c.s.shutdown(socket.SHUT_WR)
    read_until_eof(c, 3)
    ok(c.buf == b"pong", "client got %s after its half-close" % short(c.buf))
    c.close()

    ok = p.row("bytes pipelined right behind the upgrade request reach the server once, after")
    before = set(srv.conns())
    c = tls_client(port, env.ca)
    c.send(ws_req("/ws?echo=1") + b"EARLY-FRAME")
    r = c.final()
    ok(r.status == 101, "client got %r" % r)
    end = time.time() + 3
    while b"EARLY-FRAME" not in c.buf and c._more(end):
        pass
    ok(c.buf == b"EARLY-FRAME", "client got back %s" % short(c.buf))
    c.close()
    new = [srv.conns()[k] for k in srv.conns() if k not in before]
    ok(len(new) == 1 and new[0].count(b"EARLY-FRAME") == 1 and
       new[0].index(b"EARLY-FRAME") > new[0].index(b"\r\n\r\n"),
       "server saw %s" % [short(d[-60:]) for d in new])

    ok = p.row("100 and 103 before a checked 101: passed, then the tunnel works")
    c = tls_client(port, env.ca)
    c.send(ws_req("/ws?interim=1"))
    r = c.final()
    ok(r.status == 101 and r.interim == [100, 103], "client got %r after %r" % (
        r, getattr(r, "interim", None)))
    c.send(b"hello-after-interim")
    end = time.time() + 3
    while b"hello-after-interim" not in c.buf and c._more(end):
        pass
    ok(c.buf == b"hello-after-interim", "echo %s" % short(c.buf))
    c.close()

    ok = p.row("100 then a 101 with a wrong accept: 502, nothing tunnelled")
    before = dict(srv.conns())
    c = tls_client(port, env.ca)
    c.send(ws_req("/ws?interim=1&badacc=1"))
    r = c.final()
    ok(r.status == 502, "client got %r" % r)
    c.send(b"MUST-NOT-PASS")
    ok(c.is_closed(1.5), "client connection still open")
    c.close()
    time.sleep(0.3)
    ok(not any(b"MUST-NOT-PASS" in d[len(before.get(k, b"")):] for k, d in srv.conns().items()),
       "tunnelled after a bad 101")

    ok = p.row("a second HTTP response behind the 101 is tunnel bytes, not a response")
    c = tls_client(port, env.ca)
    c.send(ws_req("/ws?second=1&echo=1"))
    r = c.final()
    ok(r.status == 101, "client got %r" % r)
    end = time.time() + 2
    while len(c.buf) < 44 and c._more(end):
        pass
    ok(c.buf == b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECOND",
       "client got %s" % short(c.buf))
    c.close()

    ok = p.row("tunnel-timeout closes a silent tunnel on both sides")
    before = set(srv.conns())
    c = tls_client(tport, env.ca)
    c.send(ws_req("/ws?echo=1"))
    r = c.final()
    ok(r.status == 101, "client got %r" % r)
    t0 = time.time()
    closed = read_until_eof(c, 4)
    took = time.time() - t0
    ok(closed and 0.8 < took < 3, "client closed %r after %.1f s (tunnel-timeout 1s)" % (
        closed, took))
    new = [k for k in srv.conns() if k not in before]
    try:
        wait_until(lambda: new and ("eof-%d" % new[0]) in srv.info, 3, "server EOF")
    except AssertionError:
        pass
    ok(new and ("eof-%d" % new[0]) in srv.info, "server side of the tunnel not closed")
    c.close()

    ok = p.row("tunnels counted; the gauge back to 0")

    def zero():
        v = metrics(env, mport, "ws")
        v.update({k + "@plain": x for k, x in metrics(env, mport, "wsplain").items()})
        v.update({k + "@t": x for k, x in metrics(env, mport, "wst").items()})
        return v
    try:
        wait_until(lambda: all(zero().get(k, 0) == 0 for k in (
            "gatehouse_tunnels_active", "gatehouse_tunnels_active@plain",
            "gatehouse_tunnels_active@t")), 5, "tunnels gauge 0")
    except AssertionError:
        pass
    v = zero()
    ok(v.get("gatehouse_tunnels_active") == 0 and v.get("gatehouse_tunnels_active@plain") == 0
       and v.get("gatehouse_tunnels_active@t") == 0, "tunnels active %r" % {
           k: x for k, x in v.items() if "tunnels" in k})
    ok(v.get("gatehouse_tunnels_total") == 4 and v.get("gatehouse_tunnels_total@plain") == 2
       and v.get("gatehouse_tunnels_total@t") == 1, "tunnels total %r" % {
           k: x for k, x in v.items() if "tunnels_total" in k})
    ok(v.get("gatehouse_internal_errors_total", 0) == 0, "internal errors")
    p.done()


# ---------------------------------------------------------------- b) HOLD_BODY

@test
def r_hostile2_b_hold_body(env):
    rb = RawBackend(env)
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "hold", port, servers=[("raw", rb.port)], hosts="localhost"))
    p = Problems("b-hold-body")
    te = [("Transfer-Encoding", "chunked")]

    def sent(marker):
        rb.settle()
        return [x for x in rb.requests_since(m) if marker in x["line"]]

    ok = p.row("Expect: 100-continue + chunked: 100 from gatehouse, body once, no Expect")
    m = rb.mark()
    c = Client(port, rb.env.ca)
    c.send(req("POST", "/echo?b=1", te + [("Expect", "100-continue")]))
    r = c.response(timeout=2)
    ok(r.status == 100, "client got %r before its body" % r)
    ok(rb.since(m) == b"", "server saw bytes before the first chunk: %s" % short(rb.since(m)))
    c.send(b"5\r\nhello\r\n0\r\n\r\n")
    r = c.final()
    ok(r.status == 200 and r.body == b"hello", "client got %r %s" % (r, short(r.body)))
    s = sent(b"b=1")
    ok(len(s) == 1 and s[0]["body"] == b"hello" and
       not any(k.lower() == "expect" for k, _ in s[0]["fields"]),
       "server got %s" % [short(x["head"] + x["body"]) for x in s])
    c.close()

    ok = p.row("a first chunk line in one-byte writes")
    m = rb.mark()
    c = Client(port, rb.env.ca)
    c.send(req("POST", "/echo?b=2", te))
    for ch in b"5;name=value\r\n":
        c.send(bytes([ch]))
        time.sleep(0.02)
    c.send(b"hello\r\n0\r\n\r\n")
    r = c.final()
    ok(r.status == 200 and r.body == b"hello", "client got %r %s" % (r, short(r.body)))
    s = sent(b"b=2")
    ok(len(s) == 1 and s[0]["body"] == b"hello" and b"name=value" not in rb.since(m),
       "server got %s" % short(rb.since(m)))
    c.close()

    for n, want in ((1024, 200), (1025, 400)):
        ok = p.row("chunk extension of %d bytes (max-chunk-ext 1k)" % n)
        m = rb.mark()
        sec = len(security(env))
        c = Client(port, rb.env.ca)
        c.send(req("POST", "/echo?b=ext%d" % n, te, b"5;" + b"e" * n + b"\r\nhello\r\n0\r\n\r\n"))
        r = c.final()
        c.close()
        ok(r.status == want, "client got %r, want %d" % (r, want))
        s = sent(b"b=ext%d" % n)
        if want == 200:
            ok(len(s) == 1 and s[0]["body"] == b"hello" and b"eeee" not in rb.since(m),
               "server got %s" % short(rb.since(m)))
        else:
            ok(rb.since(m) == b"", "server got %s" % short(rb.since(m)))
            rec = security(env)[sec:]
            ok(rec and rec[-1].get("reason") == "malformed:chunk-extension-too-long",
               "security log %r" % rec)

    ok = p.row("pipelined after a chunked body: an allowed request, then a forbidden Host")
    m = rb.mark()
    c = Client(port, rb.env.ca)
    c.send(req("POST", "/echo?b=p1", te, b"5\r\nhello\r\n0\r\n\r\n") + req("GET", "/ok?b=p2") +
           req("GET", "/secret?b=p3", host="evil.test"))
    got = [c.final(timeout=2) for _ in range(3)]
    ok([x.status for x in got] == [200, 200, 403], "client got %r" % got)
    ok(got[0].body == b"hello", "echo %s" % short(got[0].body))
    rb.settle()
    lines = [x["line"] for x in rb.requests_since(m)]
    ok(len(lines) == 2 and b"b=p1" in lines[0] and b"b=p2" in lines[1] and
       b"/secret" not in rb.since(m), "server got %r" % lines)
    c.close()

    ok = p.row("Expect + chunked, pipelined request in the same write as the body")
    m = rb.mark()
    c = Client(port, rb.env.ca)
    c.send(req("POST", "/echo?b=e1", te + [("Expect", "100-continue")],
               b"3\r\nabc\r\n0\r\n\r\n") + req("GET", "/ok?b=e2"))
    got = [c.final(timeout=2) for _ in range(2)]
    ok([x.status for x in got] == [200, 200] and got[0].body == b"abc",
       "client got %r %s" % (got, short(got[0].body)))
    rb.settle()
    lines = [x["line"] for x in rb.requests_since(m)]
    ok(len(lines) == 2, "server got %r" % lines)
    c.close()

    ok = p.row("client leaves in HOLD_BODY: nothing reaches the server, counters back")
    m = rb.mark()
    c = Client(port, rb.env.ca)
    c.send(req("POST", "/echo?b=gone", te) + b"5")
    time.sleep(0.3)
    c.close()
    rb.settle(quiet=0.5)
    ok(rb.since(m) == b"", "server got %s" % short(rb.since(m)))
    p.done()


# ---------------------------------------------------------------- c) retries

@test
def r_hostile2_c_retries_never_resend_a_body(env):
    shared = {}
    a, b = Smart("A", shared), Smart("B", shared)
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "retry", port, servers=[("a", a.port), ("b", b.port)], reencrypt=False,
        hosts="localhost", extra="    retries 3\n    server-keepalive 0"))
    p = Problems("c-retries")
    body = b"x" * 5000
    ROWS = [
        ("POST, server reads head+body then closes", "/die-body", body, 502),
        ("POST, server closes after the head", "/die-head", body, 502),
        ("POST, server dies in the middle of its response head", "/die-mid-head", body, 502),
        ("POST, server dies in the middle of its response body", "/die-mid-body", body, 200),
        ("POST without a body, server closes after the head", "/die-head", None, 502),
        ("POST chunked, server reads it then closes", "/die-body", "chunked", 502),
        ("PATCH, server reads it then closes", "/die-body", body, 502),
    ]
    for i, (name, path, bd, want) in enumerate(ROWS):
        ok = p.row(name)
        method = "PATCH" if name.startswith("PATCH") else "POST"
        target = "%s?c=%d" % (path, i)
        c = Client(port, env.ca)
        if bd is None:
            c.send(req(method, target))
        elif bd == "chunked":
            c.send(req(method, target, [("Transfer-Encoding", "chunked")],
                       b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)))
        else:
            c.send(req(method, target, [("Content-Length", str(len(bd)))], bd))
        r = c.final()
        c.close()
        ok(r.status == want, "client got %r, want %d" % (r, want))
        time.sleep(0.3)
        marker = b"?c=%d " % i
        seen = [(s.name, cid) for s in (a, b) for cid, h, _ in s.reqs(marker)]
        raw = [s.name for s in (a, b) if s.raw_has(marker)]
        ok(len(seen) <= 1 and len(raw) == 1, "the request reached %r (heads read %r)" % (
            raw, seen))

    ok = p.row("GET retried: the second server gets exactly the same head")
    c = Client(port, env.ca)
    c.send(req("GET", "/once-die?c=get", [("X-Trace", "t1"), ("Cookie", "a=b")]))
    r = c.final()
    c.close()
    ok(r.status == 200, "client got %r" % r)
    heads = [(s.name, h) for s in (a, b) for _, h, _ in s.reqs(b"?c=get ")]
    ok(len(heads) == 2 and heads[0][0] != heads[1][0] and heads[0][1] == heads[1][1],
       "heads %r" % [(n, short(h, 400)) for n, h in heads])
    p.done()


# ---------------------------------------------------------------- d) persistence with failover

@test
def r_hostile2_d_cookie_persistence_failover(env):
    shared = {}
    a, b = Smart("A", shared), Smart("B", shared)
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "sticky", port, servers=[("a", a.port), ("b", b.port)], reencrypt=False,
        hosts="localhost", extra="    persistence cookie GHS timeout 20m\n    retries 1"))
    p = Problems("d-persistence")

    def get(target, cookie=None):
        c = Client(port, env.ca)
        c.send(req("GET", target, [("Cookie", "GHS=" + cookie)] if cookie else []))
        r = c.final()
        c.close()
        sc = r.get("set-cookie")
        m = re.match(r"GHS=([^;]+)", sc or "")
        return r, m.group(1) if m else None

    ok = p.row("a cookie that names A")
    cookie = None
    for i in range(6):
        r, ck = get("/ok?d=%d" % i)
        if r.body.startswith(b"A ") and ck:
            cookie = ck
            break
    ok(cookie is not None, "no cookie for A")
    if cookie is None:
        p.done()
        return
    r, _ = get("/ok?d=stick", cookie)
    ok(r.body.startswith(b"A "), "the A cookie went to %s" % short(r.body))

    ok = p.row("A fails: the request moves to B and the client is re-pinned to B")
    a.ls.shutdown(socket.SHUT_RDWR)  # A is gone: new connections refused,
    a.ls.close()
    a.drop_all()  # and its pooled connections closed
    time.sleep(0.3)  # gatehouse sees its pooled connections to A close
    r, ck = get("/ok?d=failover", cookie)
    ok(r.status == 200 and r.body.startswith(b"B "), "client got %r %s" % (r, short(r.body)))
    ok(ck is not None, "no Set-Cookie for B after the failover (the client keeps A's cookie)")
    held = ck or cookie
    n_before = len(b.reqs(b"?d=after"))
    t0 = time.time()
    r2, _ = get("/ok?d=after", held)
    ok(r2.status == 200 and r2.body.startswith(b"B "), "next request got %r %s" % (
        r2, short(r2.body)))
    ok(len(b.reqs(b"?d=after")) == n_before + 1, "B did not get the next request")
    ok(time.time() - t0 < 1, "next request took %.1f s" % (time.time() - t0))
    p.done()


# ---------------------------------------------------------------- e) the client leaves early

@test
def r_hostile2_e_client_leaves_queued_or_early(env):
    srv = Smart("S")
    port, mport = free_port(), free_port()
    text = base_conf(env, workers=1)
    text += service("q", port, servers=[], reencrypt=False, hosts="localhost",
                    extra="    server s 127.0.0.1:%d maxconn 1\n    queue-timeout 10s" % srv.port)
    text += mgmt(env, mport)
    env.gatehouse(text)
    p = Problems("e-client-leaves")

    ok = p.row("client leaves while queued (maxconn): its request never reaches the server")
    hold = Client(port, env.ca)
    hold.send(req("GET", "/hang?t=1.5&e=hold"))
    wait_until(lambda: srv.reqs(b"e=hold"), 3, "hold request at the server")
    gone = Client(port, env.ca)
    gone.send(req("POST", "/ok?e=gone", [("Content-Length", "5")], b"hello"))
    try:
        wait_until(lambda: metrics(env, mport, "q").get("gatehouse_service_queue") == 1, 2,
                   "queued")
    except AssertionError:
        pass
    ok(metrics(env, mport, "q").get("gatehouse_service_queue") == 1, "not queued")
    gone.close()
    r = hold.final(timeout=4)
    ok(r.status == 200, "holder got %r" % r)
    hold.close()
    live = Client(port, env.ca)
    live.send(req("GET", "/ok?e=live"))
    r = live.final(timeout=4)
    live.close()
    ok(r.status == 200, "the next live client got %r" % r)
    time.sleep(0.3)
    ok(not srv.reqs(b"e=gone"), "the server got a request whose client had left: %r" % [
        short(h) for _, h, _ in srv.reqs(b"e=gone")])
    ok(metrics(env, mport, "q").get("gatehouse_service_queue") == 0, "queue gauge not 0")

    ok = p.row("pipelined next request sent while the response is pending")
    c = Client(port, env.ca)
    c.send(req("GET", "/hang?t=0.5&e=p1"))
    time.sleep(0.2)
    c.send(req("GET", "/ok?e=p2"))
    r1, r2 = c.final(), c.final()
    c.close()
    ok(r1.status == 200 and b"e=p1" in r1.body and r2.status == 200 and b"e=p2" in r2.body,
       "client got %r %s, %r %s" % (r1, short(r1.body), r2, short(r2.body)))
    p.done()


# ---------------------------------------------------------------- f) early answers

@test
def r_hostile2_f_early_answers(env):
    srv = Smart("S")
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "early", port, servers=[("s", srv.port)], reencrypt=False, hosts="localhost"))
    p = Problems("f-early-answers")
    size = 3 << 20
    ROWS = [
        ("chunked body, early 200", "/early?f=0", [("Transfer-Encoding", "chunked")]),
        ("chunked body, early 304", "/early?f=1&304", [("Transfer-Encoding", "chunked")]),
        ("NTLM-private, early 401 (CL body)", "/early?f=2&ntlm",
         [("Authorization", "NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw=="),
          ("Content-Length", str(size))]),
        ("NTLM-private, early 401 (chunked body)", "/early?f=3&ntlm",
         [("Authorization", "Negotiate YIIJvwYGKwYBBQUCoIIJszCCCa+gMDAuBgkqhkiC9xIBAgIGCSqGSIb3"),
          ("Transfer-Encoding", "chunked")]),
    ]
    for name, target, fields in ROWS:
        ok = p.row(name)
        c = Client(port, env.ca)
        c.send(req("POST", target, fields))
        chunked = fields[-1][0] == "Transfer-Encoding"
        data = b"%x\r\n%s\r\n0\r\n\r\n" % (size, b"B" * size) if chunked else b"B" * size
        # One thread sends the body and takes in what arrives meanwhile: an
        # SSL socket used from two threads at once corrupts its own stream.
        send_while_reading(c, data, 10)
        r = c.final(timeout=5)
        want = 401 if "ntlm" in target else 304 if "304" in target else 200
        ok(r.status == want, "client got %r, want %d" % (r, want))
        # the same client's next request, and another client's
        c.send(req("GET", "/ok?%s-same" % target[7:]))
        rs = c.final(timeout=3)
        n = Client(port, env.ca)
        n.send(req("GET", "/ok?%s-next" % target[7:], [("Cookie", "victim=secret")]))
        rn = n.final(timeout=3)
        n.close()
        c.close()
        ok(rn.status == 200 and b"-next" in rn.body, "the next client got %r %s" % (
            rn, short(rn.body)))
        ok(rs.status in (None, 200) and (rs.status is None or b"-same" in rs.body),
           "the same client's next request got %r %s" % (rs, short(rs.body)))
        time.sleep(0.3)
        with srv.lock:
            bodies = [(cid, t_, ln) for cid, t_, ln in srv.bodies_seen if t_.startswith(
                target.encode())]
        ok(all(ln == size for _, _, ln in bodies), "server read bodies %r" % bodies)
        for cid, d in srv.conns().items():
            if b"POST " + target.encode() not in d:
                continue
            for x in parse_requests(d):
                if x["line"].startswith(b"POST "):
                    ok(x["complete"] and len(x["body"]) == size, "conn %d: the POST's body "
                       "arrived %s with %d of %d bytes" % (
                           cid, "whole" if x["complete"] else "cut", len(x["body"]), size))
                ok(b"victim=secret" not in x["body"], "conn %d: the next client's request is "
                   "inside a body: %s" % (cid, short(x["body"][x["body"].find(b"GET /ok"):], 90)))
    p.done()


# ---------------------------------------------------------------- g) NTLM-private connection closed by the server

@test
def r_hostile2_g_private_connection_closed_by_server(env):
    srv = Smart("S")
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "ntlm", port, servers=[("s", srv.port)], reencrypt=False, hosts="localhost",
        extra="    check get /ok interval 5s timeout 1s rise 1 fall 1 start up"))
    p = Problems("g-private-closed")
    ok = p.row("server closes an idle NTLM-private connection: the next request is served, "
               "the server is not marked down")
    c = Client(port, env.ca)
    c.send(req("GET", "/ntlm?close=1&g=1", [("Authorization", "NTLM TlRMTVNTUAABAAAA")]))
    r = c.final()
    ok(r.status == 401, "first answer %r" % r)
    time.sleep(0.8)  # the server closed its side meanwhile
    c.send(req("GET", "/ok?g=2"))
    r = c.final()
    c.close()
    ok(r.status == 200 and b"g=2" in r.body, "next request on that client got %r %s" % (
        r, short(r.body)))
    time.sleep(0.2)
    n = Client(port, env.ca)
    n.send(req("GET", "/ok?g=3"))
    r = n.final()
    n.close()
    ok(r.status == 200, "another client then got %r" % r)
    # the log of the first gatehouse process
    log = open(env.path("gatehouse-0.log"), errors="replace").read()
    ok("is DOWN" not in log, "the server was marked down: %s" % [
        l for l in log.splitlines() if "DOWN" in l])
    p.done()


# ---------------------------------------------------------------- h) rules see what is sent

H_RULES = """rules edge {
    rule role deny 403 if header X-Role regex "(?i)admin"
    rule nows deny 403 if header Upgrade regex "(?i)websocket"
    rule xff deny 403 if header X-Forwarded-For regex "6[.]6[.]6[.]6"
}
"""


@test
def r_hostile2_h_rules_and_hidden_copies(env):
    rb = RawBackend(env)
    port, tport = free_port(), free_port()
    rb.script("h-ws", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\n\r\n", after="echo", accept="compute")
    text = base_conf(env, workers=1) + H_RULES
    text += service("ruled", port, servers=[("raw", rb.port)], hosts="localhost",
                    extra="    rule-set edge")
    text += service("chain", tport, servers=[("raw", rb.port)], hosts="localhost",
                    extra="    rule-set edge\n    trusted-proxies 127.0.0.0/8")
    env.gatehouse(text)
    p = Problems("h-rules")
    ROWS = [
        # (name, port, target, fields, want status, bytes the server must never see)
        ("X-Role: admin named in Connection is removed, not sent", port, "/headers?h=0",
         [("Connection", "X-Role"), ("X-Role", "admin")], 200, b"admin"),
        ("X-Role: user; Connection: x-role; X-Role: admin", port, "/headers?h=1",
         [("X-Role", "user"), ("Connection", "x-role"), ("X-Role", "admin")], 200, b"admin"),
        ("X_Role: admin then X-Role: user", port, "/headers?h=2",
         [("X_Role", "admin"), ("X-Role", "user")], 200, b"admin"),
        ("X-Role: user then X_Role: admin then X-Role: ADMIN", port, "/headers?h=3",
         [("X-Role", "user"), ("X_Role", "admin"), ("X-Role", "ADMIN")], 403, b"ADMIN"),
        ("X-Role in Connection twice, then sent", port, "/headers?h=4",
         [("Connection", "keep-alive"), ("Connection", "X-Role"), ("X-Role", "admin")], 200,
         b"admin"),
        ("rule on Upgrade vs a websocket the server gets", port, "/resp/h-ws?h=5",
         ws_fields(), 403, b"Upgrade: websocket"),
        ("rule on X-Forwarded-For vs the chain a trusted proxy's server gets", tport,
         "/headers?h=6", [("X-Forwarded-For", "6.6.6.6")], 403, b"6.6.6.6"),
    ]
    for i, (name, prt, target, fields, status, never) in enumerate(ROWS):
        ok = p.row(name)
        m = rb.mark()
        c = Client(prt, env.ca)
        c.send(req("GET", target, fields))
        r = c.final()
        c.close()
        ok(r.status == status, "client got %r, want %d" % (r, status))
        rb.settle()
        got = rb.since(m)
        ok(never not in got, "the server saw %r: %s" % (never, short(
            got[max(0, got.find(never) - 80):], 200)))
    p.done()


# ---------------------------------------------------------------- i) HTTP/1.0 with chunked, keep-alive, pipelining

@test
def r_hostile2_i_http10_chunked_keepalive_pipelined(env):
    srv = Smart("S")
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "ten", port, servers=[("s", srv.port)], reencrypt=False, hosts="localhost"))
    p = Problems("i-http10")
    for i, method in enumerate(("GET", "HEAD")):
        ok = p.row("1.0 keep-alive, %s of a chunked response, pipelined next" % method)
        c = Client(port, env.ca)
        c.send(req(method, "/chunked?i=%d" % i, [("Connection", "keep-alive")], version="HTTP/1.0")
               + req("GET", "/ok?i=%d-next" % i, [("Connection", "keep-alive")],
                     version="HTTP/1.0"))
        r = c.response(head_only=method == "HEAD")
        closed = c.is_closed(2)
        rest = c.buf
        c.close()
        ok(r.status == 200, "client got %r" % r)
        ok(not r.all("transfer-encoding"), "1.0 client got Transfer-Encoding")
        if method == "GET":
            ok(r.body + rest == b"hello world" or (r.body == b"hello world" and rest.startswith(
                b"HTTP/1.1 200")), "client got body %s + %s" % (short(r.body), short(rest)))
        else:
            ok(b"hello" not in rest, "HEAD got a body: %s" % short(rest))
        if r.body == b"hello world" and not rest:
            ok(closed, "connection left open after a close-delimited body")
            ok(r.get("connection") == "close", "Connection %r" % r.get("connection"))
        time.sleep(0.2)
        ok(len(srv.reqs(b"?i=%d " % i)) == 1, "server got the first request %d times" % len(
            srv.reqs(b"?i=%d " % i)))
    p.done()


# ---------------------------------------------------------------- j) trusted proxies and accept-time limits

@test
def r_hostile2_j_trusted_proxy_conn_limits(env):
    srv = Smart("S")
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "lim", port, servers=[("s", srv.port)], reencrypt=False, hosts="localhost",
        extra="    trusted-proxies 127.0.0.2/32\n    max-conns-per-source 2"))
    p = Problems("j-trusted-limits")

    def open_n(src, n):
        out = []
        for k in range(n):
            try:
                c = tls_client(port, env.ca, src=src)
                c.send(req("GET", "/ok?j=%s-%d" % (src, k),
                           [("X-Forwarded-For", "203.0.113.%d" % (k + 1))]))
                r = c.final(timeout=2)
                out.append((c, r.status))
            except (OSError, ssl.SSLError):
                out.append((None, None))
        return out

    ok = p.row("trusted proxy: 5 concurrent connections all served")
    t = open_n("127.0.0.2", 5)
    ok([s for _, s in t] == [200] * 5, "trusted got %r" % [s for _, s in t])
    ok = p.row("others still limited to 2 (while the proxy holds 5)")
    u = open_n("127.0.0.3", 3)
    ok([s for _, s in u][:2] == [200, 200] and u[2][1] is None,
       "untrusted got %r" % [s for _, s in u])
    for c, _ in t + u:
        if c:
            c.close()
    ok = p.row("after all closed, an untrusted source gets 2 again, not fewer")
    time.sleep(0.5)
    u = open_n("127.0.0.3", 3)
    ok([s for _, s in u][:2] == [200, 200] and u[2][1] is None,
       "untrusted got %r" % [s for _, s in u])
    for c, _ in u:
        if c:
            c.close()
    p.done()


# ---------------------------------------------------------------- k) timeouts

@test
def r_hostile2_k_timeouts(env):
    srv = Smart("S")
    port = free_port()
    env.gatehouse(base_conf(env, workers=1) + service(
        "to", port, servers=[("s", srv.port)], reencrypt=False, hosts="localhost",
        extra="    idle-timeout 20s\n    server-timeout 1s\n    client-body-timeout 1s"))
    p = Problems("k-timeouts")

    ok = p.row("server-timeout 1s is not extended by a 102 every 200 ms")
    c = Client(port, env.ca)
    t0 = time.time()
    c.send(req("GET", "/trickle?k=1"))
    r = c.final(timeout=6)
    took = time.time() - t0
    c.close()
    ok(r.status == 504 and took < 2.5, "client got %r after %.1f s" % (r, took))

    ok = p.row("client-body-timeout 1s vs a server that reads slowly: not the client's 408")
    sec = len(security(env))
    c = Client(port, env.ca)
    size = 8 << 20
    c.send(req("POST", "/hang?t=0&k=2", [("Content-Length", str(size))]))
    srv_slow = threading.Event()
    # the server reads the head, then the body after 2.5 s: make it slow
    orig = srv.read_body

    def slow_body(cc, cid, head, buf):
        if b"k=2" in head.split(b"\r\n")[0]:
            srv_slow.set()
            time.sleep(2.5)
        return orig(cc, cid, head, buf)
    srv.read_body = slow_body
    send_while_reading(c, b"Z" * size, 10)  # one thread for the SSL socket
    r = c.final(timeout=8)
    c.close()
    srv.read_body = orig
    rec = [x.get("reason") for x in security(env)[sec:]]
    ok(r.status == 200, "client got %r (security log %r) though it never stalled" % (r, rec))

    ok = p.row("client-body-timeout 1s: a client that stalls gets 408")
    c = Client(port, env.ca)
    c.send(req("POST", "/ok?k=3", [("Content-Length", "100")], b"x" * 10))
    t0 = time.time()
    r = c.final(timeout=4)
    took = time.time() - t0
    c.close()
    ok(r.status == 408 and took < 2.5, "client got %r after %.1f s" % (r, took))
    p.done()
