"""Meetings and the slide-content store through the full topology (TLS
proxy -> TLS conference service -> the conference application): joins by
PIN, the waiting room, tokens that expire and are revoked, encrypted
content decrypted here independently (Python's cryptography + zlib), Range
downloads, identical 404s for everything else, and crypto-shredding when a
meeting ends."""
import json
import os
import sqlite3
import subprocess
import zlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from harness import GATEHOUSE, base_conf, check, free_port, service, test, wait_until
from saml_idp import Browser


def unix_request(path, method, url, body=None, headers=None):
    """One HTTP request on a unix socket: (status, headers, body)."""
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(path)
    c = Conn("localhost")
    c.request(method, url, body=body, headers=headers or {})
    r = c.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    c.close()
    return out


def api_token(env, conf, scope="all", name="test"):
    """A token of the conference admin API (gatehouse meeting token add)."""
    add = [GATEHOUSE, "meeting", "token", "add", name, "--scope", scope, "-c", conf]
    r = subprocess.run(add, capture_output=True, text=True, cwd=env.dir)
    if "exists already" in r.stderr:  # a second appliance on the same state folder
        subprocess.run([GATEHOUSE, "meeting", "token", "remove", name, "-c", conf],
                       capture_output=True, cwd=env.dir)
        r = subprocess.run(add, capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 0 and len(r.stdout.strip()) == 64, "token add: %r" % r.stderr)
    return r.stdout.strip()


def admin_via_socket(c, token=None):
    """Sets c up for the conference admin API: its token and its socket."""
    c.admin = token or api_token(c.env, c.conf)
    c.admin_sock = os.path.join(os.path.dirname(c.state), "run", "conference-admin.sock")


