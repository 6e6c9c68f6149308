"""Two appliances, one shared store: a real redis-server (from Debian, with
the ACL users of docs/cluster.md and a replica, so every replay mark and
token write is confirmed by WAIT 1) started on free ports. A participant starts the SAML
login on A and the IdP's response is consumed on B; the session works on
both; the response replayed at A is refused; a logout on A holds on B.
With the store stopped, every sign-in path answers 503 (nothing accepted
unchecked) except a session the appliance verified within session-cache,
and, with the store back, all works again with no restart.

Both appliances are published under one name (Host localhost:PA, as behind
an L4 balancer); the test picks which appliance a request reaches by the
port it connects to."""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

from harness import check, curl, free_port, service, test, wait_until
from saml_idp import Browser, idp_response, post_acs
from t_j_saml import UUID_A, Topology


# The ACL users of docs/cluster.md: gatehouse may run only what it sends,
# on its own keys; the replica links as replicator; the test probes as probe.
GATEHOUSE_ACL = ["gatehouse", "on", ">gh-pw", "~gatehouse:*", "+get", "+set", "+del", "+pttl",
                 "+pexpire", "+incrby", "+time", "+evalsha", "+script|load", "+role", "+wait"]
REPLICATOR_ACL = ["replicator", "on", ">rep-pw", "+psync", "+replconf", "+ping"]
PROBE_ACL = ["probe", "on", ">probe-pw", "+ping", "+info"]


def probe(port, auth, command):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"AUTH %s\r\n%s\r\n" % (auth.encode(), command))
            got = b""
            for _ in range(20):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
                if got.count(b"\r\n") >= 2 and (b"PONG" in got or b"master_link" in got or
                                                  got.startswith(b"-")):
                    break
            return got
    except OSError:
        return b""


def start_redis(env, port, password, replica_of=None, acl=False):
    """redis-server on port: with acl, the ACL users above (the default user
    off); else requirepass password. Ready once PING is answered."""
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", env.dir, "--logfile", ""]
    if acl:
        args += ["--user", "default", "off", "--user"] + GATEHOUSE_ACL + \
                ["--user"] + REPLICATOR_ACL + ["--user"] + PROBE_ACL + \
                ["--masteruser", "replicator", "--masterauth", "rep-pw"]
        auth = "probe probe-pw"
    else:
        args += ["--requirepass", password, "--masterauth", password]
        auth = password
    if replica_of:
        args += ["--replicaof", "127.0.0.1", str(replica_of)]
    p = env.spawn(args, "redis-%d.log" % port)
    wait_until(lambda: b"PONG" in probe(port, auth, b"PING"), 10, "redis-server on %d" % port)
    return p


def replica_linked(port, auth):
    """The replica says its link to the master is up (so WAIT 1 can be met)."""
    return b"master_link_status:up" in probe(port, auth, b"INFO replication")


class Routed(http.client.HTTPSConnection):
    """Connects to ROUTE[0] whatever the URL's port: the Host header and
    SNI stay the published name."""
    ROUTE = [0]

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", Routed.ROUTE[0]), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class RoutedHandler(urllib.request.HTTPSHandler):
    def __init__(self, ctx):
        super().__init__(context=ctx)
        self.ctx = ctx

    def https_open(self, req):
        return self.do_open(Routed, req, context=self.ctx)


def routed_browser(env, route):
    b = Browser(env.ca)
    ctx = ssl.create_default_context(cafile=env.ca)
    b.opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(b.jar), RoutedHandler(ctx),
        *[h for h in b.opener.handlers if type(h).__name__ == "NoRedirect"])
    return b


