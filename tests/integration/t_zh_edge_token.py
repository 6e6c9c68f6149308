"""The seeds' two tokens (call sequence, step 6), through two gatehouse
instances as in the seed: an edge whose public service has
`validate-join-token on`, and an internal one whose conference service
requires the edge's token (`require-edge-token on`), both on one Redis (the
shared store the tokens live in) and one `edge-token-key-file`.

For the manifest and content paths the edge looks the join token up
itself: a missing, malformed, forged, expired, revoked or ended one, in any
spelling of those paths, stops at the edge with its status and reason, and
the internal instance's access and security logs do not move. A valid one
works end to end; what the edge forwards (seen byte for byte by a
recording server) carries exactly one edge token, the edge's own, which
verifies here with an HMAC computed independently of gatehouse. Straight at
the internal instance, a join token without an edge token, with a forged,
expired, another resource's or another participant's, or from a peer that
is not a trusted proxy, is refused there. With the store stopped the edge
answers 503 and forwards nothing. With store local, one appliance with both
roles behaves the same."""
import hashlib
import hmac
import json
import os
import signal
import socket
import ssl
import time

from harness import base_conf, check, free_port, read_response, service, test, wait_until
from rawpeer import RawBackend
from t_l_meetings import admin_via_socket, decrypt, unix_request
from t_q_chain_timeouts import own_logs
from t_zb_cluster import security, start_redis

MANIFEST = "/api/v1/meetings/manifest"


