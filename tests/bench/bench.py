#!/usr/bin/env python3
"""Side-by-side benchmark: gatehouse, HAProxy and nginx, each terminating
TLS on loopback and re-encrypting to the same two TLS backends (nginx) with
least-connection balancing and verified server certificates, and a
no-proxy origin (an nginx serving the files itself). The proxy under test
and the origin are pinned to CPU 0; the load generator and the backends to
CPU 1.

The main table (issue 15), once per client-facing key type (GH_BENCH_KEYS,
default "ec rsa": ECDSA P-256 and RSA-2048), GH_BENCH_ROUNDS interleaved
rounds (default 5), every column once per measure and round in a rotating
order, median and lowest-highest round per cell:
  - keep-alive requests/s and p99 latency, 1 KiB and 64 KiB responses (wrk)
  - a new connection per request with TLS resumption (wrk, Connection:
    close), resumption checked (gatehouse's handshake counters, openssl
    s_client -sess_out/-sess_in for every column)
  - full TLS handshakes/s, one new connection per request, no resumption
    (GH_BENCH_AB_PROCS ab processes of GH_BENCH_AB_CONC connections each)
  - CPU seconds the proxy used during each run, so figures compare per core
  - memory holding GH_BENCH_IDLE (5,000) idle keep-alive TLS connections
In the first key type's rounds only: the filtering and persistence
variants of gatehouse (1 KiB keep-alive) and Layer 4: TLS pass-through
(gatehouse `mode tcp` + `tls passthrough`, HAProxy `mode tcp`, nginx
`stream` + ssl_preread) keep-alive (wrk) and full handshakes (ab), and UDP
flow round trips (gatehouse `mode udp`, nginx `stream` udp; udp_load.c,
udp_echo.c). Once: the SAML assertion consumer's verifications per second
(saml_bench), slide downloads, the admin application at scale, a real
server killed under load.
GH_BENCH_ONLY=l4 runs the Layer-4 rows alone; GH_BENCH_ONLY=main the main
table's rows alone, appended as one more run to "Consecutive runs of the
main table".
Writes docs/performance.md.
Usage: bench.py BUILD_DIR [seconds-per-run]
Quick check of the code path: BENCH_SECONDS=2 GH_BENCH_ROUNDS=1 GH_BENCH_IDLE=500
scripts/bench.sh build"""
import os
import platform
import re
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import main_table  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
SECS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
IDLE_CONNS = int(os.environ.get("GH_BENCH_IDLE", "5000"))
# A build of an earlier gatehouse to measure beside this one in the same
# interleaved rounds ("no worse than before" is a ratio from one run).
BEFORE = os.environ.get("GH_BENCH_BEFORE")
NCPU = os.cpu_count() or 1
PROXY_CPU = ["taskset", "-c", "0"] if NCPU >= 2 else []
LOAD_CPU = ["taskset", "-c", "1"] if NCPU >= 2 else []
TMP = tempfile.mkdtemp(prefix="gh-bench-")
procs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("port %d did not open" % port)


def spawn(args, name):
    log = open(os.path.join(TMP, name + ".log"), "w")
    p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def children(pid):
    """pid and its descendants (nginx master + worker)."""
    out = [pid]
    try:
        kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
    except OSError:
        kids = []
    for k in kids:
        out += children(int(k))
    return out


def cpu_split(pids):
    """(user, system) CPU seconds of pids so far."""
    tick = os.sysconf("SC_CLK_TCK")
    user = system = 0
    for pid in pids:
        try:
            fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
        except OSError:
            pass
    return user / tick, system / tick


def cpu_seconds(pids):
    return sum(cpu_split(pids))


def mem_kb(pids, key):
    total = 0
    for pid in pids:
        try:
            for line in open("/proc/%d/status" % pid):
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def setup_certs():
    subprocess.run([os.path.join(BUILD, "gatehouse"), "certs", "default", TMP], check=True)
    ca, cert, key = (os.path.join(TMP, f) for f in ("ca.pem", "server.pem", "server.key"))
    combined = write("combined.pem", open(cert).read() + open(key).read())
    os.chmod(combined, 0o600)
    return ca, cert, key, combined


KEYS = os.environ.get("GH_BENCH_KEYS", "ec rsa").split()
KEY_LABEL = {"ec": "ECDSA P-256", "rsa": "RSA-2048"}


def key_certs(kind):
    """The client-facing certificate of one key type, signed by the bench
    CA (setup_certs); the backends keep the default ECDSA one throughout."""
    if kind not in KEY_LABEL:
        raise SystemExit("GH_BENCH_KEYS: unknown key type %r (ec, rsa)" % kind)
    out = os.path.join(TMP, "front-" + kind)
    subprocess.run([os.path.join(BUILD, "gatehouse"), "certs", "server", "--ca",
                    os.path.join(TMP, "ca"), "--out", out, "--cn", "localhost",
                    "--san", "DNS:localhost,IP:127.0.0.1"] +
                   (["--rsa", "2048"] if kind == "rsa" else []), check=True, capture_output=True)
    cert, key = out + ".pem", out + ".key"
    combined = write("front-%s-combined.pem" % kind, open(cert).read() + open(key).read())
    os.chmod(combined, 0o600)
    return cert, key, combined


def start_origin(cert, key, tag):
    """The no-proxy column: one nginx configured as a backend, with the key
    type's certificate, pinned to the proxies' CPU so that its per-core
    figure compares with theirs; wrk talks to it directly."""
    port = free_port()
    www = os.path.join(TMP, "www")
    conf = write("origin-%s.conf" % tag, """user root; worker_processes 1; pid %s/origin-%s.pid;
error_log %s/origin-%s.err; worker_rlimit_nofile 20000;
events { worker_connections 9000; }
http { access_log off;
    server { listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s;
             ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:O%s:10m;
             keepalive_requests 10000000; keepalive_timeout 300s; root %s; } }
""" % (TMP, tag, TMP, tag, port, cert, key, tag, www))
    p = spawn(PROXY_CPU + ["nginx", "-c", conf, "-g", "daemon off;"], "origin-" + tag)
    wait_port(port)
    return p, port


def start_backends(cert, key):
    b1, b2 = free_port(), free_port()
    www = os.path.join(TMP, "www")
    os.makedirs(www, exist_ok=True)  # the store rows start their own pair too
    with open(os.path.join(www, "1k.bin"), "wb") as f:
        f.write(b"x" * 1024)
    with open(os.path.join(www, "64k.bin"), "wb") as f:
        f.write(b"y" * 65536)
    servers = "".join("""
    server { listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s;
             ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:B%d:10m;
             keepalive_requests 10000000; keepalive_timeout 300s; root %s; }""" % (p, cert, key, p, www)
                      for p in (b1, b2))
    conf = write("backends-%d.conf" % b1, """user root; worker_processes 1; pid %s/backends-%d.pid;
error_log %s/backends.err; worker_rlimit_nofile 20000;
events { worker_connections 9000; }
http { access_log off; %s }
""" % (TMP, b1, TMP, servers))
    spawn(LOAD_CPU + ["nginx", "-c", conf, "-g", "daemon off;"], "backends-%d" % b1)
    wait_port(b1)
    wait_port(b2)
    return b1, b2


def filter_rules():
    """100 rules none of which match the benchmark's requests (so every one
    is evaluated), and 20 allowed directories where only the last matches."""
    rules = []
    for i in range(100):
        kind = i % 5
        if kind == 0:
            rules.append('    rule r%d deny if path prefix /private%d/' % (i, i))
        elif kind == 1:
            rules.append('    rule r%d deny if path regex "^/(admin|internal)%d(/|$)"' % (i, i))
        elif kind == 2:
            rules.append('    rule r%d deny 400 if query regex "(?i)(union|select|sleep)%d"' % (i, i))
        elif kind == 3:
            rules.append('    rule r%d deny if header User-Agent regex "(?i)scanner%d"' % (i, i))
        else:
            rules.append('    rule r%d deny if method exact X-METHOD-%d' % (i, i))
    dirs = " ".join("/app%d/*" % i for i in range(19)) + " /*.bin"
    return "rules bench {\n" + "\n".join(rules) + "\n}\n", dirs


def start_gatehouse(port, b1, b2, ca, cert, key, filtered=False, extra="", tag="", build=None,
                    mgmt=None, top=""):
    """mgmt: the port of an `app management` service, whose /metrics
    counts the bench service's full and resumed client handshakes. top:
    main-context directives (a store block)."""
    rules, dirs = filter_rules() if filtered else ("", "/*")
    conf_text = "workers 1\naccess-log off\n" + top
    if mgmt:
        conf_text += "state-dir %s\n" % os.path.join(TMP, "gh-state" + tag)
    conf_text += "certificate main { cert %s; key %s }\n" % (cert, key)
    conf_text += "ca internal { file %s }\n" % ca
    conf_text += rules
    conf_text += "service bench {\n    listen 127.0.0.1:%d\n    certificate main\n" % port
    conf_text += "    allowed-hosts *\n    allowed-dirs %s\n" % dirs
    if filtered:
        conf_text += "    rule-set bench\n"
    conf_text += extra
    conf_text += "    reencrypt verify internal\n    keepalive-timeout 300s\n"
    conf_text += "    server b1 127.0.0.1:%d verify-name localhost\n" % b1
    conf_text += "    server b2 127.0.0.1:%d verify-name localhost\n}\n" % b2
    if mgmt:
        conf_text += ("service mgmt {\n    listen 127.0.0.1:%d\n    certificate main\n"
                      "    allowed-hosts *\n    allowed-dirs /*\n    app management\n}\n" % mgmt)
    name = "gatehouse-filter" if filtered else "gatehouse" + tag
    conf = write(name + ".conf", conf_text)
    p = spawn(PROXY_CPU + [os.path.join(build or BUILD, "gatehouse"), "-c", conf], name)
    wait_port(port)
    return p


def haproxy_conf(port, backends, ca, combined, extra=""):
    """The HAProxy of every HTTP row (callgrind.py runs it too): one thread,
    TLS terminated and re-encrypted to backends, verified."""
    servers = "".join("    server b%d 127.0.0.1:%d ssl verify required ca-file %s sni str(localhost) "
                      "verifyhost localhost\n" % (i + 1, b, ca) for i, b in enumerate(backends))
    return """global
    nbthread 1
    maxconn 9000
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 60s
    timeout http-keep-alive 300s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:%d ssl crt %s alpn http/1.1
    default_backend be
backend be
    balance leastconn
    # always: like gatehouse's pool, an idle server connection serves any
    # client; with safe, every client connection's first request opens its
    # own (a TLS handshake to nginx per client connection on resumed rows)
    http-reuse always
%s%s""" % (port, combined, extra, servers)


def start_haproxy(port, b1, b2, ca, combined, kill=False):
    extra = ("    retries 3\n    option redispatch 1\n    retry-on all-retryable-errors\n"
             if kill else "")
    conf = write("haproxy%s-%d.cfg" % ("-kill" if kill else "", port),
                 haproxy_conf(port, (b1, b2), ca, combined, extra))
    p = spawn(PROXY_CPU + ["haproxy", "-db", "-f", conf],
              "haproxy%s-%d" % ("-kill" if kill else "", port))
    wait_port(port)
    return p