def security(env, name):
    try:
        with open(env.path(name)) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def two_appliances(env, extra_store="", extra_main=""):
    """Redis (password, a replica linked), appliance A (Topology: the IdP,
    the public and conference services) and B, the same configuration on
    its own ports, state folder and logs. Returns (A, B's public port,
    B's Gatehouse, the redis-server process)."""
    pwfile = env.write("redis.pw", "gh-pw\n")
    os.chmod(pwfile, 0o600)
    rport, rrep = free_port(), free_port()
    red = start_redis(env, rport, None, acl=True)
    start_redis(env, rrep, None, replica_of=rport, acl=True)
    wait_until(lambda: replica_linked(rrep, "probe probe-pw"), 15,
               "the replica linked to the master")
    store = ("store redis {\n    address 127.0.0.1:%d\n    user gatehouse\n"
             "    password-file %s\n    timeout 200ms\n    wait-replicas 1\n%s}\n" % (
                 rport, pwfile, extra_store))
    ma, mb = free_port(), free_port()
    a = Topology(env, extra_main=store + extra_main + service("mgmt", ma, app="management"))
    a.mgmt = ma
    check("store redis: 127.0.0.1:%d answers" % rport in a.gh.output(),
          "A's log: %s" % a.gh.output()[-600:])
    pb, pcb = free_port(), free_port()
    text = open(a.gh.conf).read()
    text = text.replace("listen 127.0.0.1:%d" % a.port, "listen 127.0.0.1:%d" % pb)
    text = text.replace("127.0.0.1:%d" % a.conf_port, "127.0.0.1:%d" % pcb)
    text = text.replace(env.path("access.log"), env.path("access-b.log"))
    text = text.replace(env.path("security.log"), env.path("security-b.log"))
    text = text.replace("listen 127.0.0.1:%d" % ma, "listen 127.0.0.1:%d" % mb)
    text = "state-dir %s\n" % env.path("state-b") + text
    b_gh = env.gatehouse(text, name="b.conf")
    check("store redis: 127.0.0.1:%d answers" % rport in b_gh.output(), "B's log")
    return a, pb, b_gh, red


def store_metric(env, port, name, **labels):
    """A gatehouse_store_* value from the management service's /metrics."""
    r = curl("--cacert", env.ca, "https://localhost:%d/metrics" % port)
    want = name + "{" + ",".join('%s="%s"' % kv for kv in sorted(labels.items())) + "}"
    for line in r.stdout.decode().splitlines():
        if line.startswith(want + " "):
            return int(line.split()[1])
    return None