def lines(env, name):
    try:
        with open(env.path(name), "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def exchange(port, ca, method, path, headers=(), body=b"", source="127.0.0.1"):
    """One request over TLS from source: (status, headers, body). headers
    is a list of raw "Name: value" lines, so duplicates and odd spellings
    go out as written."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(source, 0))
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(s, server_hostname="localhost")
    head = "%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, path)
    head += "".join(h + "\r\n" for h in headers)
    if body:
        head += "Content-Length: %d\r\n" % len(body)
    head += "Connection: close\r\n\r\n"
    s.sendall(head.encode("latin-1") + body)
    st, h, b, _ = read_response(s, head_request=method == "HEAD")
    s.close()
    return st, h, b


def bearer(tok):
    return "Authorization: Bearer " + tok


def participant(tok):
    return hashlib.sha256(b"gatehouse participant:" + tok.encode()).hexdigest()[:32]


def edge_mac(key, meeting, pid, expires, resource):
    msg = ("gatehouse edge token 1\n%d\n%s\n%d\n" % (meeting, pid, expires)).encode() + resource
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def mint(key, meeting, pid, expires, resource):
    return "1.%d.%s.%d.%s" % (meeting, pid, expires, edge_mac(key, meeting, pid, expires,
                                                               resource.encode()))


class Internal:
    """What the conference admin API of an instance needs (t_l_meetings)."""

    def __init__(self, env, gh, state):
        self.env, self.gh, self.conf = env, gh, gh.conf
        self.state = os.path.join(state, "conference")
        admin_via_socket(self)

    def api(self, path, data=None, method=None):
        import urllib.parse
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        h = {"Authorization": "Bearer " + self.admin}
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        return unix_request(self.admin_sock, method or ("POST" if body is not None else "GET"),
                            path, body, h)


def join(port, ca, m, **extra):
    import urllib.parse
    f = {"uri": m["uri"], "key": m["conference_key"]}
    f.update(extra)
    body = urllib.parse.urlencode(f).encode()
    st, h, b = exchange(port, ca, "POST", "/api/v1/meetings/join",
                        ["Content-Type: application/x-www-form-urlencoded"], body)
    j = json.loads(b)
    check(st == 200 and j.get("outcome") == "joined", "join: %d %r" % (st, j))
    return j["token"]


def redis_cmd(port, *args):
    """One command to Redis as the gatehouse ACL user, binary-safe (RESP)."""
    def bulk(x):
        x = x if isinstance(x, bytes) else str(x).encode()
        return b"$%d\r\n%s\r\n" % (len(x), x)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"*3\r\n" + bulk("AUTH") + bulk("gatehouse") + bulk("gh-pw") +
                  b"*%d\r\n" % len(args) + b"".join(bulk(a) for a in args))
        got = b""
        while got.count(b"\r\n") < 2:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return got


def two_instances(env):
    """Redis; the internal instance I and the edge E; a recording server
    behind E's second validating service. Returns a dict of the parts."""
    pw = env.write("redis.pw", "gh-pw\n")
    key = os.urandom(32)
    kf = env.write("edge.key", key.hex() + "\n")
    for f in (pw, kf):
        os.chmod(f, 0o600)
    rport = free_port()
    red = start_redis(env, rport, None, acl=True)
    store = ("store redis {\n    address 127.0.0.1:%d\n    user gatehouse\n"
             "    password-file %s\n    timeout 300ms\n    wait-replicas 0\n}\nedge-token-key-file %s\n" % (
                 rport, pw, kf))
    ci, pe, pr = free_port(), free_port(), free_port()
    raw = RawBackend(env)
    gi = env.gatehouse(own_logs(env, "i") + store + "require-edge-token on\n" +
                       service("conference", ci, app="conference", hosts="localhost",
                               extra="    trusted-proxies 127.0.0.1/32"), name="i.conf")
    ge = env.gatehouse(own_logs(env, "e") + store +
                       service("public", pe, servers=[("internal", ci)], hosts="localhost",
                               extra="    validate-join-token on\n    merge-slashes off") +
                       service("probe", pr, servers=[("raw", raw.port)], hosts="localhost",
                               extra="    validate-join-token on"), name="e.conf")
    return {"key": key, "redis": red, "rport": rport, "ci": ci, "pe": pe, "pr": pr,
            "raw": raw, "gi": gi, "ge": ge,
            "internal": Internal(env, gi, env.path("i-state"))}


def untouched(env):
    return (lines(env, "i-access.log"), lines(env, "i-security.log"))


@test
def edge_validates_join_tokens_and_the_internal_service_requires_its_token(env):
    t = two_instances(env)
    ca, pe, ci, key = env.ca, t["pe"], t["ci"], t["key"]
    it = t["internal"]
    st, h, b = it.api("/api/v1/admin/meetings", {"alias": "board"})
    check(st == 201, "create: %d %r" % (st, b))
    m = json.loads(b)
    host = join(pe, ca, m)  # the join itself is not a protected path: it passes the edge
    data = os.urandom(50000)
    st, h, b = exchange(pe, ca, "POST", "/api/v1/meetings/content?name=a.bin", [bearer(host)],
                        data)
    check(st == 201, "upload through the edge: %d %r" % (st, b))
    st, h, b = exchange(pe, ca, "GET", MANIFEST, [bearer(host)])
    check(st == 200, "manifest through the edge: %d %r" % (st, b))
    res = json.loads(b)["resources"][0]
    st, h, stored = exchange(pe, ca, "GET", res["url"], [bearer(host)])
    check(st == 200 and decrypt(stored, res["key"]) == data, "content through the edge: %d" % st)
    rid = res["url"].rsplit("/", 1)[1]
    # Spelled with slashes the edge keeps and the internal instance merges:
    # judged and signed as the one path it is.
    st, h, b = exchange(pe, ca, "GET", "/" + MANIFEST, [bearer(host)])
    check(st == 200, "manifest spelled with a doubled slash, through the edge: %d %r" % (st, b))

    # Tokens the store says are dead, made here so each is exactly one case.
    guest_left = join(pe, ca, m)
    st, h, b = exchange(pe, ca, "POST", "/api/v1/meetings/leave", [bearer(guest_left)])
    check(st == 200, "leave: %d %r" % (st, b))
    expired = os.urandom(16).hex()
    # struct gh_join_record: meeting, epoch, role, name[128], name_fixed, expires
    rec = ((1).to_bytes(8, "little") * 2 + (1).to_bytes(4, "little") + bytes(128) + bytes(4) +
           (int(time.time()) - 5).to_bytes(8, "little"))
    got = redis_cmd(t["rport"], "SET", b"gatehouse:j" + bytes.fromhex(expired), rec, "PX",
                    "600000")
    check(got.endswith(b"+OK\r\n"), "the expired record planted: %r" % got)
    st, h, b = it.api("/api/v1/admin/meetings", {"alias": "gone"})
    m2 = json.loads(b)
    gone_host, gone_guest = join(pe, ca, m2), join(pe, ca, m2)
    st, h, b = exchange(pe, ca, "POST", "/api/v1/meetings/end", [bearer(gone_host)])
    check(st == 200, "end: %d %r" % (st, b))
    forged = os.urandom(16).hex()
    # A room deleted, another made: SQLite gives it the same id; the old
    # room's token is dead, the new room's works (below).
    st, h, b = it.api("/api/v1/admin/meetings", {"alias": "short-lived"})
    m3 = json.loads(b)
    deleted = join(pe, ca, m3)
    st, h, b = it.api("/api/v1/admin/meetings/short-lived", method="DELETE")
    check(st == 200, "delete: %d %r" % (st, b))
    st, h, b = it.api("/api/v1/admin/meetings", {"alias": "next"})
    after_delete = join(pe, ca, json.loads(b))

    cases = [
        # (name, method, path, header lines, status, reason at the edge)
        ("no token", "GET", MANIFEST, [], 404, "join-token:missing"),
        ("basic, not bearer", "GET", MANIFEST, ["Authorization: Basic dTpw"], 404,
         "join-token:missing"),
        ("a token too short", "GET", MANIFEST, [bearer(host[:-1])], 404, "join-token:missing"),
        ("upper-case spelling", "GET", MANIFEST, [bearer(host.upper())], 404,
         "join-token:missing"),
        ("two authorization lines", "GET", MANIFEST, [bearer(host), bearer(forged)], 404,
         "join-token:missing"),
        ("forged", "GET", MANIFEST, [bearer(forged)], 404, "join-token:unknown"),
        ("forged, with an edge token of its own", "GET", MANIFEST,
         [bearer(forged), "Gatehouse-Edge-Token: " + mint(os.urandom(32), 1, participant(forged),
                                                           int(time.time()) + 20, MANIFEST)],
         404, "join-token:unknown"),
        ("forged, content", "GET", "/api/v1/content/" + rid, [bearer(forged)], 404,
         "join-token:unknown"),
        ("forged, manifest spelled with an escape", "GET", "/api/v1/meetings/%6danifest",
         [bearer(forged)], 404, "join-token:unknown"),
        ("forged, content behind a dot segment", "GET", "/api/v1/x/../content/" + rid,
         [bearer(forged)], 404, "join-token:unknown"),
        ("forged, manifest with a query", "GET", MANIFEST + "?a=1", [bearer(forged)], 404,
         "join-token:unknown"),
        ("forged, HEAD", "HEAD", MANIFEST, [bearer(forged)], 404, "join-token:unknown"),
        # public has merge-slashes off; the internal instance merges them
        ("forged, a doubled slash first", "GET", "/" + MANIFEST, [bearer(forged)], 404,
         "join-token:unknown"),
        ("forged, a doubled slash inside", "GET", "/api/v1/meetings//manifest",
         [bearer(forged)], 404, "join-token:unknown"),
        ("forged, content, doubled slashes", "GET", "/api//v1/content/" + rid, [bearer(forged)],
         404, "join-token:unknown"),
        ("a deleted room's token", "GET", MANIFEST, [bearer(deleted)], 404,
         "join-token:unknown"),
        ("revoked (left)", "GET", MANIFEST, [bearer(guest_left)], 404, "join-token:unknown"),
        ("expired", "GET", MANIFEST, [bearer(expired)], 404, "join-token:expired"),
        ("meeting ended", "GET", MANIFEST, [bearer(gone_guest)], 410,
         "join-token:meeting-ended"),
        ("meeting ended, content", "GET", "/api/v1/content/" + rid, [bearer(gone_guest)], 410,
         "join-token:meeting-ended"),
    ]
    before = untouched(env)
    bodies = {}
    for i, (name, method, path, hdrs, status, reason) in enumerate(cases):
        n0 = len(security(env, "e-security.log"))
        st, h, b = exchange(pe, ca, method, path, hdrs)
        check(st == status, "%s: %r, want %d" % (name, st, status))
        wait_until(lambda: len(security(env, "e-security.log")) > n0, 5,
                   "%s: a security-log line at the edge" % name)
        got = security(env, "e-security.log")[n0]
        check(got["reason"] == reason, "%s: reason %r, want %r" % (name, got["reason"], reason))
        if method != "HEAD":
            bodies.setdefault(status, set()).add(b)
    for status, b in bodies.items():
        check(len(b) == 1, "one identical page for every %d at the edge" % status)
    check(bodies[410] == {b'{"outcome":"meeting-ended","message":"This meeting has ended."}\n'},
          "the edge's 410 is the conference service's: %r" % bodies[410])
    check(untouched(env) == before,
          "the internal instance saw something of the refused requests: %r -> %r" % (
              before, untouched(env)))
    st, h, b = exchange(pe, ca, "GET", MANIFEST, [bearer(after_delete)])
    check(st == 200, "the new room on a deleted room's id, through the edge: %d %r" % (st, b))

    # What the edge forwards, byte for byte: one edge token, its own, for
    # this meeting, participant and path, though the client sent one too.
    raw = t["raw"]
    mark = len(raw.conns())
    st, h, b = exchange(t["pr"], ca, "GET", MANIFEST,
                        [bearer(host), "Gatehouse-Edge-Token: 1.1.%s.9.%s" % ("0" * 32, "0" * 64),
                         "gatehouse-edge-token: second"])
    wait_until(lambda: len(raw.conns()) > mark and raw.data(raw.conns()[-1]).endswith(
        b"\r\n\r\n"), 5, "the forwarded head at the recording server")
    got = raw.data(raw.conns()[-1])
    toks = [l.split(b":", 1)[1].strip().decode() for l in got.split(b"\r\n")
            if l.lower().startswith(b"gatehouse-edge-token:")]
    check(len(toks) == 1, "edge token lines forwarded: %r" % toks)
    f = toks[0].split(".")
    check(len(f) == 5 and f[0] == "1" and f[2] == participant(host), "edge token %r" % toks[0])
    meeting, expires = int(f[1]), int(f[3])
    check(0 < expires - time.time() <= 31, "edge token lifetime: %d s" % (expires - time.time()))
    check(hmac.compare_digest(f[4], edge_mac(key, meeting, f[2], expires, MANIFEST.encode())),
          "the edge token's HMAC does not verify independently")
    check(b"Authorization: Bearer " + host.encode() in got, "the join token forwarded as sent")

    # The edge's 404 is the conference service's own, byte for byte.
    st, h, b404 = exchange(ci, ca, "GET", MANIFEST, [bearer(forged)])
    check(st == 404 and bodies[404] == {b404}, "404 bodies: %r vs %r" % (bodies[404], b404))

    # Straight at the internal instance.
    now = int(time.time())
    pid = participant(host)
    direct = [
        ("no edge token", MANIFEST, [], "edge-token:missing"),
        ("another key's", MANIFEST, [mint(os.urandom(32), meeting, pid, now + 20, MANIFEST)],
         "edge-token:forged"),
        ("the manifest's, for content", "/api/v1/content/" + rid,
         [mint(key, meeting, pid, now + 20, MANIFEST)], "edge-token:forged"),
        ("expired", MANIFEST, [mint(key, meeting, pid, now - 2, MANIFEST)], "edge-token:expired"),
        ("far ahead", MANIFEST, [mint(key, meeting, pid, now + 3600, MANIFEST)],
         "edge-token:malformed"),
        ("another participant's", MANIFEST,
         [mint(key, meeting, participant(forged), now + 20, MANIFEST)], "edge-token:other"),
        ("another meeting's", MANIFEST, [mint(key, meeting + 1, pid, now + 20, MANIFEST)],
         "edge-token:other"),
        ("not one", MANIFEST, ["1.2.3"], "edge-token:malformed"),
    ]
    for name, path, tok, reason in direct:
        n0 = len(security(env, "i-security.log"))
        hdrs = [bearer(host)] + ["Gatehouse-Edge-Token: " + x for x in tok]
        st, h, b = exchange(ci, ca, "GET", path, hdrs)
        check(st == 404, "direct, %s: %d" % (name, st))
        wait_until(lambda: len(security(env, "i-security.log")) > n0, 5,
                   "direct, %s: logged" % name)
        check(security(env, "i-security.log")[n0]["reason"] == reason + ":require-edge-token",
              "direct, %s: %r" % (name, security(env, "i-security.log")[n0]))
    good = mint(key, meeting, pid, int(time.time()) + 20, MANIFEST)
    st, h, b = exchange(ci, ca, "GET", MANIFEST, [bearer(host), "Gatehouse-Edge-Token: " + good])
    check(st == 200, "direct from a trusted proxy with a good edge token: %d" % st)
    # From a peer that is not in trusted-proxies the header is not passed on.
    n0 = len(security(env, "i-security.log"))
    st, h, b = exchange(ci, ca, "GET", MANIFEST, [bearer(host), "Gatehouse-Edge-Token: " + good],
                        source="127.0.0.2")
    check(st == 404, "direct from an untrusted peer with a good edge token: %d" % st)
    wait_until(lambda: len(security(env, "i-security.log")) > n0, 5, "untrusted: logged")
    check(security(env, "i-security.log")[n0]["reason"] == "edge-token:missing:require-edge-token",
          "untrusted: %r" % security(env, "i-security.log")[n0])

    # The command line's end and revoking change mark their epochs in the
    # same store: the edge refuses those tokens itself.
    import subprocess
    from harness import GATEHOUSE
    for alias, args, status, reason in (
            ("cli-end", ["end"], 410, "join-token:meeting-ended"),
            ("cli-revoke", ["set", "--host-pin", "2468", "--revoke-tokens"], 404,
             "join-token:unknown"),
            ("cli-delete", ["delete"], 404, "join-token:unknown")):
        st, h, b = it.api("/api/v1/admin/meetings", {"alias": alias})
        tok = join(pe, ca, json.loads(b))
        check(exchange(pe, ca, "GET", MANIFEST, [bearer(tok)])[0] == 200, "%s: live" % alias)
        r = subprocess.run([GATEHOUSE, "meeting", args[0], alias] + args[1:] + ["-c", it.conf],
                           capture_output=True, text=True, cwd=env.dir, timeout=30)
        check(r.returncode == 0 and "not in the shared store" not in r.stderr,
              "gatehouse meeting %s: %r" % (args[0], r.stderr))
        before = untouched(env)
        n0 = len(security(env, "e-security.log"))
        st, h, b = exchange(pe, ca, "GET", MANIFEST, [bearer(tok)])
        check(st == status, "%s: %d, want %d" % (alias, st, status))
        wait_until(lambda: len(security(env, "e-security.log")) > n0, 5, "%s: logged" % alias)
        check(security(env, "e-security.log")[n0]["reason"] == reason,
              "%s: %r" % (alias, security(env, "e-security.log")[n0]))
        check(untouched(env) == before, "%s: the internal instance saw it" % alias)

    # The store stopped: the edge cannot tell, so nothing goes through.
    before = untouched(env)
    t["redis"].send_signal(signal.SIGSTOP)
    try:
        n0 = len(security(env, "e-security.log"))
        t0 = time.monotonic()
        st, h, b = exchange(pe, ca, "GET", MANIFEST, [bearer(host)])
        took = time.monotonic() - t0
        check(st == 503, "with the store stopped: %d" % st)
        wait_until(lambda: len(security(env, "e-security.log")) > n0, 5,
                   "the 503 in the edge's security log")
        check(security(env, "e-security.log")[n0]["reason"] == "join-token:store-unavailable",
              "%r" % security(env, "e-security.log")[n0])
    finally:
        t["redis"].send_signal(signal.SIGCONT)
    check(untouched(env) == before, "the internal instance saw a request the edge could not check")
    wait_until(lambda: exchange(pe, ca, "GET", MANIFEST, [bearer(host)])[0] == 200, 20,
               "the manifest again with the store back")
    print("    (%d refusals at the edge, internal logs unmoved; %d direct refusals at the "
          "internal; store stopped: 503 in %.2f s)" % (len(cases), len(direct) + 1, took))


@test
def edge_and_conference_on_one_appliance_with_store_local(env):
    """One appliance, both roles, store local: the edge reads this
    process's own tables."""
    pe, ci = free_port(), free_port()
    text = (base_conf(env, extra="require-edge-token on") +
            service("public", pe, servers=[("conf", ci)], hosts="localhost",
                    extra="    validate-join-token on") +
            service("conference", ci, app="conference", hosts="localhost",
                    extra="    trusted-proxies 127.0.0.1/32"))
    gh = env.gatehouse(text)
    it = Internal(env, gh, env.path("gatehouse-state"))
    kf = env.path("gatehouse-state/edge-token.key")
    check(os.stat(kf).st_mode & 0o777 == 0o600, "edge-token.key made 0600")
    st, h, b = it.api("/api/v1/admin/meetings", {"alias": "one"})
    m = json.loads(b)
    tok = join(pe, env.ca, m)
    st, h, b = exchange(pe, env.ca, "GET", MANIFEST, [bearer(tok)])
    check(st == 200, "manifest through the edge: %d %r" % (st, b))
    st, h, b = exchange(pe, env.ca, "GET", MANIFEST, [bearer(os.urandom(16).hex())])
    check(st == 404, "forged: %d" % st)

    def access():
        with open(env.path("access.log")) as f:
            return [l.split() for l in f if l.strip()]
    wait_until(lambda: any(l[-1] == "join-token:unknown" for l in access()), 5,
               "the refusal's access line")
    # The conference service answered the one good manifest, and nothing else.
    seen = [l for l in access() if l[1] == "conference" and "/api/v1/meetings/manifest" in l]
    check(len(seen) == 1 and seen[0][6] == "200", "the conference service saw: %r" % seen)
    check(security(env, "security.log")[-1]["reason"] == "join-token:unknown",
          "%r" % security(env, "security.log")[-1])
    st, h, b = exchange(ci, env.ca, "GET", MANIFEST, [bearer(tok)], source="127.0.0.2")
    check(st == 404, "straight at the conference service without an edge: %d" % st)
    st, h, b = exchange(pe, env.ca, "POST", "/api/v1/meetings/end", [bearer(tok)])
    check(st == 200, "end: %d" % st)
    st, h, b = exchange(pe, env.ca, "GET", MANIFEST, [bearer(tok)])
    check(st == 410, "ended, through the edge: %d" % st)
    check(security(env, "security.log")[-1]["reason"] == "join-token:meeting-ended", "reason")


@test
def edge_token_settings_checked_by_t(env):
    """-t: an edge-token-key-file others may read, or not 64 hex digits,
    fails with its name; validate-join-token in mode tcp with its place."""
    import subprocess
    from harness import GATEHOUSE
    kf = env.write("edge.key", os.urandom(32).hex() + "\n")
    os.chmod(kf, 0o644)
    p = free_port()
    svc = service("public", p, servers=[("a", free_port())], extra="    validate-join-token on")
    conf = env.write("t.conf", base_conf(env, extra="edge-token-key-file %s" % kf) + svc)
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 1 and "edge.key" in r.stderr and "chmod 600" in r.stderr,
          "-t, a key others may read: %r" % r.stderr)
    os.chmod(kf, 0o600)
    with open(kf, "w") as f:
        f.write("00" * 31 + "\n")
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 1 and "64 lower-case hex" in r.stderr, "-t, short: %r" % r.stderr)
    with open(kf, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 0, "-t, a good key: %r" % r.stderr)
    # One appliance with the edge and the conference service: each setting
    # without the other is said.
    ci = free_port()
    for extra, conf_extra, want in (
            ("", "    trusted-proxies 127.0.0.1/32", "require-edge-token is off"),
            ("require-edge-token on", "", "has no trusted-proxies: no edge's token"),
            ("require-edge-token on", "    trusted-proxies 127.0.0.1/32", None)):
        text = (base_conf(env, extra="edge-token-key-file %s\n%s" % (kf, extra)) +
                service("public", p, servers=[("c", ci)], extra="    validate-join-token on") +
                service("conference", ci, app="conference", extra=conf_extra))
        r = subprocess.run([GATEHOUSE, "-t", "-c", env.write("t3.conf", text)],
                           capture_output=True, text=True, cwd=env.dir)
        check(r.returncode == 0, "-t: %r" % r.stderr)
        if want:
            check(want in r.stderr, "-t says %r: %r" % (want, r.stderr))
        else:
            check("edge" not in r.stderr, "-t of a consistent pair: %r" % r.stderr)
    text = base_conf(env) + "service l4 {\n    listen 127.0.0.1:%d\n    mode tcp\n" \
        "    server a 127.0.0.1:%d\n    validate-join-token on\n}\n" % (p, free_port())
    conf = env.write("t2.conf", text)
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 1 and "t2.conf:" in r.stderr and
          "'validate-join-token' needs 'mode http'" in r.stderr, "-t, mode tcp: %r" % r.stderr)