def nginx_conf(port, backends, ca, cert, key, process):
    """The nginx proxy of every HTTP row (callgrind.py runs it too);
    process: the lines before events (pid, workers, master)."""
    return """%s
events { worker_connections 9000; }
http {
    access_log off;
    upstream be { least_conn; %s keepalive 64; }
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %s; ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_timeout 300s; keepalive_requests 10000000;
        location / {
            proxy_pass https://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate %s;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;
        }
    }
}
""" % (process, " ".join("server 127.0.0.1:%d;" % b for b in backends), port, cert, key, ca)


def start_nginx(port, b1, b2, ca, cert, key):
    tag = "-%d" % port
    conf = write("nginx-proxy%s.conf" % tag, nginx_conf(
        port, (b1, b2), ca, cert, key,
        "user root; worker_processes 1; pid %s/nginx-proxy%s.pid;\n"
        "error_log %s/nginx-proxy.err; worker_rlimit_nofile 20000;" % (TMP, tag, TMP)))
    p = spawn(PROXY_CPU + ["nginx", "-c", conf, "-g", "daemon off;"], "nginx-proxy" + tag)
    wait_port(port)
    return p


def parse_latency(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)", s)
    if m is None:
        print("    (unparsed wrk latency %r)" % s, flush=True)
        return float("nan")
    if m.group(2) == "m":
        return float(m.group(1)) * 60000
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else (v * 1000 if m.group(2) == "s" else v)


def wrk(port, path, pids, host="127.0.0.1", headers=()):
    """host: the URL's, so the TLS server name wrk sends (the pass-through
    rows route by it). headers: wrk -H arguments."""
    (u0, s0), t0 = cpu_split(pids), time.time()
    c0 = u0 + s0
    out = subprocess.run(LOAD_CPU + ["wrk", "-t1", "-c50", "-d%ds" % SECS, "--latency"] +
                         [a for h in headers for a in ("-H", h)] +
                         ["https://%s:%d%s" % (host, port, path)],
                         capture_output=True, text=True).stdout
    u1, s1 = cpu_split(pids)
    secs = time.time() - t0
    cpu = (u1 + s1 - c0) / secs
    m_rps, m_p99 = re.search(r"Requests/sec:\s+([\d.]+)", out), re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if m_rps is None or m_p99 is None:
        raise SystemExit("wrk on port %d gave no result:\n%s" % (port, out))
    rps = float(m_rps.group(1))
    p99 = parse_latency(m_p99.group(1))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    errors = errs.group(0) if errs else ""
    if rps == 0 and not errors:  # seen on a loaded machine: wrk waited out the run
        errors = "no request completed in %d s" % SECS
    # CPU microseconds per request in user space and in the kernel: the
    # kernel's share (loopback TCP) is the same work for every proxy
    done = max(rps * secs, 1)
    return {"rps": rps, "p99": p99, "cpu": cpu, "errors": errors,
            "user_us": (u1 - u0) * 1e6 / done, "sys_us": (s1 - s0) * 1e6 / done}


def handshakes(port, pids, sni=None):
    """sni: ab sends no server name for an IP address, but takes the one of
    a Host header given with -H (the pass-through rows route by it)."""
    n = max(2000, SECS * 400)
    c0, t0 = cpu_seconds(pids), time.time()
    out = subprocess.run(LOAD_CPU + ["ab", "-q", "-n", str(n), "-c", "16"] +
                         (["-H", "Host: " + sni] if sni else []) +
                         ["https://127.0.0.1:%d/1k.bin" % port],
                         capture_output=True, text=True).stdout
    cpu = (cpu_seconds(pids) - c0) / (time.time() - t0)
    rps = float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    proto = re.search(r"SSL/TLS Protocol:\s+(\S+)", out)
    return {"rps": rps, "cpu": cpu, "failed": failed, "proto": proto.group(1) if proto else "?"}