@test
def cluster_saml_sessions_and_replay_guard_shared_through_redis(env):
    # No sign-in rate limit here: the recovery is polled with login starts
    # (the limit's own test is below).
    a, pb, b_gh, red = two_appliances(env, "    session-cache 2s\n", "saml-rate-per-source 0\n")

    # The login starts on A ...
    br = routed_browser(env, a.port)
    Routed.ROUTE[0] = a.port
    acs, fields = idp_response(br, a.url, "staff", "alice", "wonderland")
    check(acs == "%s/api/v1/samlconsumer/%s" % (a.url, UUID_A), "ACS %r" % acs)
    # ... and the IdP's post reaches B, which has never seen the request.
    Routed.ROUTE[0] = pb
    st, h, body = post_acs(br, acs, fields)
    check(st == 303, "B consumed A's request: %d %r %r" % (st, body, security(env, "security-b.log")[-2:]))
    sid = br.cookie("__Host-gh-sp")
    check(sid is not None and len(sid.value) == 64, "a session cookie from B")
    for port, who in ((a.port, "A"), (pb, "B")):
        Routed.ROUTE[0] = port
        st, h, body = br.request(a.url + "/api/v1/samlsession")
        check(st == 200 and json.loads(body)["name_id"] == "alice",
              "the session on %s: %d %r" % (who, st, body[:200]))
    # The same response again, at A: refused as a replay (B marked it).
    Routed.ROUTE[0] = a.port
    st, h, body = post_acs(br, acs, fields)
    check(st == 403, "replay at A: %d %r" % (st, body))
    last = [e for e in security(env, "security.log") if e.get("reason", "").startswith("saml-")]
    check(last and last[-1]["reason"].startswith("saml-replay:"), "A's reason: %r" % last[-1:])
    # Logout at A ends the session everywhere.
    st, h, body = br.request(a.url + "/api/v1/samllogout", data={})
    check(st == 200, "logout at A: %d" % st)
    fresh = routed_browser(env, pb)
    Routed.ROUTE[0] = pb
    st, h, body = fresh.request(a.url + "/api/v1/samlsession",
                                headers={"Cookie": "__Host-gh-sp=" + sid.value})
    check(st == 401, "the session survived logout on B: %d" % st)

    # A second session, made on B and verified on A just before the store
    # stops: A serves it from its copy for session-cache (2 s), B (which
    # never verified it) and everyone else get 503, then A too.
    b1 = routed_browser(env, a.port)
    Routed.ROUTE[0] = a.port
    acs1, fields1 = idp_response(b1, a.url, "staff", "alice", "wonderland")
    Routed.ROUTE[0] = pb
    st, h, body = post_acs(b1, acs1, fields1)
    check(st == 303, "second login: %d" % st)
    Routed.ROUTE[0] = a.port
    st, h, body = b1.request(a.url + "/api/v1/samlsession")
    verified = time.monotonic()
    check(st == 200, "second session on A: %d" % st)
    # The store stops answering: every path fails closed with 503.
    red.send_signal(signal.SIGSTOP)
    try:
        st, h, body = b1.request(a.url + "/api/v1/samlsession")
        check(st == 200 and time.monotonic() - verified < 2.0,
              "A's copy of a session it verified: %d after %.2f s" % (
                  st, time.monotonic() - verified))
        Routed.ROUTE[0] = pb
        st, h, body = b1.request(a.url + "/api/v1/samlsession")
        check(st == 503, "B never verified it: %d" % st)
        Routed.ROUTE[0] = a.port

        def a_refuses():
            return b1.request(a.url + "/api/v1/samlsession")[0] == 503
        wait_until(a_refuses, 6, "A's copy expiring")
        waited = time.monotonic() - verified
        check(2.0 <= waited < 4.0, "served from the copy for %.2f s (session-cache 2s)" % waited)
        # A logout now cannot end it in the store: not "signed out".
        st, h, body = b1.request(a.url + "/api/v1/samllogout", data={})
        check(st == 503, "a logout the store did not take: %d %r" % (st, body))
        b2 = routed_browser(env, a.port)
        for port in (a.port, pb):
            Routed.ROUTE[0] = port
            st, h, body = b2.request(a.url + "/api/v1/samllogin/staff")
            check(st == 503, "login start with the store stopped: %d %r" % (st, body))
            st, h, body = b2.request(a.url + "/api/v1/samlsession",
                                     headers={"Cookie": "__Host-gh-sp=" + "ab" * 32})
            check(st == 503, "session check with the store stopped: %d %r" % (st, body))
            st, h, body = post_acs(b2, acs, fields)
            check(st == 503, "assertion post with the store stopped: %d %r" % (st, body))
        reasons = [e["reason"].split(":")[0] for e in security(env, "security.log") +
                   security(env, "security-b.log")]
        check(reasons.count("saml-store-unavailable") >= 4, "logged: %r" % reasons[-6:])
        # and counted: the outage is in the metrics, not only in the logs
        t = store_metric(env, a.mgmt, "gatehouse_store_failures_total", engine="redis",
                         reason="timeout")
        d = store_metric(env, a.mgmt, "gatehouse_store_failures_total", engine="redis",
                         reason="down")
        check(t is not None and d is not None and t >= 1 and d >= 1,
              "store failures counted on A: timeout %r, down %r" % (t, d))
        # Everyone else is still served: the status page answers at once.
        Routed.ROUTE[0] = a.port
        st, h, body = b2.request(a.url + "/healthcheck.html")
        check(st == 200, "the status page while the store is stopped: %d" % st)
    finally:
        red.send_signal(signal.SIGCONT)
    # Back: a whole new login across the two appliances, no restart.
    b3 = routed_browser(env, a.port)

    def login_works():
        # each appliance's threads reconnect when asked, after their back-off
        # or once another of its connections got through
        ok = True
        for port in (a.port, pb):
            Routed.ROUTE[0] = port
            ok = b3.request(a.url + "/api/v1/samllogin/staff")[0] == 302 and ok
        return ok
    wait_until(login_works, 10, "login start answering again on A and B")
    b3 = routed_browser(env, a.port)
    Routed.ROUTE[0] = a.port
    acs, fields = idp_response(b3, a.url, "staff", "alice", "wonderland")
    Routed.ROUTE[0] = pb
    st, h, body = post_acs(b3, acs, fields)
    check(st == 303, "after the store came back: %d %r" % (st, body))
    # The logout refused while the store was away did not end the session.
    Routed.ROUTE[0] = pb
    st, h, body = b1.request(a.url + "/api/v1/samlsession")
    check(st == 200, "the session whose logout was refused: %d" % st)
    n = store_metric(env, a.mgmt, "gatehouse_store_connected", engine="redis")
    ops = store_metric(env, a.mgmt, "gatehouse_store_operations_total", engine="redis")
    check(n is not None and n >= 1 and ops and ops > 10,
          "A connected again: connected %r, operations %r" % (n, ops))
    # B, where b3's session was made, is killed (SIGKILL): nothing of the
    # session was only B's, A serves it.
    b_gh.proc.kill()
    b_gh.proc.wait()
    Routed.ROUTE[0] = a.port
    st, h, body = b3.request(a.url + "/api/v1/samlsession")
    check(st == 200 and json.loads(body)["name_id"] == "alice",
          "the session made on B after B was killed: %d %r" % (st, body[:200]))
    print("    (two appliances, one Redis + a replica: request from A consumed at B, "
          "replay at A refused, logout held, 503 while stopped, a verified session served "
          "%.2f s from A's copy, recovered, B's session served by A after kill -9 of B)" % waited)