class Conference:
    def __init__(self, env, extra="", state=None, conf_extra=None):
        self.env = env
        self.port = free_port()
        self.conf_port = free_port()
        self.url = "https://localhost:%d" % self.port
        text = base_conf(env, extra=extra) + \
            service("public", self.port, servers=[("conf", self.conf_port)], hosts="localhost") + \
            service("conference", self.conf_port, app="conference", hosts="localhost",
                    extra=conf_extra)
        self.gh = env.gatehouse(text)
        self.conf = self.gh.conf
        self.state = state or env.path("gatehouse-state/conference")
        admin_via_socket(self)
        self.b = Browser(env.ca)

    def admin_req(self, path, data=None, token=None, method=None):
        """The conference admin API, on its unix socket (no listener serves it)."""
        import urllib.parse
        body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
        h = {"Authorization": "Bearer " + (token or self.admin)}
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        return unix_request(self.admin_sock, method or ("POST" if body is not None else "GET"),
                            path, body, h)

    def req(self, path, data=None, token=None, headers=None, method=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        import urllib.request
        st, hd, body = None, None, None
        if method:
            import urllib.error
            r = urllib.request.Request(self.url + path, data=data, headers=h, method=method)
            try:
                with self.b.opener.open(r, timeout=30) as resp:
                    return resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as e:
                return e.code, e.headers, e.read()
        st, hd, body = self.b.request(self.url + path, data=data, headers=h)
        return st, hd, body

    def create(self, **fields):
        st, h, body = self.admin_req("/api/v1/admin/meetings", data=fields)
        check(st == 201, "create meeting: %d %r" % (st, body))
        return json.loads(body)

    def join(self, m, **fields):
        f = {"uri": m["uri"], "key": m["conference_key"]}
        f.update(fields)
        st, h, body = self.req("/api/v1/meetings/join", data=f)
        return st, json.loads(body)

    def token(self, m, **fields):
        st, j = self.join(m, **fields)
        check(st == 200 and j["outcome"] == "joined", "join: %d %r" % (st, j))
        return j["token"], j

    def upload(self, token, name, data):
        st, h, body = self.req("/api/v1/meetings/content?name=" + name, data=data, token=token)
        return st, json.loads(body)

    def manifest(self, token):
        st, h, body = self.req("/api/v1/meetings/manifest", token=token)
        return st, (json.loads(body) if st == 200 else body)

    def fetch(self, token, url, rng=None):
        return self.req(url, token=token, headers={"Range": rng} if rng else None)


def staff_group(env):
    """Configuration text for an identity-provider group "staff" (one IdP
    that is never contacted): rooms may name only a group the configuration
    defines. The IdP's certificate is any certificate; here the test CA's."""
    from t_j_saml import sp_cert
    uuid = "0f5e2a36-6c1e-4d0b-9c41-5b7a2f0e9d11"
    return sp_cert(env) + """identity-provider "Staff IdP" {
    uuid %s
    sp-certificate sp
    sp-entity-id https://localhost/saml
    acs-from-services on
    idp-entity-id https://idp.invalid/saml
    idp-sso-url https://idp.invalid/sso
    idp-certificate %s
}
identity-provider-group staff { identity-providers "Staff IdP" }
""" % (uuid, env.ca)


def decrypt(stored, key_b64):
    import base64
    check(stored[:4] == b"GHS1", "stored form lacks its magic")
    aes = AESGCM(base64.b64decode(key_b64))
    return zlib.decompress(aes.decrypt(stored[4:16], stored[16:], None))


@test
def meetings_pin_roles_content_roundtrip_and_range(env):
    c = Conference(env)
    m = c.create(alias="board", host_pin="1234", guest_pin="5678")
    check(m["uri"].startswith("gh-meet:board.") and len(m["conference_key"]) == 32, "%r" % m)
    st, j = c.join(m)
    check(st == 401 and j["outcome"] == "need-pin", "no PIN: %d %r" % (st, j))
    st, j = c.join(m, pin="0000")
    check(st == 403 and j["outcome"] == "bad-pin", "wrong PIN: %d %r" % (st, j))
    host, j = c.token(m, pin="1234", name="Alice")
    check(j["role"] == "host" and j["display_name"] == "Alice", "host: %r" % j)
    guest, j = c.token(m, pin="5678", name="Bob")
    check(j["role"] == "guest", "guest: %r" % j)
    files = {"deck.bin": os.urandom(1 << 20),
             "notes.txt": b"Quarterly review\n" * 20000,
             "empty.txt": b""}
    ids = {}
    for name, data in files.items():
        st, j = c.upload(host, name, data)
        check(st == 201 and len(j["id"]) == 32, "upload %s: %d %r" % (name, st, j))
        ids[name] = j["id"]
    st, j = c.upload(guest, "x.bin", b"guest data")
    check(st == 404, "a Guest uploaded: %d" % st)
    st, man = c.manifest(guest)
    check(st == 200 and man["role"] == "guest", "manifest: %d %r" % (st, man))
    check(sorted(r["name"] for r in man["resources"]) == sorted(files), "%r" % man)
    for r in man["resources"]:
        st, h, stored = c.fetch(guest, r["url"])
        check(st == 200 and len(stored) == r["stored"], "%s: %d %d" % (r["name"], st, len(stored)))
        check(decrypt(stored, r["key"]) == files[r["name"]], "%s: plaintext differs" % r["name"])
        on_disk = open(os.path.join(c.state, "content", r["url"].rsplit("/", 1)[1]), "rb").read()
        check(on_disk == stored, "served bytes are not the stored file")
        if files[r["name"]]:
            check(files[r["name"]][:64] not in on_disk, "plaintext visible on disk")
    notes = [r for r in man["resources"] if r["name"] == "notes.txt"][0]
    check(notes["stored"] < notes["size"] / 10, "not compressed: %r" % notes)
    deck = [r for r in man["resources"] if r["name"] == "deck.bin"][0]
    st, h, whole = c.fetch(guest, deck["url"])
    st, h, part = c.fetch(guest, deck["url"], "bytes=1000-4999")
    check(st == 206 and part == whole[1000:5000] and
          h["Content-Range"] == "bytes 1000-4999/%d" % len(whole), "range: %d %r" % (st, h))
    st, h, part = c.fetch(guest, deck["url"], "bytes=-16")
    check(st == 206 and part == whole[-16:], "suffix range: %d" % st)
    st, h, part = c.fetch(guest, deck["url"], "bytes=%d-" % (len(whole) + 5))
    check(st == 416, "unsatisfiable range: %d" % st)
    # The key is unique per resource and separate from the conference key.
    keys = [r["key"] for r in man["resources"]]
    check(len(set(keys)) == len(keys), "keys repeat")
    import base64
    check(all(base64.b64decode(k).hex() != m["conference_key"] for k in keys), "key reuse")


@test
def meetings_tampered_or_wrong_key_fails_decryption(env):
    c = Conference(env)
    m = c.create(alias="r1")
    host, _ = c.token(m)
    c.upload(host, "s.bin", os.urandom(50000))
    st, man = c.manifest(host)
    r = man["resources"][0]
    st, h, stored = c.fetch(host, r["url"])
    check(decrypt(stored, r["key"]) is not None, "genuine does not decrypt")
    for pos in (20, len(stored) // 2, len(stored) - 1):
        bad = bytearray(stored)
        bad[pos] ^= 1
        try:
            decrypt(bytes(bad), r["key"])
            check(False, "a flipped byte at %d decrypted" % pos)
        except InvalidTag:
            pass
    import base64
    wrong = base64.b64encode(os.urandom(16)).decode()
    try:
        decrypt(stored, wrong)
        check(False, "a wrong key decrypted")
    except InvalidTag:
        pass


@test
def meetings_everything_else_is_the_same_404(env):
    c = Conference(env)
    a = c.create(alias="a")
    b = c.create(alias="b")
    ta, _ = c.token(a)
    tb, _ = c.token(b)
    c.upload(ta, "s.bin", b"slides of a")
    st, man = c.manifest(ta)
    url = man["resources"][0]["url"]
    rid = url.rsplit("/", 1)[1]
    answers = []
    probes = [
        (url, None), (url, tb), (url, "0" * 32), ("/api/v1/content/" + "0" * 32, ta),
        ("/api/v1/content/" + rid[:-1] + ("0" if rid[-1] != "0" else "1"), ta),
        ("/api/v1/content/", ta), ("/api/v1/content/" + rid + "/", ta),
        ("/api/v1/content/" + rid.upper(), ta), ("/api/v1/content/" + rid + "x", ta),
        ("/api/v1/meetings/manifest", None), ("/api/v1/meetings/manifest", "f" * 32),
        ("/api/v1/meetings/waiting", ta.upper()), ("/api/v1/admin/meetings", ta),
        ("/api/v1/admin/meetings", None), ("/api/v1/meetings/nothing", ta),
    ]
    for path, tok in probes:
        st, h, body = c.req(path, token=tok)
        answers.append((st, body))
        check(st == 404, "%s with %r answered %d" % (path, tok, st))
    check(len(set(answers)) == 1, "404 bodies differ: %r" % set(answers))
    # Traversal never reaches the application: the proxy refuses it first.
    for bad in ("/api/v1/content/..%2f" + rid, "/api/v1/content/" + rid + "%00"):
        st, h, body = c.req(bad, token=ta)
        check(st == 400, "%s answered %d" % (bad, st))
    st, j = c.join({"uri": a["uri"], "conference_key": b["conference_key"]})
    check(st == 404 and json.dumps(j) == json.dumps({"error": "not found"}), "wrong key: %d" % st)
    st, j = c.join({"uri": a["uri"] + "x", "conference_key": a["conference_key"]})
    check(st == 404, "unknown URI: %d" % st)
    # Nothing lists: the folder itself is not served, and file names are
    # 128-bit random hex.
    check(len(rid) == 32 and int(rid, 16) >= 0, "resource id %r" % rid)


@test
def meetings_tokens_expire_and_are_revoked_and_end_shreds(env):
    c = Conference(env, extra="join-token-timeout 2s")
    m = c.create(alias="short", host_pin="1234", guest_pin="5678")
    host, _ = c.token(m, pin="1234")
    guest, _ = c.token(m, pin="5678")
    st, j = c.upload(host, "s.bin", b"x" * 1000)
    path = os.path.join(c.state, "content", j["id"])
    check(os.path.exists(path), "content file missing")
    # Leaving revokes.
    st, h, body = c.req("/api/v1/meetings/leave", data=b"", token=guest)
    check(st == 200, "leave %d" % st)
    st, man = c.manifest(guest)
    check(st == 404, "revoked token still works: %d" % st)
    # Expiry: the token stops working within its lifetime plus a second.
    t2, _ = c.token(m, pin="5678")
    check(c.manifest(t2)[0] == 200, "fresh token refused")
    wait_until(lambda: c.manifest(t2)[0] == 404, timeout=6, what="token expiry")
    # Ending the meeting: every token dies, keys and files are gone.
    host, _ = c.token(m, pin="1234")
    guest, _ = c.token(m, pin="5678")
    st, h, body = c.req("/api/v1/meetings/end", data=b"", token=guest)
    check(st == 404, "a Guest ended the meeting: %d" % st)
    st, h, body = c.req("/api/v1/meetings/end", data=b"", token=host)
    check(st == 200, "end %d" % st)
    check(c.manifest(guest)[0] == 410 and c.manifest(host)[0] == 410, "tokens survived the end")
    check(not os.path.exists(path), "content survived the end")
    db = sqlite3.connect(os.path.join(c.state, "meetings.db"))
    check(db.execute("SELECT COUNT(*) FROM resources").fetchone()[0] == 0, "keys survived")
    db.close()
    # The room itself stays; reopened, a new join works and sees no content.
    st, h, body = c.admin_req("/api/v1/admin/meetings/short/reopen", data=b"")
    check(st == 200, "reopen: %d %r" % (st, body))
    t3, _ = c.token(m, pin="5678")
    st, man = c.manifest(t3)
    check(st == 200 and man["resources"] == [], "after the end: %r" % man)


@test
def meetings_waiting_room_admit_and_refuse(env):
    c = Conference(env, extra=staff_group(env))
    m = c.create(alias="vmr", host_pin="1234", guest_pin="5678", authentication="guests",
                 idp_group="staff", other_participants="disallow-all")
    host, j = c.token(m, pin="1234", name="Host")
    st, j = c.join(m, client="device", name="Room 1 (SIP)")
    check(st == 202 and j["outcome"] == "waiting-room", "device: %d %r" % (st, j))
    w1 = j["waiting"]
    st, j = c.join(m, client="device", name="Lobby phone")
    w2 = j["waiting"]
    st, h, body = c.req("/api/v1/meetings/waiting/" + w1)
    check(st == 202, "still waiting: %d" % st)
    st, h, body = c.req("/api/v1/meetings/waiting", token=host)
    names = [w["name"] for w in json.loads(body)["waiting"]]
    check(st == 200 and names == ["Room 1 (SIP)", "Lobby phone"], "list: %r" % names)
    st, h, body = c.req("/api/v1/meetings/waiting/%s/admit" % w1, data=b"", token=host)
    check(st == 200, "admit %d" % st)
    st, h, body = c.req("/api/v1/meetings/waiting/%s/refuse" % w2, data=b"", token=host)
    check(st == 200, "refuse %d" % st)
    st, h, body = c.req("/api/v1/meetings/waiting/" + w1)
    j = json.loads(body)
    check(st == 200 and j["role"] == "guest" and j["display_name"] == "Room 1 (SIP)",
          "admitted: %d %r" % (st, j))
    check(c.manifest(j["token"])[0] == 200, "admitted token refused")
    st, h, body = c.req("/api/v1/meetings/waiting/" + w1)
    check(st == 404, "a second token for one admission: %d" % st)
    st, h, body = c.req("/api/v1/meetings/waiting/" + w2)
    check(st == 403, "refused participant: %d" % st)
    # A Guest cannot see or act on the waiting room.
    guest = j["token"]
    st, h, body = c.req("/api/v1/meetings/waiting", token=guest)
    check(st == 404, "a Guest listed the waiting room: %d" % st)
    # A web client that cannot do SSO, joining as Guest where Guests must
    # sign in, gets the seed's message.
    st, j = c.join(m, pin="5678", client="web-legacy")
    check(st == 403 and "does not support SSO" in j["message"], "legacy: %d %r" % (st, j))
    st, j = c.join(m, pin="5678")
    check(st == 401 and j["outcome"] == "need-sso" and j["login"] == "/api/v1/samllogin/staff",
          "need-sso: %d %r" % (st, j))


def join_from(c, source, m, pin):
    """A join sent from source (a loopback address of its own) to the public
    service: (status, headers, answer)."""
    import http.client
    import ssl
    import urllib.parse
    ctx = ssl.create_default_context(cafile=c.env.ca)
    conn = http.client.HTTPSConnection("localhost", c.port, source_address=(source, 0),
                                       context=ctx, timeout=30)
    body = urllib.parse.urlencode({"uri": m["uri"], "key": m["conference_key"], "pin": pin})
    conn.request("POST", "/api/v1/meetings/join", body=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse()
    out = (r.status, dict(r.getheaders()), json.loads(r.read()))
    conn.close()
    return out


@test
def meetings_pin_backoff_per_source_while_others_join(env):
    """PIN guessing slows the guesser, not the room: from one source three
    wrong PINs, then 429 with Retry-After (1 s, then 2 s after the next wrong
    one), logged with the source; meanwhile a second source joins at once
    with the right PIN. A Host's reset forgets every source. Past 50 wrong
    PINs in the room (a wave from many sources), a new source has one free
    try, yet its right PIN still joins. The conference service trusts the
    public one (trusted-proxies), so the source is the real client."""
    c = Conference(env, conf_extra="    trusted-proxies 127.0.0.1/32")
    m = c.create(alias="guarded", host_pin="424242", guest_pin="737373")
    a, b = "127.0.0.2", "127.0.0.3"
    for i in range(3):
        st, h, j = join_from(c, a, m, "%06d" % i)
        check(st == 403 and j["outcome"] == "bad-pin", "wrong PIN %d: %d %r" % (i, st, j))
    st, h, j = join_from(c, a, m, "424242")
    check(st == 429 and j["outcome"] == "too-many-attempts" and h.get("Retry-After") == "1",
          "the 4th try at once: %d %r %r" % (st, h, j))
    st, h, j = join_from(c, b, m, "737373")
    check(st == 200 and j["role"] == "guest", "another source was slowed: %d %r" % (st, j))
    line = [r for r in security_reasons_prefix(env, "meeting-pin-backoff")]
    check(line and "guarded from 127.0.0.2" in line[-1]["reason"], "security line: %r" % line)
    wait_until(lambda: join_from(c, a, m, "000009")[0] == 403, timeout=3,
               what="the 1 s back-off to pass")
    st, h, j = join_from(c, a, m, "424242")
    check(st == 429 and h.get("Retry-After") == "2", "doubling: %d %r" % (st, h))
    host, _ = c.token(m, pin="424242")  # from 127.0.0.1, a source of its own
    st, hd, body = c.req("/api/v1/meetings/pin-reset", data=b"", token=host)
    check(st == 200, "reset: %d %r" % (st, body))
    st, h, j = join_from(c, a, m, "424242")
    check(st == 200 and j["role"] == "host", "after the Host's reset: %d %r" % (st, j))
    # A wave: 51 sources, one wrong PIN each.
    for i in range(51):
        check(join_from(c, "127.0.1.%d" % (i + 1), m, "111111")[0] == 403, "wave %d" % i)
    st, h, j = join_from(c, "127.0.2.1", m, "222222")
    check(st == 403, "a new source's first try: %d" % st)
    st, h, j = join_from(c, "127.0.2.1", m, "333333")
    check(st == 429, "during the wave a second wrong try at once: %d" % st)
    st, h, j = join_from(c, "127.0.2.2", m, "737373")
    check(st == 200, "a participant with the right PIN during the wave: %d %r" % (st, j))


@test
def meetings_uploads_survive_kill_9(env):
    """50 times: uploads stream in, gatehouse is killed with SIGKILL at a
    random moment, and restarted on the same state. Every upload that was
    acknowledged (201 read by the client) must be there and decrypt to what
    was sent; no temp or orphan file may be visible after a restart."""
    import hashlib
    import random
    import threading
    from harness import Gatehouse
    port, conf_port = free_port(), free_port()
    url = "https://localhost:%d" % port
    text = base_conf(env) + \
        service("public", port, servers=[("conf", conf_port)], hosts="localhost") + \
        service("conference", conf_port, app="conference", hosts="localhost")
    conf = env.write("gh.conf", text)
    state = env.path("gatehouse-state/conference")
    content = os.path.join(state, "content")
    rnd = random.Random(1234)
    acked = {}
    meeting = None
    trials = 50
    token = None
    for trial in range(trials):
        g = Gatehouse(env, conf)
        c = Conference.__new__(Conference)
        c.env, c.url, c.state, c.b, c.conf = env, url, state, Browser(env.ca), conf
        admin_via_socket(c, token)
        token = c.admin
        leftovers = [n for n in os.listdir(content) if len(n) != 32]
        check(not leftovers, "trial %d: temp files visible after restart: %r" % (trial, leftovers))
        if meeting is None:
            meeting = c.create(alias="durable")
        host, _ = c.token(meeting)
        stop = threading.Event()

        def uploader():
            while not stop.is_set():
                data = os.urandom(rnd.randint(1, 200) * 1024)
                try:
                    st, j = c.upload(host, "s.bin", data)
                except Exception:
                    return
                if st == 201:
                    acked[j["id"]] = hashlib.sha256(data).hexdigest()
        th = threading.Thread(target=uploader)
        th.start()
        # The kill lands at a random moment of the upload stream.
        stop.wait(rnd.uniform(0.02, 0.3))
        g.proc.kill()
        g.proc.wait()
        stop.set()
        th.join(timeout=30)
        check(not th.is_alive(), "uploader hung")
    g = Gatehouse(env, conf)
    c = Conference.__new__(Conference)
    c.env, c.url, c.state, c.b = env, url, state, Browser(env.ca)
    host, _ = c.token(meeting)
    st, man = c.manifest(host)
    present = {r["url"].rsplit("/", 1)[1]: r for r in man["resources"]}
    lost = [i for i in acked if i not in present]
    check(not lost, "%d acknowledged uploads lost of %d" % (len(lost), len(acked)))
    corrupt = 0
    for rid, sha in acked.items():
        st, h, stored = c.fetch(host, present[rid]["url"])
        if st != 200 or hashlib.sha256(decrypt(stored, present[rid]["key"])).hexdigest() != sha:
            corrupt += 1
    check(corrupt == 0, "%d corrupt files" % corrupt)
    files = set(os.listdir(content))
    check(files == set(present), "files without a row, or rows without a file: %r" %
          (files ^ set(present)))
    check(len(acked) >= trials, "too few uploads acknowledged to mean anything: %d" % len(acked))
    print("    %d kills, %d acknowledged uploads, 0 lost, 0 corrupt, %d unacknowledged kept" %
          (trials, len(acked), len(present) - len(acked)))


@test
def meetings_full_disk_is_a_clear_error(env):
    """The state folder on a 3 MiB tmpfs: an upload that does not fit gets
    507 with a message saying so, leaves nothing behind, and everything
    else keeps working."""
    state_root = env.path("small")
    os.makedirs(state_root)
    r = __import__("subprocess").run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs",
                                      state_root], capture_output=True)
    check(r.returncode == 0, "cannot mount a tmpfs for the test: %r" % r.stderr)
    try:
        c = Conference(env, extra="state-dir %s/state" % state_root,
                       state=os.path.join(state_root, "state/conference"))
        m = c.create(alias="full")
        host, _ = c.token(m)
        st, j = c.upload(host, "small.bin", os.urandom(100 * 1024))
        check(st == 201, "small upload: %d %r" % (st, j))
        st, j = c.upload(host, "big.bin", os.urandom(5 * 1024 * 1024))
        check(st == 507 and "full" in j["error"], "big upload: %d %r" % (st, j))
        content = os.path.join(c.state, "content")
        check(len(os.listdir(content)) == 1, "leftovers: %r" % os.listdir(content))
        st, man = c.manifest(host)
        check(st == 200 and [r["name"] for r in man["resources"]] == ["small.bin"], "%r" % man)
        st, h, stored = c.fetch(host, man["resources"][0]["url"])
        check(st == 200 and len(decrypt(stored, man["resources"][0]["key"])) == 100 * 1024,
              "the earlier upload was damaged")
        check("the content store is full" in c.gh.output(), "no clear error in the log")
    finally:
        env.close(keep=True)
        __import__("subprocess").run(["umount", state_root], capture_output=True)


def png_encode(rows):
    """An 8-bit RGB PNG of rows of (r, g, b)."""
    import struct

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    raw = b"".join(b"\0" + bytes(c for px in row for c in px) for row in rows)
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_decode(data):
    """Rows of (r, g, b[, a]) of a non-interlaced 8-bit RGB or RGBA PNG (what
    Chromium's screenshots are): the five row filters of the PNG spec."""
    import struct
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG")
    off, idat, w = 8, b"", 0
    while off < len(data):
        n, t = struct.unpack(">I4s", data[off:off + 8])
        d = data[off + 8:off + 8 + n]
        if t == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", d)
            check(depth == 8 and ctype in (2, 6) and interlace == 0, "PNG kind %r" % (d,))
            bpp = 3 if ctype == 2 else 4
        elif t == b"IDAT":
            idat += d
        off += 12 + n
    raw, rows, prev = zlib.decompress(idat), [], bytes(w * bpp)
    stride = w * bpp
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:(x + 1) * bpp]) for x in range(w)])
        prev = bytes(line)
    return rows