def s_time(port, pids, reuse):
    """Handshakes per second from openssl s_time (one connection at a time,
    each fetching /1k.bin): -new makes every one a full handshake, -reuse
    resumes the first session."""
    c0, t0 = cpu_seconds(pids), time.time()
    out = subprocess.run(LOAD_CPU + ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port,
                                     "-reuse" if reuse else "-new", "-time", str(max(3, SECS // 2)),
                                     "-www", "/1k.bin"], capture_output=True, text=True).stdout
    cpu = (cpu_seconds(pids) - c0) / (time.time() - t0)
    m = re.findall(r"(\d+) connections in (\d+) real seconds, (\d+) bytes read", out)
    if not m:
        raise SystemExit("s_time on port %d gave no result:\n%s" % (port, out))
    n, secs, nbytes = (int(x) for x in m[-1])
    return {"rps": n / secs, "cpu": cpu, "bytes": nbytes}


# Full handshakes: ab is single-threaded, so one ab process saturates its
# core before the proxy does; HS_PROCS processes of HS_CONC connections each
# run in parallel and their rates are summed (ab rather than parallel
# `openssl s_time -new`: ab keeps HS_CONC handshakes in flight per process
# where s_time has one, and counts failed and non-2xx responses).
HS_PROCS = int(os.environ.get("GH_BENCH_AB_PROCS", "4"))
HS_CONC = int(os.environ.get("GH_BENCH_AB_CONC", "8"))


def handshakes_par(port, pids):
    """HS_PROCS ab processes for SECS seconds each, one new connection and
    full handshake per request (ab offers no session), summed."""
    n = max(50000, SECS * 5000)  # ab stops at -t or -n, whichever first
    c0, t0 = cpu_seconds(pids), time.time()
    ps = [subprocess.Popen(LOAD_CPU + ["ab", "-q", "-t", str(SECS), "-n", str(n), "-c",
                                       str(HS_CONC), "https://127.0.0.1:%d/1k.bin" % port],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
          for _ in range(HS_PROCS)]
    outs = [p.communicate()[0] for p in ps]
    cpu = (cpu_seconds(pids) - c0) / (time.time() - t0)
    rps = failed = 0
    for out in outs:
        m = re.search(r"Requests per second:\s+([\d.]+)", out)
        if m is None:
            raise SystemExit("ab on port %d gave no result:\n%s" % (port, out))
        rps += float(m.group(1))
        failed += int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
        failed += int(non2xx.group(1)) if non2xx else 0
    proto = re.search(r"SSL/TLS Protocol:\s+(\S+)", outs[0])
    return {"rps": rps, "cpu": cpu, "failed": failed, "proto": proto.group(1) if proto else "?"}


def gh_handshakes(mport):
    """gatehouse's completed client handshakes of service bench, from its
    management /metrics: {"no": full, "yes": resumed}, or None."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    end = time.time() + 10
    while True:  # the application's socket may come up after the listener
        try:
            with socket.create_connection(("127.0.0.1", mport), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
                              b"Connection: close\r\n\r\n")
                    got = b""
                    while len(got) < (4 << 20):
                        part = s.recv(65536)
                        if not part:
                            break
                        got += part
            if got.startswith(b"HTTP/1.1 200"):
                break
        except OSError:
            pass
        if time.time() > end:
            return None
        time.sleep(0.1)
    found = dict(re.findall(r'gatehouse_tls_handshakes_total\{service="bench",resumed="(yes|no)"\}'
                            r" (\d+)", got.decode("latin-1")))
    return {k: int(v) for k, v in found.items()} if len(found) == 2 else None


def sclient_resumes(port):
    """What a client that keeps its session gets from the server on port:
    a first connection's session offered on a second connection, with
    openssl s_client -sess_out / -sess_in. Returns (second connection
    "Reused", second connection got a NewSessionTicket, a third connection
    resumes that new ticket) - what wrk relies on when it reconnects."""
    req = b"GET /1k.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    files = [os.path.join(TMP, "sess-%d-%d" % (port, i)) for i in range(2)]

    def connect(args):
        return subprocess.run(LOAD_CPU + ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                                          "-servername", "localhost", "-ign_eof"] + args,
                              input=req, capture_output=True, timeout=30).stdout.decode("latin-1")
    connect(["-sess_out", files[0]])
    second = connect(["-sess_in", files[0], "-sess_out", files[1], "-msg"])
    third = connect(["-sess_in", files[1]])
    reused = lambda out: re.search(r"^Reused, ", out, re.M) is not None
    return reused(second), "NewSessionTicket" in second, reused(third)


def idle_memory(port, pids):
    """Opens IDLE_CONNS keep-alive TLS connections, one request each, and
    holds them; returns the proxy's VmHWM and VmRSS growth."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 200000), hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    rss0 = mem_kb(pids, "VmRSS")
    conns = []
    req = b"GET /1k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n"
    for _ in range(IDLE_CONNS):
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        s.sendall(req)
        got = b""
        while len(got) < 1024 or b"\r\n\r\n" not in got:
            got += s.recv(65536)
        conns.append(s)
    time.sleep(1)  # let the proxy settle after the last response (not a sync point)
    hwm, rss = mem_kb(pids, "VmHWM"), mem_kb(pids, "VmRSS")
    alive = 0
    for s in conns:
        try:
            s.setblocking(False)
            try:
                alive += s.recv(1) != b""
            except ssl.SSLWantReadError:
                alive += 1
        except OSError:
            pass
        s.close()
    return {"hwm": hwm, "rss_per_conn": (rss - rss0) * 1024 / IDLE_CONNS, "alive": alive,
            "conns": IDLE_CONNS}


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ver = lambda cmd: subprocess.run(cmd, capture_output=True, text=True).stdout + \
        subprocess.run(cmd, capture_output=True, text=True).stderr
    return {
        "cpu": model, "ncpu": NCPU, "kernel": platform.release(),
        "openssl": ver(["openssl", "version"]).strip(),
        "haproxy": ver(["haproxy", "-v"]).splitlines()[0],
        "nginx": ver(["nginx", "-v"]).strip(),
        "wrk": "wrk " + (re.search(r"wrk (\S+)", ver(["wrk", "-v"])) or re.search("()", "")).group(1),
    }


def start_one_backend(cert, key, tag):
    """One nginx TLS backend of its own, so it can be killed alone."""
    port = free_port()
    www = os.path.join(TMP, "www")
    conf = write("kill-%s.conf" % tag, """user root; worker_processes 1; pid %s/kill-%s.pid;
error_log %s/kill-%s.err;
events { worker_connections 4000; }
http { access_log off; server { listen 127.0.0.1:%d ssl; ssl_certificate %s;
       ssl_certificate_key %s; keepalive_requests 10000000; root %s; } }
""" % (TMP, tag, TMP, tag, port, cert, key, www))
    p = spawn(LOAD_CPU + ["nginx", "-c", conf, "-g", "daemon off;"], "kill-" + tag)
    wait_port(port)
    return p, port


def kill_test(name, ca, cert, key, combined):
    """wrk against the proxy for 6 s over two fresh backends; after 2 s one
    backend (master and worker) is SIGKILLed. Returns requests and failures."""
    (pa, a), (pb, b) = start_one_backend(cert, key, name + "a"), start_one_backend(cert, key, name + "b")
    port = free_port()
    if name == "gatehouse":
        p = start_gatehouse(port, a, b, ca, cert, key, extra="    retries 2\n", tag="-kill")
    elif name == "haproxy":
        p = start_haproxy(port, a, b, ca, combined, kill=True)
    else:
        p = start_nginx(port, a, b, ca, cert, key)
    w = subprocess.Popen(LOAD_CPU + ["wrk", "-t1", "-c50", "-d6s", "--timeout", "2s",
                                     "https://127.0.0.1:%d/1k.bin" % port],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(2)  # the failure comes mid-run; this is the scenario, not a wait for readiness
    for pid in children(pb.pid):
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    out = w.communicate()[0]
    p.terminate()
    p.wait(timeout=20)
    pa.terminate()
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    lost = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
    return {"requests": reqs, "lost": lost}


ROUNDS = int(os.environ.get("GH_BENCH_ROUNDS", "5"))


def median_run(runs):
    """The run with the median request rate (its p99 and CPU go with it)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


# Layer 4 (issue 14): a `mode tcp` + `tls passthrough` service and a
# `mode udp` one, against HAProxy `mode tcp` and nginx `stream` (TCP with
# ssl_preread, and UDP; HAProxy has no UDP proxy). The pass-through rows
# reuse the HTTP rows' nginx TLS backends, which terminate TLS themselves:
# every client connection is one end-to-end TLS session through the proxy.
# All three read the ClientHello's server name and route by it (localhost).
L4_NAMES = ("gatehouse", "haproxy", "nginx")
UDP_FLOWS = int(os.environ.get("GH_BENCH_UDP_FLOWS", "50"))
UDP_SIZE = int(os.environ.get("GH_BENCH_UDP_SIZE", "128"))
# Debian's nginx-light builds `stream` as a module (libnginx-mod-stream).
NGINX_STREAM = "/usr/lib/nginx/modules/ngx_stream_module.so"


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_udp(port, timeout=10):
    """Readiness of a UDP service: a datagram sent to it comes back, from
    that very address (a proxy's reply comes from its listener, not from
    the echo server behind it)."""
    end = time.time() + timeout
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    try:
        while time.time() < end:
            try:
                s.sendto(b"ready?", ("127.0.0.1", port))
                if s.recvfrom(2048) == (b"ready?", ("127.0.0.1", port)):
                    return
            except OSError:  # a timeout, or the ICMP unreachable of a port not yet bound
                time.sleep(0.05)
    finally:
        s.close()
    raise SystemExit("UDP port %d did not echo" % port)


def start_udp_echoes():
    """Two UDP echo servers (tests/bench/udp_echo.c) on the load CPU."""
    ports = []
    for tag in ("e1", "e2"):
        port = free_udp_port()
        spawn(LOAD_CPU + [os.path.join(BUILD, "udp_echo"), "127.0.0.1:%d" % port], "udp-echo-" + tag)
        wait_udp(port)
        ports.append(port)
    return ports


def start_gatehouse_l4(tcp, udp, b1, b2, e1, e2):
    conf = write("gatehouse-l4.conf", """workers 1
access-log off
service pass {
    listen 127.0.0.1:%d
    mode tcp
    tls passthrough
    allowed-hosts localhost
    idle-timeout 300s
    server b1 127.0.0.1:%d
    server b2 127.0.0.1:%d
}
service flows {
    listen 127.0.0.1:%d
    mode udp
    server e1 127.0.0.1:%d
    server e2 127.0.0.1:%d
}
""" % (tcp, b1, b2, udp, e1, e2))
    p = spawn(PROXY_CPU + [os.path.join(BUILD, "gatehouse"), "-c", conf], "gatehouse-l4")
    wait_port(tcp)
    wait_udp(udp)
    return p


def start_haproxy_l4(tcp, b1, b2):
    conf = write("haproxy-l4.cfg", """global
    nbthread 1
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 300s
    timeout server 300s
frontend pass
    bind 127.0.0.1:%d
    tcp-request inspect-delay 5s
    tcp-request content accept if { req.ssl_hello_type 1 }
    use_backend pass if { req.ssl_sni -i localhost }
backend pass
    balance leastconn
    server b1 127.0.0.1:%d
    server b2 127.0.0.1:%d
""" % (tcp, b1, b2))
    p = spawn(PROXY_CPU + ["haproxy", "-db", "-f", conf], "haproxy-l4")
    wait_port(tcp)
    return p


def start_nginx_l4(tcp, udp, b1, b2, e1, e2):
    """nginx `stream`: ssl_preread for the server name; UDP sessions kept
    per client address and port until proxy_timeout (no proxy_responses
    limit), as gatehouse keeps a flow until its flow-timeout (60 s)."""
    conf = write("nginx-l4.conf", """load_module %s;
user root; worker_processes 1; pid %s/nginx-l4.pid;
error_log %s/nginx-l4.err; worker_rlimit_nofile 20000;
events { worker_connections 9000; }
stream {
    upstream pass { least_conn; server 127.0.0.1:%d; server 127.0.0.1:%d; }
    upstream flows { least_conn; server 127.0.0.1:%d; server 127.0.0.1:%d; }
    map $ssl_preread_server_name $pass_to { localhost pass; default 127.0.0.1:1; }
    server { listen 127.0.0.1:%d; ssl_preread on; proxy_pass $pass_to; proxy_timeout 300s; }
    server { listen 127.0.0.1:%d udp; proxy_pass flows; proxy_timeout 60s; }
}
""" % (NGINX_STREAM, TMP, TMP, b1, b2, e1, e2, tcp, udp))
    p = spawn(PROXY_CPU + ["nginx", "-c", conf, "-g", "daemon off;"], "nginx-l4")
    wait_port(tcp)
    wait_udp(udp)
    return p


def check_passthrough(name, port, backends, ca):
    """The pass-through rows must be end-to-end TLS with a backend, the
    proxy only copying bytes. A TLS 1.2 session made through the proxy is
    offered to each backend directly: a backend resumes only a session it
    made itself (its own session cache and ticket key), so one of them
    resuming it proves the proxy did not terminate TLS. Returns the port of
    the backend that did."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2

    def get(to, session=None):
        with socket.create_connection(("127.0.0.1", to), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
                s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                got = b""
                for _ in range(1000):  # bounded: 1 KiB and a head come in a few reads
                    part = s.recv(65536)
                    if not part:
                        break
                    got += part
                if not got.startswith(b"HTTP/1.1 200") or not got.endswith(b"x" * 1024):
                    raise SystemExit("%s pass-through: bad response %r" % (name, got[:200]))
                return s.session, s.session_reused
    sess, _ = get(port)
    for b in backends:
        if get(b, sess)[1]:
            return b
    raise SystemExit("%s pass-through: no backend resumed the session made through it, "
                     "so the proxy terminated TLS" % name)


def start_l4(b1, b2, ca):
    """The three Layer-4 proxies and the UDP echo servers; returns
    {name: {"tcp": port, "udp": port or None, "pids": [...]}}."""
    if not os.path.exists(NGINX_STREAM):
        raise SystemExit("%s missing: install libnginx-mod-stream (scripts/deps.sh bench)"
                         % NGINX_STREAM)
    e1, e2 = start_udp_echoes()
    ports = {n: (free_port(), free_udp_port() if n != "haproxy" else None) for n in L4_NAMES}
    procs_by = {"gatehouse": start_gatehouse_l4(*ports["gatehouse"], b1, b2, e1, e2),
                "haproxy": start_haproxy_l4(ports["haproxy"][0], b1, b2),
                "nginx": start_nginx_l4(*ports["nginx"], b1, b2, e1, e2)}
    time.sleep(0.5)  # nginx's worker appears after the master listens; not a sync point
    l4 = {n: {"tcp": ports[n][0], "udp": ports[n][1], "pids": children(procs_by[n].pid),
              "proc": procs_by[n]} for n in L4_NAMES}
    for n, v in l4.items():
        print("l4 %-9s pass-through: session resumed by backend %d directly" % (
            n, check_passthrough(n, v["tcp"], (b1, b2), ca)), flush=True)
    for n, v in l4.items():  # warm up: backend sessions, the proxies' first allocations
        subprocess.run(LOAD_CPU + ["wrk", "-t1", "-c50", "-d2s",
                                   "https://localhost:%d/1k.bin" % v["tcp"]], capture_output=True)
        if v["udp"]:
            udp_run(v["udp"], v["pids"], 2)
    return l4


def udp_run(port, pids, secs=None):
    """UDP_FLOWS flows through the proxy, each a closed loop of one
    UDP_SIZE-byte datagram and its echo (tests/bench/udp_load.c)."""
    c0, t0 = cpu_seconds(pids), time.time()
    out = subprocess.run(LOAD_CPU + [os.path.join(BUILD, "udp_load"), "127.0.0.1:%d" % port,
                                     str(UDP_FLOWS), str(secs or SECS), str(UDP_SIZE)],
                         capture_output=True, text=True)
    cpu = (cpu_seconds(pids) - c0) / (time.time() - t0)
    vals = dict(line.split() for line in out.stdout.splitlines() if len(line.split()) == 2)
    if out.returncode != 0 or "rate" not in vals:
        raise SystemExit("udp_load on port %d failed (%d):\n%s%s" % (
            port, out.returncode, out.stdout, out.stderr))
    return {"rps": float(vals["rate"]), "p99": float(vals["p99_ms"]), "p50": float(vals["p50_ms"]),
            "cpu": cpu, "lost": int(vals["lost"]), "send_errors": int(vals["send_errors"]),
            "icmp_errors": int(vals["icmp_errors"]), "stale": int(vals["stale"]),
            "round_trips": int(vals["round_trips"])}


def l4_round(l4, rnd, runs):
    """One round of the Layer-4 measures: each measure on every proxy in
    turn, the proxies' order rotated per round so that none always runs
    first after a change of measure."""
    order = list(L4_NAMES[rnd % 3:] + L4_NAMES[:rnd % 3])
    for n in order:
        runs[n]["pass_ka"].append(wrk(l4[n]["tcp"], "/1k.bin", l4[n]["pids"], host="localhost"))
    for n in order:
        runs[n]["pass_hs"].append(handshakes(l4[n]["tcp"], l4[n]["pids"], sni="localhost"))
    for n in order:
        if l4[n]["udp"]:
            runs[n]["udp"].append(udp_run(l4[n]["udp"], l4[n]["pids"]))
    for n in order:
        line = "l4 %-9s pass 1k %7.0f req/s p99 %6.2f ms cpu %.2f | pass hs %5.0f/s cpu %.2f" % (
            n, runs[n]["pass_ka"][-1]["rps"], runs[n]["pass_ka"][-1]["p99"],
            runs[n]["pass_ka"][-1]["cpu"], runs[n]["pass_hs"][-1]["rps"],
            runs[n]["pass_hs"][-1]["cpu"])
        if runs[n]["udp"]:
            u = runs[n]["udp"][-1]
            line += " | udp %7.0f rt/s p99 %6.2f ms cpu %.2f lost %d" % (
                u["rps"], u["p99"], u["cpu"], u["lost"])
        print(line, flush=True)


def l4_new_runs():
    return {n: {"pass_ka": [], "pass_hs": [], "udp": []} for n in L4_NAMES}


def l4_section(runs, alone=False):
    """The "Layer 4" section of docs/performance.md: median of the rounds,
    with the lowest and highest round in brackets. alone: measured by
    GH_BENCH_ONLY=l4, not in the rounds of the HTTP table."""
    def per_core(r):
        return r["rps"] / max(r["cpu"], 0.01)

    def med(vals):
        return sorted(vals)[len(vals) // 2] if vals else None

    def cell(n, key, f, fmt, spread=True):
        """(text, median, (lowest, highest)) of one proxy's rounds."""
        vals = [f(r) for r in runs[n][key]]
        if not vals:
            return "-", None, None
        v = med(vals)
        text = fmt % v
        if spread and len(vals) > 1:
            text += (" [" + fmt + "-" + fmt + "]") % (min(vals), max(vals))
        return text, v, (min(vals), max(vals))

    def ratio(a, b):
        """a / b of the medians; "tie" where the two proxies' lowest-highest
        ranges overlap, so the round-to-round spread covers the ratio."""
        if a[1] is None or not b[1]:
            return "-"
        text = "%.2f" % (a[1] / b[1])
        if a[2][0] <= b[2][1] and b[2][0] <= a[2][1]:
            text += " (tie)"
        return text

    rows = ["| measure | gatehouse | HAProxy (mode tcp) | nginx (stream) | gatehouse / HAProxy "
            "| nginx / HAProxy | gatehouse / nginx | better |", "|---|---|---|---|---|---|---|---|"]

    def row(label, key, f, fmt, better, spread=True):
        c = {n: cell(n, key, f, fmt, spread) for n in L4_NAMES}
        g, h, x = (c[n] for n in L4_NAMES)
        rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, c["gatehouse"][0], c["haproxy"][0], c["nginx"][0], ratio(g, h), ratio(x, h),
            ratio(g, x), better))

    rps, p99, cpu = (lambda r: r["rps"]), (lambda r: r["p99"]), (lambda r: r["cpu"])
    row("TCP pass-through, keep-alive 1 KiB, req/s", "pass_ka", rps, "%.0f", "higher")
    row("TCP pass-through, keep-alive 1 KiB, p99 ms", "pass_ka", p99, "%.2f", "lower")
    row("TCP pass-through, keep-alive 1 KiB, proxy CPU (cores)", "pass_ka", cpu, "%.2f", "-")
    row("TCP pass-through, keep-alive 1 KiB, req/s per proxy core", "pass_ka", per_core, "%.0f", "higher")
    row("TCP pass-through, full handshakes/s (new connection per request)", "pass_hs", rps, "%.0f", "higher")
    row("TCP pass-through, handshakes, proxy CPU (cores)", "pass_hs", cpu, "%.2f", "-")
    row("TCP pass-through, handshakes/s per proxy core", "pass_hs", per_core, "%.0f", "higher")
    row("UDP flows, datagrams/s (round trips)", "udp", rps, "%.0f", "higher")
    row("UDP flows, p99 ms (round trip)", "udp", p99, "%.2f", "lower")
    row("UDP flows, proxy CPU (cores)", "udp", cpu, "%.2f", "-")
    row("UDP flows, round trips/s per proxy core", "udp", per_core, "%.0f", "higher")
    errs = []
    for n in L4_NAMES:
        e = [r["errors"] for r in runs[n]["pass_ka"] if r["errors"]]
        e += ["ab failed %d" % r["failed"] for r in runs[n]["pass_hs"] if r["failed"]]
        lost = sum(r["lost"] for r in runs[n]["udp"])
        sent = sum(r["send_errors"] for r in runs[n]["udp"])
        icmp = sum(r["icmp_errors"] for r in runs[n]["udp"])
        if lost or sent or icmp:
            e.append("UDP %d datagrams lost (unanswered in 200 ms), %d send errors, %d ICMP "
                     "errors" % (lost, sent, icmp))
        if e:
            errs.append("%s: %s" % (n, "; ".join(e)))
    nrounds = len(runs["gatehouse"]["pass_ka"])
    when = ("By `GH_BENCH_ONLY=l4 make bench` on %s, alone (not in the rounds of the table "
            "above)" % time.strftime("%Y-%m-%d") if alone else
            "In the interleaved rounds of the %s table above" % KEY_LABEL.get(KEYS[0], KEYS[0]))
    return """## Layer 4: TLS pass-through and UDP flows

%(when)s, %(rounds)d rounds.
Each measure ran on the three proxies in turn, their order rotated every
round. Every cell is the median round, the lowest and highest rounds in
brackets; ratios are of the medians, marked "(tie)" where the two proxies'
lowest-highest ranges overlap (the difference is inside the spread of the
rounds).

- **TCP pass-through**: gatehouse `mode tcp` + `tls passthrough`, HAProxy
  `mode tcp` (`tcp-request inspect-delay` and `use_backend ... if {
  req.ssl_sni -i localhost }`), nginx `stream` (`ssl_preread on`, a `map`
  of `$ssl_preread_server_name` to the upstream): each reads the
  ClientHello's server name, routes by it and copies bytes to the same two
  nginx TLS backends as above (least connections, one worker/thread). The
  TLS session is end-to-end with nginx, so each wrk connection (50,
  keep-alive, 1 KiB) is one pass-through connection; ab (16 concurrent, `-H
  "Host: localhost"` so that it sends the server name) makes a new
  connection and a full handshake with the backend per request. The
  handshakes themselves (client and server) run on CPU 1 with ab and the
  backends, so the proxies are far from busy there: the per-core row is
  the proxy's cost of accepting, reading the ClientHello, connecting and
  closing. Before the rounds, each proxy is checked to pass TLS through: a
  TLS 1.2 session made through it is offered to the backends directly, and
  one of them must resume it (a backend resumes only sessions it made
  itself, so a proxy that terminated TLS would fail this and stop the
  bench).
- **UDP flows**: gatehouse `mode udp` (defaults: `flow-timeout 60s`,
  `max-flows 65536`) and nginx `stream` `listen ... udp` (sessions held
  per client address and port up to `proxy_timeout 60s`, no
  `proxy_responses` limit, so both keep one server socket per flow), to
  two UDP echo servers (tests/bench/udp_echo.c) on CPU 1. HAProxy has no
  UDP proxy: "-". Load: tests/bench/udp_load.c on CPU 1, %(flows)d flows (one
  source port each), each sending a %(size)d-byte datagram and waiting for
  its echo before the next, for %(secs)d s; a datagram unanswered in 200 ms
  counts as lost and its flow sends a fresh one. Each flow's socket is
  connected to the proxy's address, so only datagrams coming back from the
  proxy (never from an echo server directly) are counted.

%(table)s

Errors during the Layer-4 runs: %(errors)s.

%(reproduce)s
""" % {"when": when, "rounds": nrounds, "flows": UDP_FLOWS, "size": UDP_SIZE, "secs": SECS,
       "table": "\n".join(rows), "errors": "; ".join(errs) or "none",
       "reproduce": ("Reproduce: `GH_BENCH_ONLY=l4 GH_BENCH_ROUNDS=%d BENCH_SECONDS=%d make bench` "
                     "(or that environment with `scripts/bench.sh build` after building "
                     "build/gatehouse, build/udp_load and build/udp_echo); a plain `make "
                     "bench` measures these rows in its HTTP rounds." % (nrounds, SECS)
                     if alone else
                     "Reproduce: `make bench` (GH_BENCH_ONLY=l4 measures these rows alone).")}


def splice_section(text, heading, section, before="## Cost of filtering"):
    """text with the section starting at heading replaced by section (up to
    the next "## "); else section inserted before the heading `before`
    (where a whole `make bench` writes it), else appended."""
    start = text.find(heading)
    if start < 0:
        at = text.find("\n" + before)
        if at >= 0:
            return text[:at + 1] + section + "\n" + text[at + 1:]
        return text.rstrip("\n") + "\n\n" + section
    end = text.find("\n## ", start + len(heading))
    return text[:start] + section + ("\n" + text[end + 1:] if end >= 0 else "")


def l4_only():
    """GH_BENCH_ONLY=l4: the Layer-4 rows alone (their backends, ROUNDS
    rounds), replacing that section of docs/performance.md; to iterate on
    them without the whole bench."""
    ca, cert, key, combined = setup_certs()
    b1, b2 = start_backends(cert, key)
    l4 = start_l4(b1, b2, ca)
    runs = l4_new_runs()
    for rnd in range(ROUNDS):
        l4_round(l4, rnd, runs)
        print("round %d done" % (rnd + 1), flush=True)
    section = l4_section(runs, alone=True)
    path = os.path.join(ROOT, "docs", "performance.md")
    text = splice_section(open(path).read(), "## Layer 4: TLS pass-through and UDP flows", section)
    with open(path, "w") as f:
        f.write(text)
    print(section)


def saml_bench():
    """ACS checks/s of a 2048-bit RSA-signed response, and OpenSSL's raw
    RSA-2048 verifications/s, on CPU 0 alone."""
    out = subprocess.run(PROXY_CPU + [os.path.join(BUILD, "saml_bench"), "5"],
                         capture_output=True, text=True, timeout=120)
    vals = dict(line.split() for line in out.stdout.splitlines() if len(line.split()) == 2)
    return {k: float(v) for k, v in vals.items()}


def slides_bench(ca, cert, key):
    """Slide download throughput through one gatehouse: service "slides"
    re-encrypts to gatehouse's own conference service (the conference
    application, token checked, file streamed), service "files" re-encrypts
    to nginx serving the very same encrypted files. MB/s of ciphertext."""
    import json
    import ssl
    import urllib.request
    front, conf_port, files_port, ngx = free_port(), free_port(), free_port(), free_port()
    direct = free_port()
    state = os.path.join(TMP, "slides-state")
    text = "workers 1\naccess-log off\nstate-dir %s\n" % state
    text += "certificate main { cert %s; key %s }\nca internal { file %s }\n" % (cert, key, ca)
    for name, port, target in (("slides", front, conf_port), ("files", files_port, ngx)):
        text += ("service %s {\n listen 127.0.0.1:%d\n certificate main\n allowed-hosts *\n"
                 " allowed-dirs /*\n reencrypt verify internal\n keepalive-timeout 300s\n"
                 " server s 127.0.0.1:%d verify-name localhost\n}\n" % (name, port, target))
    for name, port in (("conference", conf_port), ("direct", direct)):
        text += ("service %s {\n listen 127.0.0.1:%d\n certificate main\n allowed-hosts *\n"
                 " allowed-dirs /*\n app conference\n keepalive-timeout 300s\n}\n" % (name, port))
    conf = write("slides.conf", text)
    p = spawn(PROXY_CPU + [os.path.join(BUILD, "gatehouse"), "-c", conf], "slides")
    wait_port(front)
    ctx = ssl.create_default_context(cafile=ca)

    def call(path, data=None, token=None, method=None):
        h = {"Authorization": "Bearer " + token} if token else {}
        r = urllib.request.Request("https://localhost:%d%s" % (front, path), data=data,
                                   headers=h, method=method)
        with urllib.request.urlopen(r, context=ctx, timeout=60) as resp:
            return resp.read()
    # The admin API is on its own unix socket only, with a scoped token.
    admin = subprocess.run([os.path.join(BUILD, "gatehouse"), "meeting", "token", "add", "bench",
                            "--scope", "meetings-write", "-c", conf], capture_output=True,
                           text=True, check=True).stdout.strip()
    us = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    us.settimeout(60)
    us.connect(os.path.join(state, "run", "conference-admin.sock"))
    us.sendall(("POST /api/v1/admin/meetings HTTP/1.1\r\nHost: localhost\r\nConnection: close"
                "\r\nAuthorization: Bearer %s\r\nContent-Type: application/x-www-form-urlencoded"
                "\r\nContent-Length: 11\r\n\r\nalias=bench" % admin).encode())
    reply = b""
    while True:
        chunk = us.recv(65536)
        if not chunk:
            break
        reply += chunk
    us.close()
    m = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    tok = json.loads(call("/api/v1/meetings/join", data=("uri=%s&key=%s" % (
        m["uri"], m["conference_key"])).encode()))["token"]
    ids = {}
    for label, size in (("1 MiB", 1 << 20), ("20 MiB", 20 << 20)):
        ids[label] = json.loads(call("/api/v1/meetings/content?name=%d.bin" % size,
                                     data=os.urandom(size), token=tok))["id"]
    www = os.path.join(TMP, "slides-www")
    os.makedirs(www)
    for rid in ids.values():
        with open(os.path.join(state, "conference", "content", rid), "rb") as src, \
                open(os.path.join(www, rid), "wb") as dst:
            dst.write(src.read())
    nconf = write("slides-nginx.conf", """user root; worker_processes 1; pid %s/slides-nginx.pid;
error_log %s/slides-nginx.err; events { worker_connections 1024; }
http { access_log off; sendfile on; server { listen 127.0.0.1:%d ssl; ssl_certificate %s;
ssl_certificate_key %s; keepalive_requests 10000000; root %s; } }
""" % (TMP, TMP, ngx, cert, key, www))
    spawn(LOAD_CPU + ["nginx", "-c", nconf, "-g", "daemon off;"], "slides-nginx")
    wait_port(ngx)
    pids = children(p.pid)
    res = {}
    for label, rid in ids.items():
        auth = ["-H", "Authorization: Bearer " + tok]
        for via, port, path, hdr in (("gatehouse", front, "/api/v1/content/" + rid, auth),
                                     ("direct", direct, "/api/v1/content/" + rid, auth),
                                     ("nginx", files_port, "/" + rid, [])):
            c0, t0 = cpu_seconds(pids), time.time()
            out = subprocess.run(LOAD_CPU + ["wrk", "-t1", "-c8", "-d%ds" % max(SECS // 2, 3)] + hdr +
                                 ["https://localhost:%d%s" % (port, path)],
                                 capture_output=True, text=True).stdout
            t = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
            bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            unit = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}.get(t.group(2), 0) if t else 0
            res[(label, via)] = {"mbs": float(t.group(1)) * unit / 1e6 if t else 0.0,
                                 "bad": int(bad.group(1)) if bad else 0,
                                 "cpu": (cpu_seconds(pids) - c0) / (time.time() - t0)}
            print("slides %-6s via %-9s %8.1f MB/s" % (label, via, res[(label, via)]["mbs"]),
                  flush=True)
    p.terminate()
    return res


def admin_bench(ca, cert, key):
    """The admin application on a config with 1,000 virtual services and
    10,000 real servers: the statistics data the list page draws, and a
    server-state change (validate + write + hot reload), median of 5."""
    import json
    import ssl
    import statistics
    import urllib.parse
    import urllib.request
    import http.cookiejar
    state = os.path.join(TMP, "admin-state")
    port = free_port()
    lines = ["workers 1", "access-log off", "state-dir %s" % state,
             "certificate main { cert %s; key %s }" % (cert, key)]
    # Below the ephemeral range: a port the kernel hands out for outgoing
    # connections between our check and gatehouse's bind would collide.
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    ports, q = set(), max(1024, low - 20000)
    while len(ports) < 1000 and q < low:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
            ports.add(q)
        except OSError:
            pass
        s.close()
        q += 1
    for i, lp in enumerate(sorted(ports)):
        lines.append("service s%04d {\n listen 127.0.0.1:%d\n certificate main\n"
                     " allowed-hosts *\n allowed-dirs /*" % (i, lp))
        for j in range(10):
            lines.append(" server r%d 10.%d.%d.%d:4443" % (j, i // 250, i % 250, j + 1))
        lines.append("}")
    lines.append("service admin {\n listen 127.0.0.1:%d\n certificate main\n"
                 " allowed-hosts localhost\n allowed-dirs /*\n app admin\n}" % port)
    conf = write("admin-bench.conf", "\n".join(lines) + "\n")
    subprocess.run([os.path.join(BUILD, "gatehouse"), "admin", "user", "add", "root", "--role",
                    "admin", "-c", conf], input=b"bench password 1\n", check=True,
                   capture_output=True)
    t0 = time.time()
    p = spawn(PROXY_CPU + [os.path.join(BUILD, "gatehouse"), "-c", conf], "admin-bench")
    wait_port(port, timeout=120)
    start_s = time.time() - t0
    ctx = ssl.create_default_context(cafile=ca)
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a):
            return None
    op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                     urllib.request.HTTPSHandler(context=ctx), NoRedirect())
    url = "https://localhost:%d" % port

    def req(path, data=None, headers=None):
        r = urllib.request.Request(url + path, data=data, headers=headers or {})
        try:
            with op.open(r, timeout=60) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()
    page = req("/login")[2].decode()
    tok = re.search(r'name="login_token" value="([0-9a-f]+)"', page).group(1)
    req("/login", data=("user=root&password=bench+password+1&login_token=%s" % tok).encode())
    me = json.loads(req("/api/v1/whoami")[2])
    lists, changes = [], []
    for k in range(5):
        t = time.time()
        st, h, body = req("/api/v1/stats")
        lists.append((time.time() - t) * 1000)
        assert st == 200 and len(json.loads(body)["services"]) == 1001
        stats_len = len(body)
        ver = json.loads(req("/api/v1/config")[2])["version"]
        t = time.time()
        st, h, body = req("/api/v1/servers/s0500/r3/state",
                          data=("state=%s" % ("drain" if k % 2 == 0 else "up")).encode(),
                          headers={"X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % ver})
        changes.append((time.time() - t) * 1000)
        assert st == 200, body
    # The sectioned form's save: two directives of one service (its timeout
    # and its ten server lines) through the block API.
    blocks = []
    for k in range(5):
        ver = json.loads(req("/api/v1/config")[2])["version"]
        servers = "\n".join("r%d 10.2.0.%d:4443 weight %d" % (j, j + 1, k + 1) for j in range(10))
        form = urllib.parse.urlencode({"idle-timeout": "%ds" % (60 + k), "server": servers})
        t = time.time()
        st, h, body = req("/api/v1/blocks/service/s0500", data=form.encode(),
                          headers={"X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % ver})
        blocks.append((time.time() - t) * 1000)
        assert st == 200, body
    p.terminate()
    res = {"list_ms": statistics.median(lists), "change_ms": statistics.median(changes),
           "block_ms": statistics.median(blocks), "start_s": start_s,
           "stats_bytes": stats_len}
    print("admin bench: %r" % res, flush=True)
    return res


def paired_before_after():
    """GH_BENCH_ONLY=before-after: this build and GH_BENCH_BEFORE only,
    measured back to back in each round (the order alternating, so neither
    always runs first), for keep-alive 1 KiB and 64 KiB and full handshakes.
    The figure is the ratio within each round, whose median and spread
    machine drift between rounds cannot move the way it moves raw rates.
    Replaces the "This build against the one before it" section of
    docs/performance.md."""
    ca, cert, key, combined = setup_certs()
    b1, b2 = start_backends(cert, key)
    ports = {"gatehouse": free_port(), "gatehouse-before": free_port()}
    procs_by = {"gatehouse": start_gatehouse(ports["gatehouse"], b1, b2, ca, cert, key),
                "gatehouse-before": start_gatehouse(ports["gatehouse-before"], b1, b2, ca, cert,
                                                    key, tag="-before", build=BEFORE)}
    time.sleep(0.5)
    pids = {n: children(p.pid) for n, p in procs_by.items()}
    for n in procs_by:
        subprocess.run(LOAD_CPU + ["wrk", "-t1", "-c50", "-d2s",
                                   "https://127.0.0.1:%d/1k.bin" % ports[n]], capture_output=True)
    runs = {(n, k): [] for n in procs_by for k in ("ka1k", "ka64k", "hs")}
    for rnd in range(ROUNDS):
        order = ["gatehouse", "gatehouse-before"][::1 if rnd % 2 == 0 else -1]
        for k in ("ka1k", "ka64k", "hs"):
            for n in order:
                if k == "hs":
                    runs[(n, k)].append(handshakes(ports[n], pids[n]))
                else:
                    runs[(n, k)].append(wrk(ports[n], "/1k.bin" if k == "ka1k" else "/64k.bin",
                                            pids[n]))
        print("round %d done" % (rnd + 1), flush=True)
    for p in procs_by.values():
        p.terminate()

    def per_core(r):
        return r["rps"] / max(r["cpu"], 0.01)

    rows = ["| measure | before (median) | this build (median) | this / before, per round: median | lowest | highest |",
            "|---|---|---|---|---|---|"]
    for k, label in (("ka1k", "keep-alive 1 KiB"), ("ka64k", "keep-alive 64 KiB"),
                     ("hs", "full handshakes")):
        for f, what in ((lambda r: r["rps"], "req/s" if k != "hs" else "handshakes/s"),
                        (per_core, "per proxy core")):
            a = [f(r) for r in runs[("gatehouse", k)]]
            b = [f(r) for r in runs[("gatehouse-before", k)]]
            ratios = sorted(x / y for x, y in zip(a, b) if y)
            rows.append("| %s, %s | %.0f | %.0f | %.3f | %.3f | %.3f |" % (
                label, what, sorted(b)[len(b) // 2], sorted(a)[len(a) // 2],
                ratios[len(ratios) // 2], ratios[0], ratios[-1]))
    errors = sorted({r.get("errors", "") for v in runs.values() for r in v if r.get("errors")})
    section = ("## This build against the one before it\n\n"
               "`GH_BENCH_ONLY=before-after GH_BENCH_BEFORE=DIR make bench` on %s: this build "
               "and the build in %s, the same configuration (one worker, re-encrypting to two "
               "nginx TLS backends), measured back to back in each of %d rounds, the order "
               "alternating. Each ratio is taken within one round, so the drift of a shared "
               "machine between rounds cancels; its median and spread are given. Errors: %s.\n\n"
               "%s\n" % (time.strftime("%Y-%m-%d"), os.path.basename(os.path.dirname(BEFORE)) or BEFORE,
                          ROUNDS, ", ".join(errors) or "none", "\n".join(rows)))
    path = os.path.join(ROOT, "docs", "performance.md")
    text = open(path).read()
    start = text.find("## This build against the one before it")
    if start >= 0:
        end = text.find("\n## ", start + 10)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text += "\n" + section
    with open(path, "w") as f:
        f.write(text)
    print(section)


CONSEC = "## Consecutive runs of the main table"


def main_only():
    """GH_BENCH_ONLY=main: the main table's rounds alone, both key types (no
    filtering or persistence variants, Layer-4, SAML, slide or admin rows:
    about half the time of a whole run), for issue 15's consecutive runs.
    Each run appends its own subsection (date, commit, the per-key tables
    and their tie and goal paragraphs) to CONSEC of docs/performance.md and
    keeps the runs before, so runs made one after another stand side by side."""
    # The commit and the time are taken before the rounds: the binary is
    # the one built at the start, whatever the tree becomes meanwhile.
    rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip() or "?"
    started = time.strftime("%Y-%m-%d %H:%M")
    ca, cert, key, combined = setup_certs()
    b1, b2 = start_backends(cert, key)
    per_key = {kind: key_type_run(kind, False, b1, b2, ca, {}) for kind in KEYS}
    sub = ["### %s to %s, gatehouse %s, %d rounds of %d s" % (
        started, time.strftime("%H:%M"), rev, ROUNDS, SECS), ""]
    for kind in KEYS:
        r = per_key[kind]
        sub += ["#### " + KEY_LABEL[kind], "", main_table.table(r["_runs"], r["_idle"]), "",
                main_table.paragraph(r["_runs"], r["_idle"], KEY_LABEL[kind]), ""]
    path = os.path.join(ROOT, "docs", "performance.md")
    text = open(path).read()
    if CONSEC not in text:
        text = text.rstrip("\n") + "\n\n" + CONSEC + "\n\n" + (
            "`GH_BENCH_ONLY=main make bench`: the rows of the main table only, both key "
            "types, each run appended below the runs before it (newest last).\n")
    start = text.find(CONSEC)
    end = text.find("\n## ", start + len(CONSEC))
    end = len(text) if end < 0 else end + 1
    body = text[start:end].rstrip("\n") + "\n\n" + "\n".join(sub).rstrip("\n") + "\n"
    rest = text[end:]
    text = text[:start] + body + ("\n" + rest if rest else "")
    with open(path, "w") as f:
        f.write(text)
    print("\n".join(sub))

STORE_HEADING = "## Shared store: local vs Redis"


def store_bench():
    """The store interface (store/store.h) on the local engine and on a
    real redis-server (Debian's, on a free port, no persistence, pinned to
    the other CPU), one operation in flight and 64 pipelined, half
    incr (a rate-limit counter) and half get (a session read); ROUNDS
    interleaved rounds. Returns {(engine, mode): [(ops/s, p50 us, p99 us)]}."""
    port = free_port()
    red = subprocess.Popen(LOAD_CPU + ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", TMP],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:  # readiness: PING answered
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("redis-server did not answer PING")
            time.sleep(0.05)
        runs = {}
        engines = ["local", "127.0.0.1:%d" % port]
        secs = max(2, SECS // 2)
        for rnd in range(ROUNDS):
            for eng in engines[rnd % 2:] + engines[:rnd % 2]:
                out = subprocess.run(PROXY_CPU + [os.path.join(BUILD, "store_bench"), eng,
                                                  str(secs)],
                                     capture_output=True, text=True, timeout=secs * 4 + 30)
                for line in out.stdout.splitlines():
                    mode, ops, p50, p99 = line.split()
                    key = ("local" if eng == "local" else "redis", mode)
                    runs.setdefault(key, []).append((float(ops), float(p50), float(p99)))
            print("store round %d done" % (rnd + 1), flush=True)
        proxy_store_rows(port, runs)
    finally:
        red.kill()
        red.wait()
    return runs, secs


# What a request asks of the store, per service kind: nothing per request
# (cookie persistence: only the keys are shared), a bucket (a rate limit
# high enough that nothing is refused: every request is counted), an entry
# lookup (source-ip persistence: refreshed every timeout/16).
STORE_PROXY_ROWS = (
    ("persistence cookie", "    persistence cookie GHP\n"),
    ("request-rate-per-source", "    request-rate-per-source 1000000\n"
                                "    request-burst-per-source 1000000\n"),
    ("persistence source-ip", "    persistence source-ip\n"),
)


def proxy_store_rows(rport, runs):
    """The proxy (one worker) with store local and store redis, per row of
    STORE_PROXY_ROWS, wrk 1 KiB keep-alive, engines alternating first per
    round: into runs[("proxy", row, engine)] as (rps, p99 ms, cpu)."""
    ca, cert, key, combined = setup_certs()
    b1, b2 = start_backends(cert, key)
    tops = {"local": "",
            "redis": "store redis { address 127.0.0.1:%d; wait-replicas 0 }\n" % rport}
    for rnd in range(ROUNDS):
        for label, extra in STORE_PROXY_ROWS:
            order = ("local", "redis") if rnd % 2 == 0 else ("redis", "local")
            for eng in order:
                port = free_port()
                p = start_gatehouse(port, b1, b2, ca, cert, key, extra=extra,
                                    tag="-store-%s" % eng, top=tops[eng])
                try:
                    r = wrk(port, "/1k.bin", [p.pid])
                finally:
                    p.kill()
                    p.wait()
                if r["errors"]:
                    raise SystemExit("store row %s %s: %s" % (label, eng, r["errors"]))
                runs.setdefault(("proxy", label, eng), []).append((r["rps"], r["p99"], r["cpu"]))
        print("store proxy round %d done" % (rnd + 1), flush=True)


def store_section(runs, secs):
    def med(xs):
        xs = sorted(xs)
        return xs[len(xs) // 2]
    lines = [STORE_HEADING, "",
             "The store interface alone (`tests/bench/store_bench.c`, one connection on CPU 0, "
             "Debian's redis-server 7.0 on CPU 1 over loopback TCP), half `incr` and half "
             "`get`; median of %d interleaved rounds of %d s, spread (min..max) of the "
             "operations per second in brackets. Latency is from asking to the answer, "
             "so pipelined latency includes the queue. By `GH_BENCH_ONLY=store make bench` "
             "or a whole `make bench`, %s." % (ROUNDS, secs, time.strftime("%Y-%m-%d %H:%M")),
             "",
             "| engine | mode | operations/s | spread | p50 us | p99 us |",
             "|---|---|---:|---|---:|---:|"]
    for eng in ("local", "redis"):
        for mode in ("one-in-flight", "pipelined-64"):
            r = runs.get((eng, mode), [])
            if not r:
                continue
            ops = [x[0] for x in r]
            lines.append("| %s | %s | %.0f | %.0f..%.0f | %.2f | %.2f |" % (
                eng, mode, med(ops), min(ops), max(ops), med([x[1] for x in r]),
                med([x[2] for x in r])))
    prows = [lab for lab, _ in STORE_PROXY_ROWS if runs.get(("proxy", lab, "redis"))]
    if prows:
        lines += ["", "The proxy in front of two nginx (one worker on CPU 0, wrk with 50 "
                  "keep-alive TLS connections from one address on CPU 1, 1 KiB responses "
                  "re-encrypted), `store local` against `store redis` (the same redis-server), "
                  "a fresh process per measure, %d interleaved rounds of %d s: median "
                  "requests/s, spread in brackets." % (ROUNDS, SECS), "",
                  "| service | store local req/s | spread | store redis req/s | spread | "
                  "redis / local | p99 ms local | p99 ms redis |",
                  "|---|---:|---|---:|---|---:|---:|---:|"]
        for lab in prows:
            lo, rd = runs[("proxy", lab, "local")], runs[("proxy", lab, "redis")]
            ml, mr = med([x[0] for x in lo]), med([x[0] for x in rd])
            lines.append("| %s | %.0f | %.0f..%.0f | %.0f | %.0f..%.0f | %.2f | %.2f | %.2f |" % (
                lab, ml, min(x[0] for x in lo), max(x[0] for x in lo), mr,
                min(x[0] for x in rd), max(x[0] for x in rd), mr / ml,
                med([x[1] for x in lo]), med([x[1] for x in rd])))
    loc, red = runs.get(("local", "one-in-flight")), runs.get(("redis", "one-in-flight"))
    if loc and red:
        lines += ["", "One in flight, Redis answers at %.1f%% of the local engine's rate; "
                  "pipelined, %.1f%%." % (
                      100.0 * med([x[0] for x in red]) / med([x[0] for x in loc]),
                      100.0 * med([x[0] for x in runs[("redis", "pipelined-64")]]) /
                      med([x[0] for x in runs[("local", "pipelined-64")]]))]
    return "\n".join(lines) + "\n"


def store_only():
    runs, secs = store_bench()
    section = store_section(runs, secs)
    path = os.path.join(ROOT, "docs", "performance.md")
    text = splice_section(open(path).read(), STORE_HEADING, section,
                          before="## Instructions per request (callgrind)")
    with open(path, "w") as f:
        f.write(text)
    print(section)


def main():
    if os.environ.get("GH_BENCH_ONLY") == "store":
        store_only()
        return
    if os.environ.get("GH_BENCH_ONLY") == "main":
        main_only()
        return
    if os.environ.get("GH_BENCH_ONLY") == "before-after":
        if not BEFORE:
            raise SystemExit("GH_BENCH_ONLY=before-after needs GH_BENCH_BEFORE=BUILD_DIR")
        paired_before_after()
        return
    if os.environ.get("GH_BENCH_ONLY") == "l4":
        l4_only()
        return
    saml = saml_bench()
    print("saml: %r" % saml, flush=True)
    ca, cert, key, combined = setup_certs()
    slides = slides_bench(ca, cert, key)
    admin = admin_bench(ca, cert, key)
    b1, b2 = start_backends(cert, key)
    per_key, l4runs = {}, l4_new_runs()
    for ki, kind in enumerate(KEYS):
        # The extra gatehouse configurations and the Layer-4 rows do not
        # depend on the client-facing key: measured in the first key type's
        # rounds only, which keeps the run time down.
        per_key[kind] = key_type_run(kind, ki == 0, b1, b2, ca, l4runs)
    results = per_key[KEYS[0]]
    for n in ("gatehouse", "haproxy", "nginx"):
        results[n]["kill"] = kill_test(n, ca, cert, key, combined)
        print("%-16s one of two servers killed under load: %s" % (n, results[n]["kill"]),
              flush=True)
    report(per_key, machine(), saml, slides, admin, l4runs)
    store_only()


MAIN_NAMES = ("gatehouse", "haproxy", "nginx", "origin")


def key_type_run(kind, first, b1, b2, ca, l4runs):
    """The main table's rounds for one client-facing key type: the three
    proxies and the origin, fresh processes; with first, the filtering and
    persistence variants (1 KiB keep-alive) and the Layer-4 rows too.
    Returns {name: {"ka1k": median run, "ka1k_all": [...], ..., "idle": ...}}
    plus "_checks" (resumption checks) and "_runs" (every round)."""
    label = KEY_LABEL[kind]
    print("== %s: client-facing certificate %s" % (kind, label), flush=True)
    cert, key, combined = key_certs(kind)
    ports = {n: free_port() for n in MAIN_NAMES if n != "origin"}
    mgmt = free_port()
    procs_by = {"gatehouse": start_gatehouse(ports["gatehouse"], b1, b2, ca, cert, key,
                                             tag="-" + kind, mgmt=mgmt),
                "haproxy": start_haproxy(ports["haproxy"], b1, b2, ca, combined),
                "nginx": start_nginx(ports["nginx"], b1, b2, ca, cert, key)}
    procs_by["origin"], ports["origin"] = start_origin(cert, key, kind)
    main_names = list(MAIN_NAMES)
    if BEFORE:
        # measured right after this build in every round: the nearest in time
        ports["gatehouse-before"] = free_port()
        procs_by["gatehouse-before"] = start_gatehouse(ports["gatehouse-before"], b1, b2, ca,
                                                       cert, key, tag="-before-" + kind,
                                                       build=BEFORE)
        main_names.insert(1, "gatehouse-before")
    variants = []
    if first:
        variants = ["gatehouse+filter", "gatehouse+cookie", "gatehouse+source"]
        for n, extra in (("gatehouse+filter", ""),
                         ("gatehouse+cookie", "    persistence cookie MS-WSMAN\n"),
                         ("gatehouse+source", "    persistence source-ip\n")):
            ports[n] = free_port()
            procs_by[n] = start_gatehouse(ports[n], b1, b2, ca, cert, key,
                                          filtered=n.endswith("filter"), extra=extra,
                                          tag="-" + n.split("+")[1])
    time.sleep(0.5)  # nginx's worker appears after the master listens; not a sync point
    pids = {n: children(p.pid) for n, p in procs_by.items()}
    # Memory first, on fresh processes: after load, freed memory would absorb
    # new connections and hide their cost.
    idle = {}
    for n in main_names:
        idle[n] = idle_memory(ports[n], pids[n])
        print("%s %-16s idle: %r" % (kind, n, idle[n]), flush=True)
    for n in procs_by:  # warm up real-server pools and session caches
        subprocess.run(LOAD_CPU + ["wrk", "-t1", "-c50", "-d2s",
                                   "https://127.0.0.1:%d/1k.bin" % ports[n]], capture_output=True)
    checks = {}
    for n in main_names:
        checks[n] = sclient_resumes(ports[n])
        print("%s %-16s s_client: reused %s, new ticket on the resumed connection %s, "
              "that ticket reused %s" % ((kind, n) + checks[n]), flush=True)
    l4 = start_l4(b1, b2, ca) if first else None
    # Interleaved rounds: every proxy once per measure and round, the order
    # rotated every round, so drift in the machine (other tenants, thermal)
    # spreads over all of them alike and none always runs first.
    runs = {n: {"ka1k": [], "ka64k": [], "resumed": [], "hs": []} for n in procs_by}
    close = ("Connection: close",)
    for rnd in range(ROUNDS):
        def rotated(names):
            k = rnd % len(names)
            return names[k:] + names[:k]
        for n in rotated(main_names + variants):
            runs[n]["ka1k"].append(wrk(ports[n], "/1k.bin", pids[n]))
        for n in rotated(main_names):
            runs[n]["ka64k"].append(wrk(ports[n], "/64k.bin", pids[n]))
        for n in rotated(main_names):
            before = gh_handshakes(mgmt) if n == "gatehouse" else None
            r = wrk(ports[n], "/1k.bin", pids[n], headers=close)
            after = gh_handshakes(mgmt) if n == "gatehouse" else None
            if before and after:
                r["hs_full"] = after["no"] - before["no"]
                r["hs_resumed"] = after["yes"] - before["yes"]
            runs[n]["resumed"].append(r)
        for n in rotated(main_names):
            before = gh_handshakes(mgmt) if n == "gatehouse" else None
            r = handshakes_par(ports[n], pids[n])
            after = gh_handshakes(mgmt) if n == "gatehouse" else None
            if before and after:
                r["hs_full"] = after["no"] - before["no"]
                r["hs_resumed"] = after["yes"] - before["yes"]
            runs[n]["hs"].append(r)
        for n in main_names:
            line = "%s %-16s" % (kind, n)
            for k in ("ka1k", "ka64k", "resumed", "hs"):
                x = runs[n][k][-1]
                line += " | %s %6.0f/s cpu %.2f" % (k, x["rps"], x["cpu"])
                if "hs_resumed" in x:
                    line += " (full %d resumed %d)" % (x["hs_full"], x["hs_resumed"])
            print(line, flush=True)
        if l4:
            l4_round(l4, rnd, l4runs)
        print("%s round %d of %d done" % (kind, rnd + 1, ROUNDS), flush=True)
    if l4:
        for v in l4.values():
            v["proc"].terminate()
    for p in procs_by.values():
        p.terminate()
    results = {"_checks": checks, "_runs": runs, "_idle": idle}
    for n in procs_by:
        results[n] = {}
        for k, v in runs[n].items():
            if v:
                results[n][k] = median_run(v)
                results[n][k + "_all"] = v
        if n in idle:
            results[n]["idle"] = idle[n]
    return results


def before_after(res):
    """This build against GH_BENCH_BEFORE, measured in the same rounds."""
    if "gatehouse-before" not in res:
        return ""
    a, b = res["gatehouse"], res["gatehouse-before"]

    def per_core(r):
        return r["rps"] / max(r["cpu"], 0.01)

    def spread(runs, f):
        v = sorted(f(r) for r in runs)
        return "%.0f-%.0f" % (v[0], v[-1])

    rows = ["| measure | before | this build | this / before | rounds, before | rounds, this |",
            "|---|---|---|---|---|---|"]
    for label, key in (("keep-alive 1 KiB", "ka1k"), ("keep-alive 64 KiB", "ka64k")):
        rows.append("| %s, req/s | %.0f | %.0f | %.3f | %s | %s |" % (
            label, b[key]["rps"], a[key]["rps"], a[key]["rps"] / b[key]["rps"],
            spread(b[key + "_all"], lambda r: r["rps"]), spread(a[key + "_all"], lambda r: r["rps"])))
        rows.append("| %s, req/s per proxy core | %.0f | %.0f | %.3f | %s | %s |" % (
            label, per_core(b[key]), per_core(a[key]), per_core(a[key]) / per_core(b[key]),
            spread(b[key + "_all"], per_core), spread(a[key + "_all"], per_core)))
        rows.append("| %s, p99 ms | %.2f | %.2f | %.3f | | |" % (
            label, b[key]["p99"], a[key]["p99"], a[key]["p99"] / max(b[key]["p99"], 0.01)))
    rows.append("| full handshakes/s per proxy core | %.0f | %.0f | %.3f | | |" % (
        per_core(b["hs"]), per_core(a["hs"]), per_core(a["hs"]) / per_core(b["hs"])))
    rows.append("| new connection per request, resumed, req/s per proxy core | %.0f | %.0f "
                "| %.3f | | |" % (per_core(b["resumed"]), per_core(a["resumed"]),
                                  per_core(a["resumed"]) / per_core(b["resumed"])))
    rows.append("| memory per idle connection, bytes | %.0f | %.0f | %.3f | | |" % (
        b["idle"]["rss_per_conn"], a["idle"]["rss_per_conn"],
        a["idle"]["rss_per_conn"] / max(b["idle"]["rss_per_conn"], 1)))
    return ("\n## This build against the one before it\n\nThe same configuration run from "
            "GH_BENCH_BEFORE=%s in the same interleaved rounds (median of %d; the spread is the "
            "lowest and highest round). Instruction counts per request, which do not depend on "
            "the machine's other tenants, are in the next section when "
            "`tests/bench/callgrind.py` was run.\n\n%s\n" % (BEFORE, ROUNDS, "\n".join(rows)))


def key_section(kind, r):
    """The main table of one key type, its tie paragraph, the resumption
    checks and the errors of its rounds."""
    runs, idle, checks = r["_runs"], r["_idle"], r["_checks"]
    lines = ["### %s client-facing certificate" % KEY_LABEL[kind], "",
             main_table.table(runs, idle), "",
             main_table.paragraph(runs, idle, KEY_LABEL[kind]), ""]
    g = runs["gatehouse"]
    shares = ["%d of %d" % (x["hs_resumed"], x["hs_resumed"] + x["hs_full"])
              for x in g["resumed"] if "hs_resumed" in x]
    fulls = ["%d of %d" % (x["hs_full"], x["hs_resumed"] + x["hs_full"])
             for x in g["hs"] if "hs_full" in x]
    say = lambda ok: "yes" if ok else "**no**"
    lines.append("Resumption: gatehouse's `gatehouse_tls_handshakes_total` (an `app management` "
                 "service's /metrics, read before and after each run) counted %s handshakes "
                 "resumed in the `Connection: close` runs (the rest are wrk's first connection "
                 "per socket), and %s full in the ab runs. `openssl s_client -sess_out`, then "
                 "`-sess_in` (reused?), `-msg` (a NewSessionTicket on the resumed connection?), "
                 "and that new ticket on a third connection (reused?): %s." % (
                     ", ".join(shares) or "(not read)", ", ".join(fulls) or "(not read)",
                     "; ".join("%s %s/%s/%s" % ((main_table.HEAD.get(n, n),) +
                                                tuple(say(c) for c in checks[n]))
                               for n in checks)))
    errs = []
    for n, v in runs.items():
        e = sorted({x["errors"] for k in v for x in v[k] if x.get("errors")})
        e += ["ab failed %d" % x["failed"] for x in v.get("hs", []) if x["failed"]]
        if e:
            errs.append("%s: %s" % (n, ", ".join(e)))
    proto = runs["gatehouse"]["hs"][0]["proto"] if runs["gatehouse"]["hs"] else "?"
    lines.append("")
    lines.append("Protocol negotiated by ab: %s. Errors during these rounds: %s." % (
        proto, "; ".join(errs) or "none"))
    return "\n".join(lines) + "\n"


def report(per_key, m, saml, slides, admin, l4runs):
    res = per_key[KEYS[0]]

    def ratio(a, b):
        return "%.2f" % (a / b) if b else "-"

    tables = "\n".join(key_section(k, per_key[k]) for k in KEYS)
    g, f = res["gatehouse"]["ka1k"], res["gatehouse+filter"]["ka1k"]
    filt = ("| measure | gatehouse, no rules | gatehouse, 100 rules + 20 dirs | ratio |\n"
            "|---|---|---|---|\n"
            "| keep-alive 1 KiB, req/s | %.0f | %.0f | %.3f |\n"
            "| keep-alive 1 KiB, p99 ms | %.2f | %.2f | %.3f |\n"
            "| keep-alive 1 KiB, proxy CPU (cores) | %.2f | %.2f | %.3f |\n"
            "| keep-alive 1 KiB, req/s per proxy core | %.0f | %.0f | %.3f |" % (
                g["rps"], f["rps"], f["rps"] / g["rps"], g["p99"], f["p99"], f["p99"] / g["p99"],
                g["cpu"], f["cpu"], f["cpu"] / max(g["cpu"], 0.01),
                g["rps"] / max(g["cpu"], 0.01), f["rps"] / max(f["cpu"], 0.01),
                (f["rps"] / max(f["cpu"], 0.01)) / (g["rps"] / max(g["cpu"], 0.01))))
    persist = ("| measure | no persistence | cookie (MS-WSMAN, inserted) | source-ip |\n"
               "|---|---|---|---|\n"
               "| keep-alive 1 KiB, req/s | %.0f | %.0f (%.3f) | %.0f (%.3f) |\n"
               "| keep-alive 1 KiB, req/s per proxy core | %.0f | %.0f (%.3f) | %.0f (%.3f) |" % (
                   g["rps"], res["gatehouse+cookie"]["ka1k"]["rps"],
                   res["gatehouse+cookie"]["ka1k"]["rps"] / g["rps"],
                   res["gatehouse+source"]["ka1k"]["rps"],
                   res["gatehouse+source"]["ka1k"]["rps"] / g["rps"],
                   g["rps"] / max(g["cpu"], 0.01),
                   res["gatehouse+cookie"]["ka1k"]["rps"] / max(res["gatehouse+cookie"]["ka1k"]["cpu"], 0.01),
                   (res["gatehouse+cookie"]["ka1k"]["rps"] / max(res["gatehouse+cookie"]["ka1k"]["cpu"], 0.01)) / (g["rps"] / max(g["cpu"], 0.01)),
                   res["gatehouse+source"]["ka1k"]["rps"] / max(res["gatehouse+source"]["ka1k"]["cpu"], 0.01),
                   (res["gatehouse+source"]["ka1k"]["rps"] / max(res["gatehouse+source"]["ka1k"]["cpu"], 0.01)) / (g["rps"] / max(g["cpu"], 0.01))))
    kill = ("| proxy | requests in 6 s | failed (non-2xx, socket errors) |\n|---|---|---|\n" +
            "\n".join("| %s | %d | %d |" % (n, res[n]["kill"]["requests"], res[n]["kill"]["lost"])
                      for n in ("gatehouse", "haproxy", "nginx")))
    srows = ["| resource | proxy -> conference service (TLS) -> application | proxy -> application "
             "| proxy -> nginx (TLS) | first / nginx | second / nginx |",
             "|---|---|---|---|---|---|"]
    for label in ("1 MiB", "20 MiB"):
        a, d, b = (slides[(label, v)] for v in ("gatehouse", "direct", "nginx"))
        srows.append("| %s | %.0f MB/s (%.2f cores) | %.0f MB/s (%.2f cores) | %.0f MB/s "
                     "(%.2f gatehouse cores) | %s | %s |" % (
                         label, a["mbs"], a["cpu"], d["mbs"], d["cpu"], b["mbs"], b["cpu"],
                         ratio(a["mbs"], b["mbs"]), ratio(d["mbs"], b["mbs"])))
    bad = sum(v["bad"] for v in slides.values())
    slides_table = "\n".join(srows) + ("\n\nNon-2xx answers during the runs: %d." % bad)
    text = """# Performance

Measured by `make bench` (tests/bench/bench.py) on %(date)s. All three
proxies terminate TLS on 127.0.0.1, re-encrypt to the same two nginx TLS
backends with least-connection balancing and verified server certificates,
and reuse real-server connections. The proxy under test runs on CPU 0 with one
worker/thread; wrk, ab and the backends share CPU 1, so with two cores the
load generator side is often the bottleneck: compare the *per proxy core* rows
(requests divided by the CPU the proxy actually used; in bold) before raw
rates. The "no proxy" column is wrk straight at an nginx origin configured as
one of the backends (one worker, the same files, TLS 1.2 and 1.3, a session
cache), with the table's certificate and pinned to CPU 0 like the proxies: what
serving the file costs without a proxy in between.

Machine: %(cpu)s, %(ncpu)d CPUs, Linux %(kernel)s. %(openssl)s; %(haproxy)s;
%(nginx)s; %(wrk)s.

One run, %(rounds)d interleaved rounds per key type (%(keys)s; the client-facing
certificate, made with `gatehouse certs server`, changes; the backends keep
one ECDSA P-256 certificate), %(secs)d s per measure. In every round each measure
runs once on every column, their order rotated from round to round so that
none always runs first. Every cell is the median round with the lowest and
highest round in brackets (a per-core cell is the median of the per-round
per-core figures); ratios are of the medians, marked "(tie)" where the two
columns' lowest-highest ranges overlap, i.e. the difference is inside the
spread of the rounds. Rows:

- keep-alive 1 KiB and 64 KiB: wrk, 50 connections, one thread.
- new connection per request, TLS resumed: wrk with `-H "Connection: close"`,
  50 connections; wrk keeps each socket's TLS session when it reconnects, so
  after the first connection every handshake is a resumption (checked below,
  for each column).
- full handshakes: %(hs_procs)d `ab` processes in parallel, %(hs_conc)d connections each
  (`-t %(secs)d`), their rates summed; ab offers no session, so every request is a
  new connection with a full handshake. ab rather than `openssl s_time -new`
  in parallel: ab keeps %(hs_conc)d handshakes in flight per process where s_time has
  one, and counts failed and non-2xx responses. One ab process is
  single-threaded and would saturate its core before the proxy does; with one
  load core, %(hs_procs)d processes share it, so read the proxy CPU and per-core rows:
  where the proxy is below one core, the load side (client-side signature
  verification included) is the limit.
- memory: %(idle)d idle keep-alive TLS connections (each made one request, then
  held), on fresh processes before any load; VmHWM summed over the
  column's processes (nginx: master and worker), and the growth of VmRSS divided by the connections.

%(tables)s
%(l4)s
## Cost of filtering

The same gatehouse configuration with a 100-rule set (prefix, exact and pcre2
regex rules on path, query, a header and the method, none matching, so every
rule is evaluated for every request) and 20 allowed directories (only the
last matches), against none, in the same run:

%(filt)s

## Persistence

The same gatehouse with `persistence cookie MS-WSMAN` (wrk sends no cookie,
so every response computes and inserts one: the worst case) and with
`persistence source-ip` (a lookup and a refresh in the shared store per
request), against none; ratios in parentheses:

%(persist)s

## One of two real servers killed under load

wrk, 50 connections, 6 s, against each proxy in front of two fresh nginx
TLS backends; after 2 s one backend (master and worker) is killed with
SIGKILL. gatehouse: `retries 2`; HAProxy: `retries 3`, `option redispatch 1`,
`retry-on all-retryable-errors`; nginx: its defaults (`proxy_next_upstream
error timeout`). Failed requests are what the clients saw:

%(kill)s

## Slide downloads

One gatehouse, two public services: one re-encrypts to gatehouse's own
conference service (TLS), where the conference application checks the join
token and streams the encrypted resource from disk; the other re-encrypts
to nginx (TLS, `sendfile on`) serving byte-identical copies of the same
encrypted files; a third service reaches the application directly (the
single-box layout). wrk, 8 connections, keep-alive; MB/s of ciphertext
(10^6 bytes), and the CPU the gatehouse process used. gatehouse is pinned to
CPU 0, nginx shares CPU 1 with wrk: in the first column gatehouse does two
TLS sessions per byte on its one core (the public one and the conference
listener's), where the nginx column has nginx do the second on another core.

%(slides_table)s

## Administration at scale

The admin application on a configuration of 1,000 virtual services with
10,000 real servers (all TLS listeners), median of 5:

| measure | time | goal |
|---|---|---|
| statistics for the list page (`GET /api/v1/stats`, every service and server) | %(admin_list).0f ms | under 200 ms |
| a server state change: validate (as `gatehouse -t`), write atomically, hot reload | %(admin_change).0f ms | under 1 s |
| the service form's save (`POST /api/v1/blocks/service/...`: a timeout and ten server lines), same path | %(admin_block).0f ms | under 1 s |
| process start to listening (for scale) | %(admin_start).1f s | - |

## SAML assertion consumer

The stateless half of the assertion consumer (base64, the restricted XML
parse, the shape checks that stop signature wrapping, xmlsec1 verification of
a 2048-bit RSA-SHA256 signature over exclusive c14n, and every condition)
on one core, against a %(saml_bytes)d-byte response shaped like
SimpleSAMLphp's; OpenSSL's bare RSA-2048 verification on the same core for
scale:

| measure | per second, one core |
|---|---|
| ACS verifications (whole check) | %(saml_acs).0f |
| RSA-2048 signature verifications (OpenSSL alone) | %(saml_rsa).0f |
| share of a check spent outside the RSA operation | %(saml_over).0f%% |

mod_auth_mellon (Apache) does the same work on the same libraries (lasso,
xmlsec1, libxml2, OpenSSL) per response, so it is the class of figure to
expect there; a participant signs in once per meeting, so even one core
covers thousands of sign-ins a second.

Reproduce: `make bench` (installs HAProxy, nginx and its stream module, wrk and ab from
Debian).
""" % {"admin_list": admin["list_ms"], "admin_change": admin["change_ms"],
       "admin_block": admin.get("block_ms", 0),
       "admin_start": admin["start_s"], "slides_table": slides_table, "saml_acs": saml.get("acs_checks_per_s", 0), "saml_rsa": saml.get("rsa2048_verifies_per_s", 0),
       "saml_bytes": saml.get("response_bytes", 0),
       "saml_over": 100.0 * (1 - saml.get("acs_checks_per_s", 0) / max(saml.get("rsa2048_verifies_per_s", 1), 1)),
       **{"date": time.strftime("%Y-%m-%d"), "secs": SECS, "idle": IDLE_CONNS,
       "tables": tables, "keys": ", ".join(KEY_LABEL[k] for k in KEYS),
       "hs_procs": HS_PROCS, "hs_conc": HS_CONC,
       "l4": l4_section(l4runs), "filt": filt, "rounds": ROUNDS, "persist": persist, "kill": kill, **m}}
    text = text.replace("%Y-%m-%d", time.strftime("%Y-%m-%d"))
    text += before_after(res)
    path = os.path.join(ROOT, "docs", "performance.md")
    if not BEFORE:
        # Sections only GH_BENCH_BEFORE runs write (each dated or naming its
        # builds) stay until such a run replaces them.
        old = open(path).read() if os.path.exists(path) else ""
        for heading in ("## This build against the one before it",
                        "## Instructions per request (callgrind)"):
            start = old.find(heading)
            if start >= 0:
                end = old.find("\n## ", start + len(heading))
                text = text.rstrip("\n") + "\n\n" + (old[start:end + 1] if end >= 0 else old[start:])
    with open(path, "w") as f:
        f.write(text)
    print()
    print(tables)
    print("\nwritten to docs/performance.md")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
