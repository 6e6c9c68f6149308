"""Helpers for the request-integrity tests: the raw recording backend
(rawbackend.py) seen from the test, a raw client that reports what it got
(status, every header line, body, whether the connection closed) without
ever raising on a timeout, and the security log."""
import json
import os
import re
import select
import socket
import ssl
import sys
import time

from harness import HERE, check, free_port, wait_until

READ_TIMEOUT = 3.0  # longest wait for one response (a bug may leave it unframed)
CLOSE_TIMEOUT = 1.0  # a refusal closes at once; this only bounds the wait when it does not


class RawBackend:
    """rawbackend.py started in env's folder; marks and views of what it got."""

    def __init__(self, env, tls=True):
        self.env = env
        self.port = free_port()
        args = [sys.executable, os.path.join(HERE, "rawbackend.py"), str(self.port)]
        args += [env.cert, env.key] if tls else ["plain", "-"]
        self.log = "rawbackend-%d.log" % self.port
        env.spawn(args, self.log)
        wait_until(lambda: "ready" in self.output(), what="raw backend on %d" % self.port)
        self.scripts = {}

    def output(self):
        try:
            with open(self.env.path(self.log), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def script(self, name, raw, after="keep", accept=None):
        """Defines the canned response served at /resp/NAME."""
        self.scripts[name] = {"raw": raw.decode("latin-1") if isinstance(raw, bytes) else raw,
                              "after": after, "accept": accept}
        tmp = self.env.path("rawscript-%d.json.tmp" % self.port)
        with open(tmp, "w") as f:
            json.dump(self.scripts, f)
        os.replace(tmp, self.env.path("rawscript-%d.json" % self.port))

    def events(self):
        try:
            with open(self.env.path("raw-%d.idx" % self.port)) as f:
                return [l.split() for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def conns(self):
        """Connection ids accepted so far, in order."""
        return [int(e[1]) for e in self.events() if e[0] == "open"]

    def closed(self, cid):
        """None while open, else "eof" (the proxy closed it) or "server"."""
        for e in self.events():
            if e[0] == "close" and int(e[1]) == cid:
                return e[2]
        return None

    def data(self, cid):
        try:
            with open(self.env.path("raw-%d-%d.bin" % (self.port, cid)), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def mark(self):
        return {c: len(self.data(c)) for c in self.conns()}

    def since_by_conn(self, mark):
        """{conn id: bytes received on it since mark} (new connections whole)."""
        out = {}
        for c in self.conns():
            d = self.data(c)[mark.get(c, 0):]
            if d or c not in mark:
                out[c] = d
        return out

    def since(self, mark):
        return b"".join(d for _, d in sorted(self.since_by_conn(mark).items()))

    def opened_since(self, mark):
        return [c for c in self.conns() if c not in mark]

    def state(self):
        return tuple((c, len(self.data(c)), self.closed(c)) for c in self.conns())

    def settle(self, quiet=0.15, limit=2.0):
        settle(self.state, quiet, limit)

    def requests_since(self, mark):
        """Every request that reached the server since mark, parsed."""
        out = []
        for cid, d in sorted(self.since_by_conn(mark).items()):
            for r in parse_requests(d):
                r["conn"] = cid
                out.append(r)
        return out


def settle(state, quiet=0.15, limit=2.0):
    """Waits until state() stayed the same for `quiet` seconds (bounded by
    limit): used before asserting that nothing reached a server, so bytes
    still in flight from the proxy are counted."""
    end = time.time() + limit
    last, since = state(), time.time()
    while time.time() < end:
        time.sleep(0.03)
        now = state()
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            return


def parse_requests(data):
    """Splits bytes a server received into requests: dicts with line,
    fields [(name, value)] (names as sent), head, body, complete."""
    out = []
    while data:
        while data.startswith(b"\r\n"):
            data = data[2:]
        if not data:
            break
        end = data.find(b"\r\n\r\n")
        if end < 0:
            out.append({"line": data.split(b"\r\n")[0], "fields": [], "head": data,
                        "body": b"", "complete": False})
            break
        head, data = data[:end + 4], data[end + 4:]
        lines = head[:-4].split(b"\r\n")
        fields = []
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            fields.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
        r = {"line": lines[0], "fields": fields, "head": head, "body": b"", "complete": True}
        te = [v.lower() for k, v in fields if k.lower() == "transfer-encoding"]
        cl = [v for k, v in fields if k.lower() == "content-length"]
        if te:
            body, rest, ok = dechunk(data)
            r["body"], r["complete"], data = body, ok, rest
        elif cl and cl[0].isdigit():
            n = int(cl[0])
            r["body"], r["complete"], data = data[:n], len(data) >= n, data[n:]
        out.append(r)
        if not r["complete"]:
            break
    return out


def dechunk(data):
    body = b""
    while True:
        i = data.find(b"\r\n")
        if i < 0:
            return body, data, False
        try:
            size = int(data[:i].split(b";")[0], 16)
        except ValueError:
            return body, b"", False
        data = data[i + 2:]
        if size == 0:
            if data.startswith(b"\r\n"):
                return body, data[2:], True
            j = data.find(b"\r\n\r\n")  # after trailer fields
            if j < 0:
                return body, data, False
            return body, data[j + 4:], True
        if len(data) < size + 2:
            return body + data[:size], b"", False
        body += data[:size]
        data = data[size + 2:]


def values(req, name):
    return [v for k, v in req["fields"] if k.lower() == name.lower()]


class Resp:
    def __init__(self):
        self.status = None
        self.fields = []  # [(name lower, value)] as received, duplicates kept
        self.body = b""
        self.head = b""
        self.closed = None
        self.note = ""

    def get(self, name):
        v = [x for k, x in self.fields if k == name.lower()]
        return v[0] if v else None

    def all(self, name):
        return [x for k, x in self.fields if k == name.lower()]

    def __repr__(self):
        return "status %r%s" % (self.status, " (%s)" % self.note if self.note else "")


class Client:
    """One client connection (TLS by default) that never raises on a slow or
    unframed answer: every read is bounded and the outcome is reported."""

    def __init__(self, port, ca, tls=True, sni="localhost"):
        s = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
        if tls:
            ctx = ssl.create_default_context(cafile=ca)
            s = ctx.wrap_socket(s, server_hostname=sni)
        self.s = s
        self.buf = b""
        self.eof = False

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def _more(self, deadline):
        if self.eof:
            return False
        left = deadline - time.time()
        if left <= 0:
            return False
        self.s.settimeout(left)
        try:
            d = self.s.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ssl.SSLError, OSError):
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def response(self, timeout=READ_TIMEOUT, head_only=False):
        """Reads one response; interim (1xx) ones are returned too."""
        r = Resp()
        deadline = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._more(deadline):
                r.note = "no response head (%s)" % ("closed" if self.eof else "timeout")
                r.head = self.buf
                return r
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        r.head = head
        lines = head.split(b"\r\n")
        m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            r.note = "not an HTTP response: %r" % lines[0][:60]
            return r
        r.status = int(m.group(1))
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            r.fields.append((k.strip().lower().decode("latin-1"),
                             v.strip().decode("latin-1")))
        if head_only or r.status < 200 or r.status in (204, 304):
            return r
        te = r.get("transfer-encoding")
        cl = r.get("content-length")
        if te is not None and "chunked" in te.lower():
            while True:
                body, rest, ok = dechunk(self.buf)
                if ok:
                    r.body, self.buf = body, rest
                    return r
                if not self._more(deadline):
                    r.body, r.note = body, "chunked body cut (%s)" % (
                        "closed" if self.eof else "timeout")
                    return r
        if cl is not None and cl.isdigit():
            n = int(cl)
            while len(self.buf) < n and self._more(deadline):
                pass
            r.body, self.buf = self.buf[:n], self.buf[n:]
            if len(r.body) < n:
                r.note = "body cut at %d of %d" % (len(r.body), n)
            return r
        while self._more(deadline):  # close-delimited
            pass
        r.body, self.buf = self.buf, b""
        if not self.eof:
            r.note = "unframed body, connection left open"
        return r

    def final(self, timeout=READ_TIMEOUT):
        """The first non-1xx response, and the interim ones before it."""
        interim = []
        while True:
            r = self.response(timeout)
            if r.status is None or r.status >= 200 or r.status == 101:
                r.interim = interim
                return r
            interim.append(r.status)

    def is_closed(self, timeout=CLOSE_TIMEOUT):
        """True when the peer closed (nothing more than what is buffered)."""
        deadline = time.time() + timeout
        while self._more(deadline):
            pass
        return self.eof

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def exchange(port, ca, payload, tls=True, check_close=True, expect=None):
    """Sends payload in one write; returns the final response with .closed.
    The wait for a close is short when the status is already not `expect`
    (the row failed anyway), so a build that fails everything stays quick."""
    c = Client(port, ca, tls=tls)
    c.send(payload)
    r = c.final()
    if check_close:
        r.closed = c.is_closed(CLOSE_TIMEOUT if expect in (None, r.status) else 0.2)
    r.extra = c.buf
    c.close()
    return r


def security(env):
    """Every security-log record so far."""
    try:
        with open(env.path("security.log")) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def wait_security(env, n, timeout=2.0):
    """Records after the first n, waiting (bounded) for at least one."""
    try:
        wait_until(lambda: len(security(env)) > n, timeout, "security-log line")
    except AssertionError:
        pass
    return security(env)[n:]


class Problems:
    """Collects every row's failures so one run reports them all."""

    def __init__(self, title):
        self.title = title
        self.rows = {}
        self.nrows = 0

    def row(self, name):
        self.nrows += 1
        self.rows.setdefault(name, [])
        return lambda cond, msg: cond or self.rows[name].append(msg)

    def done(self):
        bad = {k: v for k, v in self.rows.items() if v}
        for k, v in bad.items():
            print("  %s / %s: %s" % (self.title, k, "; ".join(v)), flush=True)
        check(not bad, "%s: %d of %d rows failed: %s" % (
            self.title, len(bad), self.nrows, ", ".join(bad)))


def short(b, n=160):
    """A printable, bounded view of bytes for failure messages."""
    s = repr(b[:n])
    return s + ("...(%d bytes)" % len(b) if len(b) > n else "")


def send_while_reading(c, data, limit):
    """Sends data in pieces, reading whatever the proxy answers in between
    (into c.buf), bounded by limit seconds."""
    end = time.time() + limit
    sock = c.s
    view = memoryview(data)
    while len(view) and time.time() < end:
        r, w, _ = select.select([sock], [sock], [], 0.5)
        if r or (hasattr(sock, "pending") and sock.pending()):
            try:
                sock.settimeout(0.5)
                d = sock.recv(65536)
                if d:
                    c.buf += d
                else:
                    c.eof = True
                    return
            except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
                pass
            except (ssl.SSLError, OSError):
                c.eof = True
                return
        if w:
            try:
                sock.settimeout(0.5)
                n = sock.send(view[:65536])
                view = view[n:]
            except (socket.timeout, ssl.SSLWantWriteError, BlockingIOError):
                pass
            except (ssl.SSLError, OSError):
                return
    sock.settimeout(5)
