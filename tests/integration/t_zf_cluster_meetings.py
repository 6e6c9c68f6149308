"""Three appliances on one PostgreSQL 15 (meetings-store postgresql: a
primary and a streaming standby it waits for at every commit, started by
tests/pg_server.sh on free loopback ports) and one Redis (store redis: join
tokens and PIN back-off). A room made on A is joined on B; the token B gave
works at C and, revoked at C, is refused at A; a slide uploaded on A
downloads from C byte for byte, a range across a 64 KiB chunk edge too;
PIN guesses counted at A hold at B. Then the primary is killed (SIGKILL)
while uploads stream, the standby promoted: every upload the appliances
acknowledged downloads intact from another appliance (hash-checked, 50
uploads in flight at the kills), with no restart. A primary that stops
answering (SIGSTOP) costs a join the timeout and answers 503, not 404."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time

from harness import GATEHOUSE, ROOT, check, free_port, service, test, wait_until
from saml_idp import Browser
from t_l_meetings import Conference, admin_via_socket, decrypt, join_from
from t_q_chain_timeouts import own_logs
from t_zb_cluster import start_redis

PG_PW = "pg-cluster-pw"
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_SH = os.path.join(ROOT, "tests", "pg_server.sh")


class Postgres:
    """A primary and its standby in a folder the postgres user may enter
    (the test's own is 0700), stopped by PID."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="gh-pg-")
        os.chmod(self.root, 0o755)
        self.pids = []
        self.n = 0

    def _run(self, *args):
        r = subprocess.run([PG_SH] + [str(a) for a in args], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0, "pg_server.sh %s: %s" % (args[0], r.stderr[-800:]))
        pid = int(r.stdout.split()[0]) if r.stdout.strip() else 0
        if pid:
            self.pids.append(pid)
        return pid

    def node(self, port=None):
        self.n += 1
        return os.path.join(self.root, "n%d" % self.n), port or free_port()

    def primary(self):
        d, port = self.node()
        return d, port, self._run("start", d, port, PG_PW)

    def standby(self, primary_port, port=None):
        d, port = self.node(port)
        return d, port, self._run("standby", d, port, PG_PW, primary_port)

    def sync(self, d, port):
        self._run("sync", d, port, PG_PW)

    def promote(self, d):
        as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        r = subprocess.run(as_pg + [PG_BIN + "/pg_ctl", "-D", os.path.join(d, "data"), "-w",
                                    "-t", "30", "promote"], capture_output=True, text=True)
        check(r.returncode == 0, "promote: %s" % r.stderr)

    def sql(self, port, query, user="postgres"):
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d",
                            "gatehouse", "-Atc", query], capture_output=True, text=True,
                           env=dict(os.environ, PGPASSWORD=PG_PW), timeout=30)
        return r.stdout.strip() if r.returncode == 0 else None

    def kill(self, pid, sig=signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def close(self):
        for pid in self.pids:
            self.kill(pid, signal.SIGQUIT)
        for pid in self.pids:
            end = time.time() + 10
            while time.time() < end:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            self.kill(pid)
        # A killed postmaster's backends notice it within a second and go.
        shutil.rmtree(self.root, ignore_errors=True)


class Appliance(Conference):
    """One appliance of the three: the public and conference services on
    ports of its own, its own state folder and logs, the shared head."""

    def __init__(self, env, tag, head):
        self.env = env
        self.tag = tag
        self.port, self.conf_port = free_port(), free_port()
        self.url = "https://localhost:%d" % self.port
        text = own_logs(env, tag) + head + \
            service("public", self.port, servers=[("conf", self.conf_port)], hosts="localhost") + \
            service("conference", self.conf_port, app="conference", hosts="localhost",
                    extra="    trusted-proxies 127.0.0.1/32")
        self.gh = env.gatehouse(text, name=tag + ".conf")
        self.conf = self.gh.conf
        self.state = env.path(tag + "-state/conference")
        admin_via_socket(self)
        self.b = Browser(env.ca)


def pg_stop(pid, sig):
    """sig to a postmaster and its backends (one serves each connection)."""
    subprocess.run(["pkill", "-%d" % sig, "-P", str(pid)], capture_output=True, timeout=10)
    os.kill(pid, sig)


def slow_upload(c, token, name, data, piece=65536, pause=0.02):
    """An upload whose body comes in pieces (chunked), so it is in flight
    for a while: (status, answer or None)."""
    ctx = ssl.create_default_context(cafile=c.env.ca)
    conn = http.client.HTTPSConnection("localhost", c.port, context=ctx, timeout=60)

    def body():
        for i in range(0, len(data), piece):
            yield data[i:i + piece]
            time.sleep(pause)
    try:
        conn.request("POST", "/api/v1/meetings/content?name=" + name, body=body(),
                     headers={"Authorization": "Bearer " + token},
                     encode_chunked=True)
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, None
    except (OSError, http.client.HTTPException):
        return None, None
    finally:
        conn.close()


@test
def cluster_meetings_on_postgresql_across_three_appliances_and_a_primary_kill(env):
    pg = Postgres()
    try:
        run_cluster_meetings(env, pg)
    finally:
        pg.close()


def run_cluster_meetings(env, pg):
    pd, pport, ppid = pg.primary()
    sd, sport, spid = pg.standby(pport)
    pg.sync(pd, pport)
    wait_until(lambda: pg.sql(pport, "SELECT sync_state FROM pg_stat_replication") == "sync",
               20, "the standby is synchronous")
    rport = free_port()
    start_redis(env, rport, "redis-pw")
    rpw = env.write("redis.pw", "redis-pw\n")
    pgpw = env.write("pg.pw", PG_PW + "\n")
    kek = env.write("slides.kek", os.urandom(32).hex() + "\n")
    for f in (rpw, pgpw, kek):
        os.chmod(f, 0o600)
    conninfo = ("host=127.0.0.1,127.0.0.1 port=%d,%d dbname=gatehouse user=gatehouse "
                "target_session_attrs=read-write connect_timeout=2" % (pport, sport))
    head = ("store redis {\n    address 127.0.0.1:%d\n    password-file %s\n"
            "    timeout 200ms\n    wait-replicas 0\n    appliances 3\n}\n"
            "meetings-store postgresql {\n    conninfo \"%s\"\n    password-file %s\n"
            "    timeout 1s\n}\n"
            "slides-kek-file %s\n" % (rport, rpw, conninfo, pgpw, kek))
    a, b, c = (Appliance(env, t, head) for t in "abc")

    # A room made on A is B's and C's too.
    m = a.create(alias="shared-room", host_pin="246810")
    st, h, body = b.admin_req("/api/v1/admin/meetings")
    check(st == 200 and b"shared-room" in body, "B's list: %d %r" % (st, body[:300]))
    tok, j = b.token(m, pin="246810", name="Hana")
    check(j["role"] == "host", "joined on B: %r" % j)
    # Content: 400 kB uploaded on A with B's token, downloaded from C.
    deck = os.urandom(150000) + b"slide text " * 25000
    st, j = a.upload(tok, "deck.bin", deck)
    check(st == 201, "upload on A: %d %r" % (st, j))
    st, man = c.manifest(tok)
    check(st == 200 and [r["name"] for r in man["resources"]] == ["deck.bin"],
          "C's manifest: %d %r" % (st, man))
    r = man["resources"][0]
    st, h, stored = c.fetch(tok, r["url"])
    check(st == 200 and len(stored) == r["stored"] and decrypt(stored, r["key"]) == deck,
          "C's download: %d, %d bytes" % (st, len(stored)))
    st, h, part = c.fetch(tok, r["url"], "bytes=65530-65545")
    check(st == 206 and part == stored[65530:65546], "range across the chunk edge: %d" % st)
    check(pg.sql(pport, "SELECT count(*) FROM chunks") == str((len(stored) + 65535) // 65536),
          "chunks in the database")
    check(not os.path.exists(os.path.join(a.state, "meetings.db")) and
          not os.path.exists(os.path.join(a.state, "content")), "A kept meetings locally")
    check(r["key"] not in (pg.sql(pport, "SELECT encode(key, 'base64') FROM resources") or ""),
          "a slide key in clear in the database")
    # A display name that is not UTF-8 (PostgreSQL's text must be): the
    # participant joins on C and is in the Hosts' list on A, its bad byte a
    # '?'; an upload named so is stored.
    st, h, body = c.req("/api/v1/meetings/join",
                        data=("uri=%s&key=%s&pin=246810&name=Eve%%FF" % (
                            m["uri"], m["conference_key"])).encode())
    check(st == 200, "a join named Eve\\xff: %d %r" % (st, body))
    st, h, body = a.req("/api/v1/meetings/participants", token=tok)
    names = [p["display_name"] for p in json.loads(body)["participants"]] if st == 200 else []
    check("Eve?" in names, "the Hosts' list: %d %r" % (st, names))
    st, j = a.upload(tok, "caf%C3.pdf", b"x" * 1000)
    check(st == 201, "an upload named caf\\xc3.pdf: %d %r" % (st, j))
    # Revoked at C: refused at A.
    st, hd, body = c.req("/api/v1/meetings/leave", data=b"", token=tok)
    check(st == 200, "leave on C: %d %r" % (st, body))
    st, man = a.manifest(tok)
    check(st in (401, 404), "A took a token revoked at C: %d" % st)
    # PIN guesses from one source counted at A hold at B.
    src = "127.0.0.7"
    for i in range(3):
        st, h, j = join_from(a, src, m, "%06d" % i)
        check(st == 403, "wrong PIN %d on A: %d" % (i, st))
    st, h, j = join_from(b, src, m, "246810")
    check(st == 429 and h.get("Retry-After") == "1", "B let the guesser in: %d %r" % (st, j))
    st, h, j = join_from(c, "127.0.0.8", m, "246810")
    check(st == 200, "another source on C: %d %r" % (st, j))

    # The primary killed while uploads stream, the standby promoted; then a
    # new standby for the new primary, and again.
    tok, _ = a.token(m, pin="246810")
    acked, refused, gaps = [], 0, []
    apps = [a, b, c]
    primary = (pd, pport, ppid)
    standby = (sd, sport, spid)
    # GH_PG_KILLS=50 runs the fifty kills (docs/cluster.md has the
    # figures); the suite runs five.
    rounds, per_round = int(os.environ.get("GH_PG_KILLS", "5")), 10
    for rnd in range(rounds):
        # Every appliance back on the primary before the next kill.
        wait_until(lambda: all(x.manifest(tok)[0] == 200 for x in apps), 30,
                   "round %d: every appliance answers" % rnd)
        results = [None] * per_round
        # 30 kB to 300 kB at 8 kB per 20 ms: the short ones are done and
        # acknowledged while the long ones still stream.
        datas = [os.urandom(30000 * (i + 1)) for i in range(per_round)]

        def one(i):
            results[i] = slow_upload(apps[i % 3], tok, "r%d-%d.bin" % (rnd, i), datas[i],
                                     piece=8192)
        threads = [threading.Thread(target=one, args=(i,)) for i in range(per_round)]
        for t in threads:
            t.start()

        def mixed():
            done = sum(1 for x in results if x and x[0] == 201)
            open_tx = int(pg.sql(primary[1], "SELECT count(*) FROM pg_stat_activity WHERE "
                                 "application_name = 'gatehouse' AND xact_start IS NOT NULL")
                          or 0)
            return done >= 2 and open_tx >= 3
        # Killed with some uploads acknowledged and some in their transactions.
        wait_until(mixed, 20, "round %d: uploads acknowledged and uploads streaming" % rnd)
        t0 = time.time()
        pg.kill(primary[2])
        pg.promote(standby[0])
        for t in threads:
            t.join(90)
        check(not any(t.is_alive() for t in threads), "an upload hung")
        # Writes again: the first upload acknowledged after the kill.
        def writes():
            st, _ = slow_upload(a, tok, "probe.bin", b"probe", pause=0)
            return st == 201
        wait_until(writes, 30, "uploads acknowledged after the promotion")
        gaps.append(time.time() - t0)
        for i, (st, j) in enumerate(results):
            if st == 201:
                acked.append((j["id"], hashlib.sha256(datas[i]).hexdigest(), len(datas[i])))
            else:
                refused += 1
        # The promoted one gets a standby of its own, waited for at commit,
        # on the port the killed one had (the appliances' conninfo names two).
        dead_port = primary[1]
        primary = standby
        nd, nport, npid = pg.standby(primary[1], dead_port)
        standby = (nd, nport, npid)
        pg.sync(primary[0], primary[1])
        wait_until(lambda: pg.sql(primary[1], "SELECT sync_state FROM pg_stat_replication") ==
                   "sync", 20, "round %d: the new standby is synchronous" % rnd)
        for x in apps:
            check(x.gh.proc.poll() is None, "appliance %s died" % x.tag)
    # Every acknowledged upload, from an appliance other than the first.
    st, man = c.manifest(tok)
    check(st == 200, "manifest after the failovers: %d" % st)
    keys = {r["url"].rsplit("/", 1)[1]: r for r in man["resources"]}
    bad = []
    for rid, digest, size in acked:
        r = keys.get(rid)
        if r is None:
            bad.append("%s missing" % rid)
            continue
        st, h, stored = b.fetch(tok, r["url"])
        plain = decrypt(stored, r["key"]) if st == 200 else b""
        if hashlib.sha256(plain).hexdigest() != digest or len(plain) != size:
            bad.append("%s differs (%d)" % (rid, st))
    check(not bad, "acknowledged uploads lost or changed: %r" % bad)
    check(refused >= rounds, "no upload was in flight at a kill (%d refused)" % refused)
    # The primary stops answering (SIGSTOP, its backends too): joins and a
    # participant's manifest answer 503 within the timeout (1 s), not 404
    # ("no such meeting"), and the appliance serves on; answering again, all
    # works with no restart.
    pg_stop(primary[2], signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        st, j = b.join(m, pin="246810")
        took = time.monotonic() - t0
        check(st == 503, "a join with the database stopped: %d %r" % (st, j))
        check(took < 4, "the join waited %.1f s" % took)
        st, man = c.manifest(tok)
        check(st == 503, "a manifest with the database stopped: %d" % st)
    finally:
        pg_stop(primary[2], signal.SIGCONT)
    wait_until(lambda: b.join(m, pin="246810")[0] == 200, 20, "joins with the database back")
    print("    (%d uploads in flight at %d primary kills: %d acknowledged, all intact; %d "
          "refused; writes again %.1f-%.1f s after each kill)" % (
              rounds * per_round, rounds, len(acked), refused, min(gaps), max(gaps)))


@test
def meetings_store_postgresql_away_at_start_and_checked_by_t(env):
    """A database that does not answer at the start keeps nothing from
    starting: the appliance is ready, the conference answers 503 (not 404)
    and the admin API says the store does not answer; once PostgreSQL is up
    on that address, rooms are made and joined, with no restart. gatehouse
    -t refuses what it can see without the database: a password in the
    conninfo (also inside a URI, as libpq reads it) and a password file
    others may read."""
    pg = Postgres()
    try:
        port = free_port()
        pgpw = env.write("pg.pw", PG_PW + "\n")
        os.chmod(pgpw, 0o600)
        head = ("meetings-store postgresql {\n    conninfo \"host=127.0.0.1 port=%d "
                "dbname=gatehouse user=gatehouse\"\n    password-file %s\n    timeout 1s\n}\n"
                % (port, pgpw))
        a = Appliance(env, "a", head)
        check("the conference answers 503 until it does" in a.gh.output(),
              "no warning at the start: %s" % a.gh.output()[-600:])
        st, h, body = a.req("/api/v1/meetings/join", data=b"uri=gh-meet:x.1&key=k")
        check(st == 503, "a join with no database: %d %r" % (st, body))
        d, _ = pg.node()
        pid = pg._run("start", d, port, PG_PW)
        check(pid > 0, "PostgreSQL on the configured port")

        room = []

        def made():
            try:
                st, h, body = a.admin_req("/api/v1/admin/meetings",
                                          data={"alias": "late-room", "host_pin": "1234"})
            except OSError:
                return False
            if st == 201:
                room.append(json.loads(body))
            return st == 201
        wait_until(made, 20, "a room once the database answers")
        check(pg.sql(port, "SELECT alias FROM meetings") == "late-room", "the room's row")
        tok, j = a.token(room[0], pin="1234")
        check(j["role"] == "host", "joined once the database answers: %r" % j)
    finally:
        pg.close()
    # -t: what needs no database.
    for conninfo, why in (("host=127.0.0.1 password=pw", "password"),
                          ("postgresql://gatehouse:pw@127.0.0.1/gatehouse", "password"),
                          ("postgresql://gatehouse@127.0.0.1/gatehouse?%70assword=pw",
                           "password"),
                          ("host='open", "conninfo")):
        text = own_logs(env, "t") + ("meetings-store postgresql {\n    conninfo \"%s\"\n}\n" %
                                     conninfo)
        r = subprocess.run([GATEHOUSE, "-t", "-c",
                            env.write("t.conf", text)], capture_output=True, text=True)
        check(r.returncode != 0 and why in r.stderr + r.stdout,
              "-t took %r: %r" % (conninfo, r.stderr))
    os.chmod(pgpw, 0o644)
    text = own_logs(env, "t") + ("meetings-store postgresql {\n    conninfo \"host=127.0.0.1 "
                                 "port=1\"\n    password-file %s\n}\n" % pgpw)
    r = subprocess.run([GATEHOUSE, "-t", "-c",
                        env.write("t.conf", text)], capture_output=True, text=True)
    check(r.returncode != 0 and "chmod 600" in r.stderr, "-t took a 0644 password file: %r" %
          r.stderr)
