#!/usr/bin/env python3
"""Instructions and system calls per request: repeatable where wall-clock
time on a shared machine is not.

Each proxy (one or more gatehouse builds, and with GH_CG_OTHERS=1 HAProxy
and nginx, configured as in bench.py: one worker/thread, TLS terminated and
re-encrypted to an nginx TLS backend, verified) runs under valgrind's
callgrind with instrumentation off. One TLS client connects, sends WARM
requests, then the counters are zeroed (callgrind_control -z), N
requests are sent and the counters dumped: the dump holds exactly those N
requests, with start-up, the handshake and shutdown outside it. The same
is done without valgrind under `strace -c -f` for the system calls.
Keep-alive 1 KiB requests (GH_CG_MODE=keepalive, the default; 64 KiB with
GH_CG_PATH=/64k.bin), one
resumed TLS connection per request (GH_CG_MODE=resumed: each connection
resumes from the ticket of the one before, sends one request with
Connection: close), or one full handshake per request (GH_CG_MODE=full:
the same without the ticket).

Usage: callgrind.py BUILD_DIR [BUILD_DIR...]
Prints one line per proxy, then (GH_CG_TABLE=FILE) writes a markdown table."""
import collections
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

N = int(os.environ.get("GH_CG_N", "2000"))
WARM = int(os.environ.get("GH_CG_WARM", "100"))
MODE = os.environ.get("GH_CG_MODE", "keepalive")
OTHERS = os.environ.get("GH_CG_OTHERS") == "1"
# GH_CG_PATH=/64k.bin for the 64 KiB row
PATH = os.environ.get("GH_CG_PATH", "/1k.bin").encode()
REQ = (b"GET " + PATH + b" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: cg\r\nAccept: */*\r\n"
       b"%s\r\n")


def read_answer(s, buf):
    """Reads one 200 response with a Content-Length body off s; returns
    what was read past it."""
    for _ in range(100000):  # bounded: a 1 KiB answer takes a few reads
        i = buf.find(b"\r\n\r\n")
        if i >= 0:
            m = re.search(rb"content-length: *(\d+)", buf[:i], re.I)
            need = i + 4 + int(m.group(1))
            if len(buf) >= need:
                if not buf.startswith(b"HTTP/1.1 200"):
                    raise SystemExit("bad answer: %r" % buf[:80])
                return buf[need:]
        d = s.recv(65536)
        if not d:
            raise SystemExit("connection closed")
        buf += d
    raise SystemExit("no complete answer")


class Client:
    """Keep-alive: one connection for every request. Resumed: a new
    connection per request, from the last connection's ticket."""

    def __init__(self, port, ca):
        self.port, self.ctx, self.s, self.sess = port, ssl.create_default_context(cafile=ca), None, None
        self.ctx.maximum_version = ssl.TLSVersion.TLSv1_3
        self.resumed = 0

    def connect(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        self.s = self.ctx.wrap_socket(raw, server_hostname="localhost", session=self.sess)
        self.resumed += self.s.session_reused

    def requests(self, n):
        for _ in range(n):
            if MODE == "keepalive":
                if self.s is None:
                    self.connect()
                self.s.sendall(REQ % b"")
                if read_answer(self.s, b""):
                    raise SystemExit("bytes after the answer")
            else:
                self.connect()
                self.s.sendall(REQ % b"Connection: close\r\n")
                read_answer(self.s, b"")
                if MODE == "resumed":
                    self.sess = self.s.session  # the ticket that came with this connection
                self.s.close()

    def close(self):
        if self.s is not None:
            self.s.close()


def gatehouse_cmd(build, port, b1, ca, cert, key):
    conf = bench.write("cg-gh-%d.conf" % port, """workers 1
access-log off
state-dir %s/cg-state-%d
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
""" % (bench.TMP, port, cert, key, ca, port, b1))
    return [os.path.join(build, "gatehouse"), "-c", conf]


def haproxy_cmd(port, b1, ca, combined):
    conf = bench.write("cg-haproxy-%d.cfg" % port, bench.haproxy_conf(port, (b1,), ca, combined))
    return ["haproxy", "-db", "-f", conf]


def nginx_cmd(port, b1, ca, cert, key):
    # One process (no master): the one callgrind and strace follow.
    conf = bench.write("cg-nginx-%d.conf" % port, bench.nginx_conf(
        port, (b1,), ca, cert, key, "master_process off; daemon off;\n"
        "user root; pid %s/cg-nginx-%d.pid; error_log %s/cg-nginx.err;" % (
            bench.TMP, port, bench.TMP)))
    return ["nginx", "-c", conf]


def self_cost_by_object(path):
    """{object file: instructions spent in its own code} of a callgrind
    dump (call lines carry inclusive costs and are skipped)."""
    tot, names, ob, after_calls = collections.Counter(), {}, None, False
    for line in open(path):
        if line.startswith(("ob=", "cob=")):
            m = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line.strip())
            if m is None:
                name = line.strip().split("=", 1)[1]
            else:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                name = names.get(m.group(1), "?")
            if line.startswith("ob="):
                ob = name
            continue
        if line.startswith("calls="):
            after_calls = True
            continue
        if line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            if after_calls:
                after_calls = False
            elif len(parts) >= 2:
                tot[ob] += int(parts[1])
    return tot


