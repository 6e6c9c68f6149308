"""gatehouse join against a hostile conference server: a TLS server of the
test's own (trusted certificate, so only the HTTP layer is hostile) answers
each of the client's requests with a scripted reply. Every case must end
with exit status 1, a message naming the request and what was wrong, no
crash, no growth past the client's limits, and nothing written to disk."""
import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import zlib

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import GATEHOUSE, check, free_port, test

KEY = bytes(range(16))
TOKEN = "ab" * 32


def encrypt(plain, key=KEY, compressed=None):
    iv = os.urandom(12)
    z = compressed if compressed is not None else zlib.compress(plain)
    return b"GHS1" + iv + AESGCM(key).encrypt(iv, z, None)


def reply(body, status="200 OK", ctype="application/json"):
    if isinstance(body, str):
        body = body.encode()
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Type: " + ctype.encode() +
            b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


JOINED = reply(json.dumps({"outcome": "joined", "token": TOKEN, "role": "guest",
                           "display_name": "Bob"}))


def manifest(resources):
    return reply(json.dumps({"meeting": "m", "role": "guest", "display_name": "Bob",
                             "resources": resources}))


def resource(name="deck.txt", size=5, stored=None, url="/api/v1/content/" + "0a" * 16,
             key=KEY):
    return {"name": name, "size": size, "stored": stored if stored is not None else 0,
            "url": url, "key": base64.b64encode(key).decode()}