@test
def cluster_admin_sessions_shared_through_redis(env):
    """An admin signed in on A is signed in on B (same published name), and
    signing out on A signs out on B: admin sessions live in the store too.
    Each appliance keeps its own users file, here with the same users."""
    from harness import GATEHOUSE
    from t_m_admin import PW, ROLES, Admin
    pw = "cluster-secret-2"
    pwfile = env.write("redis.pw", pw + "\n")
    os.chmod(pwfile, 0o600)
    rport = free_port()
    red = start_redis(env, rport, pw)
    store = ("store redis {\n    address 127.0.0.1:%d\n    password-file %s\n"
             "    timeout 200ms\n    wait-replicas 0\n}\n" % (rport, pwfile))
    a = Admin(env, extra=store)
    pb, pbp = free_port(), free_port()
    text = a.text.replace("listen 127.0.0.1:%d" % a.port, "listen 127.0.0.1:%d" % pb)
    text = text.replace("listen 127.0.0.1:%d" % a.pub, "listen 127.0.0.1:%d" % pbp)
    text = text.replace(env.path("access.log"), env.path("access-b.log"))
    text = text.replace(env.path("security.log"), env.path("security-b.log"))
    text = "state-dir %s\n" % env.path("state-b") + text
    bconf = env.write("b.conf", text)
    r = subprocess.run([GATEHOUSE, "admin", "user", "add", "root", "--role", ROLES["root"], "-c",
                        bconf], input=(PW["root"] + "\n").encode(), capture_output=True,
                       cwd=env.dir)
    check(r.returncode == 0, "user add on B: %r" % r.stderr)
    env.gatehouse(text, name="b.conf")
    br = routed_browser(env, a.port)
    Routed.ROUTE[0] = a.port
    st, h, body = a.login(br, "root", PW["root"])
    check(st == 303, "login on A: %d %r" % (st, body[:200]))
    whoami = {}
    for port, who in ((a.port, "A"), (pb, "B")):
        Routed.ROUTE[0] = port
        st, h, body = br.request(a.url + "/api/v1/whoami")
        check(st == 200, "whoami on %s: %d %r" % (who, st, body[:200]))
        whoami[who] = json.loads(body)
    check(whoami["A"]["user"] == whoami["B"]["user"] == "root" and
          whoami["A"]["csrf"] == whoami["B"]["csrf"], "one session: %r" % whoami)
    cookies = "; ".join("%s=%s" % (c.name, c.value) for c in br.jar)
    check(cookies, "the session cookie")
    # With the store stopped, a logout is refused (503), not claimed; the
    # session lives on once the store is back.
    red.send_signal(signal.SIGSTOP)
    try:
        Routed.ROUTE[0] = a.port
        st, h, body = br.request(a.url + "/logout", data={"csrf": whoami["A"]["csrf"]})
        # the session can be neither checked nor ended: 503, never "signed out"
        check(st == 503 and b"cannot be checked" in body,
              "logout with the store stopped: %d %r" % (st, body))
    finally:
        red.send_signal(signal.SIGCONT)

    def signed_in():
        ok = True
        for port in (a.port, pb):
            Routed.ROUTE[0] = port
            ok = routed_browser(env, port).request(a.url + "/api/v1/whoami",
                                                   headers={"Cookie": cookies})[0] == 200 and ok
        return ok
    wait_until(signed_in, 10, "the session valid again on A and B")
    Routed.ROUTE[0] = a.port
    st, h, body = br.request(a.url + "/logout", data={"csrf": whoami["A"]["csrf"]})
    check(st == 303, "logout on A: %d" % st)
    # The old cookie, sent as it was (a browser that ignored the logout).
    fresh = routed_browser(env, pb)
    Routed.ROUTE[0] = pb
    st, h, body = fresh.request(a.url + "/api/v1/whoami", headers={"Cookie": cookies})
    check(st == 401, "the session survived logout on B: %d" % st)