# One page, "Agenda" in Helvetica: the smallest PDF a viewer opens.
MINIMAL_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
               b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
               b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]/Contents 4 0 R"
               b"/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
               b"4 0 obj<</Length 38>>stream\nBT /F1 18 Tf 20 40 Td (Agenda) Tj ET\n"
               b"endstream endobj\n"
               b"5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
               b"trailer<</Root 1 0 R>>\n%%EOF\n")


def gh_join(env, c, m, *args, cwd=None):
    """gatehouse join with the invitation; (exit status, stdout and stderr)."""
    r = subprocess.run([GATEHOUSE, "join", m["uri"], "--key", m["conference_key"], "--server",
                        c.url, "--cacert", env.ca] + list(args),
                       capture_output=True, timeout=60, cwd=cwd)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def summary_digests(out):
    """{name: sha256} from gatehouse join's summary lines."""
    got = {}
    for line in out.splitlines():
        f = line.split("\t")
        if len(f) == 4 and f[3].startswith("sha256 "):
            got[f[0]] = f[3][7:]
    return got


def opened_for_writing(trace):
    """Paths strace saw opened for writing (successfully), mkdir'd or renamed."""
    import re
    hits = []
    for line in trace.splitlines():
        m = re.search(r'(?:openat|open|creat)\((?:AT_FDCWD, )?"([^"]*)", ([A-Z_|]+)[^=]*= (\d+)',
                      line)
        if m and re.search(r"O_WRONLY|O_RDWR|O_CREAT|O_TRUNC", m.group(2)):
            hits.append(m.group(1))
        m = re.search(r'(?:mkdir|mkdirat|rename|renameat2?|link|symlink)\(.*= 0$', line)
        if m:
            hits.append(line)
    return [h for h in hits if not h.startswith("/dev/")]


@test
def meetings_gatehouse_join_cli_decrypts_in_memory_and_refuses_tampering(env):
    """Seed 000: the content and the key stay in the process. By default the
    CLI writes nothing (strace sees no file opened for writing, its folder
    stays empty), yet every slide decrypted (the summary's SHA-256 is the
    upload's); --show pipes one to stdout; only --write-plaintext writes, and
    says so; a changed byte in the store is refused."""
    import hashlib
    c = Conference(env)
    m = c.create(alias="cli", host_pin="1234", guest_pin="5678")
    host, _ = c.token(m, pin="1234")
    slides = {"deck.pdf": b"%PDF-1.4\n" + os.urandom(300000),
              "agenda.txt": b"1. budget\n2. roadmap\n" * 500}
    for n, d in slides.items():
        c.upload(host, n, d)
    rc, out = gh_join(env, c, m)
    check(rc == 1 and "need-pin" in out, "no PIN: %d %s" % (rc, out))
    here = env.path("cwd")
    os.mkdir(here)
    trace = env.path("join.strace")
    # LeakSanitizer cannot run under ptrace; the other runs keep it.
    traced_env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run(["strace", "-f", "-qq", "-o", trace, "-e",
                        "trace=open,openat,creat,mkdir,mkdirat,rename,renameat,renameat2,link,"
                        "symlink", GATEHOUSE, "join", m["uri"], "--key", m["conference_key"],
                        "--server", c.url, "--cacert", env.ca, "--pin", "5678", "--name", "Bob"],
                       capture_output=True, timeout=60, cwd=here, env=traced_env)
    out = r.stdout.decode() + r.stderr.decode()
    check(r.returncode == 0 and "joined as guest (Bob)" in out, "join: %d %s" % (r.returncode, out))
    got = summary_digests(out)
    for n, d in slides.items():
        check(got.get(n) == hashlib.sha256(d).hexdigest(), "%s: summary %r" % (n, got))
    check("deck.pdf\tpdf\t" in out and "agenda.txt\ttext\t" in out, "types: %s" % out)
    check("nothing written to disk" in out, "no statement: %s" % out)
    with open(trace) as f:
        text = f.read()
    written = opened_for_writing(text)
    check(env.ca in text, "strace did not see the client open its CA file")
    check(written == [], "the default join wrote to disk: %r" % written)
    check(os.listdir(here) == [], "files left in the working folder: %r" % os.listdir(here))
    # --show: the one resource on stdout, byte for byte; messages on stderr.
    r = subprocess.run([GATEHOUSE, "join", m["uri"], "--key", m["conference_key"], "--server",
                        c.url, "--cacert", env.ca, "--pin", "5678", "--show", "deck.pdf"],
                       capture_output=True, timeout=60, cwd=here)
    check(r.returncode == 0 and r.stdout == slides["deck.pdf"],
          "--show: %d %d bytes %s" % (r.returncode, len(r.stdout), r.stderr[-300:]))
    rc, out = gh_join(env, c, m, "--pin", "5678", "--show", "nope.pdf")
    check(rc == 1 and "no resource named" in out, "--show unknown: %d %s" % (rc, out))
    # --out is refused with what replaced it, not silently ignored.
    rc, out = gh_join(env, c, m, "--pin", "5678", "--out", env.path("out"))
    check(rc == 2 and "--write-plaintext" in out and not os.path.exists(env.path("out")),
          "--out: %d %s" % (rc, out))
    # The PIN from a file (not in the process list).
    env.write("pin.txt", "5678\n")
    r = subprocess.run(["strace", "-f", "-qq", "-o", trace, "-e", "trace=open,openat,mkdir",
                        GATEHOUSE, "join", m["uri"], "--key", m["conference_key"], "--server",
                        c.url, "--cacert", env.ca, "--pin-file", env.path("pin.txt"),
                        "--write-plaintext", env.path("plain")],
                       capture_output=True, timeout=60, env=traced_env)
    out = r.stdout.decode() + r.stderr.decode()
    check(r.returncode == 0 and "written in plaintext to" in out,
          "--write-plaintext: %d %s" % (r.returncode, out))
    with open(trace) as f:
        written = opened_for_writing(f.read())
    check(env.path("plain/deck.pdf") in written and env.path("plain/agenda.txt") in written,
          "strace did not see the plaintext files written: %r" % written)
    for n, d in slides.items():
        with open(env.path("plain/" + n), "rb") as f:
            check(f.read() == d, "%s differs after --write-plaintext" % n)
        check(os.stat(env.path("plain/" + n)).st_mode & 0o077 == 0, "%s readable by others" % n)
    # A second run never replaces what is there.
    rc, out = gh_join(env, c, m, "--pin", "5678", "--write-plaintext", env.path("plain"))
    check(rc == 1 and "File exists" in out, "replaced a plaintext file: %d %s" % (rc, out))
    # A byte changed in the store: the client refuses it.
    content = os.path.join(c.state, "content")
    victim = os.path.join(content, sorted(os.listdir(content))[0])
    with open(victim, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0x80]))
    rc, out = gh_join(env, c, m, "--pin", "5678")
    check(rc == 1 and "does not decrypt" in out, "tampered: %d %s" % (rc, out))