class Hostile:
    """A TLS server on 127.0.0.1; script maps a request path to bytes or to
    a function given the TLS socket. Records the paths it was asked for."""

    def __init__(self, env):
        self.port = free_port()
        self.script, self.seen = {}, []
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(env.cert, env.key)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(16)
        self.ls.settimeout(0.5)
        self.ctx, self.stop = ctx, False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()
        self.url = "https://localhost:%d" % self.port

    def loop(self):
        while not self.stop:
            try:
                c, _ = self.ls.accept()
            except OSError:
                continue
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, c):
        try:
            c.settimeout(10)
            s = self.ctx.wrap_socket(c, server_side=True)
            while True:
                head = b""
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    d = s.recv(4096)
                    if not d:
                        return
                    head += d
                line = head.split(b"\r\n", 1)[0].decode()
                path = line.split(" ")[1]
                cl = [h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")]
                rest = head.split(b"\r\n\r\n", 1)[1]
                need = int(cl[0].split(b":")[1]) if cl else 0
                while len(rest) < need:
                    rest += s.recv(4096)
                self.seen.append(path)
                what = self.script.get(path.split("?")[0], reply('{"outcome":"nope"}', "404 No"))
                if callable(what):
                    what(s)
                    return
                s.sendall(what)
        except (OSError, ssl.SSLError, IndexError, ValueError):
            pass
        finally:
            c.close()

    def close(self):
        self.stop = True
        self.ls.close()
        self.t.join(timeout=5)


def run_join(env, h, *extra, timeout=60, environ=None):
    here = env.path("cwd-%d" % len(os.listdir(env.path("."))))
    os.mkdir(here)
    t0 = time.monotonic()
    r = subprocess.run([GATEHOUSE, "join", "gh-meet:m.x", "--key", "k" * 32, "--server", h.url,
                        "--cacert", env.ca, "--pin", "1234"] + list(extra),
                       capture_output=True, timeout=timeout, cwd=here, env=environ)
    took = time.monotonic() - t0
    check(os.listdir(here) == [], "files left behind: %r" % os.listdir(here))
    return r.returncode, r.stdout.decode("latin-1") + r.stderr.decode("latin-1"), took


def send_then_close(data):
    def f(s):
        s.sendall(data)
    return f


def endless_headers(s):
    s.sendall(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    for _ in range(4096):  # 4 MB at most, or until the client hangs up
        s.sendall(line)


def trickle(s):
    s.sendall(b"HTTP/1.1 200 OK\r\n")
    for _ in range(100):  # 20 s at most
        s.sendall(b"X: y\r\n")
        time.sleep(0.2)


@test
def join_client_survives_a_hostile_server(env):
    h = Hostile(env)
    J = "/api/v1/meetings/join"
    M = "/api/v1/meetings/manifest"
    C = "/api/v1/content/" + "0a" * 16
    good = b"hello"
    stored = encrypt(good)
    bomb = encrypt(b"", compressed=zlib.compress(b"\0" * (32 << 20)))
    cases = [
        ("chunk size beyond 64 bits",
         {J: send_then_close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"fffffffffffffffffffffffff\r\n" + b"x" * 100)},
         "POST /api/v1/meetings/join: "),
        ("a huge chunk, then more data than allowed",
         {J: send_then_close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"7fffffffffffffff\r\n" + b"x" * (2 << 20))},
         "exceeds 1048576 bytes"),
        ("endless headers", {J: endless_headers}, "headers exceed 65536 bytes"),
        ("a body cut short",
         {J: send_then_close(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"tok")},
         "was cut short"),
        ("a chunked body cut short",
         {J: send_then_close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"10\r\n0123")},
         "POST /api/v1/meetings/join: "),
        ("a length beyond the limit",
         {J: send_then_close(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{")},
         "exceeds 1048576 bytes"),
        ("a status line that is not HTTP",
         {J: send_then_close(b"HTTP/1.1 abc\r\n\r\n")}, "POST /api/v1/meetings/join: "),
        ("a redirect elsewhere",
         {J: reply("", "302 Found").replace(b"\r\n\r\n", b"\r\nLocation: https://evil.invalid/"
                                            b"\r\n\r\n", 1)},
         "refused (302): the reply is not"),
        ("a join reply that is not JSON", {J: reply("<html>hi</html>")}, "refused (200): the reply is not"),
        ("a token with other characters",
         {J: reply(json.dumps({"outcome": "joined", "token": "ab\r\nX: y"}))},
         "join token is malformed"),
        ("an empty token", {J: reply(json.dumps({"outcome": "joined", "token": ""}))},
         "join token is malformed"),
        ("a token of 600 bytes", {J: reply(json.dumps({"outcome": "joined", "token": "a" * 600}))},
         "join token is malformed"),
        ("a resource URL on another host",
         {J: JOINED, M: manifest([resource(url="https://evil.invalid/api/v1/content/0a")])},
         "points outside /api/v1/content/"),
        ("a resource URL that climbs",
         {J: JOINED, M: manifest([resource(url="/api/v1/content/../../admin")])},
         "points outside /api/v1/content/"),
        ("a key of the wrong length",
         {J: JOINED, M: manifest([resource(key=b"short")])}, "no 16-byte key"),
        ("a negative size", {J: JOINED, M: manifest([resource(size=-1)])}, "no size within"),
        ("a manifest that is not one",
         {J: JOINED, M: reply('{"resources": 5}')}, "not the conference service's JSON"),
        ("duplicate keys in the manifest",
         {J: JOINED, M: reply('{"meeting":"m","meeting":"n","role":"guest","display_name":"B",'
                              '"resources":[]}')}, "not the conference service's JSON"),
        ("content longer than the manifest says",
         {J: JOINED, M: manifest([resource(size=5, stored=len(stored) - 1)]), C: reply(stored)},
         "exceeds %d bytes" % (len(stored) - 1)),
        ("content shorter than the manifest says",
         {J: JOINED, M: manifest([resource(size=5, stored=len(stored) + 1)]), C: reply(stored)},
         "200 with %d of %d bytes" % (len(stored), len(stored) + 1)),
        ("a deflate bomb (32 MiB of zeros stated as 5 bytes)",
         {J: JOINED, M: manifest([resource(size=5, stored=len(bomb))]), C: reply(bomb)},
         "does not decrypt with its key to 5 bytes"),
        ("content under another key",
         {J: JOINED, M: manifest([resource(size=5, stored=len(stored), key=b"k" * 16)]),
          C: reply(stored)}, "does not decrypt"),
    ]
    try:
        for what, script, want in cases:
            h.script = script
            rc, out, took = run_join(env, h)
            check(rc == 1 and want in out and "gatehouse join: " in out,
                  "%s: exit %d, wanted %r in %r" % (what, rc, want, out[-600:]))
            check("Traceback" not in out and "AddressSanitizer" not in out, what)
        check(not [p for p in h.seen if "evil" in p or ".." in p],
              "the client followed the server's URL: %r" % h.seen)
        # A name with terminal escapes is printed escaped; the good resource
        # decrypts (so the cases above failed for their own reason).
        h.script = {J: JOINED, M: manifest([resource(name="\x1b]0;pwned\x07deck.txt", size=5,
                                                     stored=len(stored))]), C: reply(stored)}
        # ... with the environment naming a proxy that is not there: not
        # followed unless --proxy names it.
        dead = "http://127.0.0.1:%d" % free_port()
        rc, out, took = run_join(env, h, environ=dict(os.environ, https_proxy=dead,
                                                      HTTPS_PROXY=dead, ALL_PROXY=dead))
        check(rc == 0 and "\\x1b]0;pwned\\x07deck.txt\ttext\t5 bytes" in out and "\x1b" not in out,
              "escaped name: %d %r" % (rc, out))
        rc, out, took = run_join(env, h, "--proxy", dead)
        check(rc == 1 and "POST /api/v1/meetings/join: " in out, "--proxy ignored: %d %r" % (rc, out))
        # A server that trickles headers forever is cut off by --timeout.
        h.script = {J: trickle}
        rc, out, took = run_join(env, h, "--timeout", "2")
        check(rc == 1 and "timed out" in out.lower() and took < 15,
              "trickle: exit %d after %.1fs: %s" % (rc, took, out[-300:]))
    finally:
        h.close()
