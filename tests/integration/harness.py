"""Shared harness for the integration tests: temp folders, certificates made
by gatehouse itself, free ports, real backends (nginx from Debian and
backend.py), the real build/gatehouse, and raw TLS clients. Every wait is
on readiness (a port answering, a log line), bounded in time."""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GH_BUILD", os.path.join(ROOT, "build"))
GATEHOUSE = os.path.join(BUILD, "gatehouse")
HERE = os.path.dirname(os.path.abspath(__file__))

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Fail(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


_issued = set()


def free_port():
    """A port free now and not handed out before in this run: the kernel
    may give the same ephemeral port twice in a row once it is closed, and
    two services of one test on one port is a refused configuration (seen
    once as a flake)."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p not in _issued:
            _issued.add(p)
            return p
    raise RuntimeError("no fresh free port in 100 tries")


def wait_until(pred, timeout=10.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        time.sleep(0.02)
    raise Fail("timed out waiting for " + what)


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Env:
    """A temp folder with a CA, a server certificate and helpers to start
    processes that are all stopped (by PID) at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gh-it-")
        self.procs = []
        self.backends = {}
        r = subprocess.run([GATEHOUSE, "certs", "default", self.dir], capture_output=True)
        check(r.returncode == 0, "certs default failed: %r" % r.stderr)
        self.ca = os.path.join(self.dir, "ca.pem")
        self.cert = os.path.join(self.dir, "server.pem")
        self.key = os.path.join(self.dir, "server.key")

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def spawn(self, args, log):
        f = open(self.path(log), "ab")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, cwd=self.dir,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def backend(self, tls=True, delay_ms=0):
        port = free_port()
        args = [sys.executable, os.path.join(HERE, "backend.py"), str(port)]
        args += [self.cert, self.key] if tls else ["plain", "-"]
        args += [str(delay_ms)]
        p = self.spawn(args, "backend-%d.log" % port)
        wait_until(lambda: port_open(port), what="backend on %d" % port)
        self.backends[port] = p
        return port

    def nginx(self, files=None, extra=""):
        port = free_port()
        root = self.path("www-%d" % port)
        os.makedirs(root)
        for name, size in (files or {}).items():
            with open(os.path.join(root, name), "wb") as f:
                if size > 1 << 24:
                    f.truncate(size)  # sparse: zeros
                else:
                    f.write((bytes(range(256)) * (size // 256 + 1))[:size])
        conf = self.write("nginx-%d.conf" % port, """
user root;
worker_processes 1;
pid %(d)s/nginx-%(p)d.pid;
error_log %(d)s/nginx-%(p)d.err;
events { worker_connections 1024; }
http {
    log_format gh '$request $ssl_session_reused $ssl_protocol';
    access_log %(d)s/nginx-%(p)d.access gh;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:%(p)d ssl;
        ssl_certificate %(cert)s;
        ssl_certificate_key %(key)s;
        ssl_protocols TLSv1.2 TLSv1.3;
        root %(root)s;
        location /nocontent { return 204; }
        %(extra)s
    }
}
""" % {"d": self.dir, "p": port, "cert": self.cert, "key": self.key, "root": root,
       "extra": extra})
        self.spawn(["nginx", "-c", conf, "-g", "daemon off;"], "nginx-%d.log" % port)
        wait_until(lambda: port_open(port), what="nginx on %d" % port)
        return port

    def gatehouse(self, conf_text, name="gh.conf", wrapper=()):
        conf = self.write(name, conf_text)
        g = Gatehouse(self, conf, wrapper)
        return g

    def cleanup(self):
        if not os.environ.get("GH_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def close(self, keep=False):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not keep:
            self.cleanup()


class Gatehouse:
    def __init__(self, env, conf, wrapper=()):
        self.env = env
        self.conf = conf
        self.log = "gatehouse-%d.log" % len(env.procs)
        self.proc = env.spawn(list(wrapper) + [GATEHOUSE, "-c", conf], self.log)
        wait_until(lambda: "ready" in self.output() or self.proc.poll() is not None,
                   what="gatehouse ready")
        check(self.proc.poll() is None, "gatehouse exited: " + self.output())

    def output(self):
        with open(self.env.path(self.log), "r", errors="replace") as f:
            return f.read()

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def vmhwm_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def vmrss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


def service(name, port, servers=None, app=None, extra="", tls=True, reencrypt=True,
            hosts="*", dirs="/*"):
    """Config text for one service; servers is a list of (name, port)."""
    lines = ["service %s {" % name, "    listen 127.0.0.1:%d" % port]
    if hosts is not None:
        lines.append("    allowed-hosts %s" % hosts)
    if dirs is not None:
        lines.append("    allowed-dirs %s" % dirs)
    if tls:
        lines.append("    certificate main")
    if app:
        lines.append("    app %s" % app)
    for sname, sport in servers or []:
        lines.append("    server %s 127.0.0.1:%d" % (sname, sport))
    if servers and reencrypt:
        lines.append("    reencrypt verify internal")
    if extra:
        lines.append(extra)
    lines.append("}")
    return "\n".join(lines) + "\n"


def base_conf(env, workers=2, extra=""):
    return """workers %d
access-log %s
security-log %s
%s
certificate main {
    cert %s
    key %s
}
ca internal {
    file %s
}
""" % (workers, env.path("access.log"), env.path("security.log"), extra, env.cert, env.key, env.ca)


def tls_client(port, ca, sni="localhost", timeout=10):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = bool(sni)
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(s, server_hostname=sni)


def read_response(s, limit=1 << 20, head_request=False):
    """Reads one response (Content-Length or chunked or until close).
    Returns (status, headers dict lower-case, body, raw head)."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d:
            break
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0] if lines else b"")
    if not m:
        return None, {}, b"", head
    status = int(m.group(1))
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode(errors="replace")
    body = rest
    if head_request:
        s._gh_extra = body
        return status, headers, b"", head
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            d = s.recv(65536)
            if not d:
                break
            body += d
        extra = body[n:]
        body = body[:n]
        s._gh_extra = extra
    elif headers.get("transfer-encoding") == "chunked":
        while not body.endswith(b"0\r\n\r\n"):
            d = s.recv(65536)
            if not d:
                break
            body += d
    elif status >= 200 and status not in (204, 304):
        while len(body) < limit:
            try:
                d = s.recv(65536)
            except (ssl.SSLError, OSError):
                break
            if not d:
                break
            body += d
    return status, headers, body, head


def raw_exchange(port, ca, payload, timeout=5):
    """Sends raw bytes over TLS and returns (status, headers, body, closed)."""
    s = tls_client(port, ca, timeout=timeout)
    s.sendall(payload)
    status, headers, body, _ = read_response(s)
    closed = False
    try:
        s.settimeout(2)
        closed = s.recv(1) == b""
    except (ssl.SSLError, OSError):
        closed = True
    s.close()
    return status, headers, body, closed


def curl(*args, timeout=120):
    r = subprocess.run(["curl", "-sS"] + list(args), capture_output=True, timeout=timeout)
    return r


def sanitizer_reports(env):
    """Names of gatehouse logs holding an ASan/UBSan/LSan report (checked
    after the processes exited, so leak reports at exit are included)."""
    bad = []
    for log in os.listdir(env.dir):
        if log.startswith("gatehouse") and log.endswith(".log"):
            with open(env.path(log), errors="replace") as f:
                text = f.read()
            if "Sanitizer" in text or "runtime error:" in text:
                bad.append(log)
                print(text[-4000:])
    return bad


def run_all(pattern=None):
    passed = failed = 0
    for fn in TESTS:
        name = fn.__name__
        if pattern and pattern not in name:
            continue
        env = Env()
        t0 = time.time()
        ok = False
        try:
            fn(env)
            ok = True
        except Exception as e:
            print("FAIL integration/%s: %s" % (name, e), flush=True)
            if not isinstance(e, Fail):
                traceback.print_exc()
            for log in sorted(os.listdir(env.dir)):
                if log.startswith("gatehouse") and log.endswith(".log"):
                    with open(env.path(log), errors="replace") as f:
                        tail = f.read()[-3000:]
                    print("  --- %s (tail)\n%s" % (log, tail))
        finally:
            env.close(keep=True)
        bad = sanitizer_reports(env)
        if bad and ok:
            ok = False
            print("FAIL integration/%s: sanitizer report in %s" % (name, bad), flush=True)
        if ok:
            passed += 1
            print("ok   integration/%s (%.1fs)" % (name, time.time() - t0), flush=True)
        else:
            failed += 1
        env.cleanup()
    print("%d passed, %d failed" % (passed, failed))
    return failed == 0