@test
def cluster_saml_rate_limit_is_one_bucket_across_appliances(env):
    """saml-rate-per-source 30 (a burst of 10): login starts from one
    address, alternating between A and B, get 10 through, not 20; with
    Redis stopped each appliance limits on its own at its share
    (appliances 2: a burst of 5 each)."""
    a, pb, b_gh, red = two_appliances(env, "    appliances 2\n", "saml-rate-per-source 30\n")
    br = routed_browser(env, a.port)

    def burst(n):
        got = {a.port: [], pb: []}
        for i in range(n):
            port = (a.port, pb)[i % 2]
            Routed.ROUTE[0] = port
            got[port].append(br.request(a.url + "/api/v1/samllogin/staff")[0])
        return got
    t0 = time.monotonic()
    got = burst(24)
    took = time.monotonic() - t0
    passed = sum(st == 302 for v in got.values() for st in v)
    # 30 a minute refills one every 2 s: at most one more per 2 s taken
    check(10 <= passed <= 10 + int(took / 2) + 1 and
          all(st in (302, 429) for v in got.values() for st in v),
          "shared bucket: %d through in %.1f s: %r" % (passed, took, got))
    check(any(st == 302 for st in got[pb]) and any(st == 429 for st in got[a.port]),
          "both appliances take from one bucket: %r" % got)
    red.send_signal(signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        got = burst(24)
        took = time.monotonic() - t0
        # the store is away: login starts answer 503 once through the limit,
        # 429 past each appliance's share
        for port in (a.port, pb):
            limited = got[port].count(429)
            through = len(got[port]) - limited
            check(5 <= through <= 5 + int(took / 4) + 1 and limited > 0,
                  "local share on %d: %r in %.1f s" % (port, got[port], took))
    finally:
        red.send_signal(signal.SIGCONT)


@test
def store_password_file_checked_by_t_with_its_place(env):
    """gatehouse -t reads the store's password file as the start would: a
    missing one, one readable by others and an empty one are refused with
    the block's file:line:col; a private one passes."""
    from harness import GATEHOUSE, base_conf
    pw = env.path("redis.pw")
    cases = [("missing", None, "No such file or directory"),
             ("shared", 0o644, "is readable by others (chmod 600)"),
             ("empty", 0o600, "one line of 1 to 255 bytes"),
             ("ok", 0o600, None)]
    for name, mode, want in cases:
        if os.path.exists(pw):
            os.unlink(pw)
        if mode is not None:
            with open(pw, "w") as f:
                f.write("" if name == "empty" else "s3cret\n")
            os.chmod(pw, mode)
        conf = env.write("t-%s.conf" % name, base_conf(env) + "\nstore redis {\n"
                         "    address 127.0.0.1:1\n    password-file %s\n"
                         "    wait-replicas 0\n}\n" % pw)
        r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                           cwd=env.dir, timeout=30)
        if want is None:
            check(r.returncode == 0, "%s: %r" % (name, r.stderr))
        else:
            line = [ln for ln, t in enumerate(open(conf).read().split("\n"), 1)
                    if t.startswith("store redis")][0]
            check(r.returncode == 1 and ("%s:%d:1: store redis: password-file" % (conf, line))
                  in r.stderr and want in r.stderr, "%s: %r" % (name, r.stderr))
