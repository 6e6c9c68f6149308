#!/usr/bin/env python3
"""A real TLS (or plain) HTTP/1.1 backend for the integration tests.

Endpoints, each there to let a test observe what the proxy forwarded:
  /echo          body hashed: returns "len sha256" (Content-Length or chunked bodies)
  /headers       returns the request head exactly as received
  /conn-id       returns an id of the TCP connection the request came on
  /ntlm          401 with WWW-Authenticate: NTLM, plus the connection id
  /big?n=N       streams N bytes chunked (pattern), sha256 in trailer-free body
  /close?n=N     N bytes with no length: ends by closing the connection
  /slow?ms=M     waits M ms, then answers
  /hang          never answers
  /garbage       answers with bytes that are not HTTP
  /bad-cl        answers with two Content-Length headers
  /nocontent     204
  /ws            WebSocket upgrade: 101 (with the Accept of the key) then echoes bytes
  /whoami        this backend's port (which real server answered)
  /healthcheck.html  200, or 503 while a file "down-PORT" exists in the cwd
Usage: backend.py PORT CERT KEY|plain [DELAY_MS]
DELAY_MS delays every answer (a slow real server).
"""
import base64
import hashlib
import os
import socket
import ssl
import sys
import threading
import time

PATTERN = bytes(range(256)) * 256  # 64 KiB


def read_head(f):
    lines = []
    while True:
        line = f.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            return lines
        lines.append(line.rstrip(b"\r\n"))


def read_body(f, headers):
    h = hashlib.sha256()
    n = 0
    te = headers.get(b"transfer-encoding", b"").lower()
    if te == b"chunked":
        while True:
            size_line = f.readline(1024).strip()
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while f.readline(65537) not in (b"\r\n", b""):
                    pass
                break
            left = size
            while left:
                d = f.read(min(left, 1 << 20))
                if not d:
                    raise EOFError
                h.update(d)
                n += len(d)
                left -= len(d)
            f.readline(8)
    elif b"content-length" in headers:
        left = int(headers[b"content-length"])
        while left:
            d = f.read(min(left, 1 << 20))
            if not d:
                raise EOFError
            h.update(d)
            n += len(d)
            left -= len(d)
    return n, h.hexdigest()


def respond(s, status, body, extra=b""):
    s.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra) + body)


def serve(conn, cid):
    f = conn.makefile("rb", buffering=65536)
    while True:
        head = read_head(f)
        if not head:
            return
        # One line per request received, for tests that check what arrived.
        sys.stdout.write("REQ %s\n" % head[0].decode("latin-1"))
        sys.stdout.flush()
        method, target, _ = head[0].split(b" ", 2)
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip()
        path, _, query = target.partition(b"?")
        params = dict(p.split(b"=", 1) for p in query.split(b"&") if b"=" in p)
        if headers.get(b"expect", b"").lower() == b"100-continue":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        n, digest = read_body(f, headers)
        if DELAY and path != b"/healthcheck.html":
            time.sleep(DELAY / 1000.0)
        if path == b"/whoami":
            respond(conn, 200, b"%d" % PORT)
        elif path == b"/healthcheck.html":
            if os.path.exists("down-%d" % PORT):
                respond(conn, 503, b"down")
            else:
                respond(conn, 200, b"<html><body>OK</body></html>")
        elif path == b"/echo":
            respond(conn, 200, b"%d %s" % (n, digest.encode()))
        elif path == b"/headers":
            respond(conn, 200, b"\r\n".join(head) + b"\r\n")
        elif path == b"/conn-id":
            respond(conn, 200, b"%d" % cid)
        elif path == b"/ntlm":
            if headers.get(b"authorization", b"").startswith(b"NTLM"):
                respond(conn, 200, b"%d" % cid)
            else:
                respond(conn, 401, b"%d" % cid, b"WWW-Authenticate: NTLM\r\n")
        elif path == b"/big":
            total = int(params.get(b"n", b"0"))
            conn.sendall(b"HTTP/1.1 200 X\r\nTransfer-Encoding: chunked\r\n\r\n")
            left = total
            while left:
                k = min(left, len(PATTERN))
                conn.sendall(b"%x\r\n" % k + PATTERN[:k] + b"\r\n")
                left -= k
            conn.sendall(b"0\r\n\r\n")
        elif path == b"/close":
            total = int(params.get(b"n", b"0"))
            conn.sendall(b"HTTP/1.1 200 X\r\nConnection: close\r\n\r\n")
            left = total
            while left:
                k = min(left, len(PATTERN))
                conn.sendall(PATTERN[:k])
                left -= k
            return
        elif path == b"/slow":
            time.sleep(int(params.get(b"ms", b"1000")) / 1000.0)
            respond(conn, 200, b"slow done")
        elif path == b"/hang":
            time.sleep(60)
            return
        elif path == b"/garbage":
            conn.sendall(b"\x00\x01garbage that is not http\r\n\r\n")
            return
        elif path == b"/bad-cl":
            conn.sendall(b"HTTP/1.1 200 X\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc")
            return
        elif path == b"/nocontent":
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif path == b"/ws":
            key = headers.get(b"sec-websocket-key", b"")
            accept = base64.b64encode(hashlib.sha1(
                key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                         b"Upgrade: websocket\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            while True:
                d = f.read1(65536) if hasattr(f, "read1") else f.read(1)
                if not d:
                    return
                conn.sendall(d)
        else:
            respond(conn, 404, b"no such test endpoint")


PORT = 0
DELAY = 0


def main():
    global PORT, DELAY
    port = PORT = int(sys.argv[1])
    DELAY = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ctx = None
    if sys.argv[2] != "plain":
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(512)
    print("ready", flush=True)
    cid = 0
    while True:
        c, _ = ls.accept()
        cid += 1

        def run(c=c, cid=cid):
            try:
                if ctx:
                    c = ctx.wrap_socket(c, server_side=True)
                serve(c, cid)
            except Exception:
                pass
            finally:
                try:
                    c.close()
                except Exception:
                    pass

        threading.Thread(target=run, daemon=True).start()


if __name__ == "__main__":
    main()
