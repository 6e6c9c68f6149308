#!/usr/bin/env python3
"""Instructions per request, counted by valgrind's callgrind: repeatable
where wall-clock time on a shared machine is not. For each gatehouse build
given, one worker re-encrypts to an nginx TLS backend; one keep-alive TLS
client sends N1 and then N2 requests for /1k.bin in two separate runs, and
(Ir(N2) - Ir(N1)) / (N2 - N1) is the cost of one request with start-up,
the handshake and shutdown cancelled out.
Usage: callgrind.py BUILD_DIR [BUILD_DIR...]   (prints one line per build)"""
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time

sys.argv = [sys.argv[0]] + sys.argv[1:]
BUILDS = [os.path.abspath(b) for b in sys.argv[1:]] or [os.path.abspath("build")]
sys.argv = [sys.argv[0], BUILDS[0]]
import bench  # noqa: E402  (certificates, nginx backends, ports, temp folder)

N1, N2 = int(os.environ.get("GH_CG_N1", "200")), int(os.environ.get("GH_CG_N2", "2200"))


def requests(port, n, ca):
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=60),
                        server_hostname="localhost")
    req = b"GET /1k.bin HTTP/1.1\r\nHost: localhost\r\nUser-Agent: cg\r\nAccept: */*\r\n\r\n"
    buf = b""
    for _ in range(n):
        s.sendall(req)
        while True:
            i = buf.find(b"\r\n\r\n")
            if i >= 0:
                m = re.search(rb"content-length: *(\d+)", buf[:i], re.I)
                need = i + 4 + int(m.group(1))
                if len(buf) >= need:
                    if not buf.startswith(b"HTTP/1.1 200"):
                        raise SystemExit("bad answer: %r" % buf[:80])
                    buf = buf[need:]
                    break
            d = s.recv(65536)
            if not d:
                raise SystemExit("connection closed")
            buf += d
    s.close()


def count(build, n, b1, ca, cert, key, tag):
    port = bench.free_port()
    conf = bench.write("cg-%s.conf" % tag, """workers 1
access-log off
certificate main { cert %s; key %s }
ca internal { file %s }
service cg {
    listen 127.0.0.1:%d
    certificate main
    allowed-hosts *
    allowed-dirs /*
    reencrypt verify internal
    server b1 127.0.0.1:%d verify-name localhost
}
""" % (cert, key, ca, port, b1))
    out = os.path.join(bench.TMP, "cg-%s.out" % tag)
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                          os.path.join(build, "gatehouse"), "-c", conf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bench.wait_port(port, timeout=60)
    requests(port, n, ca)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)
    total = 0
    for f in os.listdir(bench.TMP):  # one file per thread with --separate-threads; else one
        if f.startswith("cg-%s.out" % tag):
            for line in open(os.path.join(bench.TMP, f)):
                if line.startswith("summary:") or line.startswith("totals:"):
                    total = max(total, int(line.split()[1]))
    return total


def main():
    ca, cert, key, _ = bench.setup_certs()
    b1, _ = bench.start_backends(cert, key)
    try:
        for k, build in enumerate(BUILDS):
            a = count(build, N1, b1, ca, cert, key, "%d-a" % k)
            b = count(build, N2, b1, ca, cert, key, "%d-b" % k)
            print("%s: %.0f instructions per request (Ir %d at %d requests, %d at %d)" % (
                build, (b - a) / (N2 - N1), a, N1, b, N2), flush=True)
    finally:
        for p in bench.procs:
            p.terminate()


if __name__ == "__main__":
    main()