def group(obj):
    base = os.path.basename(obj or "?")
    for key in ("libcrypto", "libssl", "libc.so", "ld-linux"):
        if base.startswith(key):
            return {"libc.so": "libc", "ld-linux": "libc"}.get(key, key)
    return "proxy"


def count_instructions(cmd, port, ca, tag):
    out = os.path.join(bench.TMP, "cg-%s.out" % tag)
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                          "--callgrind-out-file=" + out] + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=bench.TMP)
    try:
        bench.wait_port(port, timeout=120)
        cl = Client(port, ca)
        subprocess.run(["callgrind_control", "-i", "on", str(p.pid)], check=True,
                       capture_output=True)
        cl.requests(WARM)
        subprocess.run(["callgrind_control", "-z", str(p.pid)], check=True, capture_output=True)
        r0 = cl.resumed
        cl.requests(N)
        subprocess.run(["callgrind_control", "-d", "measured", str(p.pid)], check=True,
                       capture_output=True)
        resumed = cl.resumed - r0
        cl.close()
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    dumps = [f for f in os.listdir(bench.TMP) if f.startswith("cg-%s.out." % tag)]
    dumps.sort(key=lambda f: int(re.search(r"\.(\d+)(?:-\d+)?$", f).group(1)))
    if not dumps:
        raise SystemExit("callgrind wrote no dump for %s" % tag)
    by = collections.Counter()
    for obj, n in self_cost_by_object(os.path.join(bench.TMP, dumps[-1])).items():
        by[group(obj)] += n
    return {k: v / N for k, v in by.items()}, resumed


def count_syscalls(cmd, port, ca, tag):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=bench.TMP)
    try:
        bench.wait_port(port, timeout=30)
        cl = Client(port, ca)
        cl.requests(WARM)
        out = os.path.join(bench.TMP, "strace-%s.txt" % tag)
        st = subprocess.Popen(["strace", "-c", "-f", "-o", out, "-p", str(p.pid)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # strace says "Process N attached" once it is in place
        for _ in range(200):
            line = st.stderr.readline().decode()
            if "attached" in line or not line:
                break
        cl.requests(N)
        cl.close()
        st.send_signal(signal.SIGINT)
        st.wait(timeout=30)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    calls = collections.Counter()
    for line in open(out):
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$", line)
        if m and m.group(3) != "total":
            calls[m.group(3)] += int(m.group(1))
    # the nanosleeps and futexes of idle helper threads are not per request
    busy = {k: v for k, v in calls.items() if k not in ("clock_nanosleep", "futex", "restart_syscall")}
    return sum(busy.values()) / N, {k: v / N for k, v in sorted(busy.items(), key=lambda kv: -kv[1])}


def main():
    ca, cert, key, combined = bench.setup_certs()
    b1, _ = bench.start_backends(cert, key)
    rows = []
    try:
        proxies = [(os.path.relpath(b), lambda port, b=b: gatehouse_cmd(b, port, b1, ca, cert, key))
                   for b in BUILDS]
        if OTHERS:
            proxies += [("haproxy", lambda port: haproxy_cmd(port, b1, ca, combined)),
                        ("nginx", lambda port: nginx_cmd(port, b1, ca, cert, key))]
        for k, (name, mk) in enumerate(proxies):
            port = bench.free_port()
            instr, resumed = count_instructions(mk(port), port, ca, "%d" % k)
            port = bench.free_port()
            sc, calls = count_syscalls(mk(port), port, ca, "%d" % k)
            total = sum(instr.values())
            rows.append((name, total, instr, sc, calls, resumed))
            print("%s: %.0f instructions per request (proxy %.0f, libssl %.0f, libcrypto %.0f, "
                  "libc %.0f); %.2f system calls per request (%s)%s" % (
                      name, total, instr.get("proxy", 0), instr.get("libssl", 0),
                      instr.get("libcrypto", 0), instr.get("libc", 0), sc,
                      ", ".join("%s %.2f" % kv for kv in list(calls.items())[:5]),
                      "; %d of %d connections resumed" % (resumed, N) if MODE != "keepalive" else ""),
                  flush=True)
    finally:
        for p in bench.procs:
            p.terminate()
    table = os.environ.get("GH_CG_TABLE")
    if table:
        with open(table, "w") as f:
            f.write("| proxy | instructions per request | proxy's own code | libssl | libcrypto "
                    "| libc | system calls per request | of which read, write, epoll |\n")
            f.write("|---|---|---|---|---|---|---|---|\n")
            for name, total, instr, sc, calls, _ in rows:
                f.write("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %s |\n" % (
                    name, total, instr.get("proxy", 0), instr.get("libssl", 0),
                    instr.get("libcrypto", 0), instr.get("libc", 0), sc,
                    ", ".join("%s %.2f" % (k, v) for k, v in calls.items() if k in (
                        "read", "write", "recvfrom", "sendto", "readv", "writev", "epoll_wait",
                        "epoll_ctl"))))


if __name__ == "__main__":
    main()
