"""The persistence cookie key in the state folder (issue 14): a cookie keeps
its client on its server across a restart, a reload and a rotation; a
cookie two rotations old is ignored; a key file others may read is
refused; a corrupt one is replaced (at start) or written back (at reload),
with the log saying so.

Whether a cookie held is seen at the real server: the server the cookie
names is put in `state drain`, which keeps persistent clients and takes no
new ones, so a request reaches it only when its cookie was accepted. The
tests read the key file, as an operator could, to check its mode, to
follow rotations and to sign cookies the way gatehouse does (that is
checked first against a cookie gatehouse issued)."""
import hashlib
import hmac
import os
import signal
import subprocess
import time

from harness import GATEHOUSE, base_conf, check, curl, free_port, service, test, wait_until

KEYFILE = "gatehouse-state/persist/cookie.key"
COOKIE = "MS-WSMAN"


def conf(env, front, servers, drained=(), timeout="20m", top=""):
    text = base_conf(env, extra=top) + service(
        "front", front, servers=servers, reencrypt=False,
        extra="    persistence %s %s timeout %s" % ("cookie", COOKIE, timeout))
    for name, port in servers:
        if name in drained:
            text = text.replace("server %s 127.0.0.1:%d" % (name, port),
                                "server %s 127.0.0.1:%d state drain" % (name, port))
    return text


def read_keys(env):
    """{"current": (created, key), "previous": ...} from the key file."""
    with open(env.path(KEYFILE)) as f:
        lines = f.read().split("\n")
    check(lines[0] == "gatehouse-cookie-keys 1" and lines[-1] == "", "key file: %r" % lines[:1])
    keys = {}
    for line in lines[1:-1]:
        word, created, key = line.split(" ")
        keys[word] = (int(created), bytes.fromhex(key))
    return keys


def sign(key, port, expiry, svc="front"):
    """The cookie value gatehouse gives a plain real server on 127.0.0.1:port
    (persist.c: HMAC-SHA256 over identity|expiry|service, 96 bits)."""
    ident = "127.0.0.1:%d|-|plain|-|-" % port
    mac = hmac.new(key, ("%s|%s|%s" % (ident, expiry, svc)).encode(), hashlib.sha256)
    return "%s.%s" % (expiry, mac.hexdigest()[:24])


def ask(env, front, cookie=None):
    """One request on a new connection: (the port that answered, the
    MS-WSMAN value set, or None)."""
    args = ["--cacert", env.ca, "-D", env.path("h.txt"), "https://localhost:%d/whoami" % front]
    if cookie:
        args += ["-H", "Cookie: other=1; %s=%s" % (COOKIE, cookie)]
    r = curl(*args)
    check(r.returncode == 0, "curl: %r" % r.stderr)
    got = None
    for line in open(env.path("h.txt")):
        if line.lower().startswith("set-cookie:") and (COOKIE + "=") in line:
            got = line.split(":", 1)[1].strip().split(";")[0].split("=", 1)[1]
    return int(r.stdout.decode()), got


def mode(env, rel):
    return os.stat(env.path(rel)).st_mode & 0o777


def reload(g):
    n = g.output().count("configuration reloaded")
    m = g.output().count("reload refused")
    g.signal(signal.SIGHUP)
    wait_until(lambda: g.output().count("configuration reloaded") > n or
               g.output().count("reload refused") > m, 10, "reload done")
    return g.output().count("configuration reloaded") > n


def signed_by(value, keys, port):
    """Which key of the file ("current", "previous") signed value for port."""
    for word, (_, key) in keys.items():
        if sign(key, port, value.split(".")[0]) == value:
            return word
    return None