@test
def meetings_gatehouse_join_waits_to_be_admitted(env):
    import subprocess
    from harness import GATEHOUSE
    c = Conference(env, extra=staff_group(env))
    m = c.create(alias="lobby", host_pin="1234", authentication="both", idp_group="staff",
                 other_participants="disallow-all")
    # The Host needs SSO here; a registered device vouched for by the admin
    # token (the call-control side) joins straight in with the Host PIN.
    st, h, body = c.admin_req("/api/v1/meetings/join",
                              data={"uri": m["uri"], "key": m["conference_key"], "client": "device",
                                    "registered": "1", "pin": "1234"})
    check(st == 202, "Disallow all puts even registered devices in the waiting room: %d" % st)
    m2 = c.create(alias="lobby2", host_pin="1234", authentication="both", idp_group="staff")
    st, h, body = c.admin_req("/api/v1/meetings/join",
                              data={"uri": m2["uri"], "key": m2["conference_key"],
                                    "client": "device", "registered": "1", "pin": "1234"})
    check(st == 200 and json.loads(body)["role"] == "host", "registered device: %d %r" % (st, body))
    host = json.loads(body)["token"]
    st, h, body = c.req("/api/v1/meetings/join",
                        data={"uri": m2["uri"], "key": m2["conference_key"], "client": "device",
                              "registered": "1", "pin": "1234"})
    check(st == 202, "a device claiming registration without the admin token: %d" % st)
    st, h, body = c.req("/api/v1/meetings/join", token=c.admin,
                        data={"uri": m2["uri"], "key": m2["conference_key"], "client": "device",
                              "registered": "1", "pin": "1234"})
    check(st == 202, "the admin token through the public service vouched for a device: %d" % st)
    c.upload(host, "welcome.txt", b"welcome")
    p = subprocess.Popen([GATEHOUSE, "join", m2["uri"], "--key", m2["conference_key"],
                          "--server", c.url, "--cacert", env.ca,
                          "--client", "web-legacy", "--name", "Visitor", "--pin", "1234"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # A web-legacy client cannot do SSO: refused with the seed's message.
    out = p.communicate(timeout=30)[0].decode()
    check(p.returncode == 1 and "does not support SSO" in out, "legacy: %s" % out)
    # gatehouse join as an (unregistered) device waits; a Host admits it
    # while the CLI polls, and the CLI then decrypts the slide onto stdout
    # (--show): stdout holds the slide alone, the waiting-room words go to
    # stderr.
    p = subprocess.Popen([GATEHOUSE, "join", m2["uri"], "--key", m2["conference_key"],
                          "--server", c.url, "--cacert", env.ca, "--show", "welcome.txt",
                          "--client", "device", "--name", "Phone", "--wait", "30"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def waiting():
        st, h, b = c.req("/api/v1/meetings/waiting", token=host)
        return [w for w in json.loads(b)["waiting"] if w["name"] == "Phone"]
    wait_until(lambda: waiting(), timeout=15, what="the device in the waiting room")
    wid = waiting()[0]["id"]
    st, h, body = c.req("/api/v1/meetings/waiting/%s/admit" % wid, data=b"", token=host)
    check(st == 200, "admit: %d" % st)
    so, se = p.communicate(timeout=30)
    check(p.returncode == 0 and "joined as guest (Phone)" in se.decode() and
          "in the waiting room" in se.decode(), "device via CLI: %r %r" % (so, se))
    check(so == b"welcome", "stdout is not the slide alone: %r" % so)


@test
def meetings_sso_room_through_the_real_idp(env):
    """A room requiring SSO for everyone, its group the SimpleSAMLphp IdP:
    gatehouse join is sent to sign in; after a browser-less sign-in the same
    CLI with the session joins as a Host under the IdP's display name, which
    a typed name cannot override."""
    from t_j_saml import Topology
    t = Topology(env, display="displayName")
    c = Conference.__new__(Conference)
    c.env, c.url, c.b = env, t.url, Browser(env.ca)
    c.state = env.path("gatehouse-state/conference")
    c.conf = t.gh.conf
    admin_via_socket(c)
    m = c.create(alias="sso-room", authentication="both", idp_group="staff")
    rc, out = gh_join(env, c, m)
    check(rc == 1 and "need-sso" in out and "/api/v1/samllogin/staff" in out, "no session: %s" % out)
    b, st, h, body = t.login()
    check(st == 303, "sign-in: %d" % st)
    sid = b.cookie("__Host-gh-sp").value
    rc, out = gh_join(env, c, m, "--session", sid, "--name", "Mallory")
    check(rc == 0 and "joined as host (Alice Liddell)" in out, "with session: %s" % out)
    # The same through the API with the browser's cookie: the name is fixed.
    st, hd, body = b.request(t.url + "/api/v1/meetings/join",
                             data={"uri": m["uri"], "key": m["conference_key"], "name": "Mallory"})
    j = json.loads(body)
    check(st == 200 and j["display_name"] == "Alice Liddell" and j["name_fixed"] is True,
          "API join: %d %r" % (st, j))
    # The Hosts' list names her as the IdP did, and says so.
    st, hd, body = b.request(t.url + "/api/v1/meetings/participants",
                             headers={"Authorization": "Bearer " + j["token"]})
    names = [(p["display_name"], p["name_from_idp"]) for p in json.loads(body)["participants"]]
    check(st == 200 and ("Alice Liddell", True) in names, "participants: %d %r" % (st, body))
    # The seeds' transfer rule with a session: from a room that asks nothing
    # into the SSO room as a Host, carried by the IdP session (no sign-in).
    lobby = c.create(alias="sso-lobby", host_pin="9999", guest_pin="8888")
    lhost, _ = c.token(lobby, pin="9999")
    st, hd, body = b.request(t.url + "/api/v1/meetings/join",
                             data={"uri": lobby["uri"], "key": lobby["conference_key"],
                                   "pin": "8888"})
    mine = json.loads(body)["token"]
    st, hd, body = c.req("/api/v1/meetings/participants", token=lhost)
    pid = [p["id"] for p in json.loads(body)["participants"] if p["role"] == "guest"][0]
    st, hd, body = c.req("/api/v1/meetings/transfer",
                         data={"participant": pid, "uri": m["uri"], "key": m["conference_key"],
                               "role": "host"}, token=lhost)
    check(st == 202, "offer: %d %r" % (st, body))
    st, hd, body = b.request(t.url + "/api/v1/meetings/transfer",
                             headers={"Authorization": "Bearer " + mine})
    j = json.loads(body)
    check(st == 200 and j["meeting"] == "sso-room" and j["role"] == "host",
          "transfer with the session: %d %r" % (st, j))


@test
def meetings_browser_joins_and_decrypts_with_webcrypto(env):
    """Debian's chromium, driven by playwright-core: the join page joins by
    PIN, downloads and decrypts every resource with WebCrypto in memory; the
    digests it shows equal the uploaded files; the slide image is drawn in
    the page (a screenshot of its element has the uploaded PNG's size and
    pixels), a PDF goes to the browser's viewer from a blob: URL, text is
    shown as text; a tampered resource is shown as not decryptable; no
    console error, no CSP violation, nothing in web storage, no download
    link. A PNG of the page lands in the test folder."""
    import hashlib
    import subprocess
    from harness import ROOT
    c = Conference(env)
    m = c.create(alias="web", host_pin="1234", guest_pin="5678")
    host, _ = c.token(m, pin="1234")
    w, h_ = 240, 160
    pixels = [[(x % 256, y % 256, (x * 3 + y * 5) % 256) for x in range(w)] for y in range(h_)]
    slides = {"deck.bin": os.urandom(400000), "notes.txt": b"WebCrypto decrypts this\n" * 300,
              "broken.bin": os.urandom(5000), "slide1.png": png_encode(pixels),
              "agenda.pdf": MINIMAL_PDF}
    ids = {}
    for n, d in slides.items():
        st, j = c.upload(host, n, d)
        ids[n] = j["id"]
    with open(os.path.join(c.state, "content", ids["broken.bin"]), "r+b") as f:
        f.seek(30)
        f.write(b"\x00\x00\x00\x00")
    shot = env.path("join-page.png")
    r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/join.mjs"), c.url, m["uri"],
                        m["conference_key"], "5678", "Carol", shot],
                       capture_output=True, timeout=90, cwd=os.path.join(ROOT, "tests/browser"))
    check(r.returncode == 0, "browser run failed: %s %s" % (r.stdout[-2000:], r.stderr[-2000:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    check(res["secure"] is True, "the page is not a secure context")
    check(res["done"] == "4/5", "decrypted: %r (%r)" % (res["done"], res))
    got = {d["name"]: d["sha256"] for d in res["digests"]}
    for n in ("deck.bin", "notes.txt", "slide1.png", "agenda.pdf"):
        check(got.get(n) == hashlib.sha256(slides[n]).hexdigest(), "%s digest differs" % n)
    shown = {s_["name"]: s_ for s_ in res["slides"]}
    check(shown["slide1.png"]["type"] == "image/png" and shown["slide1.png"]["natural"] == [w, h_]
          and shown["slide1.png"]["src"].startswith("blob:"), "the image: %r" % shown)
    check(shown["agenda.pdf"]["type"] == "application/pdf" and
          shown["agenda.pdf"]["src"].startswith("blob:"), "the PDF: %r" % shown["agenda.pdf"])
    check(shown["notes.txt"]["type"] == "text/plain" and
          shown["notes.txt"]["text"].startswith("WebCrypto decrypts this"), "text: %r" % shown)
    check(shown["deck.bin"]["type"] == "application/octet-stream" and shown["deck.bin"]["src"] is None,
          "random bytes: %r" % shown["deck.bin"])
    shot1 = [x["path"] for x in res["shots"] if x["name"] == "slide1.png"]
    check(len(shot1) == 1, "no screenshot of the image: %r" % res["shots"])
    got_px = png_decode(open(shot1[0], "rb").read())
    check(len(got_px) == h_ and len(got_px[0]) == w,
          "screenshot %dx%d, the file %dx%d" % (len(got_px[0]), len(got_px), w, h_))
    worst = max(abs(a - b) for y in range(h_) for x in range(w)
                for a, b in zip(got_px[y][x][:3], pixels[y][x]))
    check(worst <= 2, "the rendered slide differs from the file by up to %d per channel" % worst)
    check(len(res["failed"]) == 1 and "broken.bin" in res["failed"][0], "%r" % res["failed"])
    check("Joined as guest (Carol)" in res["status"], "status: %r" % res["status"])
    check(not res["errors"], "console errors: %r" % res["errors"])
    check(not res["csp"], "CSP violations: %r" % res["csp"])
    check("script-src 'self'" in res["csp_header"] and "unsafe" not in res["csp_header"],
          "CSP header: %r" % res["csp_header"])
    check(res["stored"] == 0, "the page wrote to web storage")
    check(res.get("downloads", 0) == 0, "the page offers downloads")
    check(os.path.getsize(shot) > 1000, "no screenshot")
    out = os.path.join(ROOT, "build", "test-screens")
    os.makedirs(out, exist_ok=True)
    import shutil
    shutil.copy(shot, os.path.join(out, "join-page.png"))
    # A refusal says why, in words.
    for key, pin, done, words in ((m["conference_key"], "0000", "refused:bad-pin",
                                   "That PIN is not right."),
                                  ("0" * 32, "5678", "refused:404",
                                   "No meeting has that invitation: check the URI and the key.")):
        r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/join.mjs"), c.url, m["uri"],
                            key, pin, "Carol", env.path("refused.png")], capture_output=True,
                           timeout=90, cwd=os.path.join(ROOT, "tests/browser"))
        res = json.loads(r.stdout.decode().strip().splitlines()[-1])
        # Chromium logs every non-2xx fetch; anything else is a fault of the page.
        errors = [e for e in res["errors"] if not e.startswith(
            "Failed to load resource: the server responded with a status of")]
        check(res["done"] == done and res["status"] == words and not errors,
              "refusal %s: %r" % (done, res))


@test
def meetings_cli_set_changes_the_rules_of_a_live_room(env):
    """gatehouse meeting set next to the running appliance: only what is
    given changes (here the Host PIN), joins follow at once; with
    --revoke-tokens everyone must join again; a bad rule is refused."""
    c = Conference(env, extra=staff_group(env))
    m = c.create(alias="cli-room", host_pin="1234", guest_pin="5678")
    host, _ = c.token(m, pin="1234")

    def cli(*args):
        return subprocess.run([GATEHOUSE, "meeting", "set", "cli-room", "-c", c.gh.conf] +
                              list(args), capture_output=True, text=True, cwd=env.dir)
    r = cli("--host-pin", "4321")
    check(r.returncode == 0 and "host-pin=set" in r.stdout and "guest-pin=set" in r.stdout and
          "4321" not in r.stdout and "5678" not in r.stdout, "set: %r %r" % (r.stdout, r.stderr))
    check(c.join(m, pin="1234")[1].get("role") != "host", "the old Host PIN still works")
    check(c.join(m, pin="4321")[1].get("role") == "host", "the new Host PIN does not")
    check(c.manifest(host)[0] == 200, "a token died without --revoke-tokens")
    r = cli("--guest-pin", "4321")
    check(r.returncode == 1 and "differ" in r.stderr, "same PINs: %r" % r.stderr)
    r = cli("--auth", "both", "--idp-group", "staff", "--revoke-tokens")
    check(r.returncode == 0 and "auth=both" in r.stdout, "auth: %r" % r.stderr)
    check(c.manifest(host)[0] == 404, "a token survived --revoke-tokens")
    r = subprocess.run([GATEHOUSE, "meeting", "set", "no-room", "--host-pin", "1", "-c",
                        c.gh.conf], capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 1 and "no meeting" in r.stderr, "unknown room: %r" % r.stderr)


def folder_holds(folder, needles):
    """Which of needles (bytes) occur in any file under folder: what a copy
    of the state folder gives away."""
    found = set()
    for root, _, names in os.walk(folder):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                data = f.read()
            found |= {k for k, v in needles.items() if v in data}
    return found


def secrets_of(m, pins, man):
    """The clear forms a stolen folder must not show: PINs, the conference
    key, and each slide key raw, in hex and in base64."""
    import base64
    s = {"pin " + p: p.encode() for p in pins}
    s["conference key"] = m["conference_key"].encode()
    for r in man["resources"]:
        raw = base64.b64decode(r["key"])
        s.update({"key of %s" % r["name"]: raw, "key of %s (hex)" % r["name"]: raw.hex().encode(),
                  "key of %s (base64)" % r["name"]: r["key"].encode()})
    return s


@test
def meetings_state_folder_holds_no_pin_and_no_key(env):
    """A copy of the conference state folder (database, WAL, content, key
    file aside) holds no PIN, no conference key and no slide key: the rooms
    keep verifiers, the resources keys wrapped under slides.kek (0600).
    Joins, a PIN change by the CLI and decryption still work from them, and
    neither admin listing shows a PIN or the key."""
    c = Conference(env)
    pins = ["73910584622", "84620193755", "51302468971"]
    m = c.create(alias="vault", host_pin=pins[0], guest_pin=pins[1])
    host, _ = c.token(m, pin=pins[0])
    files = {"a.png": os.urandom(5000), "b.txt": b"minutes " * 3000}
    for name, data in files.items():
        check(c.upload(host, name, data)[0] == 201, "upload %s" % name)
    r = subprocess.run([GATEHOUSE, "meeting", "set", "vault", "--host-pin", pins[2], "-c",
                        c.gh.conf], capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 0 and "host-pin=set" in r.stdout and pins[2] not in r.stdout,
          "set: %r %r" % (r.stdout, r.stderr))
    check(c.join(m, pin=pins[0])[0] == 403, "the old Host PIN still joins")
    guest, j = c.token(m, pin=pins[1])
    st, man = c.manifest(guest)
    check(st == 200 and len(man["resources"]) == 2, "manifest: %d %r" % (st, man))
    for res in man["resources"]:
        check(decrypt(c.fetch(guest, res["url"])[2], res["key"]) == files[res["name"]],
              "%s does not decrypt" % res["name"])
    kek = os.path.join(c.state, "slides.kek")
    check(os.stat(kek).st_mode & 0o777 == 0o600, "slides.kek mode %o" % os.stat(kek).st_mode)
    st, h, body = c.admin_req("/api/v1/admin/meetings")
    listing = json.loads(body)["meetings"][0]
    check(st == 200 and "conference_key" not in listing and listing["host_pin_set"] is True and
          all(p.encode() not in body for p in pins), "admin listing: %r" % body)
    r = subprocess.run([GATEHOUSE, "meeting", "list", "-c", c.gh.conf], capture_output=True,
                       text=True, cwd=env.dir)
    check(r.returncode == 0 and m["conference_key"] not in r.stdout and
          all(p not in r.stdout for p in pins), "meeting list: %r" % r.stdout)
    secrets = secrets_of(m, pins, man)
    with open(kek, "rb") as f:
        secrets["the key-encryption key"] = f.read().strip()
    secrets["the admin API token"] = c.admin.encode()
    check(len(secrets) == 1 + 3 + 6 + 1 + 1, "%r" % list(secrets))
    # What reached the disk: the folder, except the key-encryption key's file
    # (api-tokens holds digests only).
    copy = env.path("stolen")
    subprocess.run(["cp", "-a", c.state, copy], check=True)
    os.unlink(os.path.join(copy, "slides.kek"))
    leaked = folder_holds(copy, secrets)
    check(not leaked, "the state folder holds: %s" % sorted(leaked))
    check(folder_holds(copy, {"alias": b"vault"}) == {"alias"}, "the search finds nothing at all")


OLD_SCHEMA = """
CREATE TABLE meetings(id INTEGER PRIMARY KEY, alias TEXT NOT NULL UNIQUE, uri TEXT NOT NULL UNIQUE,
 conference_key TEXT NOT NULL, host_pin TEXT NOT NULL, guest_pin TEXT NOT NULL,
 auth INTEGER NOT NULL, other INTEGER NOT NULL, idp_group TEXT NOT NULL,
 epoch INTEGER NOT NULL DEFAULT 1, created INTEGER NOT NULL);
CREATE TABLE resources(id TEXT PRIMARY KEY, meeting INTEGER NOT NULL REFERENCES meetings(id)
 ON DELETE CASCADE, name TEXT NOT NULL, size INTEGER NOT NULL, stored INTEGER NOT NULL,
 key BLOB NOT NULL, created INTEGER NOT NULL);
CREATE TABLE waiting(id TEXT PRIMARY KEY, meeting INTEGER NOT NULL REFERENCES meetings(id)
 ON DELETE CASCADE, epoch INTEGER NOT NULL, name TEXT NOT NULL, state INTEGER NOT NULL,
 created INTEGER NOT NULL);
"""


@test
def meetings_database_from_before_is_migrated_on_start(env):
    """A state folder written the way gatehouse stored meetings before (PINs,
    conference key and slide key in clear; made here with sqlite3 and the
    content encrypted here with Python's AES-GCM): at start the secrets
    become verifiers and wrapped keys; the room, its PINs and its slide keep
    working; the clear values are gone from every file."""
    import base64
    state = env.path("gatehouse-state/conference")
    os.makedirs(os.path.join(state, "content"), mode=0o700)
    conf_key, pins = os.urandom(16).hex(), ["90817263545", "46372819056"]
    slide_key, rid, plain = os.urandom(16), os.urandom(16).hex(), b"old slide " * 500
    iv = os.urandom(12)
    stored = b"GHS1" + iv + AESGCM(slide_key).encrypt(iv, zlib.compress(plain), None)
    with open(os.path.join(state, "content", rid), "wb") as f:
        f.write(stored)
    db = sqlite3.connect(os.path.join(state, "meetings.db"))
    db.executescript(OLD_SCHEMA)
    uri = "gh-meet:legacy.0123456789abcdef"
    db.execute("INSERT INTO meetings VALUES(1, 'legacy', ?, ?, ?, ?, 0, 0, '', 1, 0)",
               (uri, conf_key, pins[0], pins[1]))
    db.execute("INSERT INTO resources VALUES(?, 1, 'old.txt', ?, ?, ?, 0)",
               (rid, len(plain), len(stored), slide_key))
    db.commit()
    db.close()
    old = {"pin " + p: p.encode() for p in pins}
    old.update({"conference key": conf_key.encode(), "slide key": slide_key})
    check(folder_holds(state, old) == set(old), "the old folder is not in clear")
    c = Conference(env)
    # The migration runs before the appliance says it is ready.
    check("migrated 1 meeting(s) to PIN and key verifiers and wrapped 1 slide key(s)" in
          c.gh.output(), "no migration logged: %r" % c.gh.output()[-600:])
    m = {"uri": uri, "conference_key": conf_key}
    check(c.join(m, pin="0000")[0] == 403, "a wrong PIN joins after migration")
    guest, j = c.token(m, pin=pins[1])
    check(j["role"] == "guest", "guest PIN: %r" % j)
    st, man = c.manifest(guest)
    check(st == 200 and [r["name"] for r in man["resources"]] == ["old.txt"], "%r" % man)
    res = man["resources"][0]
    check(base64.b64decode(res["key"]) == slide_key, "the slide key changed")
    check(decrypt(c.fetch(guest, res["url"])[2], res["key"]) == plain, "old slide unreadable")
    left = folder_holds(state, old)
    check(not left, "still in clear after migration: %s" % sorted(left))
    db = sqlite3.connect(os.path.join(state, "meetings.db"))
    check(db.execute("PRAGMA user_version").fetchone()[0] == 2, "user_version not raised")
    db.close()


@test
def meetings_operator_kek_file_is_checked_and_used(env):
    """slides-kek-file: a key file that group or others may read, or that is
    not 64 hex digits, fails gatehouse -t and the start with the file's
    name; a good one is used as it is (no slides.kek made in the state
    folder) and a slide uploaded under it decrypts."""
    kek = env.path("operator.kek")
    with open(kek, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    os.chmod(kek, 0o644)
    conf = env.write("t.conf", base_conf(env, extra="slides-kek-file %s" % kek))
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 1 and "operator.kek" in r.stderr and "chmod 600" in r.stderr,
          "-t with a readable key file: %r" % r.stderr)
    try:
        r = subprocess.run([GATEHOUSE, "-c", conf], capture_output=True, text=True, cwd=env.dir,
                           timeout=20)
    except subprocess.TimeoutExpired:
        check(False, "gatehouse started with a key file others may read")
    check(r.returncode != 0 and "chmod 600" in r.stderr, "start: %r" % r.stderr[-400:])
    os.chmod(kek, 0o600)
    with open(kek, "w") as f:
        f.write("00" * 31 + "\n")
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 1 and "64 lower-case hex" in r.stderr, "-t short key: %r" % r.stderr)
    with open(kek, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 0, "-t with a good key file: %r" % r.stderr)
    c = Conference(env, extra="slides-kek-file %s" % kek)
    check(not os.path.exists(os.path.join(c.state, "slides.kek")), "slides.kek made anyway")
    m = c.create(alias="op")
    host, _ = c.token(m)
    check(c.upload(host, "x.bin", b"payload " * 100)[0] == 201, "upload")
    st, man = c.manifest(host)
    res = man["resources"][0]
    check(decrypt(c.fetch(host, res["url"])[2], res["key"]) == b"payload " * 100, "decrypt")


def security_reasons_prefix(env, prefix):
    try:
        with open(env.path("security.log")) as f:
            return [r for r in (json.loads(l) for l in f if l.strip())
                    if r["reason"].startswith(prefix)]
    except FileNotFoundError:
        return []


def security_reasons(env, reason):
    try:
        with open(env.path("security.log")) as f:
            return [r for r in (json.loads(l) for l in f if l.strip()) if r["reason"] == reason]
    except FileNotFoundError:
        return []


@test
def meetings_ended_meeting_answers_410_until_reopened(env):
    """After a Host ends a meeting, its invitation, its tokens (manifest,
    content, upload, leave) and its waiting room answer 410 meeting-ended
    with a message, each logged with that reason; the end says what it
    shredded and told. gatehouse meeting list shows state=ended; reopen
    takes joins again while old tokens and waiters stay dead (404);
    gatehouse meeting end reports what it did."""
    c = Conference(env, extra=staff_group(env))
    m = c.create(alias="done", host_pin="1234", guest_pin="5678", authentication="guests",
                 idp_group="staff", other_participants="disallow-all")
    host, _ = c.token(m, pin="1234")
    for name in ("a.bin", "b.bin"):
        check(c.upload(host, name, os.urandom(300))[0] == 201, "upload %s" % name)
    st, man = c.manifest(host)
    url = man["resources"][0]["url"]
    st, j = c.join(m, client="device", name="Room 1")
    check(st == 202, "waiting: %d %r" % (st, j))
    wid = j["waiting"]
    st, h, body = c.req("/api/v1/meetings/end", data=b"", token=host)
    j = json.loads(body)
    check(st == 200 and j["resources_shredded"] == 2 and j["waiting_told"] == 1,
          "end: %d %r" % (st, j))
    answers = {
        "join": c.req("/api/v1/meetings/join", data={"uri": m["uri"], "key": m["conference_key"],
                                                     "pin": "1234"}),
        "manifest": c.req("/api/v1/meetings/manifest", token=host),
        "content": c.req(url, token=host),
        "upload": c.req("/api/v1/meetings/content?name=c.bin", data=b"late", token=host),
        "waiting room": c.req("/api/v1/meetings/waiting/" + wid),
        "leave": c.req("/api/v1/meetings/leave", data=b"", token=host),
    }
    for what, (st, h, body) in answers.items():
        check(st == 410 and json.loads(body) == {"outcome": "meeting-ended",
                                                 "message": "This meeting has ended."},
              "%s after the end: %d %r" % (what, st, body))
    wait_until(lambda: len(security_reasons(env, "meeting-ended:done")) >= len(answers), timeout=5,
               what="a security line per 410")
    # A wrong key still gets the 404 of anything unknown, not the 410.
    st, j = c.join({"uri": m["uri"], "conference_key": "0" * 32})
    check(st == 404, "a wrong key learnt that the meeting ended: %d" % st)

    def cli(*args):
        return subprocess.run([GATEHOUSE, "meeting"] + list(args) + ["-c", c.gh.conf],
                              capture_output=True, text=True, cwd=env.dir)
    r = cli("list")
    check(r.returncode == 0 and "state=ended" in r.stdout, "list: %r" % r.stdout)
    r = cli("reopen", "done")
    check(r.returncode == 0 and "reopened done" in r.stdout, "reopen: %r %r" % (r.stdout, r.stderr))
    r = cli("reopen", "done")
    check(r.returncode == 1 and "has not ended" in r.stderr, "second reopen: %r" % r.stderr)
    check(c.manifest(host)[0] == 404, "an old token came back with the reopen")
    check(c.req("/api/v1/meetings/waiting/" + wid)[0] == 404, "an old waiter came back")
    host2, _ = c.token(m, pin="1234")
    check(c.upload(host2, "c.bin", b"new meeting")[0] == 201, "upload after the reopen")
    r = cli("end", "done")
    check(r.returncode == 0 and "ended done: 1 resource(s) shredded (keys and files), "
          "0 waiting participant(s) told it ended" in r.stdout, "cli end: %r" % r.stdout)
    st, h, body = c.req("/api/v1/meetings/manifest", token=host2)
    check(st == 410, "a token of the meeting the CLI ended: %d" % st)


@test
def meetings_rooms_name_only_defined_groups(env):
    """A room may name only an identity-provider group of the configuration:
    the conference admin API (422) and gatehouse meeting create/set refuse
    another; a configuration that drops a group a room still names fails
    gatehouse -t with the room and the group, and a reload to it warns."""
    c = Conference(env, extra=staff_group(env))
    st, h, body = c.admin_req("/api/v1/admin/meetings",
                              data={"alias": "p", "authentication": "both",
                                    "idp_group": "partners"})
    check(st == 422 and b"identity-provider-group 'partners'" in body, "API: %d %r" % (st, body))
    c.create(alias="s", authentication="both", idp_group="staff")
    r = subprocess.run([GATEHOUSE, "meeting", "create", "q", "--auth", "both", "--idp-group",
                        "partners", "-c", c.gh.conf], capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 1 and "'partners' is not defined" in r.stderr, "cli: %r" % r.stderr)
    r = subprocess.run([GATEHOUSE, "meeting", "set", "s", "--idp-group", "partners", "-c",
                        c.gh.conf], capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 1 and "'partners' is not defined" in r.stderr, "cli set: %r" % r.stderr)
    r = subprocess.run([GATEHOUSE, "-t", "-c", c.gh.conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 0, "-t with the group: %r" % r.stderr)
    without = env.write("nogroup.conf", open(c.gh.conf).read().replace(
        'identity-provider-group staff { identity-providers "Staff IdP" }\n', ""))
    r = subprocess.run([GATEHOUSE, "-t", "-c", without], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 1 and "room 's' names identity-provider-group 'staff'" in r.stderr,
          "-t without the group: %r" % r.stderr)
    # The running appliance told about the same at a reload.
    import signal
    with open(c.gh.conf, "w") as f:
        f.write(open(without).read())
    c.gh.signal(signal.SIGHUP)
    wait_until(lambda: "room s names identity-provider-group 'staff', which the configuration "
               "does not define" in c.gh.output(), timeout=10, what="the reload's warning")


@test
def meetings_admin_api_only_on_its_socket_with_scoped_audited_tokens(env):
    """The conference admin API is not served through any listener: with a
    valid all-scope token, /api/v1/admin/* through the public service and
    through the conference service directly is the 404 of anything unknown
    (and no service can name the conference-admin application). On
    conference-admin.sock each call needs a token with its scope (401
    without, 403 with another scope), and every call is audited with the
    token's name. A token is shown once and kept as a digest; removing it
    takes effect at once; an admin.token of earlier versions becomes the
    token admin-token."""
    c = Conference(env)
    reader = api_token(env, c.conf, scope="meetings-read", name="reader")
    for url in (c.url, "https://localhost:%d" % c.conf_port):
        st, h, body = c.b.request(url + "/api/v1/admin/meetings",
                                  headers={"Authorization": "Bearer " + c.admin})
        check(st == 404 and json.loads(body) == {"error": "not found"},
              "%s: %d %r" % (url, st, body))
        st, h, body = c.b.request(url + "/api/v1/admin/meetings", data={"alias": "x"},
                                  headers={"Authorization": "Bearer " + c.admin})
        check(st == 404, "create through %s: %d" % (url, st))
    st, h, body = c.admin_req("/api/v1/admin/meetings", token="0" * 64)
    check(st == 401, "unknown token: %d %r" % (st, body))
    st, h, body = c.admin_req("/api/v1/admin/meetings", data={"alias": "r"}, token=reader)
    check(st == 403 and b"scope" in body, "create with a read token: %d %r" % (st, body))
    st, h, body = c.admin_req("/api/v1/admin/meetings", token=reader)
    check(st == 200 and json.loads(body) == {"meetings": []}, "list: %d %r" % (st, body))
    m = c.create(alias="scoped")
    st, h, body = c.admin_req("/api/v1/admin/meetings/scoped/pin-reset", data=b"", token=reader)
    check(st == 403, "pin-reset with a read token: %d" % st)
    with open(os.path.join(c.state, "audit.log")) as f:
        audit = [json.loads(l) for l in f]
    seen = [(a["token"], a["method"], a["status"]) for a in audit]
    check(seen == [("-", "GET", 401), ("reader", "POST", 403), ("reader", "GET", 200),
                   ("test", "POST", 201), ("reader", "POST", 403)], "audit: %r" % seen)
    check(audit[3]["detail"] == "scoped" and audit[3]["path"] == "/api/v1/admin/meetings",
          "audit line: %r" % audit[3])
    with open(os.path.join(c.state, "api-tokens")) as f:
        kept = f.read()
    check(reader not in kept and c.admin not in kept and "reader meetings-read " in kept,
          "api-tokens: %r" % kept)
    check(os.stat(os.path.join(c.state, "api-tokens")).st_mode & 0o777 == 0o600, "mode")
    r = subprocess.run([GATEHOUSE, "meeting", "token", "remove", "reader", "-c", c.conf],
                       capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 0, "remove: %r" % r.stderr)
    check(c.admin_req("/api/v1/admin/meetings", token=reader)[0] == 401, "a removed token works")
    r = subprocess.run([GATEHOUSE, "meeting", "token", "list", "-c", c.conf], capture_output=True,
                       text=True, cwd=env.dir)
    check(r.stdout == "test\tmeetings-read,meetings-write,pin-reset,devices\n", "list: %r" %
          r.stdout)
    # A damaged tokens file fails closed: no token works until it is fixed.
    tokens = os.path.join(c.state, "api-tokens")
    good = open(tokens).read()
    with open(tokens, "a") as f:
        f.write("half a line\n")
    check(c.admin_req("/api/v1/admin/meetings")[0] == 401, "a token worked with a broken file")
    with open(tokens, "w") as f:
        f.write(good)
    check(c.admin_req("/api/v1/admin/meetings")[0] == 200, "the fixed file is not read")
    # A service naming the admin application is refused by the configuration.
    bad = env.write("bad.conf", base_conf(env) + service("x", free_port(), app="conference-admin",
                                                         hosts="localhost"))
    r = subprocess.run([GATEHOUSE, "-t", "-c", bad], capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 1 and "app" in r.stderr, "-t with app conference-admin: %r" % r.stderr)
    # The single token of earlier versions, at the next start.
    c.gh.stop()
    old = os.urandom(32).hex()
    with open(os.path.join(c.state, "admin.token"), "w") as f:
        f.write(old + "\n")
    g = env.gatehouse(open(c.conf).read())
    check("became the token admin-token" in g.output(), "no word of the migration")
    check(not os.path.exists(os.path.join(c.state, "admin.token")), "admin.token stays")
    st, h, body = c.admin_req("/api/v1/admin/meetings", token=old)
    check(st == 200 and b'"scoped"' in body, "the old token on the socket: %d %r" % (st, body))


def get_from(c, source, path):
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=c.env.ca)
    conn = http.client.HTTPSConnection("localhost", c.port, source_address=(source, 0),
                                       context=ctx, timeout=30)
    conn.request("GET", path)
    r = conn.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    conn.close()
    return out


@test
def saml_sign_in_paths_are_rate_limited_per_source(env):
    """saml-rate-per-source 6 (a burst of 5): a sixth sign-in start at once
    from one address is 429 with Retry-After and a saml-rate-limited line
    naming the address, while another address still starts; assertion posts
    have their own bucket; /metrics counts the refusals by reason."""
    mgmt = free_port()
    c = Conference(env, extra=staff_group(env) + "saml-rate-per-source 6\n" +
                   service("mgmt", mgmt, app="management", hosts="localhost"),
                   conf_extra="    trusted-proxies 127.0.0.1/32")
    a, b = "127.0.0.2", "127.0.0.3"
    for i in range(5):
        st, h, body = get_from(c, a, "/api/v1/samllogin/staff")
        check(st == 302, "start %d: %d %r" % (i, st, body[:100]))
    st, h, body = get_from(c, a, "/api/v1/samllogin/staff")
    check(st == 429 and int(h.get("Retry-After", "0")) >= 1, "the sixth: %d %r" % (st, h))
    check(get_from(c, b, "/api/v1/samllogin/staff")[0] == 302, "another source was limited")
    line = security_reasons_prefix(env, "saml-rate-limited")
    check(line and "login start from 127.0.0.2" in line[-1]["reason"], "security: %r" % line)
    st, h, body = c.b.request("https://localhost:%d/metrics" % mgmt)
    check(st == 200 and b'gatehouse_app_refusals_total{app="conference",'
          b'reason="saml-rate-limited"} 1' in body, "metrics: %r" % body[-600:])
    # The consumer's bucket is its own: posts from a still count from five.
    for i in range(5):
        st, h, body = c.b.request(c.url + "/api/v1/samlconsumer/0f5e2a36-6c1e-4d0b-9c41-"
                                  "5b7a2f0e9d11", data={"SAMLResponse": "x"})
        check(st == 403, "post %d: %d" % (i, st))
    st, h, body = c.b.request(c.url + "/api/v1/samlconsumer/0f5e2a36-6c1e-4d0b-9c41-5b7a2f0e9d11",
                              data={"SAMLResponse": "x"})
    check(st == 429, "the sixth post: %d" % st)


@test
def meetings_conference_behind_an_untrusted_front_is_warned_about(env):
    """A conference service that is a real server of another service but
    trusts no proxy sees every client as the front's address, and its
    per-source limits would throttle everyone together: gatehouse -t and
    the start say so; with trusted-proxies nothing is said."""
    c = Conference(env)
    warn = "service 'conference' is a real server of service 'public' but has no trusted-proxies"
    check(warn in c.gh.output(), "no warning at start: %r" % c.gh.output()[-800:])
    r = subprocess.run([GATEHOUSE, "-t", "-c", c.conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 0 and warn in r.stderr, "-t: %r" % r.stderr)
    c.gh.stop()
    trusted = Conference(env, conf_extra="    trusted-proxies 127.0.0.1/32")
    check(warn not in trusted.gh.output(), "warned with trusted-proxies")


@test
def meetings_guest_escalates_to_host_with_the_host_pin(env):
    """The seeds: a Guest can later become a Host without authentication,
    here by entering the Host PIN, even in a room where Hosts must sign in
    by SSO. A wrong PIN is 403 and counts toward the PIN back-off; a Host,
    a room without PINs and a spent Guest token cannot escalate."""
    c = Conference(env, extra=staff_group(env))
    m = c.create(alias="esc", host_pin="1357", guest_pin="2468", authentication="hosts",
                 idp_group="staff")
    st, j = c.join(m, pin="1357")
    check(st == 401 and j["outcome"] == "need-sso", "a Host still needs SSO: %d %r" % (st, j))
    guest, j = c.token(m, pin="2468", name="Gail")
    check(j["role"] == "guest", "%r" % j)
    st, h, body = c.req("/api/v1/meetings/escalate", data={"pin": "0000"}, token=guest)
    check(st == 403 and json.loads(body)["outcome"] == "bad-pin", "wrong PIN: %d %r" % (st, body))
    st, h, body = c.req("/api/v1/meetings/escalate", data={"pin": "1357"}, token=guest)
    j = json.loads(body)
    check(st == 200 and j["role"] == "host" and j["display_name"] == "Gail",
          "escalation: %d %r" % (st, body))
    host = j["token"]
    check(c.manifest(guest)[0] == 404, "the Guest token survived the escalation")
    check(c.upload(host, "h.txt", b"now a host")[0] == 201, "the new Host cannot upload")
    st, h, body = c.req("/api/v1/meetings/escalate", data={"pin": "1357"}, token=host)
    check(st == 404, "a Host escalated: %d" % st)
    st, h, body = c.req("/api/v1/meetings/escalate", data={"pin": "1357"}, token=guest)
    check(st == 404, "a spent Guest token escalated: %d" % st)
    # Three wrong tries from this source (the "0000" above is one: right
    # PINs since took back only their own attempts), then the back-off
    # answers before the PIN is checked.
    g2, _ = c.token(m, pin="2468")
    codes = [c.req("/api/v1/meetings/escalate", data={"pin": "9%03d" % i}, token=g2)[0]
             for i in range(2)]
    st, h, body = c.req("/api/v1/meetings/escalate", data={"pin": "1357"}, token=g2)
    check(codes == [403, 403] and st == 429, "back-off on escalation: %r %d" % (codes, st))


@test
def meetings_hosts_see_who_is_in(env):
    """GET /api/v1/meetings/participants (Hosts only): everyone holding a
    token of the meeting, with role and display name, in join order; a
    leave takes them off at once, an escalation shows the new role, a
    Host makes a Guest a Host by its id, a Guest cannot list or promote,
    and the list holds no token."""
    c = Conference(env)
    m = c.create(alias="people", host_pin="1111", guest_pin="2222")
    host, _ = c.token(m, pin="1111", name="Hana")
    guest, _ = c.token(m, pin="2222", name="Gus <b>")
    other, _ = c.token(m, pin="2222", name="Olga")

    def people():
        st, h, body = c.req("/api/v1/meetings/participants", token=host)
        check(st == 200, "list: %d %r" % (st, body))
        check(all(t.encode() not in body for t in (host, guest, other)), "a token in the list")
        return [(p["role"], p["display_name"], p["name_from_idp"])
                for p in json.loads(body)["participants"]]
    check(people() == [("host", "Hana", False), ("guest", "Gus <b>", False),
                       ("guest", "Olga", False)], "%r" % people())
    check(c.req("/api/v1/meetings/participants", token=guest)[0] == 404, "a Guest listed")
    check(c.req("/api/v1/meetings/leave", data=b"", token=other)[0] == 200, "leave")
    st, h, body = c.req("/api/v1/meetings/escalate", data={"pin": "1111"}, token=guest)
    check(st == 200, "escalate: %d" % st)
    check(people() == [("host", "Hana", False), ("host", "Gus <b>", False)], "%r" % people())
    # A Host makes a Guest a Host (the seeds: no authentication needed): the
    # same token now does what a Host's does.
    g2, _ = c.token(m, pin="2222", name="Gina")
    st, h, body = c.req("/api/v1/meetings/participants", token=host)
    gid = [p["id"] for p in json.loads(body)["participants"] if p["display_name"] == "Gina"][0]
    check(c.upload(g2, "x.txt", b"x")[0] == 404, "a Guest uploaded")
    st, h, body = c.req("/api/v1/meetings/participants/%s/host" % gid, data=b"", token=g2)
    check(st == 404, "a Guest promoted: %d" % st)
    st, h, body = c.req("/api/v1/meetings/participants/%s/host" % gid, data=b"", token=host)
    check(st == 200, "promote: %d %r" % (st, body))
    check(c.upload(g2, "x.txt", b"x")[0] == 201, "the promoted Guest cannot upload")
    check(("host", "Gina", False) in people(), "%r" % people())
    st, h, body = c.req("/api/v1/meetings/participants/%s/host" % gid, data=b"", token=host)
    check(st == 404, "promoted twice: %d" % st)
    check(c.req("/api/v1/meetings/end", data=b"", token=host)[0] == 200, "end")
    check(c.req("/api/v1/meetings/participants", token=host)[0] == 410, "listed after the end")


@test
def meetings_virtual_reception_joins_by_room_name(env):
    """The Virtual Reception: POST /api/v1/meetings/reception with the
    room's alias (no URI, no key) joins rooms open to it, through the PIN
    (and its back-off) as ever; a room not open to it, an unknown alias and
    an ended room answer like the invitation path (404, 404, 410). A room
    may open to it only with a Host PIN or authentication of Hosts. The
    /reception page joins and decrypts in chromium."""
    c = Conference(env, extra=staff_group(env))
    st, h, body = c.admin_req("/api/v1/admin/meetings", data={"alias": "lobby",
                                                              "reception": "on"})
    check(st == 422 and b"Virtual Reception needs" in body, "open room: %d %r" % (st, body))
    # Without a Host PIN everyone is a Host: Guests signing in is not enough.
    st, h, body = c.admin_req("/api/v1/admin/meetings",
                              data={"alias": "lobby", "reception": "on", "authentication": "guests",
                                    "idp_group": "staff"})
    check(st == 422 and b"Virtual Reception needs" in body, "guests-only SSO: %d %r" % (st, body))
    m = c.create(alias="front-desk", host_pin="4321", guest_pin="8765", reception="on")
    closed = c.create(alias="back-office", host_pin="1111")
    check(m["reception"] is True and closed["reception"] is False, "%r %r" % (m, closed))

    def rec(alias, pin):
        st, h, body = c.req("/api/v1/meetings/reception", data={"alias": alias, "pin": pin,
                                                                "name": "Rita"})
        return st, json.loads(body)
    st, j = rec("front-desk", "8765")
    check(st == 200 and j["role"] == "guest" and j["meeting"] == "front-desk", "%d %r" % (st, j))
    guest = j["token"]
    check(c.upload(c.token(m, pin="4321")[0], "r.txt", b"reception slide")[0] == 201, "upload")
    check(c.manifest(guest)[0] == 200, "the reception's token")
    check(rec("front-desk", "0000")[0] == 403, "wrong PIN")
    check(rec("back-office", "1111")[0] == 404, "a room not open to the reception")
    check(rec("nowhere", "1111")[0] == 404, "an unknown alias")
    from harness import ROOT
    page = env.path("reception.png")
    r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/join.mjs"), c.url, "-", "-",
                        "4321", "Rita", page, "front-desk"], capture_output=True, timeout=90,
                       cwd=os.path.join(ROOT, "tests/browser"))
    check(r.returncode == 0, "browser: %s %s" % (r.stdout[-1500:], r.stderr[-1500:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    check(res["done"] == "1/1" and "Joined as host (Rita)" in res["status"], "page: %r" % res)
    r = subprocess.run([GATEHOUSE, "meeting", "end", "front-desk", "-c", c.conf],
                       capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 0 and rec("front-desk", "8765")[0] == 410, "after the end")


@test
def meetings_host_transfers_a_participant_by_the_seeds_rules(env):
    """A Host offers a participant of their room a transfer (by the id of
    the participant list); the participant takes it with their own token.
    Into a room that asks nothing for the role: in, with the role the Host
    gave, and the old token spent. Into a room whose role needs SSO, without
    a session from one of its IdPs: refused, and the participant stays
    (their token still works). A Host cannot move someone of another room."""
    c = Conference(env, extra=staff_group(env))
    src = c.create(alias="from", host_pin="1111", guest_pin="2222")
    rooms = {r["alias"]: r for r in (c.create(alias="open-room"),
                                     c.create(alias="sso-hosts", authentication="hosts",
                                              idp_group="staff"),
                                     c.create(alias="pinned", host_pin="5555", guest_pin="6666"))}
    host, _ = c.token(src, pin="1111", name="Host")
    g1, _ = c.token(src, pin="2222", name="Una")
    g2, _ = c.token(src, pin="2222", name="Vic")
    st, h, body = c.req("/api/v1/meetings/participants", token=host)
    ids = {p["display_name"]: p["id"] for p in json.loads(body)["participants"]}

    def offer(pid, to, role, pin=None, key=None, tok=None):
        f = {"participant": pid, "uri": rooms[to]["uri"],
             "key": key or rooms[to]["conference_key"], "role": role}
        if pin:
            f["pin"] = pin
        return c.req("/api/v1/meetings/transfer", data=f, token=tok or host)[0]

    def take(tok):
        st, h, body = c.req("/api/v1/meetings/transfer", token=tok)
        return st, json.loads(body)
    check(take(g1) == (200, {"outcome": "no-transfer"}), "nothing offered yet")
    check(offer(ids["Una"], "open-room", "host") == 202, "offer")
    st, j = take(g1)
    check(st == 200 and j["meeting"] == "open-room" and j["role"] == "host" and
          j["display_name"] == "Una", "into open-room: %d %r" % (st, j))
    check(c.manifest(g1)[0] == 404 and c.manifest(j["token"])[0] == 200, "tokens after it")
    check(offer(ids["Una"], "sso-hosts", "guest") == 404, "moved someone no longer here")
    check(offer(ids["Vic"], "sso-hosts", "host") == 202, "offer into SSO")
    st, j = take(g2)
    check(st == 403 and j["outcome"] == "transfer-refused", "without a session: %d %r" % (st, j))
    check(c.manifest(g2)[0] == 200, "a refused transfer took the participant out")
    check(offer(ids["Vic"], "sso-hosts", "guest") == 202, "offer as Guest")
    # Only where the Host could send them by invitation, with the PIN of
    # the role given; never the Host themselves. Each refusal the same 404.
    check(offer(ids["Vic"], "open-room", "host", key="0" * 32) == 404, "a wrong key")
    check(offer(ids["Vic"], "pinned", "host", pin="6666") == 404, "a Guest PIN for a Host")
    check(offer(ids["Vic"], "pinned", "host") == 404, "no PIN for a room with PINs")
    check(offer(ids["Host"], "open-room", "host") == 404, "the Host moved themselves")
    st, j = take(g2)
    check(st == 200 and j["meeting"] == "sso-hosts" and j["role"] == "guest",
          "as a Guest, who needs no SSO there: %d %r" % (st, j))
    w, _ = c.token(src, pin="2222", name="Xia")
    st, h, body = c.req("/api/v1/meetings/participants", token=host)
    xid = [p["id"] for p in json.loads(body)["participants"] if p["display_name"] == "Xia"][0]
    check(offer(xid, "pinned", "host", pin="5555") == 202, "with the Host PIN")
    st, j = take(w)
    check(st == 200 and j["meeting"] == "pinned" and j["role"] == "host", "%d %r" % (st, j))
    g3, _ = c.token(src, pin="2222", name="Wes")
    check(offer(ids["Vic"], "open-room", "guest", tok=g3) == 404 and c.manifest(g3)[0] == 200,
          "a Guest offered a transfer")


@test
def meetings_guest_pin_does_not_wipe_the_host_pin_backoff(env):
    """Knowing the Guest PIN does not buy unlimited Host-PIN guesses: wrong
    Host PINs interleaved with right Guest-PIN joins still reach the back-off,
    while a participant who joins again and again with the right PIN from
    one address never waits."""
    c = Conference(env)
    m = c.create(alias="split", host_pin="90909", guest_pin="80808")
    for i in range(20):
        st, j = c.join(m, pin="80808")
        check(st == 200, "right Guest PIN, join %d: %d %r" % (i, st, j))
    seen = []
    for i in range(4):
        seen.append(c.join(m, pin="1%04d" % i)[0])
        seen.append(c.join(m, pin="80808")[0])
    check(429 in seen, "Host PIN guesses between Guest joins never slowed: %r" % seen)
