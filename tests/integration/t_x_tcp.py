"""Layer-4 services (mode tcp, issue 14): TLS passed through untouched
(the real server gets the client's own ClientHello, byte for byte, and the
client sees the real server's certificate), chosen by the ClientHello's
server name among services sharing a listener; TLS terminated and
re-encrypted; plain TCP with least connections, source-ip persistence,
send/recv checks and one access-log line per connection."""
import socket
import ssl
import subprocess
import threading
import time

from harness import GATEHOUSE, base_conf, check, free_port, service, test, wait_until
from t_i_tls import cert_block, make_cert


class Peer:
    """A TCP (or TLS) server on a free port that records, per connection,
    the raw bytes it received before decryption, and answers each chunk
    with NAME:chunk (an echo that says who echoed)."""

    def __init__(self, name, cert=None, key=None, reply_to=None):
        self.name = name.encode()
        self.port = free_port()
        self.raw = []           # raw bytes per connection, as received from the wire
        self.plain = []         # decrypted bytes per connection (TLS) or raw (plain)
        self.sni = []
        self.reply_to = reply_to  # (ask, answer): a check text and its reply
        self.ctx = None
        if cert:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(cert, key)
            self.ctx.sni_callback = lambda s, n, c: self.sni.append(n) and None
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", self.port))
        self.ls.listen(64)
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.stopped = True
        self.ls.close()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            k = len(self.raw)
            self.raw.append(b"")
            self.plain.append(b"")
            threading.Thread(target=self._serve, args=(c, k), daemon=True).start()

    def _answer(self, k, data):
        self.plain[k] += data
        if self.reply_to and data.startswith(self.reply_to[0]):
            return self.reply_to[1]
        return self.name + b":" + data

    def _serve(self, c, k):
        c.settimeout(10)
        try:
            if self.ctx is None:
                while True:
                    d = c.recv(65536)
                    if not d:
                        return
                    self.raw[k] += d
                    c.sendall(self._answer(k, d))
            inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = self.ctx.wrap_bio(inb, outb, server_side=True)
            done = False
            while True:
                d = c.recv(65536)
                if not d:
                    return
                self.raw[k] += d
                inb.write(d)
                if not done:
                    try:
                        tls.do_handshake()
                        done = True
                    except ssl.SSLWantReadError:
                        pass
                    c.sendall(outb.read())
                    if not done:
                        continue
                while True:
                    try:
                        got = tls.read(65536)
                    except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                        break
                    if not got:
                        break
                    tls.write(self._answer(k, got))
                out = outb.read()
                if out:
                    c.sendall(out)
        except (OSError, ssl.SSLError):
            return
        finally:
            c.close()