@test
def persist_key_cookie_survives_restart_and_reload(env):
    a, b = env.backend(tls=False), env.backend(tls=False)
    servers = [("a", a), ("b", b)]
    names = {a: "a", b: "b"}
    front = free_port()
    g = env.gatehouse(conf(env, front, servers))
    check("persistence keys: created %s" % KEYFILE in g.output(), "creation logged")
    check(mode(env, KEYFILE) == 0o600 and mode(env, "gatehouse-state/persist") == 0o700,
          "key file 0600 in a 0700 folder: %o %o" % (mode(env, KEYFILE),
                                                     mode(env, "gatehouse-state/persist")))
    text = open(env.path(KEYFILE)).read()
    key = read_keys(env)["current"][1]
    check(key.hex() not in g.output(), "the key is not logged")
    pinned, cookie = ask(env, front)
    other = a if pinned == b else b
    check(cookie is not None, "a cookie is inserted")
    check(sign(key, pinned, cookie.split(".")[0]) == cookie,
          "the test signs cookies as gatehouse does: %s" % cookie)

    # the pinned server drains: only a cookie that holds still reaches it
    drained = conf(env, front, servers, drained=(names[pinned],))
    env.write("gh.conf", drained)
    check(reload(g), "reload accepted: " + g.output()[-500:])
    check(ask(env, front)[0] == other, "a new client goes to the other server")
    for i in range(3):
        port, again = ask(env, front, cookie)
        check(port == pinned and again is None,
              "after a reload the cookie still holds (%d): %d %r" % (i, port, again))
    check(open(env.path(KEYFILE)).read() == text, "a reload keeps the file as it was")

    # a restart on the same state folder reads the same key back
    check(g.stop() == 0, "stopped cleanly")
    g2 = env.gatehouse(drained)
    for i in range(3):
        port, again = ask(env, front, cookie)
        check(port == pinned and again is None,
              "after a restart the cookie still holds (%d): %d %r" % (i, port, again))
    check("persistence keys: loaded %s" % KEYFILE in g2.output(), "loaded: " + g2.output())
    check(open(env.path(KEYFILE)).read() == text, "the restart kept the key file")
    check(ask(env, front)[0] == other, "new clients still go to the other server")
    forged = cookie[:9] + ("0" * 24)
    port, fresh = ask(env, front, forged)
    check(port == other and fresh is not None, "a forged cookie is still ignored: %d" % port)


@test
def persist_key_rotation_keeps_then_drops_an_old_cookie(env):
    a, b = env.backend(tls=False), env.backend(tls=False)
    servers = [("a", a), ("b", b)]
    front = free_port()
    # rotation 1s is stretched to the 3s cookie timeout (logged)
    g = env.gatehouse(conf(env, front, servers, drained=("b",), timeout="3s",
                           top="persistence-key-rotation 1s"))
    rotated = lambda: g.output().count("persistence key rotated")
    check("keys rotate every 3s" in g.output(), "the stretch is logged: " + g.output()[-800:])

    # a cookie for b (drained) signed with the current key, valid for an hour
    keys = read_keys(env)
    k1 = keys["current"][1]
    port, issued = ask(env, front)
    check(port == a and issued is not None, "b drains: a new client goes to a")
    check(signed_by(issued, read_keys(env), a) is not None,
          "the test signs cookies as gatehouse does")
    expiry = "%08x" % (int(time.time()) + 3600)
    old = sign(k1, b, expiry)
    port, _ = ask(env, front, old)
    check(port == b, "a cookie signed with the current key holds: %d" % port)

    # first rotation: the key becomes the previous one, still accepted, and
    # the client is given a cookie under the new key
    wait_until(lambda: read_keys(env).get("previous", (0, b""))[1] == k1 and rotated() >= 1, 15,
               "the first rotation")
    n = rotated()
    keys = read_keys(env)
    check(keys["current"][0] - keys["previous"][0] >= 3,
          "rotations at least the cookie timeout apart: %r" % [keys[w][0] for w in keys])
    port, moved = ask(env, front, old)
    check(rotated() == n, "answered before the next rotation (machine too slow?)")
    check(port == b, "a cookie signed with the previous key holds: %d" % port)
    check(moved is not None and signed_by(moved, read_keys(env), b) == "current",
          "and is re-issued under the current key: %r" % moved)
    port, again = ask(env, front, moved)
    check(port == b and again is None, "the re-issued cookie holds and is not re-sent")

    # second rotation: the old key is gone, the client is balanced again
    wait_until(lambda: rotated() >= n + 1, 15, "the second rotation")
    keys = read_keys(env)
    check(k1 not in (keys["current"][1], keys["previous"][1]), "the first key is dropped")
    port, fresh = ask(env, front, old)
    check(port == a and fresh is not None and signed_by(fresh, read_keys(env), a) is not None,
          "a cookie two rotations old is ignored, balanced to a: %d %r" % (port, fresh))
    check(mode(env, KEYFILE) == 0o600, "still 0600 after rotations: %o" % mode(env, KEYFILE))
    check(k1.hex() not in g.output(), "no key in the log")


