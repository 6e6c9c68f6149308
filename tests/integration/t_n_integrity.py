"""Request integrity (issue 13), against the contract in the spec: every row
is checked at the client (status, headers present or absent, closed or not)
and at the real server (rawbackend.py records every byte it received; nginx
is a second, different real server for classes a, b, g and h). A class
reports all of its failing rows at once."""
import asyncio
import base64
import hashlib
import os
import re
import ssl
import time

from harness import base_conf, check, curl, free_port, service, test, wait_until
from rawpeer import (Client, Problems, RawBackend, exchange, parse_requests, security,
                     settle, short, wait_security)

HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"]
CHUNKED_HELLO = b"5\r\nhello\r\n0\r\n\r\n"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def req(method, target, fields=(), body=b"", version="HTTP/1.1", host="localhost"):
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append("Host: " + host)
    lines += ["%s: %s" % kv for kv in fields]
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def sent_body(fields, body):
    """The body the client meant, decoded, to compare with what arrived."""
    if any(k.lower() == "transfer-encoding" for k, _ in fields):
        out = b""
        for r in parse_requests(b"X / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + body):
            out += r["body"]
        return out
    return body


def conf(env, servers, extra_services="", front_extra="", workers=1):
    """front (TLS, allowed-hosts localhost) and plain (no TLS) in front of
    the same real server(s)."""
    front, plain = free_port(), free_port()
    text = base_conf(env, workers=workers)
    text += service("front", front, servers=servers, hosts="localhost", extra=front_extra)
    text += service("plain", plain, servers=servers, hosts="localhost", tls=False,
                    extra=front_extra)
    text += extra_services
    return front, plain, text


# ---------------------------------------------------------------- server views

class ReqView:
    """What one request looked like at the real server. values(name) is the
    list of values of that field (None for a server that cannot tell);
    first is the first field's name (None if unknown); body decoded (None if
    unknown)."""

    def __init__(self, values, first=None, body=None, fields=None, first_only=False):
        self._values = values
        self.first_only = first_only  # a repeated field shows only its first value
        self.first = first
        self.body = body
        self.fields = fields

    def values(self, name):
        return self._values(name)


class RawView:
    """The recording backend: byte-exact."""
    name = "rawbackend"

    def __init__(self, rb):
        self.rb = rb

    def mark(self):
        return self.rb.mark()

    def nothing(self, mark, marker):
        self.rb.settle()
        got = self.rb.since_by_conn(mark)
        data = b"".join(d for _, d in sorted(got.items()))
        if data:
            return "server received %d bytes (conns %s): %s" % (
                len(data), sorted(c for c, d in got.items() if d), short(data))
        return None

    def request(self, mark, marker, resp):
        tag = ("?%s=" % marker).encode()
        reqs = [r for r in self.rb.requests_since(mark) if tag in r["line"]]
        if len(reqs) != 1:
            return None, "server got %d requests carrying %s (all since mark: %s)" % (
                len(reqs), marker, short(self.rb.since(mark)))
        r = reqs[0]
        if not r["complete"]:
            return None, "server got an incomplete request: %s" % short(r["head"] + r["body"])
        fields = r["fields"]
        return ReqView(lambda n: [v for k, v in fields if k.lower() == n.lower()],
                       fields[0][0].lower() if fields else "", r["body"], fields), None


def nginx_listing(names):
    return "\\n".join("%s=$http_%s" % (n, n.replace("-", "_")) for n in names) + "\\n"


class NginxView:
    """nginx: its access log ($request) says whether a request arrived; its
    /headers location answers "name=$http_name" lines. It cannot tell
    duplicates apart (except X-Forwarded-For, which it joins), nor '-' from
    '_' in names, nor the order of fields."""
    name = "nginx"

    def __init__(self, env, port):
        self.log = env.path("nginx-%d.access" % port)

    def lines(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def mark(self):
        return len(self.lines())

    def nothing(self, mark, marker):
        settle(lambda: len(self.lines()))
        # nginx may log a request late (after discarding its body): lines of
        # other rows are theirs, a final sweep catches those
        got = [l for l in self.lines()[mark:]
               if "?%s=" % marker in l or not re.search(r"\?[a-z]\d\d=", l)]
        if got:
            return "nginx logged %r" % got[:3]
        return None

    def request(self, mark, marker, resp):
        # the listing in the answer shows it arrived; nginx may log it late
        tag = "?%s=" % marker
        hits = [l for l in self.lines()[mark:] if tag in l]
        if len(hits) > 1:
            return None, "nginx logged %d requests carrying %s: %r" % (len(hits), marker, hits)
        if resp.status != 200 or b"=" not in resp.body:
            return None, "no header listing from nginx (%r)" % resp
        got = {}
        for l in resp.body.decode("latin-1").splitlines():
            k, _, v = l.partition("=")
            got[k] = v

        def values(n):
            if "_" in n:
                return None  # nginx folds '-' and '_' together: not visible here
            v = got.get(n.replace("_", "-"))
            if v is None:
                return None
            return [v] if v else []
        return ReqView(values, first_only=True), None


NGINX_NAMES = sorted(set(HOP + [
    "host", "content-length", "transfer-encoding", "x-forwarded-for", "x-forwarded-proto",
    "x-forwarded-host", "x-real-ip", "forwarded", "via", "x-secret", "x-other", "x-kept",
    "cookie", "proxy-authorization", "expect", "http2-settings"]))


def nginx_server(env):
    listing = nginx_listing(NGINX_NAMES)
    extra = """
        underscores_in_headers on;
        default_type text/plain;
        location /headers { return 200 "%s"; }
        location /echo { return 200 "echo\\n"; }
        location /ok { return 200 "ok\\n"; }
""" % listing
    return env.nginx(extra=extra)


# ---------------------------------------------------------------- row checks

def check_refusal(env, ok, r, status, reason, sec_before):
    ok(r.status == status, "client got %r, want %d" % (r, status))
    ok(r.get("connection") == "close",
       "answer has Connection %r, want close" % r.get("connection"))
    ok(r.closed, "client connection left open after the answer")
    if r.status is not None and r.status >= 400:
        got = [x["reason"] for x in wait_security(env, sec_before)]
    else:
        got = [x["reason"] for x in security(env)[sec_before:]]
    ok(reason in got, "security-log reasons %r, want %r" % (got, reason))


def check_forwarded(ok, rv, want, host="localhost", body=None):
    """The invariants of every forwarded request, then the row's own."""
    for n in HOP:
        v = rv.values(n)
        ok(v in (None, []), "server saw %s: %r" % (n, v))
    hv = rv.values("host")
    ok(hv == [host], "server saw Host %r, want exactly [%r]" % (hv, host))
    if rv.first is not None:
        ok(rv.first == "host", "first field after the request line is %r, not Host" % rv.first)
    cl, te = rv.values("content-length"), rv.values("transfer-encoding")
    if cl is not None and te is not None:
        ok(len(cl) + len(te) <= 1, "server saw framing CL %r TE %r" % (cl, te))
    for n, w in want.items():
        v = rv.values(n)
        if v is None:
            continue
        if w is None:
            ok(v == [], "server saw %s: %r, want none" % (n, v))
        elif isinstance(w, list):
            ok(v == w or v == [", ".join(w)] or (rv.first_only and v == w[:1]),
               "server saw %s %r, want %r" % (n, v, w))
        else:
            ok(v == [w], "server saw %s %r, want exactly [%r]" % (n, v, w))
    if body is not None and rv.body is not None:
        ok(rv.body == body, "server got body %s, want %s" % (short(rv.body), short(body)))


def run_refusals(env, view, port, title, rows, reason_of, path="/ok"):
    """Rows (name, method, fields, body[, reason]) that must be refused with
    400 and reach nothing at the server."""
    p = Problems(title + " @" + view.name)
    for i, row in enumerate(rows):
        name, method, fields, body = row[:4]
        reason = reason_of(row)
        ok = p.row(name)
        marker = "%s%02d" % (title[0], i)
        m, n = view.mark(), len(security(env))
        r = exchange(port, env.ca, req(method, "%s?%s=x" % (path, marker), fields, body),
                     expect=400)
        check_refusal(env, ok, r, 400, reason, n)
        bad = view.nothing(m, marker)
        ok(bad is None, str(bad))
    p.done()


def run_forwards(env, view, ports, title, rows):
    """Rows (name, method, fields, body, want[, opts]) served with 200; the
    server's view must hold `want`."""
    front, plain = ports
    p = Problems(title + " @" + view.name)
    for i, row in enumerate(rows):
        name, method, fields, body, want = row[:5]
        opts = row[5] if len(row) > 5 else {}
        ok = p.row(name)
        marker = "%s%02d" % (title[0], i)
        port = plain if opts.get("plain") else front
        host = opts.get("host", "localhost").replace("{port}", str(port))
        want = {k: (v.replace("{port}", str(port)) if isinstance(v, str) else v)
                for k, v in want.items()}
        m = view.mark()
        c = Client(port, env.ca, tls=not opts.get("plain"))
        c.send(req(method, "/headers?%s=x" % marker, fields, body, host=host))
        r = c.final()
        ok(r.status == 200, "client got %r, want 200" % r)
        ok(not r.note, "client: %s" % r.note)
        c.close()
        rv, why = view.request(m, marker, r)
        ok(rv is not None, str(why))
        if rv is not None:
            check_forwarded(ok, rv, want, host, sent_body(fields, body))
    p.done()


# ---------------------------------------------------------------- a) framing options

A_CASES = [
    # (name, method, fields, body): each 400 malformed:connection-option, nothing forwarded
    ("content-length", "POST", [("Content-Length", "5"), ("Connection", "content-length")], b"hello"),
    ("transfer-encoding", "POST", [("Transfer-Encoding", "chunked"), ("Connection", "transfer-encoding")], CHUNKED_HELLO),
    ("host", "GET", [("Connection", "host")], b""),
    ("mixed case", "POST", [("Content-Length", "5"), ("Connection", "Content-LENGTH")], b"hello"),
    ("inside a list", "POST", [("Content-Length", "5"), ("Connection", "keep-alive, content-length , x-a")], b"hello"),
    ("second Connection header", "POST", [("Transfer-Encoding", "chunked"), ("Connection", "keep-alive"), ("Connection", "Transfer-Encoding")], CHUNKED_HELLO),
    ("host in a list, upper case", "GET", [("Connection", "HOST, close")], b""),
    ("content-length 0", "POST", [("Content-Length", "0"), ("Connection", "Content-Length")], b""),
]


def a_reason(row):
    return "malformed:connection-option"


@test
def integrity_a_connection_names_framing_or_host(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    run_refusals(env, RawView(rb), front, "a-framing-options", A_CASES, a_reason)


# ---------------------------------------------------------------- b) other options

B_CASES = [
    # (name, method, fields, body, want at the server: name -> exact value | [values] | None)
    ("x-forwarded-for named", "GET", [("Connection", "X-Forwarded-For"), ("X-Forwarded-For", "6.6.6.6")], b"", {"x-forwarded-for": "127.0.0.1"}),
    ("via named", "GET", [("Connection", "Via"), ("Via", "1.0 evil")], b"", {"via": "1.1 gatehouse"}),
    ("x-forwarded-proto named", "GET", [("Connection", "X-Forwarded-Proto"), ("X-Forwarded-Proto", "http")], b"", {"x-forwarded-proto": "https"}),
    ("x-forwarded-host named", "GET", [("Connection", "X-Forwarded-Host"), ("X-Forwarded-Host", "evil.test")], b"", {"x-forwarded-host": "localhost"}),
    ("x-real-ip named", "GET", [("Connection", "X-Real-IP"), ("X-Real-IP", "6.6.6.6")], b"", {"x-real-ip": "127.0.0.1"}),
    ("forwarded named", "GET", [("Connection", "Forwarded"), ("Forwarded", "for=6.6.6.6")], b"", {"forwarded": "for=127.0.0.1;proto=https;host=localhost"}),
    ("x-secret named", "GET", [("Connection", "X-Secret"), ("X-Secret", "1"), ("X-Kept", "1")], b"", {"x-secret": None, "x-kept": "1"}),
    ("named in a list and a second Connection header", "GET", [("Connection", "keep-alive"), ("X-Secret", "1"), ("Connection", "x-other, X-Secret"), ("X-Other", "2"), ("X-Kept", "1")], b"", {"x-secret": None, "x-other": None, "x-kept": "1"}),
    ("cookie named", "GET", [("Connection", "Cookie"), ("Cookie", "session=stolen")], b"", {"cookie": None}),
    ("hop-by-hop headers", "GET", [("Connection", "keep-alive, TE"), ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"), ("TE", "trailers"), ("Trailer", "X-T")], b"", {}),
    ("content-length 0", "POST", [("Content-Length", "0")], b"", {"content-length": "0", "transfer-encoding": None}),
    ("content-length 5", "POST", [("Content-Length", "5")], b"hello", {"content-length": "5", "transfer-encoding": None}),
    ("chunked", "POST", [("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", {"transfer-encoding": "chunked", "content-length": None}),
    ("no body", "GET", [], b"", {"transfer-encoding": None, "content-length": None}),
    ("post without a body", "POST", [], b"", {"transfer-encoding": None, "content-length": None}),
]


@test
def integrity_b_connection_names_other_headers(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    run_forwards(env, RawView(rb), (front, plain), "b-other-options", B_CASES)


# ---------------------------------------------------------------- c) smuggling

@test
def integrity_c_smuggling_through_connection_content_length(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    p = Problems("c-smuggling")
    inner = b"GET /secret/passwd HTTP/1.1\r\nHost: x\r\n\r\n"
    ok = p.row("smuggling POST")
    n = len(security(env))
    r = exchange(front, env.ca, req("POST", "/ok?c=smuggle", [
        ("Content-Length", str(len(inner))), ("Connection", "Content-Length")], inner),
        expect=400)
    check_refusal(env, ok, r, 400, "malformed:connection-option", n)
    for k in (1, 2):
        ok = p.row("innocent client %d" % k)
        r = exchange(front, env.ca, req("GET", "/headers?c=innocent-%d" % k,
                                        [("X-Marker", "innocent-%d" % k)]), check_close=False)
        ok(r.status == 200, "client got %r, want 200" % r)
        ok(b"GET /headers?c=innocent-%d " % k in r.body and b"X-Marker: innocent-%d" % k in r.body,
           "got someone else's response: %s" % short(r.body))
    ok = p.row("server never saw /secret")
    rb.settle()
    everything = b"".join(rb.data(c) for c in rb.conns())
    ok(b"/secret" not in everything, "server received /secret: %s" % short(
        everything[everything.find(b"/secret") - 60:] if b"/secret" in everything else b""))
    p.done()


# ---------------------------------------------------------------- d) response side

R = b"HTTP/1.1 200 OK\r\n"
D_CASES = [
    # (name, canned response, after, status, reason)
    ("content-length named", R + b"Content-Length: 5\r\nConnection: Content-Length\r\n\r\nhello", "keep", 502, "upstream:connection-option"),
    ("transfer-encoding named, chunked", R + b"Transfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "keep", 502, "upstream:connection-option"),
    ("host named", R + b"Content-Length: 5\r\nConnection: host\r\n\r\nhello", "keep", 502, "upstream:connection-option"),
    ("in a list, mixed case", R + b"Content-Length: 5\r\nConnection: keep-alive, CONTENT-Length\r\n\r\nhello", "keep", 502, "upstream:connection-option"),
    ("in a second Connection header", R + b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\nConnection: transfer-encoding\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "keep", 502, "upstream:connection-option"),
    ("with a smuggled second response", R + b"Content-Length: 5\r\nConnection: Content-Length\r\n\r\nhello" + R + b"Content-Length: 6\r\n\r\nPOISON", "keep", 502, "upstream:connection-option"),
    ("X-Internal named is stripped", R + b"Connection: X-Internal\r\nX-Internal: secret\r\nContent-Length: 2\r\n\r\nok", "keep", 200, None),
    ("close-delimited is re-framed chunked", R + b"Connection: close\r\n\r\nuntil-close", "close", 200, None),
]


@test
def integrity_d_response_connection_options(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    p = Problems("d-response-options")
    for i, (name, raw, after, status, reason) in enumerate(D_CASES):
        rb.script("d%d" % i, raw, after)
        ok = p.row(name)
        m, n = rb.mark(), len(security(env))
        c = Client(front, env.ca)
        c.send(req("GET", "/resp/d%d" % i))
        r = c.final(timeout=2)
        framing = r.all("content-length") + r.all("transfer-encoding")
        ok(len(framing) <= 1, "client saw two framing headers: %r" % r.fields)
        if status == 502:
            r.closed = c.is_closed(1.0 if r.status == 502 else 0.2)
            check_refusal(env, ok, r, 502, reason, n)
            ok(b"POISON" not in r.body + c.buf, "client got the smuggled response")
            carried = [cid for cid, d in rb.since_by_conn(m).items() if b"/resp/d%d " % i in d]
            ok(len(carried) == 1, "request reached the server on conns %r" % carried)
            for cid in carried:
                try:  # waited for only when the proxy did refuse (keeps failing runs short)
                    wait_until(lambda: rb.closed(cid) is not None, 2 if r.status == 502 else 0.1,
                               "upstream close")
                except AssertionError:
                    pass
                ok(rb.closed(cid) == "eof", "upstream connection %d not closed by the proxy "
                   "after the bad response (%r)" % (cid, rb.closed(cid)))
        else:
            ok(r.status == 200, "client got %r, want 200" % r)
            ok(not r.note, "client: %s" % r.note)
            ok(r.get("x-internal") is None, "client saw X-Internal: %r" % r.get("x-internal"))
            ok(not any("x-internal" in v.lower() for v in r.all("connection")),
               "client saw Connection %r" % r.all("connection"))
            if after == "close":
                ok(r.get("transfer-encoding") == "chunked" and r.get("content-length") is None,
                   "keep-alive client got framing %r" % framing)
                ok(r.body == b"until-close", "body %s" % short(r.body))
                ok(not c.is_closed(), "keep-alive client connection was closed")
            else:
                ok(r.body == b"ok", "body %s" % short(r.body))
        c.close()
        # the next client gets its own answer, not a leftover of this one
        nr = exchange(front, env.ca, req("GET", "/ok?d=%d-next" % i), check_close=False)
        ok(nr.status == 200 and nr.body.startswith(b"ok /ok?d=%d-next " % i),
           "next client got %r %s" % (nr, short(nr.body)))
    p.done()


# ---------------------------------------------------------------- e) upgrades

def ws_key(nbytes=16):
    return base64.b64encode(os.urandom(nbytes)).decode()


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def ws_fields(key=None, version="13", upgrade="websocket", connection="Upgrade"):
    f = [("Connection", connection), ("Upgrade", upgrade)]
    if key is not False:
        f.append(("Sec-WebSocket-Key", key or ws_key()))
    if version:
        f.append(("Sec-WebSocket-Version", version))
    return f


H2C = [("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"),
       ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")]
BAD_101 = {
    "no-accept": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", None),
    "wrong-accept": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", None),
    "h2c-101": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", "compute"),
    "no-connection": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "compute"),
    "ws-ok": (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", "compute"),
}

# (name, service, method, path, fields, body, kind[, opts])
# kinds: strip = served as plain HTTP/1.1 without the upgrade (200); bad-ws /
# not-allowed = 400 with that reason, nothing forwarded; ws = 101 checked,
# then a working tunnel; bad-101 = 502 upstream:bad-upgrade, nothing
# tunnelled. opts: stripped = the server must see no Upgrade, Connection or
# HTTP2-Settings; secret = then GET /secret for evil.test on the same
# client connection (403 host-not-allowed, or closed; never at the server).
E_CASES = [
    ("h2c is stripped, then GET /secret for evil.test", "front", "GET", "/ok", H2C, b"", "strip", {"secret": 1}),
    ("h2c, the server switches anyway", "front", "GET", "/resp/h2c-101", H2C, b"", "bad-101", {"secret": 1, "stripped": 1}),
    ("foo/1 is stripped", "front", "GET", "/ok", [("Connection", "upgrade"), ("Upgrade", "foo/1")], b"", "strip"),
    ("websocket, foo is stripped", "front", "GET", "/ok", ws_fields(upgrade="websocket, foo"), b"", "strip"),
    ("websocket without a key", "front", "GET", "/ok", ws_fields(key=False), b"", "bad-ws"),
    ("websocket key of 15 bytes", "front", "GET", "/ok", ws_fields(key=ws_key(15)), b"", "bad-ws"),
    ("websocket key not base64", "front", "GET", "/ok", ws_fields(key="not*base64*at*all*!!=="), b"", "bad-ws"),
    ("websocket version 8", "front", "GET", "/ok", ws_fields(version="8"), b"", "bad-ws"),
    ("websocket without a version", "front", "GET", "/ok", ws_fields(version=None), b"", "bad-ws"),
    ("POST websocket", "front", "POST", "/ok", ws_fields(), b"", "bad-ws"),
    ("websocket with a body", "front", "GET", "/ok", ws_fields() + [("Content-Length", "5")], b"hello", "bad-ws"),
    ("websocket, correct 101, echo", "front", "GET", "/resp/ws-ok", ws_fields(), b"", "ws"),
    ("websocket in mixed case, correct 101", "front", "GET", "/resp/ws-ok", ws_fields(upgrade="WebSocket", connection="keep-alive, upgrade"), b"", "ws"),
    ("101 without Sec-WebSocket-Accept", "front", "GET", "/resp/no-accept", ws_fields(), b"", "bad-101"),
    ("101 with a wrong accept", "front", "GET", "/resp/wrong-accept", ws_fields(), b"", "bad-101"),
    ("101 with Upgrade: h2c", "front", "GET", "/resp/h2c-101", ws_fields(), b"", "bad-101"),
    ("101 without Connection: upgrade", "front", "GET", "/resp/no-connection", ws_fields(), b"", "bad-101"),
    ("101 to a request without Upgrade", "front", "GET", "/resp/ws-ok", [], b"", "bad-101", {"stripped": 1}),
]

E_CONFIG_CASES = [
    ("allowed-upgrades none: websocket is stripped", "none", "GET", "/ok", ws_fields(), b"", "strip"),
    ("allowed-upgrades none: the server's 101 anyway", "none", "GET", "/resp/ws-ok", ws_fields(), b"", "bad-101", {"stripped": 1}),
    ("upgrade-action refuse: foo/1", "refuse", "GET", "/ok", [("Connection", "upgrade"), ("Upgrade", "foo/1")], b"", "not-allowed"),
    ("upgrade-action refuse: h2c", "refuse", "GET", "/ok", H2C, b"", "not-allowed"),
    ("upgrade-action refuse: websocket, foo", "refuse", "GET", "/ok", ws_fields(upgrade="websocket, foo"), b"", "not-allowed"),
    ("upgrade-action refuse: websocket still works", "refuse", "GET", "/resp/ws-ok", ws_fields(), b"", "ws"),
    ("none + refuse: websocket", "nonerefuse", "GET", "/ok", ws_fields(), b"", "not-allowed"),
    ("none + refuse: h2c", "nonerefuse", "GET", "/ok", H2C, b"", "not-allowed"),
]


def run_upgrades(env, rb, ports, title, rows):
    for name, (raw, accept) in BAD_101.items():
        rb.script(name, raw, "echo", accept)
    p = Problems(title)
    for i, row in enumerate(rows):
        name, svc, method, path, fields, body, kind = row[:7]
        opts = row[7] if len(row) > 7 else {}
        ok = p.row(name)
        marker = "e%02d" % i
        m, n = rb.mark(), len(security(env))
        c = Client(ports[svc], env.ca)
        c.send(req(method, "%s?%s=x" % (path, marker), fields, body))
        r = c.final()
        if kind in ("bad-ws", "not-allowed"):
            r.closed = c.is_closed(1.0 if r.status == 400 else 0.2)
            check_refusal(env, ok, r, 400, {"bad-ws": "upgrade:bad-websocket",
                                            "not-allowed": "upgrade:not-allowed"}[kind], n)
            bad = RawView(rb).nothing(m, marker)
            ok(bad is None, str(bad))
            c.close()
            continue
        if kind == "strip":
            ok(r.status == 200, "client got %r, want the normal 200" % r)
            ok(r.body.startswith(b"ok /ok?%s=x " % marker.encode()), "body %s" % short(r.body))
        if kind == "strip" or opts.get("stripped"):
            rv, why = RawView(rb).request(m, marker, r)
            ok(rv is not None, str(why))
            if rv is not None:
                for h in ("upgrade", "connection", "http2-settings"):
                    ok(rv.values(h) == [], "server saw %s: %r" % (h, rv.values(h)))
        if kind == "ws":
            key = [v for k, v in fields if k == "Sec-WebSocket-Key"][0]
            ok(r.status == 101, "client got %r, want 101" % r)
            ok((r.get("upgrade") or "").lower() == "websocket", "101 Upgrade %r" % r.get("upgrade"))
            ok("upgrade" in (r.get("connection") or "").lower(),
               "101 Connection %r" % r.get("connection"))
            ok(r.get("sec-websocket-accept") == ws_accept(key),
               "101 accept %r, want %r" % (r.get("sec-websocket-accept"), ws_accept(key)))
            rv, why = RawView(rb).request(m, marker, r)
            ok(rv is not None, str(why))
            if rv is not None:
                ok(rv.values("connection") == ["Upgrade"], "server Connection %r, want "
                   "['Upgrade']" % rv.values("connection"))
                ok(rv.values("upgrade") == ["websocket"], "server Upgrade %r, want "
                   "['websocket']" % rv.values("upgrade"))
                ok(rv.values("sec-websocket-key") == [key], "server key %r" %
                   rv.values("sec-websocket-key"))
                ok(rv.values("sec-websocket-version") == ["13"], "server version %r" %
                   rv.values("sec-websocket-version"))
            if r.status == 101:
                payload = b"tunnel-bytes-%d" % i
                c.send(payload)
                end = time.time() + 3
                while payload not in c.buf and c._more(end):
                    pass
                ok(payload in c.buf, "tunnel did not echo (got %s)" % short(c.buf))
                ok(payload in rb.since(m), "tunnelled bytes did not reach the server")
        if kind == "bad-101":
            r.closed = c.is_closed(1.0 if r.status == 502 else 0.2)
            check_refusal(env, ok, r, 502, "upstream:bad-upgrade", n)
        if opts.get("secret") or kind == "bad-101":
            # whatever the first answer was, what the client sends next is a
            # new request (or nothing): never tunnelled, never past the host check
            n2 = len(security(env))
            c.send(req("GET", "/secret?%s=after" % marker, host="evil.test"))
            if kind == "strip":
                r2 = c.final()
                r2.closed = c.is_closed(1.0 if r2.status == 403 else 0.2)
                check_refusal(env, ok, r2, 403, "host-not-allowed", n2)
            rb.settle()
            got = rb.since(m)
            ok(b"/secret" not in got, "server received the follow-up: %s" % short(
                got[got.find(b"/secret") - 20:]))
        c.close()
    p.done()


@test
def integrity_e_upgrades(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    run_upgrades(env, rb, {"front": front}, "e-upgrades", E_CASES)


@test
def integrity_e_upgrade_config(env):
    rb = RawBackend(env)
    ports = {k: free_port() for k in ("none", "refuse", "nonerefuse")}
    extra = {"none": "    allowed-upgrades none",
             "refuse": "    upgrade-action refuse",
             "nonerefuse": "    allowed-upgrades none\n    upgrade-action refuse"}
    text = base_conf(env, workers=1) + "".join(
        service(k, ports[k], servers=[("raw", rb.port)], hosts="localhost", extra=extra[k])
        for k in ports)
    env.gatehouse(text)
    run_upgrades(env, rb, ports, "e-upgrade-config", E_CONFIG_CASES)


# ---------------------------------------------------------------- f) websocket echo

@test
def integrity_f_websocket_echo(env):
    import websockets  # python3-websockets 10.4, asyncio API
    wsport, front, mport = free_port(), free_port(), free_port()
    env.gatehouse(base_conf(env, workers=1) +
                  service("ws", front, servers=[("echo", wsport)], hosts="localhost") +
                  service("mgmt", mport, app="management"))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(env.cert, env.key)
    cctx = ssl.create_default_context(cafile=env.ca)
    got = {}

    async def echo(ws, path=None):
        async for msg in ws:
            await ws.send(msg)

    async def main():
        async with websockets.serve(echo, "127.0.0.1", wsport, ssl=sctx, max_size=1 << 21):
            async with websockets.connect("wss://localhost:%d/chat" % front, ssl=cctx,
                                          max_size=1 << 21, open_timeout=5,
                                          close_timeout=5) as ws:
                await ws.send("hello, text")
                got["text"] = await asyncio.wait_for(ws.recv(), 5)
                await ws.send(b"\x00\x01\xfe\xff" * 64)
                got["binary"] = await asyncio.wait_for(ws.recv(), 5)
                big = os.urandom(1 << 20)
                await ws.send(big)
                got["big"] = (await asyncio.wait_for(ws.recv(), 10)) == big
                pong = await ws.ping(b"are-you-there")
                await asyncio.wait_for(pong, 5)
                got["pong"] = True
                await ws.close(code=1000, reason="bye")
                got["close"] = (ws.close_code, ws.close_reason)
    p = Problems("f-websocket")
    ok = p.row("echo")
    try:
        asyncio.run(asyncio.wait_for(main(), 30))
    except Exception as e:  # report what worked before the failure
        ok(False, "websocket echo through gatehouse failed after %r: %r" % (sorted(got), e))
    ok(got.get("text") == "hello, text", "text echo %r" % got.get("text"))
    ok(got.get("binary") == b"\x00\x01\xfe\xff" * 64, "binary echo")
    ok(got.get("big") is True, "1 MiB message not echoed whole")
    ok(got.get("pong") is True, "ping not answered with a pong")
    ok(got.get("close") == (1000, "bye"), "close handshake %r" % (got.get("close"),))

    def metric(name):
        text = curl("--cacert", env.ca, "https://localhost:%d/metrics" % mport).stdout.decode()
        mm = re.search(r'^%s\{service="ws"\} (\S+)$' % name, text, re.M)
        return float(mm.group(1)) if mm else None
    ok = p.row("metrics")
    total = metric("gatehouse_tunnels_total")
    ok(total is not None and total >= 1,
       'gatehouse_tunnels_total{service="ws"} = %r, want >= 1' % total)
    try:
        wait_until(lambda: metric("gatehouse_tunnels_active") == 0, 3, "tunnels_active 0")
    except AssertionError:
        ok(False, 'gatehouse_tunnels_active{service="ws"} = %r after close, want 0'
           % metric("gatehouse_tunnels_active"))

    def tunnel_lines():
        try:
            with open(env.path("access.log")) as f:
                return [l.split() for l in f if " ws " in l and '"GET /chat ' in l]
        except FileNotFoundError:
            return []
    ok = p.row("access log")
    try:
        wait_until(lambda: len(tunnel_lines()) >= 2, 3, "two access-log lines")
    except AssertionError:
        pass
    lines = tunnel_lines()
    ok(len(lines) == 2 and all(l[6] == "101" for l in lines),
       "access log %r, want two status-101 lines (101 sent, tunnel ended)" % lines)
    if len(lines) == 2:
        ok(int(lines[1][7]) > 1 << 20 and int(lines[1][8]) > 1 << 20 and lines[1][-1] == "-",
           "tunnel-end line must count bytes both ways, reason '-': %r" % lines[1])
    p.done()


# ---------------------------------------------------------------- g) chunked bodies

G_CASES = [
    # (name, method, fields, chunked body, reason): 400, nothing forwarded
    ("bad size zz", "POST", [("Transfer-Encoding", "chunked")], b"zz\r\nhello\r\n0\r\n\r\n", "malformed:chunk"),
    ("size overflow", "POST", [("Transfer-Encoding", "chunked")], b"ffffffffffffffffff\r\nhello\r\n0\r\n\r\n", "malformed:chunk"),
    ("extension over max-chunk-ext", "POST", [("Transfer-Encoding", "chunked")], b"5;" + b"e" * 2000 + b"\r\nhello\r\n0\r\n\r\n", "malformed:chunk-extension-too-long"),
    ("missing CRLF after data", "POST", [("Transfer-Encoding", "chunked")], b"5\r\nhelloXX0\r\n\r\n", "malformed:chunk"),
    ("size -1", "POST", [("Transfer-Encoding", "chunked")], b"-1\r\nhello\r\n0\r\n\r\n", "malformed:chunk"),
    ("size 0x5", "POST", [("Transfer-Encoding", "chunked")], b"0x5\r\nhello\r\n0\r\n\r\n", "malformed:chunk"),
    ("leading space", "POST", [("Transfer-Encoding", "chunked")], b" 5\r\nhello\r\n0\r\n\r\n", "malformed:chunk"),
    ("bare LF after the size", "POST", [("Transfer-Encoding", "chunked")], b"5\nhello\r\n0\r\n\r\n", "malformed:chunk"),
    ("trailer obs-fold", "POST", [("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n", "malformed:chunk"),
    ("trailer control char", "POST", [("Transfer-Encoding", "chunked")], b"5\r\nhello\r\n0\r\nX-T: a\x01b\r\n\r\n", "malformed:chunk"),
]


def g_reason(row):
    return row[4]


def run_chunk_positive(env, view, front, title):
    """A short extension is accepted and not forwarded; garbage after the
    last chunk is the next request, not an error of this one."""
    p = Problems(title + " @" + view.name)
    ok = p.row("short extension")
    m = view.mark()
    r = exchange(front, env.ca, req("POST", "/echo?gp0=x", [("Transfer-Encoding", "chunked")],
                                    b"5;name=val\r\nhello\r\n0\r\n\r\n"), check_close=False)
    ok(r.status == 200, "client got %r, want 200" % r)
    rv, why = view.request(m, "gp0", r)
    ok(rv is not None, str(why))
    if rv is not None and rv.body is not None:
        ok(rv.body == b"hello", "server body %s" % short(rv.body))
        ok(b"name=val" not in view.rb.since(m), "chunk extension forwarded")
    ok = p.row("garbage after the last chunk is the next request")
    m = view.mark()
    c = Client(front, env.ca)
    c.send(req("POST", "/echo?gp1=x", [("Transfer-Encoding", "chunked")],
               CHUNKED_HELLO + b"GARBAGE\r\n\r\n"))
    r = c.final()
    ok(r.status == 200, "first answer %r, want 200 for the valid request" % r)
    r2 = c.final()
    r2.closed = c.is_closed()
    # what happens to the garbage as a request of its own is not this row's
    # business, as long as it is refused (400, or a cut) and never forwarded
    ok(r2.status == 400 or (r2.status is None and r2.closed),
       "second answer %r, want 400 (or a close) for the garbage" % r2)
    c.close()
    rv, why = view.request(m, "gp1", r)
    ok(rv is not None, str(why))
    if isinstance(view, RawView):
        view.rb.settle()
        ok(b"GARBAGE" not in view.rb.since(m), "garbage reached the server")
        if rv is not None:
            ok(rv.body == b"hello", "server body %s" % short(rv.body))
    p.done()


@test
def integrity_g_malformed_chunked(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    failures = []
    for fn in (lambda: run_refusals(env, RawView(rb), front, "g-chunked", G_CASES, g_reason,
                                    "/echo"),
               lambda: run_chunk_positive(env, RawView(rb), front, "g-chunked-valid")):
        try:
            fn()
        except AssertionError as e:
            failures.append(str(e))
    check(not failures, " | ".join(failures))


@test
def integrity_g_delayed_garbage(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    # a pooled upstream connection exists before, so "new connection" is meaningful
    exchange(front, env.ca, req("GET", "/ok?warm=1"), check_close=False)
    m, n = rb.mark(), len(security(env))
    c = Client(front, env.ca)
    t0 = time.time()
    c.send(req("POST", "/echo?g=delayed", [("Transfer-Encoding", "chunked")]) + b"5\r\nhello\r\n")

    def carrier():
        got = [cid for cid, d in rb.since_by_conn(m).items() if b"hello\r\n" in d]
        return got[0] if got else None
    try:
        wait_until(lambda: carrier() is not None, 3, "first chunk at the server")
    except AssertionError:
        check(False, "the server never saw the head and the first chunk: %s"
              % short(rb.since(m)))
    cid = carrier()
    while time.time() - t0 < 0.3:  # the client's pause is part of the scenario
        time.sleep(0.05)
    c.send(b"zz\r\n")
    r = c.final()
    r.closed = c.is_closed()
    p = Problems("g-delayed-garbage")
    ok = p.row("delayed garbage")
    check_refusal(env, ok, r, 400, "malformed:chunk", n)
    c.close()
    reqs = parse_requests(rb.since_by_conn(m).get(cid, b""))
    ok(len(reqs) == 1 and reqs[0]["line"] == b"POST /echo?g=delayed HTTP/1.1" and
       not reqs[0]["complete"] and reqs[0]["body"] == b"hello",
       "server saw %s, want the head and the first chunk only" % short(rb.data(cid)[m.get(cid, 0):]))
    ok(rb.data(cid).endswith(b"hello\r\n"), "more than the first chunk reached the server: %s"
       % short(rb.data(cid)[-40:]))
    try:
        wait_until(lambda: rb.closed(cid) is not None, 3, "upstream close")
    except AssertionError:
        pass
    ok(rb.closed(cid) == "eof", "upstream connection %d not closed by the proxy (%r)"
       % (cid, rb.closed(cid)))
    m2 = rb.mark()
    nr = exchange(front, env.ca, req("GET", "/ok?g=after-delayed"), check_close=False)
    ok(nr.status == 200, "next request got %r" % nr)
    used = [k for k, d in rb.since_by_conn(m2).items() if b"/ok?g=after-delayed" in d]
    ok(used and cid not in used, "next request went on upstream conns %r (the cut one is %d)"
       % (used, cid))
    p.done()


# ---------------------------------------------------------------- h) proxy headers

def gh_headers(host="localhost", proto="https"):
    fhost = '"%s"' % host if ":" in host else host
    return {"x-forwarded-for": "127.0.0.1", "x-forwarded-proto": proto,
            "x-forwarded-host": host, "x-real-ip": "127.0.0.1",
            "forwarded": "for=127.0.0.1;proto=%s;host=%s" % (proto, fhost),
            "via": "1.1 gatehouse"}


def merged(a, b):
    out = dict(a)
    out.update(b)
    return out


UNDERSCORE = [
    ("Transfer_Encoding", "POST", [("Content-Length", "5"), ("Transfer_Encoding", "chunked")], b"hello", {"content-length": "5", "transfer-encoding": None, "transfer_encoding": None}),
    ("Content_Length", "POST", [("Transfer-Encoding", "chunked"), ("Content_Length", "3")], CHUNKED_HELLO, {"transfer-encoding": "chunked", "content-length": None, "content_length": None}),
    ("X_Forwarded_For", "GET", [("X_Forwarded_For", "6.6.6.6")], b"", {"x-forwarded-for": "127.0.0.1", "x_forwarded_for": None}),
]
H_CASES = [
    # (name, method, fields, body, want[, opts])
    ("client proxy headers replaced", "GET", [("Forwarded", "for=6.6.6.6;proto=http"), ("X-Real-IP", "6.6.6.6"), ("Proxy-Authorization", "Basic Zm9vOmJhcg=="), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "evil.test")], b"", merged(gh_headers(), {"proxy-authorization": None})),
    ("gatehouse's own proxy headers", "GET", [], b"", gh_headers()),
    ("client Via kept before ours", "GET", [("Via", "1.0 corp-proxy")], b"", {"via": ["1.0 corp-proxy", "1.1 gatehouse"]}),
    ("Host with a port", "GET", [], b"", gh_headers("localhost:{port}"), {"host": "localhost:{port}"}),
    ("plain listener", "GET", [("X-Forwarded-Proto", "https")], b"", gh_headers(proto="http"), {"plain": True}),
] + [("%s dropped" % u[0],) + u[1:] for u in UNDERSCORE]


@test
def integrity_h_proxy_headers_and_names(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    run_forwards(env, RawView(rb), (front, plain), "h-proxy-headers", H_CASES)


@test
def integrity_h_underscore_refuse(env):
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)], front_extra="    underscore-headers refuse")
    env.gatehouse(text)
    run_refusals(env, RawView(rb), front, "h-underscore-refuse", UNDERSCORE,
                 lambda row: "malformed:header-underscore")


# ---------------------------------------------------------------- i) HTTP/1.0 Expect

@test
def integrity_i_http10_expect_ignored(env):
    rb = RawBackend(env)  # it answers Expect with a 100, as a real server would
    front, plain, text = conf(env, [("raw", rb.port)])
    env.gatehouse(text)
    p = Problems("i-http10-expect")
    ok = p.row("HTTP/1.0 Expect: 100-continue")
    m = rb.mark()
    c = Client(front, env.ca)
    c.send(req("POST", "/headers?i=1", [("Content-Length", "5"), ("Expect", "100-continue")],
               version="HTTP/1.0"))
    c.send(b"hello")
    r = c.final()
    ok(r.interim == [] and r.status == 200,
       "client got interim %r then %r, want a single 200" % (r.interim, r))
    c.close()
    rv, why = RawView(rb).request(m, "i", r)
    ok(rv is not None, str(why))
    if rv is not None:
        ok(rv.values("expect") == [], "server saw Expect %r" % rv.values("expect"))
        ok(rv.body == b"hello", "server body %s" % short(rv.body))
        ok(rv.values("content-length") == ["5"], "server CL %r" % rv.values("content-length"))
    p.done()


# ---------------------------------------------------------------- j) nginx

@test
def integrity_j_same_rows_against_nginx(env):
    ng = nginx_server(env)
    front, plain, text = conf(env, [("nginx", ng)])
    env.gatehouse(text)
    view = NginxView(env, ng)
    failures = []
    for fn in (lambda: run_refusals(env, view, front, "a-framing-options", A_CASES, a_reason),
               lambda: run_forwards(env, view, (front, plain), "b-other-options", B_CASES),
               lambda: run_refusals(env, view, front, "g-chunked", G_CASES, g_reason, "/echo"),
               lambda: run_forwards(env, view, (front, plain), "h-proxy-headers", H_CASES)):
        try:
            fn()
        except AssertionError as e:
            failures.append(str(e))
    # a refused row that nginx logged only later (after its window) still counts
    settle(lambda: len(view.lines()), quiet=0.3)
    late = [l for l in view.lines() if re.search(r"\?[ag]\d\d=", l)]
    if late:
        failures.append("nginx logged refused rows: %r" % late[:4])
    check(not failures, " | ".join(failures))


# ---------------------------------------------------------------- e) method case

@test
def integrity_e_lowercase_head_is_an_unknown_method(env):
    """Methods are case-sensitive (RFC 9110 9.1): to the real server "head"
    is not HEAD, and it answers with a body. A proxy that took it for HEAD
    would read that answer as bodiless and leave the body on the connection,
    to be read as the next response. The default allowed-methods refuses
    both spellings (405); an operator may list them, and then they pass as
    the methods they are."""
    rb = RawBackend(env)
    front, plain, text = conf(env, [("raw", rb.port)],
                              front_extra="    allowed-methods GET HEAD head Head\n")
    env.gatehouse(text)
    p = Problems("e-method-case")
    for port, tls, label in ((front, True, b"tls"), (plain, False, b"plain")):
        for method in (b"head", b"Head"):
            ok = p.row("%s then GET on one connection (%s)" % (method.decode(), label.decode()))
            m = rb.mark()
            first = b"%s /ok?c=%s-%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % (method, method, label)
            second = b"GET /ok?c=next-%s HTTP/1.1\r\nHost: localhost\r\n\r\n" % label
            c = Client(port, env.ca, tls=tls)
            c.send(first)
            r1 = c.final()
            c.send(second)
            r2 = c.final()
            c.close()
            ok(r1.status == 200 and r1.body.startswith(b"ok /ok?c=%s-%s " % (method, label)),
               "client got %r %s for the %s request" % (r1, short(r1.body), method.decode()))
            ok(r2.status == 200 and r2.body.startswith(b"ok /ok?c=next-%s " % label),
               "client got %r %s for the GET after it" % (r2, short(r2.body)))
            rb.settle()
            reqs = rb.requests_since(m)
            got = rb.since(m)
            ok(got.startswith(b"%s /ok?c=%s-%s HTTP/1.1\r\n" % (method, method, label)),
               "server got %s" % short(got))
            ok(len(reqs) == 2 and b"GET /ok?c=next-%s HTTP/1.1\r\n" % label in got,
               "server got %d requests: %s" % (len(reqs), short(got, 400)))
    p.done()