def tls_exchange(port, sni, ca, data, src="127.0.0.1"):
    """A TLS client through gatehouse that records the raw bytes it sent;
    returns (raw bytes sent, decrypted answer, the server's certificate CN)."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inb, outb, server_hostname=sni)
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    sent = b""
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            out = outb.read()
            sent += out
            s.sendall(out)
            d = s.recv(65536)
            if not d:
                raise ssl.SSLError("closed in the handshake")
            inb.write(d)
    out = outb.read()
    sent += out
    if out:
        s.sendall(out)
    tls.write(data)
    s.sendall(outb.read())
    answer = b""
    end = time.time() + 5
    while time.time() < end and not answer.endswith(data):
        d = s.recv(65536)
        if not d:
            break
        inb.write(d)
        try:
            answer += tls.read(65536)
        except ssl.SSLWantReadError:
            pass
    cn = dict(x[0] for x in tls.getpeercert()["subject"]).get("commonName")
    s.close()
    return sent, answer, cn


def access(env):
    try:
        with open(env.path("access.log")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


@test
def tcp_passthrough_forwards_the_clients_own_hello_by_server_name(env):
    a_cert = make_cert(env, "pa", ["a.example.com"])
    b_cert = make_cert(env, "pb", ["b.example.com"])
    pa, pb = Peer("A", *a_cert), Peer("B", *b_cert)
    p = free_port()
    text = base_conf(env)
    for name, host, peer in (("pass-a", "a.example.com", pa), ("pass-b", "b.example.com", pb)):
        text += ("service %s {\n    listen 127.0.0.1:%d\n    mode tcp\n    tls passthrough\n"
                 "    allowed-hosts %s\n    server %s 127.0.0.1:%d\n}\n" % (
                     name, p, host, name[-1], peer.port))
    env.gatehouse(text)
    for host, peer, other in (("a.example.com", pa, pb), ("b.example.com", pb, pa)):
        sent, answer, cn = tls_exchange(p, host, env.ca, b"hello " + host.encode())
        check(cn == host, "the client sees the real server's certificate: %r" % cn)
        check(answer == peer.name + b":hello " + host.encode(), "answered by its service's "
              "server: %r" % answer)
        wait_until(lambda: peer.raw and peer.raw[-1].startswith(sent[:5]), 5, "bytes at the server")
        got = peer.raw[-1][:len(sent)]
        check(got == sent, "the server got the client's own bytes, ClientHello first (%d bytes "
              "sent, first difference at %r)" % (len(sent), next(
                  (i for i in range(min(len(got), len(sent))) if got[i] != sent[i]), None)))
        check(peer.sni[-1] == host, "the server read the client's server name: %r" % peer.sni)
        check(not any(host.encode() in r for r in other.raw), "the other service got nothing")
    # a name no service allows is refused before any server is chosen
    before = (len(pa.raw), len(pb.raw))
    try:
        tls_exchange(p, "c.example.com", env.ca, b"x")
        check(False, "an unknown server name was passed through")
    except (ssl.SSLError, OSError, ssl.CertificateError):
        pass
    check((len(pa.raw), len(pb.raw)) == before, "an unknown name reached a server")
    # plain HTTP to a pass-through port is not TLS: closed, logged
    s = socket.create_connection(("127.0.0.1", p), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")
    check(s.recv(100) == b"", "not TLS: closed without an answer")
    s.close()
    wait_until(lambda: any("malformed:client-hello" in l for l in open(env.path("security.log"))),
               5, "the refusal in the security log")
    wait_until(lambda: sum('"TLS a.example.com L4"' in l for l in access(env)) >= 1, 5,
               "one access-log line per connection")


@test
def tcp_terminated_and_reencrypted(env):
    peer = Peer("E", env.cert, env.key)
    p = free_port()
    text = base_conf(env) + ("service edge {\n    listen 127.0.0.1:%d\n    mode tcp\n"
                             "    certificate main\n    allowed-hosts localhost\n"
                             "    reencrypt verify internal\n    server e 127.0.0.1:%d verify-name localhost\n}\n"
                             % (p, peer.port))
    env.gatehouse(text)
    sent, answer, cn = tls_exchange(p, "localhost", env.ca, b"SIP/2.0 OPTIONS")
    check(cn == "localhost", "gatehouse's certificate to the client: %r" % cn)
    check(answer == b"E:SIP/2.0 OPTIONS", "echo through terminate + re-encrypt: %r" % answer)
    wait_until(lambda: peer.plain and peer.plain[-1] == b"SIP/2.0 OPTIONS", 5, "decrypted bytes")
    check(peer.raw[-1][:1] == b"\x16" and sent[:len(peer.raw[-1])] != peer.raw[-1],
          "the server got gatehouse's own TLS, not the client's")
    wait_until(lambda: any('"TCP localhost L4"' in l and " e " in l for l in access(env)), 5,
               "the connection's access-log line names its server")


@test
def tcp_plain_balances_persists_and_checks(env):
    a = Peer("A", reply_to=(b"PING", b"PONG\r\n"))
    b = Peer("B", reply_to=(b"PING", b"PONG\r\n"))
    p, q = free_port(), free_port()
    chk = "    check send PING\\r\\n recv PONG interval 300ms timeout 200ms rise 1 fall 1 start up"
    text = base_conf(env)
    text += ("service sip {\n    listen 127.0.0.1:%d\n    mode tcp\n%s\n"
             "    server a 127.0.0.1:%d\n    server b 127.0.0.1:%d\n}\n" % (p, chk, a.port, b.port))
    text += ("service sticky {\n    listen 127.0.0.1:%d\n    mode tcp\n    persistence source-ip\n"
             "    server a 127.0.0.1:%d\n    server b 127.0.0.1:%d\n}\n" % (q, a.port, b.port))
    env.gatehouse(text)

    def one(port, data, src="127.0.0.1"):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.sendall(data)
        got = s.recv(1000)
        s.shutdown(socket.SHUT_WR)  # a half-close: the answer still arrives
        while True:
            d = s.recv(1000)
            if not d:
                break
            got += d
        s.close()
        return got
    # least connections over time: both servers serve
    names = {one(p, b"x%d" % i)[:1] for i in range(10)}
    check(names == {b"A", b"B"}, "both servers took connections: %r" % names)
    # source-ip persistence: one address sticks to one server
    for src in ("127.0.0.5", "127.0.0.6"):
        got = {one(q, b"s", src)[:1] for _ in range(6)}
        check(len(got) == 1, "%s stuck to one server: %r" % (src, got))
    # a dead server is taken out by its send/recv check; new connections go to the other
    b.stop()
    wait_until(lambda: {one(p, b"y")[:1] for _ in range(4)} == {b"A"}, 8, "B taken out")
    def lines():
        return [l for l in access(env) if '"TCP - L4"' in l and " sip " in l]
    wait_until(lambda: len(lines()) >= 14, 5, "one access-log line per connection")
    lines = lines()
    # the ten "xN" connections: 2 bytes in, 4 ("A:xN") out, each its own line
    check(sum(l.split()[7] == "2" and l.split()[8] == "4" for l in lines) >= 10,
          "bytes both ways counted (2 in, 4 out): %r" % lines[:3])


L4_ERRORS = [
    ("passthrough without mode tcp", "    tls passthrough\n", "'tls passthrough' needs 'mode tcp'"),
    ("passthrough with a certificate", "    mode tcp\n    tls passthrough\n    certificate main\n",
     "tls passthrough does not terminate TLS: no 'certificate'"),
    ("an http check in mode tcp", "    mode tcp\n    check get /x\n", "an HTTP check needs 'mode http'"),
    ("cookie persistence in mode tcp", "    mode tcp\n    persistence cookie MS-WSMAN\n",
     "cookie persistence needs 'mode http'"),
    ("a bad check text", "    mode tcp\n    check send A\\q recv B\n", "check text: unknown escape"),
]


@test
def tcp_mode_conflicts_refused_at_check(env):
    for name, extra, want in L4_ERRORS:
        text = base_conf(env) + "service s {\n    listen 127.0.0.1:1\n%s    server a 127.0.0.1:2\n}\n" % extra
        conf = env.write("l4.conf", text)
        r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True)
        err = r.stderr + r.stdout
        check(r.returncode != 0 and want in err and err.startswith(conf + ":"),
              "%s: %r" % (name, err))
