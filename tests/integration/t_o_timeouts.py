"""Service timeouts (issue 13). The seeds set one number on the virtual
service, "1800 in the Idle Connection Timeout": with only `idle-timeout`
written, every wait for the other side is bounded by it, and a narrower
timeout applies only where a service writes it. Scaled: 20 s for 1800 s.
The cases run side by side in threads, so the test lasts one idle period."""
import os
import select
import ssl
import subprocess
import threading
import time

from harness import (GATEHOUSE, Fail, base_conf, check, free_port, read_response, service, test,
                     tls_client, wait_until)

IDLE = 20.0  # the idle-timeout written in both services
SHORTER = 15.0  # a wait well inside it
LONGER = 25.0  # a wait past it


def get(s, path):
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return read_response(s)


def closed_after(s, limit):
    """Seconds until the peer closed s, or None when it stayed open for limit
    seconds. The wait is the test's subject: select returns at once when the
    connection ends. Application bytes on an idle connection are a failure."""
    t0 = time.monotonic()
    keep = s.gettimeout()
    try:
        while True:
            left = t0 + limit - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([s], [], [], left)
            if not ready:
                continue
            s.settimeout(0)
            try:
                d = s.recv(1)
            except ssl.SSLWantReadError:
                continue  # a TLS record with no application data (a session ticket)
            except (ssl.SSLError, OSError):
                return time.monotonic() - t0  # a reset or a cut TLS stream: closed
            finally:
                s.settimeout(keep)
            if d == b"":
                return time.monotonic() - t0
            raise Fail("bytes on an idle connection: %r" % d)
    finally:
        s.settimeout(keep)


def in_parallel(cases):
    """Runs each (name, fn) in its own thread; returns {name: error text}."""
    errors = {}

    def run(name, fn):
        try:
            fn()
        except Exception as e:  # reported by the main thread
            errors[name] = "%s: %s" % (type(e).__name__, e)
    ts = [threading.Thread(target=run, args=c) for c in cases]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=IDLE * 3)
        check(not t.is_alive(), "a case still running after %ds" % (IDLE * 3))
    return errors


@test
def idle_timeout_bounds_every_wait(env):
    b = env.backend()
    front, short = free_port(), free_port()
    text = (base_conf(env) +
            service("front", front, servers=[("b", b)], extra="    idle-timeout 20s") +
            service("short", short, servers=[("b", b)],
                    extra="    idle-timeout 20s\n    keepalive-timeout 2s"))
    # What -p prints is what each wait is bounded by, per service.
    p = env.write("gh.conf", text)
    r = subprocess.run([GATEHOUSE, "-p", "-c", p], capture_output=True, text=True)
    check(r.returncode == 0, "-p: %r" % r.stderr)
    blocks = r.stdout.split("\nservice ")
    want = {"front": {"keepalive": "20s", "server": "20s", "tunnel": "20s"},
            "short": {"keepalive": "2s", "server": "20s", "tunnel": "20s"}}
    for name, values in want.items():
        block = [x for x in blocks if x.startswith(name + " {")]
        check(len(block) == 1, "-p prints service %s" % name)
        for k, v in list(values.items()) + [("client-body", "20s"), ("idle", "20s"),
                                            ("client-header", "10s"), ("connect", "5s"),
                                            ("queue", "5s")]:
            line = "\n    %s-timeout %s\n" % (k, v)
            check(line in block[0], "service %s: -p prints %r:\n%s" % (name, line.strip(),
                                                                       block[0]))
    g = env.gatehouse(text)
    got = {}

    def keepalive_survives_shorter():
        s = tls_client(front, env.ca, timeout=IDLE * 2)
        st, _, body, _ = get(s, "/whoami")
        check(st == 200 and body == b"%d" % b, "first request: %r %r" % (st, body))
        t = closed_after(s, SHORTER)
        check(t is None, "idle keep-alive connection closed after %.1fs (idle-timeout 20s)" %
              (t or 0))
        # The same client socket, never closed: the same TLS connection.
        st, _, body, _ = get(s, "/whoami")
        check(st == 200 and body == b"%d" % b, "second request on it: %r %r" % (st, body))
        s.close()

    def keepalive_closed_at_idle():
        s = tls_client(front, env.ca, timeout=IDLE * 2)
        st, _, _, _ = get(s, "/whoami")
        check(st == 200, "first request: %r" % st)
        got["keepalive_closed_at_idle"] = t = closed_after(s, LONGER + 5)
        check(t is not None and IDLE - 1 <= t <= IDLE + 3,
              "idle keep-alive connection closed at about 20s (keepalive-timeout follows "
              "idle-timeout): %r" % t)
        s.close()

    def slow_response_arrives():
        s = tls_client(front, env.ca, timeout=IDLE * 2)
        t0 = time.monotonic()
        st, _, body, _ = get(s, "/slow?ms=%d" % (SHORTER * 1000))
        got["slow_response_arrives"] = t = time.monotonic() - t0
        check(st == 200 and body == b"slow done", "a response starting after 15s: %r %r" %
              (st, body))
        check(t >= SHORTER - 0.5, "it really took 15s: %.1fs" % t)
        s.close()

    def slower_response_gets_504():
        s = tls_client(front, env.ca, timeout=IDLE * 2)
        t0 = time.monotonic()
        st, _, _, _ = get(s, "/slow?ms=%d" % (LONGER * 1000))
        got["slower_response_gets_504"] = t = time.monotonic() - t0
        check(st == 504, "a response starting after 25s: %r" % st)
        check(IDLE - 1 <= t <= IDLE + 3, "504 at about 20s (server-timeout follows "
              "idle-timeout): %.1fs" % t)
        s.close()

    def keepalive_written_is_narrower():
        s = tls_client(short, env.ca, timeout=IDLE * 2)
        st, _, _, _ = get(s, "/whoami")
        check(st == 200, "first request: %r" % st)
        got["keepalive_written_is_narrower"] = t = closed_after(s, 10)
        check(t is not None and 1.5 <= t <= 4,
              "keepalive-timeout 2s closes the idle connection at about 2s: %r" % t)
        s.close()

    errors = in_parallel([(f.__name__, f) for f in (
        keepalive_survives_shorter, keepalive_closed_at_idle, slow_response_arrives,
        slower_response_gets_504, keepalive_written_is_narrower)])
    print("     measured: %s" % ", ".join("%s %.1fs" % (k, v) for k, v in sorted(got.items())
                                           if v is not None))
    check(not errors, "; ".join("%s: %s" % kv for kv in sorted(errors.items())))
    # The 504 is a real server's failure: the access log has its reason,
    # and only that request timed out.
    log = env.path("access.log")
    wait_until(lambda: os.path.exists(log) and "upstream:timeout" in open(log).read(), 5,
               "the timeout in the access log")
    lines = [l for l in open(log) if "upstream:timeout" in l]
    check(len(lines) == 1 and " 504 " in lines[0] and "/slow" in lines[0],
          "one 504 upstream:timeout line, for /slow: %r" % lines)
