#!/usr/bin/env python3
"""A real TLS (or plain) HTTP/1.1 backend that records, per accepted TCP
connection, the exact bytes it received (after TLS decryption), and answers
by a script the test controls. It is the "what reached the real server"
side of the request-integrity tests (rawpeer.py reads what it recorded).

Files, in the cwd (the test's folder):
  raw-PORT-N.bin      every byte received on connection N (1, 2, ...),
                      appended as it arrives
  raw-PORT.idx        one line per event: "open N", "close N eof" (the peer
                      closed or reset), "close N server" (we closed)
  rawscript-PORT.json canned responses, read again for every /resp/ request:
                      {"NAME": {"raw": "<latin-1 text>", "after": "keep" |
                      "close" | "echo", "accept": "compute" | null}}
                      accept "compute" inserts the Sec-WebSocket-Accept
                      computed from the request's Sec-WebSocket-Key

Answers, chosen by the path (only once the whole message, body included,
was received; a message it cannot frame is never answered, only recorded):
  /ok...        200, body "ok TARGET conn=N req=K"
  /headers...   200, body = the request head as received
  /echo...      200, body = the request body, decoded
  /resp/NAME    the canned response NAME
  other         404
An `Expect: 100-continue` gets a 100 before the body is read, as a real
server would send.
Usage: rawbackend.py PORT CERT KEY | PORT plain -
"""
import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import threading

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PORT = 0
IDX_LOCK = threading.Lock()


class Confused(Exception):
    """The bytes cannot be framed as HTTP/1.1: stop answering, keep recording."""


def event(text):
    with IDX_LOCK:
        with open("raw-%d.idx" % PORT, "a") as f:
            f.write(text + "\n")
            f.flush()


class Peer:
    def __init__(self, sock, cid):
        self.s = sock
        self.cid = cid
        self.buf = b""
        self.f = open("raw-%d-%d.bin" % (PORT, cid), "ab", buffering=0)

    def more(self):
        try:
            d = self.s.recv(65536)
        except (ssl.SSLError, OSError):
            d = b""
        if not d:
            raise EOFError
        self.f.write(d)
        self.buf += d

    def line(self, limit=65536):
        while b"\n" not in self.buf:
            if len(self.buf) > limit:
                raise Confused("line too long")
            self.more()
        i = self.buf.index(b"\n") + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def take(self, n):
        while len(self.buf) < n:
            self.more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def read_chunked(p):
    body = b""
    while True:
        size_line = p.line(4096)
        if not size_line.endswith(b"\r\n"):
            raise Confused("chunk size line without CRLF")
        size_txt = size_line[:-2].split(b";", 1)[0]
        if not size_txt or any(c not in b"0123456789abcdefABCDEF" for c in size_txt):
            raise Confused("bad chunk size %r" % size_txt)
        size = int(size_txt, 16)
        if size == 0:
            while True:  # trailer section
                t = p.line()
                if t == b"\r\n":
                    return body
                if not t.endswith(b"\r\n"):
                    raise Confused("trailer line without CRLF")
        body += p.take(size)
        if p.take(2) != b"\r\n":
            raise Confused("chunk data not followed by CRLF")


def read_message(p):
    """One request: (head bytes, request line, [(name, value)], body)."""
    first = p.line()
    while first == b"\r\n":  # tolerated between messages (RFC 9112 2.2)
        first = p.line()
    head = first
    if not first.endswith(b"\r\n") or first.count(b" ") < 2:
        raise Confused("not a request line: %r" % first[:80])
    fields = []
    while True:
        line = p.line()
        head += line
        if line == b"\r\n":
            break
        if not line.endswith(b"\r\n") or b":" not in line:
            raise Confused("not a header line: %r" % line[:80])
        k, _, v = line[:-2].partition(b":")
        fields.append((k, v.strip(b" \t")))
    names = [k.lower() for k, _ in fields]
    te = [v.lower() for k, v in fields if k.lower() == b"transfer-encoding"]
    cls = set(v for k, v in fields if k.lower() == b"content-length")
    expect = [v.lower() for k, v in fields if k.lower() == b"expect"]
    if b"100-continue" in expect:
        p.s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if te:
        if not te[-1].split(b",")[-1].strip() == b"chunked":
            raise Confused("transfer-encoding without chunked last")
        body = read_chunked(p)
    elif b"content-length" in names:
        if len(cls) != 1 or not next(iter(cls)).isdigit():
            raise Confused("content-length %r" % cls)
        body = p.take(int(next(iter(cls))))
    else:
        body = b""
    return head, first[:-2], fields, body


def respond(p, status, body, ctype=b"text/plain"):
    p.s.sendall(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                % (status, ctype, len(body)) + body)


def canned(name):
    try:
        with open("rawscript-%d.json" % PORT) as f:
            return json.load(f).get(name)
    except (OSError, ValueError):
        return None


def serve(p):
    nreq = 0
    while True:
        head, reqline, fields, body = read_message(p)
        nreq += 1
        parts = reqline.split(b" ")
        target = parts[1]
        path = target.split(b"?", 1)[0]
        if path == b"/ok" or path.startswith(b"/ok/"):
            respond(p, 200, b"ok %s conn=%d req=%d" % (target, p.cid, nreq))
        elif path.startswith(b"/headers"):
            respond(p, 200, head)
        elif path.startswith(b"/echo"):
            respond(p, 200, body, b"application/octet-stream")
        elif path.startswith(b"/resp/"):
            spec = canned(path[6:].decode("latin-1"))
            if spec is None:
                respond(p, 404, b"no canned response " + path)
                continue
            raw = spec["raw"].encode("latin-1")
            if spec.get("accept") == "compute":
                key = [v for k, v in fields if k.lower() == b"sec-websocket-key"]
                acc = base64.b64encode(hashlib.sha1((key[0] if key else b"") + WS_GUID).digest())
                i = raw.index(b"\r\n\r\n")
                raw = raw[:i] + b"\r\nSec-WebSocket-Accept: " + acc + raw[i:]
            p.s.sendall(raw)
            after = spec.get("after", "keep")
            if after == "close":
                return "server"
            if after == "echo":
                if p.buf:
                    p.s.sendall(p.buf)
                    p.buf = b""
                while True:
                    p.more()
                    p.s.sendall(p.buf)
                    p.buf = b""
        else:
            respond(p, 404, b"no such endpoint " + path)


def run(c, cid, ctx):
    how = "eof"
    p = None
    try:
        if ctx:
            c = ctx.wrap_socket(c, server_side=True)
        p = Peer(c, cid)
        how = serve(p) or "eof"
    except Confused as e:
        sys.stdout.write("conn %d confused: %s\n" % (cid, e))
        sys.stdout.flush()
        try:
            while True:  # keep recording what else arrives, never answer
                p.more()
                p.buf = b""
        except EOFError:
            pass
    except (EOFError, OSError, ssl.SSLError):
        pass
    finally:
        event("close %d %s" % (cid, how))
        try:
            c.close()
        except OSError:
            pass


def main():
    global PORT
    PORT = int(sys.argv[1])
    ctx = None
    if sys.argv[2] != "plain":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", PORT))
    ls.listen(512)
    print("ready", flush=True)
    cid = 0
    while True:
        c, _ = ls.accept()
        cid += 1
        open("raw-%d-%d.bin" % (PORT, cid), "ab").close()
        event("open %d" % cid)
        threading.Thread(target=run, args=(c, cid, ctx), daemon=True).start()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