@test
def persist_key_file_readable_by_others_is_refused(env):
    a = env.backend(tls=False)
    front = free_port()
    text = conf(env, front, [("a", a)])
    g = env.gatehouse(text)
    before = open(env.path(KEYFILE)).read()
    # at reload: refused, the running configuration and keys stay
    os.chmod(env.path(KEYFILE), 0o644)
    check(not reload(g), "a reload with a 0644 key file is refused")
    out = g.output()
    check("reload refused" in out and KEYFILE in out and "mode 644" in out and "chmod 600" in out,
          "the refusal names the file and the fix: " + out[-600:])
    port, _ = ask(env, front)
    check(port == a, "still serving")
    check(g.stop() == 0, "stopped")
    # at start: gatehouse does not start, and leaves the file alone
    r = subprocess.run([GATEHOUSE, "-c", env.path("gh.conf")], cwd=env.dir, capture_output=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    err = r.stderr.decode(errors="replace")
    check(r.returncode != 0, "start refused (exit %d): %s" % (r.returncode, err[-400:]))
    check(KEYFILE in err and "mode 644" in err and "chmod 600" in err and "ready" not in err,
          "clear error at start: " + err[-400:])
    check(open(env.path(KEYFILE)).read() == before and mode(env, KEYFILE) == 0o644,
          "the refused file is not replaced")
    os.chmod(env.path(KEYFILE), 0o600)
    g2 = env.gatehouse(text)
    check("persistence keys: loaded" in g2.output(), "starts once chmod 600")


@test
def persist_key_corrupt_file_is_replaced_with_a_logged_warning(env):
    a, b = env.backend(tls=False), env.backend(tls=False)
    servers = [("a", a), ("b", b)]
    names = {a: "a", b: "b"}
    front = free_port()
    g = env.gatehouse(conf(env, front, servers))
    pinned, cookie = ask(env, front)
    other = a if pinned == b else b
    old_key = read_keys(env)["current"][1]
    check(g.stop() == 0, "stopped")

    # at start: a truncated file is an error naming it; a fresh key follows
    with open(env.path(KEYFILE), "r+") as f:
        f.truncate(60)
    g2 = env.gatehouse(conf(env, front, servers, drained=(names[pinned],)))
    out = g2.output()
    check("[error] persistence keys: %s is unusable (truncated" % KEYFILE in out and
          "stop working" in out, "the corrupt file is logged: " + out[-800:])
    keys = read_keys(env)
    check(keys["current"][1] != old_key and "previous" not in keys and
          mode(env, KEYFILE) == 0o600, "a fresh key, written 0600")
    port, fresh = ask(env, front, cookie)
    check(port == other and fresh is not None,
          "the cookie under the lost key is ignored, the client balanced again: %d" % port)

    # at reload: garbage in the file, the running keys are written back
    text = open(env.path(KEYFILE)).read()
    with open(env.path(KEYFILE), "w") as f:
        f.write("hello\n")
    env.write("gh.conf", conf(env, front, servers, drained=(names[other],)))
    check(reload(g2), "reload accepted: " + g2.output()[-500:])
    out = g2.output()
    check("not a gatehouse cookie key file" in out and "written back" in out,
          "logged: " + out[-600:])
    check(open(env.path(KEYFILE)).read() == text, "the running keys are back in the file")
    port, again = ask(env, front, fresh)
    check(port == other and again is None, "the cookie issued after the start holds: %d" % port)
