"""The admin application through gatehouse's own TLS listener: no default
password, sign-in with PBKDF2, the same answer for a wrong password and an
unknown user, lockout after five failures, CSRF and Origin checks, roles,
bearer tokens, config write-back with ETag/If-Match (412, 428, 422), a
change that keeps every other byte of the file, hot reload with zero failed
requests under load, a hand edit visible after SIGHUP, and the audit log."""
import json
import os
import re
import signal
import socket
import subprocess

from harness import GATEHOUSE, base_conf, check, free_port, service, test, wait_until
from saml_idp import Browser

PW = {"root": "admin password 1", "ops": "operator password 1", "viewer": "viewer password 1",
      "users": "user admin password 1"}
ROLES = {"root": "admin", "ops": "operator", "viewer": "read-only", "users": "user-admin"}


def history_versions(env):
    """The configuration versions kept in the history (each has a .meta note)."""
    d = env.path("gatehouse-state/admin/history")
    return sorted(f for f in os.listdir(d) if f.endswith(".conf")) if os.path.isdir(d) else []


def status_of(env, url):
    """The status of a GET, or 0 while nothing listens there yet."""
    try:
        return Browser(env.ca).request(url)[0]
    except OSError:
        return 0


class Admin:
    def __init__(self, env, users=True, extra=""):
        self.env = env
        self.port, self.pub = free_port(), free_port()
        self.b1, self.b2 = env.backend(), env.backend()
        self.url = "https://localhost:%d" % self.port
        self.text = base_conf(env) + extra + "# the public face\n" + service(
            "public", self.pub, servers=[("web1", self.b1), ("web2", self.b2)],
            hosts="localhost") + service("admin", self.port, app="admin", hosts="localhost")
        self.text = self.text.replace("    server web1", "    # first real server\n    server web1")
        self.conf = env.write("gh.conf", self.text)
        if users:
            for name, pw in PW.items():
                r = subprocess.run([GATEHOUSE, "admin", "user", "add", name, "--role", ROLES[name],
                                    "-c", self.conf], input=(pw + "\n").encode(),
                                   capture_output=True, cwd=env.dir)
                check(r.returncode == 0, "user add %s: %r" % (name, r.stderr))
        self.gh = env.gatehouse(self.text)

    def browser(self, user=None):
        b = Browser(self.env.ca)
        if user:
            st, h, body = self.login(b, user, PW[user])
            check(st == 303, "login %s: %d %r" % (user, st, body[:200]))
        return b

    def login(self, b, user, pw, origin=None):
        """As a browser does: the login page (its token and cookie), then the post."""
        st, h, page = b.request(self.url + "/login")
        m = re.search(rb'name="login_token" value="([0-9a-f]{32})"', page)
        check(st == 200 and m, "login page: %d" % st)
        hd = {"Origin": origin} if origin else {}
        return b.request(self.url + "/login", headers=hd,
                         data={"user": user, "password": pw, "login_token": m.group(1).decode()})

    def whoami(self, b):
        st, h, body = b.request(self.url + "/api/v1/whoami")
        return st, (json.loads(body) if st == 200 else None)

    def version(self, b, headers=None):
        st, h, body = b.request(self.url + "/api/v1/config", headers=headers or {})
        check(st == 200, "config: %d %r" % (st, body[:200]))
        j = json.loads(body)
        check(h["ETag"] == '"%s"' % j["version"], "ETag %r vs %r" % (h["ETag"], j["version"]))
        return j["version"]

    def set_state(self, b, server, state, version, csrf=None, origin=None, token=None):
        hd = {"If-Match": '"%s"' % version} if version else {}
        if csrf:
            hd["X-CSRF-Token"] = csrf
        if origin:
            hd["Origin"] = origin
        if token:
            hd["Authorization"] = "Bearer " + token
        st, h, body = b.request(self.url + "/api/v1/servers/public/%s/state" % server,
                                data={"state": state}, headers=hd)
        return st, json.loads(body)

    def edit_headers(self, me, version):
        """What a browser sends with a configuration change."""
        return {"X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % version}

    def add_conference(self):
        """A conference service added by hand and SIGHUP; its port once it answers."""
        port = free_port()
        with open(self.conf, "a") as f:
            f.write(service("conference", port, app="conference", hosts="localhost"))
        self.gh.signal(signal.SIGHUP)
        wait_until(lambda: status_of(self.env, "https://localhost:%d/healthcheck.html" % port)
                   == 200, timeout=5, what="the conference service")
        return port

    def post(self, b, path, data=b""):
        """A signed-in browser's POST with its session's CSRF token: (status, body)."""
        st, me = self.whoami(b)
        st, h, body = b.request(self.url + path, data=data, headers={"X-CSRF-Token": me["csrf"]})
        return st, body

    def audit(self):
        with open(self.env.path("gatehouse-state/admin/audit.log")) as f:
            return [json.loads(line) for line in f]


@test
def admin_no_default_password_and_uniform_login_failures(env):
    a = Admin(env, users=False)
    check("no users yet" in a.gh.output(), "no hint about the first user in the log")
    b = Browser(env.ca)
    st, h, body = a.login(b, "admin", "admin")
    check(st == 401, "a default account exists: %d" % st)
    r = subprocess.run([GATEHOUSE, "admin", "user", "add", "root", "--role", "admin", "-c", a.conf],
                       input=b"short\n", capture_output=True, cwd=env.dir)
    check(r.returncode == 1 and b"at least 12" in r.stderr, "weak password taken: %r" % r.stderr)
    r = subprocess.run([GATEHOUSE, "admin", "user", "add", "root", "--role", "admin", "-c", a.conf],
                       input=(PW["root"] + "\n").encode(), capture_output=True, cwd=env.dir)
    check(r.returncode == 0, "user add: %r" % r.stderr)
    st1, h1, body1 = a.login(b, "root", "wrong password 99")
    st2, h2, body2 = a.login(b, "nobody", "wrong password 99")
    check(st1 == st2 == 401 and body1 == body2, "answers differ: %d %d" % (st1, st2))
    st, h, body = a.login(b, "root", PW["root"])
    check(st == 303 and h["Location"] == "/", "login: %d" % st)
    cookie = [v for k, v in h.items() if k.lower() == "set-cookie"][0]
    for attr in ("__Host-gh-admin=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        check(attr in cookie, "cookie lacks %s: %s" % (attr, cookie))
    # The database holds a PBKDF2 hash, never the password.
    db = b"".join(open(env.path("gatehouse-state/admin/" + n), "rb").read()
                  for n in os.listdir(env.path("gatehouse-state/admin")) if n.startswith("admin.db"))
    check(PW["root"].encode() not in db and b"pbkdf2-sha256$600000$" in db, "password storage")
    results = [e["result"] for e in a.audit() if e["action"] == "login"]
    check(results == ["failed", "failed", "failed", "ok"], "audit: %r" % results)


@test
def admin_lockout_after_five_failures_and_unlock(env):
    a = Admin(env)
    b = Browser(env.ca)
    for i in range(5):
        st, h, body = a.login(b, "ops", "wrong password %02d" % i)
        check(st == 401, "failure %d: %d" % (i, st))
    st, h, body = a.login(b, "ops", PW["ops"])
    check(st == 401, "locked user signed in: %d" % st)
    check("locked" in [e["result"] for e in a.audit()], "no lockout in the audit log")
    r = subprocess.run([GATEHOUSE, "admin", "user", "list", "-c", a.conf], capture_output=True,
                       cwd=env.dir)
    check(re.search(rb"ops\toperator\tlocked", r.stdout), "list: %r" % r.stdout)
    subprocess.run([GATEHOUSE, "admin", "user", "unlock", "ops", "-c", a.conf], check=True,
                   capture_output=True, cwd=env.dir)
    st, h, body = a.login(b, "ops", PW["ops"])
    check(st == 303, "after unlock: %d" % st)


@test
def admin_session_policy_from_the_config_and_reload(env):
    """admin-lockout-failures 2 locks after two wrong passwords; the
    lifetime is the cookie's Max-Age; the policy shows in whoami (the
    System page); a reload changes it. (Idle expiry itself is in the
    unit tests: waiting a minute here would only slow the suite.)"""
    a = Admin(env, extra="admin-lockout-failures 2\nadmin-session-lifetime 2h\n")
    root = a.browser("root")
    st, me = a.whoami(root)
    check(me["policy"] == {"session_idle": 900, "session_lifetime": 7200,
                           "lockout_failures": 2, "lockout_time": 900}, "policy: %r" % me)
    b = Browser(env.ca)
    for i in range(2):
        check(a.login(b, "ops", "wrong password %02d" % i)[0] == 401, "failure %d" % i)
    check(a.login(b, "ops", PW["ops"])[0] == 401, "not locked after two failures")
    check("locked" in [e["result"] for e in a.audit()], "no lockout in the audit log")
    with open(a.conf) as f:
        text = f.read()
    with open(a.conf, "w") as f:
        f.write(text.replace("admin-lockout-failures 2", "admin-lockout-failures 7\n"
                             "admin-session-idle 1m"))
    n = a.gh.output().count("configuration reloaded")
    a.gh.signal(signal.SIGHUP)
    wait_until(lambda: a.gh.output().count("configuration reloaded") > n, 5, "reload")
    st, me = a.whoami(root)
    check(st == 200 and me["policy"]["lockout_failures"] == 7 and
          me["policy"]["session_idle"] == 60, "after reload: %r" % me)
    st, h, body = a.login(Browser(env.ca), "root", PW["root"])
    check(st == 303 and "Max-Age=7200" in h.get("Set-Cookie", ""), "cookie: %r" % h)


@test
def admin_roles_csrf_etag_and_write_back(env):
    a = Admin(env)
    viewer, ops = a.browser("viewer"), a.browser("ops")
    st, me = a.whoami(viewer)
    check(st == 200 and me["role"] == "read-only", "%r" % me)
    v = a.version(viewer)
    st, j = a.set_state(viewer, "web1", "drain", v, csrf=me["csrf"])
    check(st == 403, "read-only changed a server: %d" % st)
    st, me = a.whoami(ops)
    st, j = a.set_state(ops, "web1", "drain", v)
    check(st == 403 and "CSRF" in j["error"], "no CSRF token: %d %r" % (st, j))
    st, j = a.set_state(ops, "web1", "drain", v, csrf=me["csrf"], origin="https://evil.example")
    check(st == 403, "cross-origin: %d" % st)
    st, j = a.set_state(ops, "web1", "drain", None, csrf=me["csrf"])
    check(st == 428, "without If-Match: %d" % st)
    st, j = a.set_state(ops, "web1", "drain", "0123456789abcdef", csrf=me["csrf"])
    check(st == 412 and j["version"] == v, "stale: %d %r" % (st, j))
    st, j = a.set_state(ops, "web1", "sideways", v, csrf=me["csrf"])
    check(st == 422, "bad state: %d" % st)
    st, j = a.set_state(ops, "nosuch", "drain", v, csrf=me["csrf"])
    check(st == 422 and "no server" in j["error"], "unknown server: %d %r" % (st, j))
    before = open(a.conf).read()
    st, j = a.set_state(ops, "web1", "drain", v, csrf=me["csrf"])
    check(st == 200 and j["version"] != v, "drain: %d %r" % (st, j))
    after = open(a.conf).read()
    diff = [(x, y) for x, y in zip(before.splitlines(), after.splitlines()) if x != y]
    check(len(before.splitlines()) == len(after.splitlines()) and len(diff) == 1 and
          "state drain" in diff[0][1], "more than the one line changed: %r" % diff)
    check("# first real server" in after and "# the public face" in after, "comments lost")
    wait_until(lambda: '"name":"web1","address"' in viewer.request(a.url + "/api/v1/stats")[2]
               .decode() and '"state":"drain"' in viewer.request(a.url + "/api/v1/stats")[2]
               .decode(), timeout=5, what="drain visible in stats")
    hist = history_versions(env)
    check(len(hist) == 1 and v in hist[0], "history: %r" % hist)
    # Two editors: the second one's version is stale now.
    st, j = a.set_state(ops, "web2", "maint", v, csrf=me["csrf"])
    check(st == 412, "a stale second editor got through: %d" % st)
    # A hand edit plus SIGHUP shows in the API.
    with open(a.conf, "a") as f:
        f.write("# hand edit\n")
    a.gh.signal(signal.SIGHUP)
    v3 = a.version(viewer)
    check(v3 != j["version"], "hand edit not visible")
    st, j = a.set_state(ops, "web1", "up", v3, csrf=me["csrf"])
    check(st == 200, "up after hand edit: %d" % st)
    # An API client: a bearer token, no CSRF needed, hashed at rest.
    r = subprocess.run([GATEHOUSE, "admin", "token", "add", "ops", "-c", a.conf],
                       capture_output=True, cwd=env.dir)
    tok = r.stdout.decode().strip()
    check(len(tok) == 64, "token %r" % tok)
    api = Browser(env.ca)
    st, j = a.set_state(api, "web2", "drain", j["version"], token=tok)
    check(st == 200, "bearer token: %d %r" % (st, j))
    st, j2 = a.set_state(api, "web2", "up", j["version"], token="f" * 64)
    check(st == 401, "bad token: %d" % st)
    db = b"".join(open(env.path("gatehouse-state/admin/" + n), "rb").read()
                  for n in os.listdir(env.path("gatehouse-state/admin")) if n.startswith("admin.db"))
    check(tok.encode() not in db, "token stored in clear")
    acts = [(e["user"], e["action"], e["result"]) for e in a.audit() if e["action"] != "login"]
    check(("ops", "server-state", "ok") in acts and ("ops", "server-state", "stale") in acts and
          ("ops", "csrf", "refused") in acts, "audit: %r" % acts)
    # Logout ends the session on the server.
    sid = ops.cookie("__Host-gh-admin").value
    st, h, body = ops.request(a.url + "/logout", data={"csrf": me["csrf"]})
    check(st == 303, "logout %d" % st)
    st, h, body = Browser(env.ca).request(a.url + "/api/v1/whoami",
                                          headers={"Cookie": "__Host-gh-admin=" + sid})
    check(st == 401, "session survived logout: %d" % st)


@test
def admin_commit_and_reload_under_load_fail_nothing(env):
    a = Admin(env)
    ops = a.browser("ops")
    st, me = a.whoami(ops)
    p = subprocess.Popen(["wrk", "-t1", "-c16", "-d6s", "--timeout", "2s",
                          "https://localhost:%d/whoami" % a.pub], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    changes = 0
    for state in ("drain", "up", "maint", "up", "drain", "up"):
        v = a.version(ops)
        st, j = a.set_state(ops, "web1", state, v, csrf=me["csrf"])
        check(st == 200, "%s: %d %r" % (state, st, j))
        changes += 1
    out = p.communicate(timeout=30)[0].decode()
    reqs = re.search(r"(\d+) requests in", out)
    check(reqs and int(reqs.group(1)) > 100, "wrk ran too little: %s" % out)
    check("Non-2xx" not in out and "Socket errors" not in out, "failed requests: %s" % out)
    check(changes == 6, "changes %d" % changes)


@test
def admin_pages_headers(env):
    a = Admin(env)
    b = Browser(env.ca)
    st, h, body = b.request(a.url + "/")
    check(st == 303 and h["Location"] == "/login", "anonymous /: %d" % st)
    st, h, body = b.request(a.url + "/login")
    csp = h["Content-Security-Policy"]
    for want in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                 "connect-src 'self'", "frame-ancestors 'none'"):
        check(want in csp, "CSP lacks %s: %s" % (want, csp))
    for k, v in (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
                 ("Cache-Control", "no-store")):
        check(h[k] == v, "%s: %r" % (k, h[k]))
    check("Strict-Transport-Security" in h, "no HSTS")
    check(b"<script>" not in body and b"onclick" not in body, "inline script on the login page")
    st, h, body = a.browser("root").request(a.url + "/")
    check(st == 200 and b'src="/admin.js"' in body and b"<script>" not in body, "admin page")
    st, h, body = a.login(b, "root", PW["root"], origin="https://evil.example")
    check(st == 403, "cross-origin sign-in: %d" % st)
    st, h, body = Browser(env.ca).request(a.url + "/login",
                                          data={"user": "root", "password": PW["root"]})
    check(st == 403, "sign-in without the login page's token (login CSRF): %d" % st)
    st, h, body = a.login(b, "root", PW["root"], origin="null")
    check(st == 303, "a form post from our page (Origin: null) refused: %d" % st)


@test
def admin_browser_signin_drain_weight_readonly_and_escaping(env):
    """Debian's chromium through the admin pages: a wrong password refused,
    sign-in, drain and a weight change seen in Statistics and in the file,
    a read-only user with no write controls, a service name carrying markup
    shown as text; no console error or CSP violation; PNGs of every page."""
    import shutil
    from harness import ROOT
    from saml_idp import Idp
    from t_j_saml import sp_cert
    idp = Idp(env, "browser")
    md = env.write("idp-metadata.xml", idp.metadata().decode())
    a = Admin(env, extra=sp_cert(env) + "rules guard {\n    rule no-admin deny if path prefix /admin\n}\n")
    # A service whose name is an XSS payload.
    evil = '<img src=x onerror=alert(1)>'
    text = open(a.conf).read() + 'service "%s" {\n    listen 127.0.0.1:%d\n    app status\n}\n' % (
        evil.replace('"', '\\"'), free_port())
    with open(a.conf, "w") as f:
        f.write(text)
    a.gh.signal(signal.SIGHUP)
    wait_until(lambda: evil in Browser(env.ca).request(
        a.url + "/api/v1/stats", headers={"Authorization": "Bearer " + a_token(env, a)})[2].decode(),
        timeout=10, what="the reload with the odd service")
    shots = env.path("shots")
    os.makedirs(shots)
    pair = [env.path("pair.pem"), env.path("pair.key")]
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", pair[1], "-out", pair[0],
                    "-days", "30", "-subj", "/CN=browser.example.com"],
                   check=True, capture_output=True)
    r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/admin.mjs"), a.url, "root",
                        PW["root"], "viewer", PW["viewer"], shots], capture_output=True,
                       timeout=120, cwd=os.path.join(ROOT, "tests/browser"),
                       env=dict(os.environ, GH_IDP_METADATA=md, GH_LOCKOUT_USER="users",
                                GH_OPERATOR="ops:" + PW["ops"],
                                GH_CERT_FILES=",".join(pair),
                                GH_LOCKOUT_PASSWORD=PW["users"]))
    check(r.returncode == 0, "browser run failed: %s %s" % (r.stdout[-2000:], r.stderr[-3000:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    check("Wrong user name or password" in res["wrong"], "wrong password page: %r" % res["wrong"])
    check(res["who"] == "root (admin)", "who: %r" % res["who"])
    check("public: 2 of 2 real servers up" in res["health"] and
          "public: 1 of 2 real servers up (web1 drain)" in res["healthAfterDrain"] and
          float(res["rate"]) >= 0, "home health / rate: %r %r %r" % (
              res["health"], res["healthAfterDrain"], res["rate"]))
    check(res["appRows"] == 1 and res["appButtons"] == 0,
          "an application's internal server offered operations: %r" % res)
    check("weight 7" in res["message"], "message: %r" % res["message"])
    conf = open(a.conf).read()
    check(re.search(r"server web1 127\.0\.0\.1:\d+ weight 7 state drain", conf), "file: %s" % conf)
    check(any(evil in n for n in res["names"]), "the odd name is not shown as text: %r" %
          res["names"])
    check(res["injected"] == 0, "markup from a name became elements")
    check(res["viewerButtons"] == 0 and res["viewerWho"] == "viewer (read-only)",
          "read-only view: %r" % res)
    dis = res["viewerDisabled"]
    check(any(d.startswith("drain: Operators and admins only: you are read-only") for d in dis)
          and any(d.startswith("weight: Admins only: you are read-only") for d in dis) and
          any(d.startswith("modify: Admins only") for d in dis) and
          any(d.startswith("end: Operators and admins only") for d in dis),
          "disabled controls with reasons: %r" % dis)
    check(res["operatorEnabled"] and set(res["operatorEnabled"]) <= {"up", "drain", "maint"} and
          any(d.startswith("weight: Admins only: you are operator.") for d in
              res["operatorDisabled"]) and
          any(d.startswith("edit-text: Admins only: you are operator.") for d in
              res["operatorDisabled"]), "the operator's view: %r %r" % (
                  res["operatorEnabled"], res["operatorDisabled"]))
    check("Admins only: you are read-only." in res["viewerNotes"] and
          res["viewerRoleNote"].startswith("Read-only"), "notes: %r %r" % (
              res["viewerNotes"], res["viewerRoleNote"]))
    check(not res["errors"], "console errors or CSP violations: %r" % res["errors"])
    check(len(res["expected"]) == 1 and "401" in res["expected"][0],
          "the refused sign-in: %r" % res["expected"])
    check(res["idpMessage"].startswith("Imported Browser IdP"), "import: %r" % res["idpMessage"])
    check("no-admin" in res["ruleResult"] and "deny" in res["ruleResult"],
          "rule tester: %r" % res["ruleResult"])
    check(res["svcMessage"].startswith("Saved"), "service editor: %r" % res["svcMessage"])
    check(res["home"] == ["home"], "the first page: %r" % res["home"])
    for pid, (shown, visible, current) in res["pages"].items():
        check(shown == pid and visible == 1 and current == "#" + pid,
              "page %s by its URL: %r" % (pid, (shown, visible, current)))
    check(len(res["pages"]) == 9 and res["backForward"], "pages: %r" % res["pages"])
    hist = res["history"]
    check(hist["who"] == "root (admin)" and hist["label"] == "service-change public" and
          hist["changed"] == "allowed-dirs" and " \u2192 " in hist["versions"],
          "history row: %r" % hist)
    check("to the running configuration (now, lines marked +)" in res["diffTitle"] and
          "- allowed-dirs /*" in res["diff"].replace("    ", "") and
          "+ allowed-dirs /whoami /*" in res["diff"].replace("    ", ""),
          "labelled diff: %r %r" % (res["diffTitle"], res["diff"]))
    check(res["rollbackPreviewTitle"].startswith("Rolling back to version") and
          "- allowed-dirs /whoami /*" in res["rollbackPreview"].replace("    ", "") and
          "+ allowed-dirs /*" in res["rollbackPreview"].replace("    ", "") and
          "allowed-dirs /whoami /*" in res["configBeforeConfirm"],
          "rollback preview before it acts: %r" % res["rollbackPreview"])
    check(res["rollback"].startswith("Rolled back") and
          "allowed-dirs /whoami /*" not in open(a.conf).read(),
          "rollback of the edit from the page: %r" % res["rollback"])
    with open(res["downloaded"], "rb") as f:
        xml = f.read()
    check(b"SPSSODescriptor" in xml, "the downloaded SP metadata: %r" % xml[:200])
    idp.register_sp(xml)
    check("locked" in res["lockedText"] and res["lockedUrl"].endswith("/login"),
          "lockout in the browser: %r" % res["lockedText"][:200])
    check(len(res["lockoutErrors"]) == 6 and all("401" in e for e in res["lockoutErrors"]),
          "lockout errors: %r" % res["lockoutErrors"])
    check(res["formRuleTest"] == "rule no-admin: deny (403)",
          "the form's rule tester: %r" % res["formRuleTest"])
    check(res["formSections"] == ["Basic", "Standard", "SSL", "ESP", "Rules", "Real servers",
                                  "Other"],
          "service form sections: %r" % res["formSections"])
    conf = open(a.conf).read()
    check(res["formMessage"].startswith("Saved") and "    idle-timeout 120s\n" in conf and
          "    retries 2\n" in conf and
          re.search(r"server web2 127\.0\.0\.1:\d+ weight 5\n", conf) and
          "    # first real server\n    server web1" in conf,
          "service form save: %r\n%s" % (res["formMessage"], conf))
    check(res["uuidReadOnly"] is True, "the IdP's UUID is editable in the form")
    check(res["idpFormMessage"].startswith("Saved") and
          'description "Edited in the browser"' in conf, "IdP form: %r" % res["idpFormMessage"])
    check(res["certMessage"].startswith("Imported from-browser") and
          "certificate from-browser {" in open(a.conf).read(), "cert import: %r" % res["certMessage"])
    check(res["meetingMessage"] == "Saved" and
          ("meeting-modify", "ok") in [(e["action"], e["result"]) for e in a.audit()],
          "meeting modify: %r" % res["meetingMessage"])
    check(len(res["shots"]) == 13 and all(os.path.getsize(p) > 1000 for p in res["shots"]),
          "screenshots: %r" % res["shots"])
    out = os.path.join(ROOT, "build", "test-screens")
    os.makedirs(out, exist_ok=True)
    for p in res["shots"]:
        shutil.copy(p, os.path.join(out, "admin-" + os.path.basename(p)))


def a_token(env, a):
    if not hasattr(a, "token"):
        r = subprocess.run([GATEHOUSE, "admin", "token", "add", "viewer", "-c", a.conf],
                           capture_output=True, cwd=env.dir)
        a.token = r.stdout.decode().strip()
    return a.token


@test
def admin_history_diff_rollback_logs_and_users(env):
    a = Admin(env)
    root, ua = a.browser("root"), a.browser("users")
    st, me = a.whoami(root)
    original = open(a.conf).read()
    v0 = a.version(root)
    st, j = a.set_state(root, "web2", "maint", v0, csrf=me["csrf"])
    check(st == 200, "maint: %d" % st)
    st, h, body = root.request(a.url + "/api/v1/config/history")
    hist = json.loads(body)["versions"]
    check(st == 200 and len(hist) == 1 and hist[0]["version"] == v0, "history: %r" % hist)
    ch = hist[0]["change"]
    check(ch["user"] == "root" and ch["role"] == "admin" and ch["action"] == "server-state" and
          ch["object"] == "server public/web2" and ch["changed"] == "server" and
          ch["new_version"] == a.version(root), "who and what: %r" % ch)
    st, h, body = root.request(a.url + "/api/v1/config/history/" + hist[0]["id"])
    d = json.loads(body)
    check(d["text"] == original, "history text differs from the original file")
    check(len(d["diff_to_current"]) == 2 and d["diff_to_current"][0].startswith("- ") and
          d["diff_to_current"][1].endswith("state maint"), "diff: %r" % d["diff_to_current"])
    st, h, body = root.request(a.url + "/api/v1/config/history/..%2f..%2fgh.conf")
    check(st in (400, 404), "history traversal: %d" % st)
    # Roll back to the original.
    v1 = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/config/rollback", data={"id": hist[0]["id"]},
                               headers={"X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % v0})
    check(st == 412, "rollback with a stale version: %d" % st)
    st, h, body = root.request(a.url + "/api/v1/config/rollback", data={"id": hist[0]["id"]},
                               headers={"X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % v1})
    check(st == 200 and open(a.conf).read() == original, "rollback: %d %r" % (st, body))
    check(a.version(root) == v0, "version after rollback")
    # Logs: the security log filtered by reason; the audit log for admins.
    import http.client
    import ssl
    ctx = ssl.create_default_context(cafile=env.ca)
    cn = http.client.HTTPSConnection("localhost", a.pub, context=ctx, timeout=10)
    cn.request("GET", "/whoami", headers={"Host": "intranet.corp"})
    cn.getresponse().read()
    cn.close()
    wait_until(lambda: b"intranet.corp" in open(env.path("security.log"), "rb").read(),
               timeout=5, what="the refusal in the security log")
    st, h, body = root.request(a.url + "/api/v1/logs/security?host=intranet.corp&limit=5")
    entries = json.loads(body)["entries"]
    check(st == 200 and len(entries) >= 1 and entries[0]["host"] == "intranet.corp",
          "security log: %r" % entries)
    st, h, body = root.request(a.url + "/api/v1/logs/security?reason=no-such-reason")
    check(json.loads(body)["entries"] == [], "filter by reason")
    # By client address: entries carry ip:port; the address alone finds them.
    st, h, body = root.request(a.url + "/api/v1/logs/security?ip=127.0.0.1&host=intranet.corp")
    by_ip = json.loads(body)["entries"]
    check(st == 200 and by_ip and by_ip[0]["client"].startswith("127.0.0.1:"),
          "filter by address: %r" % by_ip)
    st, h, body = root.request(a.url + "/api/v1/logs/security?ip=" + by_ip[0]["client"])
    check(json.loads(body)["entries"] and all(e["client"] == by_ip[0]["client"]
                                              for e in json.loads(body)["entries"]),
          "filter by address and port")
    st, h, body = root.request(a.url + "/api/v1/logs/security?ip=127.0.0.2")
    check(json.loads(body)["entries"] == [], "another address matched")
    st, h, body = root.request(a.url + "/api/v1/logs/audit?limit=3")
    acts = [e["action"] for e in json.loads(body)["entries"]]
    check(st == 200 and acts[0] == "rollback", "audit log, newest first: %r" % acts)
    viewer = a.browser("viewer")
    st, h, body = viewer.request(a.url + "/api/v1/logs/audit")
    check(st == 403, "a read-only user read the audit log: %d" % st)
    # Users: only a user admin, and only with the password given again.
    st, me_u = a.whoami(ua)
    st, h, body = root.request(a.url + "/api/v1/users")
    check(st == 403, "an admin (not user admin) listed users: %d" % st)
    form = {"name": "newbie", "role": "operator", "password": "newbie password 1"}
    st, h, body = ua.request(a.url + "/api/v1/users", data=form,
                             headers={"X-CSRF-Token": me_u["csrf"]})
    check(st == 403 and b"current_password" in body, "no re-authentication: %d" % st)
    form["current_password"] = PW["users"]
    st, h, body = ua.request(a.url + "/api/v1/users", data=form,
                             headers={"X-CSRF-Token": me_u["csrf"]})
    check(st == 201, "create user: %d %r" % (st, body))
    st, h, body = ua.request(a.url + "/api/v1/users")
    names = [u["name"] for u in json.loads(body)["users"]]
    check("newbie" in names, "users: %r" % names)
    nb = a.browser()
    st, h, body = a.login(nb, "newbie", "newbie password 1")
    check(st == 303, "new user signs in: %d" % st)


@test
def admin_inventory_services_and_certificates(env):
    a = Admin(env)
    viewer = a.browser("viewer")
    st, h, body = viewer.request(a.url + "/api/v1/services")
    j = json.loads(body)
    check(st == 200 and h["ETag"] == '"%s"' % j["version"], "services: %d" % st)
    pub = [s for s in j["services"] if s["name"] == "public"][0]
    check(pub["allowed_hosts"] == ["localhost"] and pub["allowed_dirs"] == ["/*"] and
          [x["name"] for x in pub["servers"]] == ["web1", "web2"] and
          pub["scheduler"] == "least-conn", "public service: %r" % pub)
    adm = [s for s in j["services"] if s["name"] == "admin"][0]
    check(adm["app"] == "admin" and adm["servers"] == [], "admin service: %r" % adm)
    st, h, body = viewer.request(a.url + "/api/v1/certificates")
    certs = json.loads(body)["certificates"]
    check(st == 200 and len(certs) == 1 and certs[0]["name"] == "main", "certs: %r" % certs)
    c = certs[0]
    check("DNS:localhost" in c["sans"] and int(c["days_left"]) > 0 and c["key"], "cert: %r" % c)
    check(b"PRIVATE KEY" not in body, "a private key in the answer")


@test
def admin_idp_import_and_sp_metadata_download(env):
    """Upload a real IdP's metadata (SimpleSAMLphp): the record lands in
    the config with its certificate file, is listed, and its SP metadata
    downloads, and SimpleSAMLphp accepts that metadata's signature."""
    from saml_idp import Idp
    from t_j_saml import sp_cert
    idp = Idp(env, "adm")
    a = Admin(env, extra=sp_cert(env))
    root = a.browser("root")
    st, me = a.whoami(root)
    md = idp.metadata()
    before = open(a.conf).read()
    v = a.version(root)
    path = "/api/v1/identity-providers/import?name=Corp%20SSO&sp_certificate=sp" \
           "&sp_entity_id=https://localhost/saml"
    viewer = a.browser("viewer")
    st, me_v = a.whoami(viewer)
    st, h, body = viewer.request(a.url + path, data=md,
                                 headers={"X-CSRF-Token": me_v["csrf"], "If-Match": '"%s"' % v})
    check(st == 403, "a read-only user imported: %d" % st)
    st, h, body = root.request(a.url + path, data=b"<md:EntityDescriptor/>",
                               headers={"X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % v})
    check(st == 422 and open(a.conf).read() == before, "bad metadata: %d %r" % (st, body))
    st, h, body = root.request(a.url + path, data=md,
                               headers={"X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % v})
    j = json.loads(body)
    check(st == 201 and j["certificates"] == 1, "import: %d %r" % (st, body))
    after = open(a.conf).read()
    check(after.startswith(before) and 'identity-provider "Corp SSO"' in after and
          j["uuid"] in after, "config after import:\n%s" % after[len(before):])
    st, h, body = root.request(a.url + "/api/v1/identity-providers")
    listed = json.loads(body)["identity_providers"]
    check(len(listed) == 1 and listed[0]["idp_entity_id"] == idp.entity_id, "%r" % listed)
    st, h, xml = root.request(a.url + "/api/v1/identity-providers/%s/metadata" % j["uuid"])
    check(st == 200 and b"SPSSODescriptor" in xml and
          "attachment" in h.get("Content-Disposition", ""), "metadata: %d %r" % (st, xml[:200]))
    idp.register_sp(xml)  # SimpleSAMLphp checks the signature


@test
def admin_service_blocks_add_modify_delete(env):
    """Whole service blocks through the API: read one as written, modify it
    (only its bytes change), add one, delete one; a block that does not
    parse or breaks a reference is 422 with file:line:col and changes
    nothing; each change takes effect by hot reload."""
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    hd = lambda v: a.edit_headers(me, v)
    st, h, body = root.request(a.url + "/api/v1/services/public/block")
    j = json.loads(body)
    check(st == 200 and j["block"].startswith("service public {") and j["block"].endswith("}"),
          "block: %d %r" % (st, body[:200]))
    before = open(a.conf).read()
    newblock = j["block"].replace("allowed-dirs /*", "allowed-dirs /whoami /healthcheck.html")
    st, h, body = root.request(a.url + "/api/v1/services/public/block",
                               data=newblock.encode(), headers=hd(j["version"]))
    check(st == 200, "modify: %d %r" % (st, body))
    after = open(a.conf).read()
    check(after == before.replace(j["block"], newblock), "more than the block changed")
    wait_until(lambda: status_of(env, "https://localhost:%d/other" % a.pub) == 403,
               timeout=5, what="the new allowed-dirs in force")
    check(Browser(env.ca).request("https://localhost:%d/whoami" % a.pub)[0] == 200,
          "an allowed directory is refused")
    v = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/services/public/block",
                               data=b"service public {\n listen 127.0.0.1:1\n certificate nope\n"
                                    b" app status\n}", headers=hd(v))
    check(st == 422 and b"no certificate named 'nope'" in body and b":" in body,
          "bad reference: %d %r" % (st, body))
    check(open(a.conf).read() == after, "a refused change touched the file")
    st, h, body = root.request(a.url + "/api/v1/services/public/block", data=b"service x {",
                               headers=hd(v))
    check(st == 422, "unparsable block: %d" % st)
    st, h, body = root.request(a.url + "/api/v1/services/public/block",
                               data=b"workers 3\nservice p2 {\n listen 127.0.0.1:2\n app status\n}",
                               headers=hd(v))
    check(st == 422 and b"exactly one service block" in body, "smuggled directive: %d" % st)
    port = free_port()
    add = ("service added {\n    listen 127.0.0.1:%d\n    certificate main\n"
           "    allowed-hosts localhost\n    allowed-dirs /*\n    app status\n}" % port).encode()
    st, h, body = root.request(a.url + "/api/v1/services", data=add, headers=hd(v))
    check(st == 201, "add: %d %r" % (st, body))
    wait_until(lambda: status_of(env, "https://localhost:%d/healthcheck.html" % port)
               == 200, timeout=5, what="the added service listening")
    v = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/services/added/delete", data=b"", headers=hd(v))
    check(st == 200 and "service added" not in open(a.conf).read(), "delete: %d" % st)
    ops = a.browser("ops")
    st, me_o = a.whoami(ops)
    v = a.version(ops)
    st, h, body = ops.request(a.url + "/api/v1/services", data=add,
                              headers={"X-CSRF-Token": me_o["csrf"], "If-Match": '"%s"' % v})
    check(st == 403, "an operator added a service: %d" % st)


@test
def admin_meetings_list_create_end(env):
    """Meetings from the admin application: an admin creates a room, an
    operator ends it (content shredded), a read-only user can only look; no
    PIN or key is ever in the list; a room may name only a group the
    running configuration defines."""
    from t_l_meetings import staff_group
    a = Admin(env, extra=staff_group(env))
    root, ops, viewer = a.browser("root"), a.browser("ops"), a.browser("viewer")
    st, me = a.whoami(root)
    st, h, body = root.request(a.url + "/api/v1/meetings",
                               data={"alias": "board", "host_pin": "1234", "guest_pin": "5678",
                                     "authentication": "guests", "idp_group": "staff"},
                               headers={"X-CSRF-Token": me["csrf"]})
    m = json.loads(body)
    check(st == 201 and m["uri"].startswith("gh-meet:board."), "create: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/meetings",
                               data={"alias": "bad", "guest_pin": "5678"},
                               headers={"X-CSRF-Token": me["csrf"]})
    check(st == 422 and b"Host PIN" in body, "guest PIN alone: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/meetings",
                               data={"alias": "nogroup", "authentication": "both",
                                     "idp_group": "partners"},
                               headers={"X-CSRF-Token": me["csrf"]})
    check(st == 422 and b"identity-provider-group" in body, "unknown group: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/meetings/board", data={"idp_group": "partners"},
                               headers={"X-CSRF-Token": me["csrf"]})
    check(st == 422 and b"identity-provider-group" in body, "changed to an unknown group: %d %r" %
          (st, body))
    st, h, body = viewer.request(a.url + "/api/v1/meetings")
    lst = json.loads(body)["meetings"]
    check(st == 200 and lst[0]["alias"] == "board" and lst[0]["host_pin_set"] is True and
          b"1234" not in body and m["conference_key"].encode() not in body, "list: %r" % body)
    st, body = a.post(viewer, "/api/v1/meetings/board/end")
    check(st == 403, "a read-only user ended a meeting: %d" % st)
    st, body = a.post(ops, "/api/v1/meetings/board/end")
    check(st == 200, "operator end: %d %r" % (st, body))
    st, body = a.post(ops, "/api/v1/meetings/board/delete")
    check(st == 403, "an operator deleted a room: %d" % st)
    acts = [(e["action"], e["result"]) for e in a.audit()]
    check(("meeting-create", "ok") in acts and ("meeting-end", "ok") in acts, "audit: %r" % acts)
    check(not any("1234" in json.dumps(e) for e in a.audit()), "a PIN in the audit log")


@test
def admin_transaction_commits_several_changes_at_once(env):
    a = Admin(env)
    root, ops = a.browser("root"), a.browser("ops")
    st, me = a.whoami(root)
    h0 = {"X-CSRF-Token": me["csrf"]}
    st, h, body = root.request(a.url + "/api/v1/transactions", data=b"", headers=h0)
    tx = json.loads(body)["id"]
    check(st == 201 and len(tx) == 32, "open: %d %r" % (st, body))
    port = free_port()
    block = ("service extra {\n    listen 127.0.0.1:%d\n    certificate main\n"
             "    allowed-hosts localhost\n    allowed-dirs /*\n    app status\n}" % port)
    for form in ({"op": "server-state", "service": "public", "server": "web1", "state": "drain"},
                 {"op": "server-weight", "service": "public", "server": "web2", "weight": "4"},
                 {"op": "service-add", "block": block}):
        st, h, body = root.request(a.url + "/api/v1/transactions/" + tx, data=form, headers=h0)
        check(st == 200, "stage %r: %d %r" % (form["op"], st, body))
    st, h, body = root.request(a.url + "/api/v1/transactions/" + tx,
                               data={"op": "server-state", "service": "public"}, headers=h0)
    check(st == 422, "an incomplete change was staged: %d" % st)
    st, me_o = a.whoami(ops)
    st, h, body = ops.request(a.url + "/api/v1/transactions/" + tx,
                              headers={"X-CSRF-Token": me_o["csrf"]})
    check(st == 403, "an operator saw an admin's transaction: %d" % st)
    before = open(a.conf).read()
    v = a.version(root)
    check(before == open(a.conf).read(), "staging touched the file")
    st, h, body = root.request(a.url + "/api/v1/transactions/%s/commit" % tx, data=b"",
                               headers=dict(h0, **{"If-Match": '"%s"' % v}))
    check(st == 200, "commit: %d %r" % (st, body))
    after = open(a.conf).read()
    check(re.search(r"server web1 127\.0\.0\.1:\d+ state drain", after) and
          re.search(r"server web2 127\.0\.0\.1:\d+ weight 4", after) and "service extra" in after,
          "not all three changes: %s" % after)
    hist = history_versions(env)
    check(len(hist) == 1, "one commit, one history entry: %r" % hist)
    wait_until(lambda: status_of(env, "https://localhost:%d/healthcheck.html" % port)
               == 200, timeout=5, what="the added service")
    # A transaction whose second change fails commits nothing.
    st, h, body = root.request(a.url + "/api/v1/transactions", data=b"", headers=h0)
    tx2 = json.loads(body)["id"]
    for form in ({"op": "server-state", "service": "public", "server": "web1", "state": "up"},
                 {"op": "server-state", "service": "public", "server": "ghost", "state": "up"}):
        root.request(a.url + "/api/v1/transactions/" + tx2, data=form, headers=h0)
    v = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/transactions/%s/commit" % tx2, data=b"",
                               headers=dict(h0, **{"If-Match": '"%s"' % v}))
    check(st == 422 and b"change 2" in body and b"ghost" in body, "failing tx: %d %r" % (st, body))
    check(open(a.conf).read() == after, "a failed transaction changed the file")


@test
def admin_certificates_selfsigned_and_csr_workflow(env):
    """Certificates from the API: a self-signed one added as a block; a CSR
    whose key never leaves the box, signed here by the test CA, and the
    issued chain imported (a chain for another key is refused)."""
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    hd = lambda: a.edit_headers(me, a.version(root))
    st, h, body = root.request(a.url + "/api/v1/certificates/selfsigned",
                               data={"name": "lab", "cn": "lab.example.com",
                                     "sans": "DNS:lab.example.com", "rsa": "2048"}, headers=hd())
    check(st == 201, "self-signed: %d %r" % (st, body))
    check("certificate lab {" in open(a.conf).read(), "no block for lab")
    st, h, body = root.request(a.url + "/api/v1/certificates")
    c = [x for x in json.loads(body)["certificates"] if x["name"] == "lab"][0]
    check("lab.example.com" in c["subject"] and c["key"].startswith("RSA"), "%r" % c)
    st, h, csr = root.request(a.url + "/api/v1/certificates/csr",
                              data={"name": "meet", "cn": "meet.example.com",
                                    "sans": "DNS:meet.example.com"}, headers=hd())
    check(st == 201 and b"BEGIN CERTIFICATE REQUEST" in csr and b"PRIVATE" not in csr,
          "csr: %d %r" % (st, csr[:100]))
    csrf, crt = env.path("meet.csr"), env.path("meet-issued.pem")
    with open(csrf, "wb") as f:
        f.write(csr)
    subprocess.run(["openssl", "x509", "-req", "-in", csrf, "-CA", env.ca, "-CAkey",
                    env.path("ca.key"), "-out", crt, "-days", "30", "-copy_extensions", "copy"],
                   check=True, capture_output=True)
    wrong = open(env.cert, "rb").read()  # a chain for another key
    st, h, body = root.request(a.url + "/api/v1/certificates/meet/issued", data=wrong,
                               headers=hd())
    check(st == 422 and b"does not match" in body, "a chain for another key: %d %r" % (st, body))
    issued = open(crt, "rb").read() + open(env.ca, "rb").read()
    st, h, body = root.request(a.url + "/api/v1/certificates/meet/issued", data=issued,
                               headers=hd())
    check(st == 201, "issued: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/certificates")
    names = [x["name"] for x in json.loads(body)["certificates"]]
    check("meet" in names and b"PRIVATE KEY" not in body, "certs: %r" % names)
    key = env.path("gatehouse-state/admin/certs/meet.key")
    check(oct(os.stat(key).st_mode & 0o777) == "0o600", "key mode")


@test
def admin_backup_and_restore(env):
    """A passphrase-encrypted backup of the configuration and the files it
    names; after changes and a lost key file, a restore (asking for the
    admin's password again) brings both back; a wrong passphrase or a
    damaged bundle changes nothing."""
    import urllib.request
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    st, h, bundle = root.request(a.url + "/api/v1/system/backup",
                                 data={"passphrase": "backup passphrase 1"},
                                 headers={"X-CSRF-Token": me["csrf"]})
    check(st == 200 and bundle[:4] == b"GHB1" and "attachment" in h["Content-Disposition"],
          "backup: %d %r" % (st, bundle[:40]))
    check(b"BEGIN" not in bundle and b"service public" not in bundle, "the bundle is not encrypted")
    original = open(a.conf).read()
    key_before = open(env.key, "rb").read()
    st, j = a.set_state(root, "web1", "drain", a.version(root), csrf=me["csrf"])
    check(st == 200, "change before restore: %d" % st)
    with open(env.key, "wb") as f:  # a key damaged on disk
        f.write(b"garbage")
    os.chmod(env.key, 0o600)

    def restore(data, passphrase, password, version):
        req = urllib.request.Request(a.url + "/api/v1/system/restore", data=data, headers={
            "X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % version,
            "X-Backup-Passphrase": passphrase, "X-Current-Password": password,
            "Content-Type": "application/octet-stream"})
        try:
            with root.opener.open(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
    v = a.version(root)
    st, body = restore(bundle, "backup passphrase 1", "not my password", v)
    check(st == 403, "restore without re-authentication: %d" % st)
    st, body = restore(bundle, "wrong passphrase 22", PW["root"], v)
    check(st == 422 and b"does not decrypt" in body, "wrong passphrase: %d %r" % (st, body))
    damaged = bytearray(bundle)
    damaged[60] ^= 1
    st, body = restore(bytes(damaged), "backup passphrase 1", PW["root"], v)
    check(st == 422, "damaged bundle: %d" % st)
    check(open(env.key, "rb").read() == b"garbage", "a refused restore wrote files")
    # A bundle (well encrypted) naming a file outside the state and config
    # folders: refused whole, nothing written there or anywhere.
    import hashlib
    import struct
    import tempfile
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    outside = tempfile.mkdtemp(prefix="gh-outside-")
    try:
        def entry(path, data):
            return struct.pack(">I", len(path)) + path.encode() + struct.pack(">Q", len(data)) + data
        salt, iv = os.urandom(16), os.urandom(12)
        k = hashlib.pbkdf2_hmac("sha256", b"crafted passphrase 9", salt, 600000, 32)
        plain = entry("@config", original.encode()) + entry(env.key, key_before) + \
            entry(os.path.join(outside, "evil"), b"* * * * * root id\n")
        crafted = b"GHB1" + salt + iv + AESGCM(k).encrypt(iv, plain, None)
        st, body = restore(crafted, "crafted passphrase 9", PW["root"], v)
        check(st == 422 and b"outside" in body, "a path outside: %d %r" % (st, body))
        check(os.listdir(outside) == [] and open(env.key, "rb").read() == b"garbage",
              "a refused restore wrote files")
    finally:
        os.rmdir(outside) if not os.listdir(outside) else None
    st, body = restore(b"GHB1" + b"\0" * (2 * 1024 * 1024), "backup passphrase 1", PW["root"], v)
    check(st == 422, "a 2 MiB bundle is read (not 413): %d" % st)
    st, body = restore(b"GHB1" + b"\0" * (17 * 1024 * 1024), "backup passphrase 1", PW["root"], v)
    check(st == 413, "a 17 MiB bundle: %d" % st)
    st, body = restore(bundle, "backup passphrase 1", PW["root"], v)
    check(st == 200, "restore: %d %r" % (st, body))
    check(open(a.conf).read() == original, "the configuration is not the backed-up one")
    check(open(env.key, "rb").read() == key_before, "the key file is not restored")
    acts = [(e["action"], e["result"]) for e in a.audit()]
    check(("backup", "ok") in acts and ("restore", "ok") in acts and
          ("restore", "wrong-passphrase") in acts, "audit: %r" % acts)


def bundle_entries(bundle, passphrase):
    """{path: data} of a backup bundle, decrypted here (PBKDF2 and AES-GCM as
    web-ui/backup.c documents), not by gatehouse."""
    import hashlib
    import struct
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    k = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), bundle[4:20], 600000, 32)
    plain = AESGCM(k).decrypt(bundle[20:32], bundle[32:], None)
    out, off = {}, 0
    while off < len(plain):
        pl = struct.unpack(">I", plain[off:off + 4])[0]
        path = plain[off + 4:off + 4 + pl].decode()
        dl = struct.unpack(">Q", plain[off + 4 + pl:off + 12 + pl])[0]
        out[path] = plain[off + 12 + pl:off + 12 + pl + dl]
        off += 12 + pl + dl
    return out, plain


def bundle_of(entries, passphrase):
    import hashlib
    import struct
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    plain = b"".join(struct.pack(">I", len(p)) + p.encode() + struct.pack(">Q", len(d)) + d
                     for p, d in entries.items())
    salt, iv = os.urandom(16), os.urandom(12)
    k = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, 600000, 32)
    return b"GHB1" + salt + iv + AESGCM(k).encrypt(iv, plain, None)


@test
def admin_backup_carries_meetings_without_a_secret_and_restores_them(env):
    """The bundle carries the meeting database (rooms, verifiers, wrapped
    slide keys): decrypted here, neither it nor the database file holds a PIN,
    the conference key, a slide key, the key-encryption key or a slide. A
    restore brings back the rooms as they were (a PIN changed after the
    backup works no more, the old one does; a room made after it is gone)
    and the slide still decrypts; a bundle whose slide keys do not unwrap
    under this appliance's key-encryption key changes nothing."""
    import base64
    import sqlite3
    import tempfile
    import urllib.request
    a = Admin(env)
    conf_port = a.add_conference()
    curl_base = "https://localhost:%d" % conf_port
    root = a.browser("root")
    st, me = a.whoami(root)
    hd = {"X-CSRF-Token": me["csrf"]}
    host_pin, guest_pin = "90817263", "55443322"
    st, h, body = root.request(a.url + "/api/v1/meetings", headers=hd,
                               data={"alias": "vault", "host_pin": host_pin,
                                     "guest_pin": guest_pin})
    m = json.loads(body)
    check(st == 201, "create: %d %r" % (st, body))
    b = Browser(env.ca)

    def join(meeting, pin):
        st, h, body = b.request(curl_base + "/api/v1/meetings/join",
                                data={"uri": meeting["uri"], "key": meeting["conference_key"],
                                      "pin": pin})
        return st, json.loads(body)
    st, j = join(m, host_pin)
    check(st == 200, "host join: %d %r" % (st, j))
    slide = b"%PDF-1.4 quarterly figures " + os.urandom(2000)
    st, h, body = b.request(curl_base + "/api/v1/meetings/content?name=q3.pdf", data=slide,
                            headers={"Authorization": "Bearer " + j["token"]})
    check(st == 201, "upload: %d %r" % (st, body))
    st, h, body = b.request(curl_base + "/api/v1/meetings/manifest",
                            headers={"Authorization": "Bearer " + j["token"]})
    res = json.loads(body)["resources"][0]
    slide_key = base64.b64decode(res["key"])
    st, h, bundle = root.request(a.url + "/api/v1/system/backup", headers=hd,
                                 data={"passphrase": "backup passphrase 1"})
    check(st == 200, "backup: %d" % st)
    entries, plain = bundle_entries(bundle, "backup passphrase 1")
    check("@meetings" in entries and entries["@meetings"][:16] == b"SQLite format 3\0",
          "no meeting database in the bundle: %r" % list(entries))
    kek = open(env.path("gatehouse-state/conference/slides.kek"), "rb").read()
    db_file = open(env.path("gatehouse-state/conference/meetings.db"), "rb").read()
    secrets = {"host PIN": host_pin.encode(), "guest PIN": guest_pin.encode(),
               "conference key": m["conference_key"].encode(), "slide key": slide_key,
               "slide key (base64)": res["key"].encode(), "key-encryption key": kek,
               "key-encryption key (hex)": kek.hex().encode(), "the slide": slide[:40]}
    for what, secret in secrets.items():
        check(secret not in plain, "%s in the backup bundle" % what)
        check(secret not in db_file, "%s in meetings.db" % what)
    check(not [p for p in entries if "slides.kek" in p], "the KEK file is in the bundle")
    # The rooms it holds are readable as rooms (by sqlite, from the bundle).
    tmp = tempfile.NamedTemporaryFile(suffix=".db", delete=False)
    tmp.write(entries["@meetings"])
    tmp.close()
    db = sqlite3.connect(tmp.name)
    check([r[0] for r in db.execute("SELECT alias FROM meetings")] == ["vault"], "rooms")
    db.close()
    # After the backup: the Host PIN changes, another room is made.
    st, h, body = root.request(a.url + "/api/v1/meetings/vault", headers=hd,
                               data={"host_pin": "11112222"})
    check(st == 200, "PIN change: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/meetings", headers=hd, data={"alias": "later"})
    check(st == 201, "second room: %d %r" % (st, body))

    def restore(data):
        req = urllib.request.Request(a.url + "/api/v1/system/restore", data=data, headers={
            "X-CSRF-Token": me["csrf"], "If-Match": '"%s"' % a.version(root),
            "X-Backup-Passphrase": "backup passphrase 1", "X-Current-Password": PW["root"],
            "Content-Type": "application/octet-stream"})
        try:
            with root.opener.open(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
    # A bundle whose one wrapped key was made under another KEK (a byte of
    # it changed): refused, the store as it is.
    db = sqlite3.connect(tmp.name)
    (blob,) = db.execute("SELECT key FROM resources").fetchone()
    db.execute("UPDATE resources SET key = ?", (bytes([blob[0] ^ 1]) + blob[1:],))
    db.commit()
    db.close()
    forged = dict(entries)
    forged["@meetings"] = open(tmp.name, "rb").read()
    os.unlink(tmp.name)
    st, body = restore(bundle_of(forged, "backup passphrase 1"))
    check(st in (409, 422, 500) and b"another key-encryption key" in body,
          "a store under another KEK: %d %r" % (st, body))
    st, j = join(m, "11112222")
    check(st == 200, "a refused restore changed the store: %d %r" % (st, j))
    forged["@meetings"] = b"SQLite format 3\0" + os.urandom(8192)
    st, body = restore(bundle_of(forged, "backup passphrase 1"))
    check(st != 200 and b"meeting store" in body, "a damaged store: %d %r" % (st, body))
    st, body = restore(bundle)
    check(st == 200, "restore: %d %r" % (st, body))
    st, j = join(m, "11112222")
    check(st == 403, "the PIN set after the backup still works: %d %r" % (st, j))
    st, j = join(m, host_pin)
    check(st == 200 and j["role"] == "host", "the backed-up PIN: %d %r" % (st, j))
    st, h, body = root.request(a.url + "/api/v1/meetings")
    check([x["alias"] for x in json.loads(body)["meetings"]] == ["vault"],
          "rooms after the restore: %r" % body)
    st, h, stored = b.request(curl_base + res["url"],
                              headers={"Authorization": "Bearer " + j["token"]})
    from t_l_meetings import decrypt
    check(st == 200 and decrypt(stored, res["key"]) == slide, "the slide after the restore")


@test
def admin_browser_live_page_keeps_typing_and_idle_signs_out(env):
    """In Debian's chromium, two sessions at once (admin-session-idle 1m):
    an admin types a weight while the statistics poll every 2 s, and the box,
    its value and the unchanged cells are the same nodes after several
    polls, focused or not; a viewer's untouched tab, polling all the while,
    is warned before the idle limit and signed out at it (polls are marked
    X-GH-Background and do not count as activity)."""
    from harness import ROOT
    a = Admin(env, extra="admin-session-idle 1m\n")
    out = env.path("shots")
    os.makedirs(out)
    r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/admin_live.mjs"), a.url, "root",
                        PW["root"], "viewer", PW["viewer"], out],
                       capture_output=True, timeout=180, cwd=os.path.join(ROOT, "tests/browser"))
    check(r.returncode == 0, "browser run: %s %s" % (r.stdout[-2000:], r.stderr[-2000:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    check(res["whileFocused"] == ["4", "typed-here", True], "while typing: %r" % res)
    check(res["afterBlur"] == ["4", "typed-here"] and res["cellKept"] == "cell",
          "after the box lost focus: %r" % res)
    check(res["refreshes"] >= 6, "the page did not poll: %r" % res)
    check("signed out in" in res["warning"] and 25 <= res["warnedAfter"] <= 60,
          "idle warning: %r" % res)
    check(55 <= res["signedOutAfter"] <= 75 and "/login" in res["loginUrl"],
          "idle sign-out of a polling tab: %r" % res)
    check(not res["errors"], "page errors: %r" % res["errors"])
    # The server's side: the viewer's session is gone, the weight unchanged.
    check("weight 4" not in open(a.conf).read(), "a typed weight was saved without 'set'")


@test
def admin_browser_meeting_invitation_live_waiting_room_and_end(env):
    """In Debian's chromium: creating a meeting shows its invitation once
    (URI, conference key, copy buttons, an e-mail text naming the join
    page); the test joins with exactly what the page showed, as a device, and
    the waiting room row appears without a reload; the admin admits it, it
    shows among the participants; ending says what was shredded and the
    row turns to ended with a reopen button."""
    from harness import ROOT
    from t_l_meetings import staff_group
    a = Admin(env, extra=staff_group(env))
    conf_port = a.add_conference()
    out = env.path("shots")
    os.makedirs(out)
    p = subprocess.Popen(["node", os.path.join(ROOT, "tests/browser/admin_meetings.mjs"), a.url,
                          "root", PW["root"], out], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=os.path.join(ROOT, "tests/browser"))
    inv_file = os.path.join(out, "invitation.json")
    try:
        wait_until(lambda: os.path.exists(inv_file) or p.poll() is not None, 60,
                   "the invitation shown in the page")
    finally:
        if not os.path.exists(inv_file):
            p.kill()
    if not os.path.exists(inv_file):
        check(False, "no invitation: %r" % (p.communicate()[1][-2000:],))
    with open(inv_file) as f:
        inv = json.load(f)
    check(inv["uri"].startswith("gh-meet:townhall.") and len(inv["key"]) == 32 and
          inv["copies"] == 2, "invitation: %r" % inv)
    check(inv["uri"] in inv["mail"] and inv["key"] in inv["mail"] and
          ("https://localhost:%d/join" % conf_port) in inv["mail"] and
          "PIN comes separately" in inv["mail"] and "2468" not in inv["mail"],
          "e-mail text: %r" % inv["mail"])
    b = Browser(env.ca)
    base = "https://localhost:%d" % conf_port
    st, h, body = b.request(base + "/api/v1/meetings/join",
                            data={"uri": inv["uri"], "key": inv["key"], "client": "device",
                                  "name": "Phone"})
    check(st == 202, "the device join with the invitation: %d %r" % (st, body))
    wid = json.loads(body)["waiting"]
    # The device polls as a device does (once a second) until a Host lets it
    # in, which the admin does in the page meanwhile.
    import time
    admitted = {}
    deadline = time.time() + 60
    while time.time() < deadline and p.poll() is None:
        st, h, body = b.request(base + "/api/v1/meetings/waiting/" + wid)
        if st != 202:
            admitted = {"status": st, "body": json.loads(body)}
            break
        time.sleep(1)
    check(admitted.get("status") == 200 and admitted["body"]["role"] == "guest",
          "the device was not let in: %r" % admitted)
    so, se = p.communicate(timeout=120)
    rest = so.decode().strip().splitlines()
    check(p.returncode == 0 and rest, "browser run: %r %r" % (rest[-3:], se[-2000:]))
    res = json.loads(rest[-1])
    check("Phone" in res["waiter"] and res["admitMessage"] == "Phone: admitted",
          "admit: %r" % res)
    check(res["participants"] == ["Phone (guest)"] or "Phone (guest)" in res["participants"],
          "participants: %r" % res)
    check(res["endMessage"].startswith("townhall ended: 0 resource(s) shredded") and
          res["state"] == "ended", "end: %r" % res)
    check(not res["errors"], "page errors: %r" % res["errors"])
    st, h, body = b.request(base + "/api/v1/meetings/join",
                            data={"uri": inv["uri"], "key": inv["key"], "pin": "2468"})
    check(st == 410, "a join after the end: %d" % st)


@test
def admin_meeting_pin_reset_and_reopen_from_the_admin_api(env):
    """An operator resets a room's PIN back-off from the admin application
    (the source slowed down joins at once afterwards) and reopens an ended
    meeting; a read-only user may do neither; both are audited."""
    b = Browser(env.ca)
    a = Admin(env)
    conf_port = a.add_conference()
    base = "https://localhost:%d" % conf_port
    root, ops, viewer = a.browser("root"), a.browser("ops"), a.browser("viewer")
    st, me = a.whoami(root)
    st, h, body = root.request(a.url + "/api/v1/meetings", headers={"X-CSRF-Token": me["csrf"]},
                               data={"alias": "guarded", "host_pin": "424242"})
    m = json.loads(body)

    def join(pin):
        st, h, body = b.request(base + "/api/v1/meetings/join",
                                data={"uri": m["uri"], "key": m["conference_key"], "pin": pin})
        return st, json.loads(body)
    for i in range(3):
        check(join("%06d" % i)[0] == 403, "wrong PIN %d" % i)
    st, j = join("424242")
    check(st == 429 and j["outcome"] == "too-many-attempts", "back-off: %d %r" % (st, j))
    st, body = a.post(viewer, "/api/v1/meetings/guarded/pin-reset")
    check(st == 403, "a read-only user reset the PIN back-off: %d" % st)
    st, body = a.post(ops, "/api/v1/meetings/guarded/pin-reset")
    check(st == 200, "operator pin-reset: %d %r" % (st, body))
    st, j = join("424242")
    check(st == 200 and j["role"] == "host", "after the reset: %d %r" % (st, j))
    st, body = a.post(ops, "/api/v1/meetings/guarded/end")
    e = json.loads(body)
    check(st == 200 and e["ended"] == "guarded" and e["tokens_revoked"] is True and
          e["resources_shredded"] == 0, "end report: %d %r" % (st, e))
    check(join("424242")[0] == 410, "joined an ended meeting")
    st, body = a.post(viewer, "/api/v1/meetings/guarded/reopen")
    check(st == 403, "a read-only user reopened: %d" % st)
    st, body = a.post(ops, "/api/v1/meetings/guarded/reopen")
    check(st == 200 and join("424242")[0] == 200, "reopen: %d %r" % (st, body))
    acts = [(e["action"], e["result"]) for e in a.audit()]
    check(("meeting-pin-reset", "ok") in acts and ("meeting-reopen", "ok") in acts,
          "audit: %r" % acts)


@test
def admin_browser_two_tabs_stale_edit_refused_with_three_way_view(env):
    """Two tabs of one admin in chromium: a text edit opened before another
    tab drained a server is refused on save (412) with base, theirs and yours
    side by side; the drain is still in the file; starting again from theirs
    saves both. The structured form opened before a change is refused in
    words the same way. Nothing is overwritten silently."""
    from harness import ROOT
    a = Admin(env)
    out = env.path("shots")
    os.makedirs(out)
    r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/admin_twotabs.mjs"), a.url,
                        "root", PW["root"], out],
                       capture_output=True, timeout=180, cwd=os.path.join(ROOT, "tests/browser"))
    check(r.returncode == 0, "browser run: %s %s" % (r.stdout[-2000:], r.stderr[-2000:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    c = res["conflict"]
    check("nothing of yours was saved" in c["message"], "conflict message: %r" % c)
    check("state drain" not in c["base"] and "state drain" in c["theirs"] and
          "state drain" not in c["yours"] and "# edited in tab A" in c["yours"] and
          "# edited in tab A" not in c["theirs"], "three texts: %r" % c)
    check([t.split(":")[0] for t in c["titles"]] == ["Base", "Theirs", "Yours"], "titles: %r" % c)
    check(res["restartHasDrain"] and res["saved"].startswith("Saved"), "restart: %r" % res)
    check(res["formMessage"].startswith("Not saved: someone changed the configuration"),
          "stale form: %r" % res["formMessage"])
    conf = open(a.conf).read()
    check("# edited in tab A" in conf and conf.count("state drain") == 2 and
          "idle-timeout 77s" not in conf, "the file: %s" % conf)
    check(not res["errors"], "page errors: %r" % res["errors"])
    acts = [(e["action"], e["result"]) for e in a.audit()]
    check(sum(1 for x in acts if x[1] == "stale") == 2, "stale saves audited: %r" % acts)
    import shutil
    os.makedirs(os.path.join(ROOT, "build", "test-screens"), exist_ok=True)
    shutil.copy(os.path.join(out, "three-way.png"), os.path.join(ROOT, "build", "test-screens"))


@test
def admin_browser_graphs_render_from_real_traffic(env):
    """While the test sends requests through service public, the Statistics
    page draws the last hour from the in-memory history (fed from the same
    counters as /metrics): the request chart rises above zero, each real
    server has a health timeline, the certificates page a bar per
    certificate; the screenshot of the graphs holds the request line's
    colour."""
    import threading
    import time
    from harness import ROOT
    from t_l_meetings import png_decode
    a = Admin(env)
    out = env.path("shots")
    os.makedirs(out)
    stop = threading.Event()
    sent = [0]

    def traffic():
        b = Browser(env.ca)
        end = time.time() + 60
        while not stop.is_set() and time.time() < end:
            b.request("https://localhost:%d/" % a.pub)
            sent[0] += 1
            time.sleep(0.02)
    t = threading.Thread(target=traffic, daemon=True)
    t.start()
    try:
        r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/admin_graphs.mjs"), a.url,
                            "root", PW["root"], out], capture_output=True, timeout=120,
                           cwd=os.path.join(ROOT, "tests/browser"))
    finally:
        stop.set()
        t.join(timeout=10)
    check(r.returncode == 0, "browser run: %s %s" % (r.stdout[-2000:], r.stderr[-2000:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    check(sent[0] > 20 and res["requests"]["points"] >= 3 and res["requests"]["peak"] > 0.5 and
          res["requests"]["lines"] == 1, "request chart: %r after %d requests" % (res, sent[0]))
    check(sorted(x[0] for x in res["healthLines"]) == ["web1", "web2"] and
          all(x[1] >= 2 and x[2] == 0 for x in res["healthLines"]), "health: %r" % res)
    check(res["certBars"] >= 1, "certificate timeline: %r" % res)
    check(not res["errors"], "page errors: %r" % res["errors"])
    px = png_decode(open(os.path.join(out, "graphs.png"), "rb").read())
    blue = sum(1 for row in px for p in row if abs(p[0] - 0x2b) < 30 and abs(p[1] - 0x6c) < 30
               and abs(p[2] - 0xb0) < 30)
    import shutil
    os.makedirs(os.path.join(ROOT, "build", "test-screens"), exist_ok=True)
    shutil.copy(os.path.join(out, "graphs.png"), os.path.join(ROOT, "build", "test-screens"))
    check(blue > 10, "the screenshot shows no request line (%d pixels of its colour)" % blue)
    # The API itself: cumulative points per series, the step.
    st, h, body = a.browser("root").request(a.url + "/api/v1/stats/history")
    j = json.loads(body)
    pub = [x for x in j["series"] if x["service"] == "public" and x["server"] == ""]
    check(st == 200 and j["step"] == 5 and pub and pub[0]["points"][-1][1] >= 20,
          "history API: %r" % pub)


@test
def admin_sessions_listed_and_ended_and_password_change(env):
    a = Admin(env)
    ops1, ops2, ua = a.browser("ops"), a.browser("ops"), a.browser("users")
    st, me = a.whoami(ua)
    st, h, body = ua.request(a.url + "/api/v1/sessions")
    ss = json.loads(body)["sessions"]
    mine = [x for x in ss if x["user"] == "ops"]
    check(st == 200 and len(mine) == 2, "sessions: %r" % ss)
    sid = ops1.cookie("__Host-gh-admin").value
    check(sid.encode() not in body, "a session id (a credential) in the list")
    st, me_o = a.whoami(ops1)
    st, h, b = ops1.request(a.url + "/api/v1/sessions")
    check(st == 403, "an operator listed sessions: %d" % st)
    st, h, b = ua.request(a.url + "/api/v1/sessions/%s/end" % mine[0]["handle"], data=b"",
                          headers={"X-CSRF-Token": me["csrf"]})
    check(st == 200, "end: %d %r" % (st, b))
    alive = [a.whoami(x)[0] for x in (ops1, ops2)]
    check(sorted(alive) == [200, 401], "one of the two sessions should be gone: %r" % alive)
    # Changing one's password asks for the current one.
    b2 = ops2 if alive[1] == 200 else ops1
    st, me2 = a.whoami(b2)
    st, h, body = b2.request(a.url + "/api/v1/password",
                             data={"current_password": "wrong one 123",
                                   "new_password": "a new password 2"},
                             headers={"X-CSRF-Token": me2["csrf"]})
    check(st == 403, "password change without the old password: %d" % st)
    st, h, body = b2.request(a.url + "/api/v1/password",
                             data={"current_password": PW["ops"],
                                   "new_password": "a new password 2"},
                             headers={"X-CSRF-Token": me2["csrf"]})
    check(st == 200, "password change: %d %r" % (st, body))
    st, h, body = a.login(Browser(env.ca), "ops", "a new password 2")
    check(st == 303, "sign-in with the new password: %d" % st)


@test
def admin_every_api_get_carries_the_version(env):
    a = Admin(env)
    b = a.browser("viewer")
    v = a.version(b)
    for path in ("/api/v1/whoami", "/api/v1/stats", "/api/v1/services", "/api/v1/certificates",
                 "/api/v1/config/history", "/api/v1/identity-providers", "/api/v1/meetings",
                 "/api/v1/logs/security"):
        st, h, body = b.request(a.url + path)
        check(st == 200 and h.get("ETag") == '"%s"' % v, "%s: %d ETag %r" % (path, st,
                                                                            h.get("ETag")))
    # The version is cached while the file is unchanged: a hand edit shows at once.
    with open(a.conf, "a") as f:
        f.write("# hand edit\n")
    st, h, body = b.request(a.url + "/api/v1/stats")
    v2 = a.version(b)
    check(v2 != v and h.get("ETag") == '"%s"' % v2, "stale ETag after a hand edit: %r" %
          h.get("ETag"))


@test
def admin_admits_from_the_waiting_room(env):
    """A device waits in a meeting (joined through the conference service);
    an operator admits it from the admin application; the device then
    collects a Guest token."""
    from t_l_meetings import staff_group
    a = Admin(env, extra=staff_group(env))
    conf_port = a.add_conference()
    root, ops = a.browser("root"), a.browser("ops")
    st, me = a.whoami(root)
    st, h, body = root.request(a.url + "/api/v1/meetings",
                               data={"alias": "lobby", "authentication": "both",
                                     "idp_group": "staff", "other_participants": "disallow-all"},
                               headers={"X-CSRF-Token": me["csrf"]})
    m = json.loads(body)
    dev = Browser(env.ca)
    st, h, body = dev.request("https://localhost:%d/api/v1/meetings/join" % conf_port,
                              data={"uri": m["uri"], "key": m["conference_key"],
                                    "client": "device", "name": "Room phone"})
    wid = json.loads(body)["waiting"]
    st, h, body = ops.request(a.url + "/api/v1/meetings")
    waiting = json.loads(body)["meetings"][0]["waiting"]
    check([w["name"] for w in waiting] == ["Room phone"], "waiting: %r" % waiting)
    st, me_o = a.whoami(ops)
    st, h, body = ops.request(a.url + "/api/v1/meetings/lobby/waiting/%s/admit" % wid, data=b"",
                              headers={"X-CSRF-Token": me_o["csrf"]})
    check(st == 200, "admit: %d %r" % (st, body))
    st, h, body = dev.request("https://localhost:%d/api/v1/meetings/waiting/%s" % (conf_port, wid))
    j = json.loads(body)
    check(st == 200 and j["role"] == "guest", "the admitted device: %d %r" % (st, j))


@test
def admin_meeting_modified_applies_to_joins(env):
    """A meeting's rules changed from the admin application: a new Host
    PIN works and the old one no longer does; participants keep their
    token unless the change revokes tokens; PINs never reach the audit;
    a read-only user and a bad rule are refused."""
    a = Admin(env)
    conf_port = a.add_conference()
    root = a.browser("root")
    st, me = a.whoami(root)
    hd = {"X-CSRF-Token": me["csrf"]}
    st, h, body = root.request(a.url + "/api/v1/meetings", headers=hd,
                               data={"alias": "team", "host_pin": "1111", "guest_pin": "2222"})
    m = json.loads(body)
    base = "https://localhost:%d/api/v1/meetings" % conf_port

    def join(pin):
        st, h, body = Browser(env.ca).request(base + "/join", data={
            "uri": m["uri"], "key": m["conference_key"], "pin": pin, "name": "P"})
        return st, json.loads(body)

    def token_ok(tok):
        st, h, body = Browser(env.ca).request(base + "/manifest",
                                              headers={"Authorization": "Bearer " + tok})
        return st == 200

    st, j = join("1111")
    check(st == 200 and j.get("role") == "host", "host before: %d %r" % (st, j))
    tok = j["token"]
    st, h, body = root.request(a.url + "/api/v1/meetings/team", headers=hd,
                               data={"host_pin": "3333"})
    check(st == 200, "modify: %d %r" % (st, body))
    check(join("1111")[1].get("role") != "host", "the old Host PIN still works")
    check(join("3333")[1].get("role") == "host", "the new Host PIN does not work")
    check(join("2222")[1].get("role") == "guest", "the Guest PIN was lost")
    check(token_ok(tok), "a token died without revoke_tokens")
    st, h, body = root.request(a.url + "/api/v1/meetings/team", headers=hd,
                               data={"guest_pin": "", "revoke_tokens": "1"})
    check(st == 200 and not token_ok(tok), "revoke: %d, token still works" % st)
    st, h, body = root.request(a.url + "/api/v1/meetings")
    t = [x for x in json.loads(body)["meetings"] if x["alias"] == "team"][0]
    check(t["host_pin_set"] and not t["guest_pin_set"] and t["uri"] == m["uri"],
          "after: %r" % t)
    for bad, why in (({"guest_pin": "3333"}, b"differ"), ({"authentication": "hosts"}, b"group"),
                     ({"host_pin": "12ab"}, b"digits"), ({"other_participants": "x"}, b"other")):
        st, h, body = root.request(a.url + "/api/v1/meetings/team", headers=hd, data=bad)
        check(st == 422 and why in body, "%r: %d %r" % (bad, st, body))
    viewer = a.browser("viewer")
    st, me_v = a.whoami(viewer)
    st, h, body = viewer.request(a.url + "/api/v1/meetings/team", data={"host_pin": "9"},
                                 headers={"X-CSRF-Token": me_v["csrf"]})
    check(st == 403, "read-only modify: %d" % st)
    st, h, body = root.request(a.url + "/api/v1/meetings/nope", headers=hd, data={"host_pin": "9"})
    check(st == 404, "unknown meeting: %d" % st)
    log = json.dumps(a.audit())
    check("3333" not in log and "1111" not in log and "meeting-modify" in log, "audit: PINs")


def changed_lines(before, after):
    """The lines only in before and only in after (a multiset difference)."""
    import collections
    b, a = collections.Counter(before.splitlines()), collections.Counter(after.splitlines())
    return sorted((b - a).elements()), sorted((a - b).elements())


@test
def admin_structured_service_form_changes_only_its_directives(env):
    """The sectioned service form's API: a block's directives as written;
    a change sends some directives and only their lines change (comments,
    order and every directive not sent stay); values that would smuggle a
    statement are 422; a stale version is 412 with the current one."""
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    hd = lambda v: a.edit_headers(me, v)
    st, h, body = root.request(a.url + "/api/v1/blocks/service/public")
    j = json.loads(body)
    names = [d["name"] for d in j["directives"]]
    check(st == 200 and h["ETag"] == '"%s"' % j["version"] and names.count("server") == 2 and
          "listen" in names, "directives: %d %r" % (st, body[:300]))
    servers = [d["value"] for d in j["directives"] if d["name"] == "server"]
    before = open(a.conf).read()
    form = {"allowed-dirs": "/whoami\n/healthcheck.html", "idle-timeout": "90s",
            "server": servers[0] + "\n" + servers[1] + " weight 3"}
    st, h, body = root.request(a.url + "/api/v1/blocks/service/public", data=form,
                               headers=hd(j["version"]))
    check(st == 200, "change: %d %r" % (st, body))
    after = open(a.conf).read()
    gone, new = changed_lines(before, after)
    check(all(("allowed-dirs" in x or "server web2" in x) for x in gone) and
          sorted(x.strip() for x in new) == sorted(["allowed-dirs /whoami",
                                                    "allowed-dirs /healthcheck.html",
                                                    "idle-timeout 90s",
                                                    "server " + servers[1] + " weight 3"]),
          "changed lines: -%r +%r" % (gone, new))
    check("    # first real server\n    server web1" in after and "# the public face" in after,
          "a comment was lost")
    wait_until(lambda: status_of(env, "https://localhost:%d/other" % a.pub) == 403,
               timeout=5, what="the new allowed-dirs in force")
    check(Browser(env.ca).request("https://localhost:%d/whoami" % a.pub)[0] == 200,
          "an allowed directory is refused")
    # Hostile values, a stale version, a read-only user: nothing changes.
    v = a.version(root)
    for bad in ({"listen": "127.0.0.1:1; app status"}, {"listen": "127.0.0.1:1 }\nworkers 9"},
                {"idle-timeout": "\"90s"}, {"Listen": "x"}, {"idle-timeout": "soon"}):
        st, h, body = root.request(a.url + "/api/v1/blocks/service/public", data=bad,
                                   headers=hd(v))
        check(st == 422 and open(a.conf).read() == after, "%r: %d %r" % (bad, st, body))
    st, h, body = root.request(a.url + "/api/v1/blocks/service/public",
                               data={"idle-timeout": "5s"}, headers=hd(j["version"]))
    check(st == 412 and json.loads(body)["version"] == v and h["ETag"] == '"%s"' % v,
          "stale: %d %r" % (st, body))
    viewer = a.browser("viewer")
    st, me_v = a.whoami(viewer)
    st, h, body = viewer.request(a.url + "/api/v1/blocks/service/public",
                                 data={"idle-timeout": "5s"},
                                 headers={"X-CSRF-Token": me_v["csrf"], "If-Match": '"%s"' % v})
    check(st == 403 and open(a.conf).read() == after, "read-only wrote: %d" % st)
    # A rule set through the same API, used by the service, then in force.
    st, h, body = root.request(a.url + "/api/v1/blocks/rules", headers=hd(v), data={
        "_name": "edge", "rule": "no-admin deny 403 if path prefix /whoami"})
    check(st == 201, "rule set: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/blocks/service/public",
                               data={"rule-set": "edge"}, headers=hd(json.loads(body)["version"]))
    check(st == 200, "rule-set: %d %r" % (st, body))
    wait_until(lambda: status_of(env, "https://localhost:%d/whoami" % a.pub) == 403,
               timeout=5, what="the rule in force")
    st, h, body = root.request(a.url + "/api/v1/rule-sets")
    check(json.loads(body)["rule_sets"] == [{"name": "edge", "rules": 1, "used_by": ["public"]}],
          "rule sets: %r" % body)
    audit = [e for e in a.audit() if e["action"].startswith("block-")]
    check(any(e["after"] == "allowed-dirs idle-timeout server" and e["result"] == "ok"
              for e in audit), "the audit names the directives changed: %r" % audit[:2])
    check([e["result"] for e in audit].count("ok") == 3 and
          [e["result"] for e in audit].count("invalid") == 5, "audit: %r" % audit)


@test
def admin_identity_providers_and_groups_edited_in_place(env):
    """Identity providers and groups added, modified and deleted with the
    Pexip fields through the block API: a new IdP gets a UUID, a change
    rewrites just its line, a rename that would orphan a group is 422."""
    from t_j_saml import sp_cert
    a = Admin(env, extra=sp_cert(env))
    root = a.browser("root")
    st, me = a.whoami(root)
    hd = lambda v: a.edit_headers(me, v)
    v = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/blocks/identity-provider", headers=hd(v), data={
        "_name": "Corp SSO", "description": '"Staff sign-in"', "sp-certificate": "sp",
        "sp-entity-id": "https://localhost/saml", "acs-from-services": "on",
        "idp-entity-id": "https://idp.example.com/x", "idp-sso-url": "https://idp.example.com/sso",
        "idp-certificate": env.path("sp.pem")})
    check(st == 201, "add IdP: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/blocks/identity-provider-group",
                               headers=hd(json.loads(body)["version"]),
                               data={"_name": "staff", "identity-providers": '"Corp SSO"'})
    check(st == 201, "add group: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/identity-providers")
    j = json.loads(body)
    check(len(j["identity_providers"]) == 1 and len(j["identity_providers"][0]["uuid"]) == 36 and
          j["groups"] == [{"name": "staff", "identity_providers": ["Corp SSO"]}], "%r" % j)
    uuid = j["identity_providers"][0]["uuid"]
    before = open(a.conf).read()
    v = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/blocks/identity-provider/Corp%20SSO",
                               headers=hd(v), data={"description": '"Staff and contractors"',
                                                    "display-name-attribute": '""'})
    check(st == 200, "modify IdP: %d %r" % (st, body))
    gone, new = changed_lines(before, open(a.conf).read())
    check([x.strip() for x in gone] == ['description "Staff sign-in"'] and
          sorted(x.strip() for x in new) == ['description "Staff and contractors"',
                                             'display-name-attribute ""'],
          "changed: -%r +%r" % (gone, new))
    v = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/blocks/identity-provider/Corp%20SSO",
                               headers=hd(v), data={"_name": "Other"})
    check(st == 422 and b"Corp SSO" in body, "orphaning rename: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/blocks/identity-provider-group/staff/delete",
                               headers=hd(v), data=b"")
    check(st == 200, "delete group: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/blocks/identity-provider/Corp%20SSO",
                               headers=hd(json.loads(body)["version"]), data={"_name": "Other"})
    check(st == 200 and 'identity-provider Other {' in open(a.conf).read() and
          uuid in open(a.conf).read(), "rename: %d %r" % (st, body))


@test
def admin_every_stale_write_gets_412_with_the_current_version(env):
    """Every config-changing endpoint: 428 without If-Match, 412 with the
    current version (body and ETag) when stale, and the file unchanged."""
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    v = a.version(root)
    before = open(a.conf).read()
    writes = [("/api/v1/servers/public/web1/state", {"state": "drain"}),
              ("/api/v1/servers/public/web1/weight", {"weight": "4"}),
              ("/api/v1/services/public/block", open(a.conf).read().split("# the public face\n")[1]
               .split("}\n")[0].encode() + b"}"),
              ("/api/v1/services/public/delete", b""),
              ("/api/v1/blocks/service/public", {"idle-timeout": "5s"}),
              ("/api/v1/blocks/rules", {"_name": "r", "rule": "a log if method exact GET"}),
              ("/api/v1/certificates/selfsigned", {"name": "c1", "cn": "localhost"}),
              ("/api/v1/config/rollback", {"id": "x"})]
    for path, data in writes:
        for hdrs, want in (({}, 428), ({"If-Match": '"0000000000000000"'}, 412)):
            hdrs = dict(hdrs, **{"X-CSRF-Token": me["csrf"]})
            st, h, body = root.request(a.url + path, data=data, headers=hdrs)
            ok = st == want and json.loads(body).get("version") == v and h["ETag"] == '"%s"' % v
            if path.endswith("rollback"):  # an unknown history id is looked up first
                ok = st in (want, 404)
            check(ok, "%s %s: %d %r" % (path, hdrs, st, body[:200]))
    check(open(a.conf).read() == before, "a refused write changed the file")


@test
def admin_certificates_imported_as_pem_pair_or_pkcs12(env):
    """A certificate made elsewhere: PEM (chain and encrypted key, in any
    order) or PKCS#12, each with its passphrase; stored as chain + 0600
    key without the passphrase, added as a block and served once a service
    names it. Wrong passphrases, a key matching nothing, a stray
    certificate and garbage are 422 and leave no file and no change."""
    import hashlib
    import ssl
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    hd = lambda **k: dict(a.edit_headers(me, a.version(root)), **k)
    d = env.path("ext")
    os.makedirs(d)
    run = lambda *args: subprocess.run(args, check=True, capture_output=True, cwd=d)
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
        "-out", "ca.pem", "-days", "30", "-subj", "/CN=Outside CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost")
    run("openssl", "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-out", "leaf.pem", "-days", "30", "-copy_extensions", "copy")
    run("openssl", "pkey", "-in", "leaf.key", "-aes256", "-passout", "pass:pem secret",
        "-out", "leaf-enc.key")
    run("openssl", "pkcs12", "-export", "-inkey", "leaf.key", "-in", "leaf.pem", "-certfile",
        "ca.pem", "-passout", "pass:p12 secret", "-out", "leaf.p12")
    rd = lambda n: open(os.path.join(d, n), "rb").read()
    certs_dir = env.path("gatehouse-state/admin/certs")
    before = open(a.conf).read()
    refused = [("garbage", b"not a certificate at all", {}, b"neither PEM nor"),
               ("wrong-pem-pass", rd("leaf-enc.key") + rd("leaf.pem"),
                {"X-Passphrase": "nope"}, b"passphrase"),
               ("no-match", rd("ca.key") + rd("leaf.pem"), {}, b"matches"),
               ("stray", rd("leaf.key") + rd("leaf.pem") + open(env.ca, "rb").read(), {},
                b"not in the chain"),
               ("wrong-p12-pass", rd("leaf.p12"), {"X-Passphrase": "nope"}, b"passphrase")]
    for name, body, extra, why in refused:
        st, h, out = root.request(a.url + "/api/v1/certificates/%s/import" % name, data=body,
                                  headers=hd(**extra))
        check(st == 422 and why in out, "%s: %d %r" % (name, st, out))
        check(not os.path.exists(os.path.join(certs_dir, name + ".key")),
              "%s left a key behind" % name)
    check(open(a.conf).read() == before, "a refused import changed the config")
    # Key first, then the CA, then the leaf: reordered on the way in.
    st, h, out = root.request(a.url + "/api/v1/certificates/outside/import",
                              data=rd("leaf-enc.key") + rd("ca.pem") + rd("leaf.pem"),
                              headers=hd(**{"X-Passphrase": "pem secret"}))
    check(st == 201, "PEM import: %d %r" % (st, out))
    chain = open(os.path.join(certs_dir, "outside.pem")).read()
    check(chain.index(rd("leaf.pem").decode().strip()) == 0 and
          rd("ca.pem").decode().strip() in chain, "chain order:\n%s" % chain)
    key = os.path.join(certs_dir, "outside.key")
    check(oct(os.stat(key).st_mode & 0o777) == "0o600" and
          b"BEGIN PRIVATE KEY" in open(key, "rb").read(), "stored key")
    st, h, out = root.request(a.url + "/api/v1/certificates/bundle/import", data=rd("leaf.p12"),
                              headers=hd(**{"X-Passphrase": "p12 secret"}))
    check(st == 201, "PKCS#12 import: %d %r" % (st, out))
    st, h, out = root.request(a.url + "/api/v1/certificates/bundle/import", data=rd("leaf.p12"),
                              headers=hd(**{"X-Passphrase": "p12 secret"}))
    check(st == 422 and b"exists" in out, "second import under a used name: %d %r" % (st, out))
    st, h, out = root.request(a.url + "/api/v1/certificates")
    listed = {c["name"]: c for c in json.loads(out)["certificates"]}
    check("Outside CA" in listed["outside"]["issuer"] and "Outside CA" in listed["bundle"]["issuer"]
          and b"PRIVATE" not in out, "listing: %r" % listed.keys())
    audit = json.dumps(a.audit())
    check("pem secret" not in audit and "p12 secret" not in audit, "a passphrase in the audit")
    # Serve it: the public service now shows the imported leaf.
    st, h, out = root.request(a.url + "/api/v1/blocks/service/public",
                              data={"certificate": "bundle"}, headers=hd())
    check(st == 200, "use it: %d %r" % (st, out))
    ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    want = hashlib.sha256(ssl.PEM_cert_to_DER_cert(rd("leaf.pem").decode())).hexdigest()

    def served():
        try:
            with socket.create_connection(("127.0.0.1", a.pub), timeout=2) as s:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()
        except (OSError, ssl.SSLError):
            return None
    wait_until(lambda: served() == want, timeout=5, what="the imported certificate served")


@test
def admin_transaction_stages_block_edits_together(env):
    """A rule set added and a service switched to it in one transaction:
    one validation, one history entry, one reload; staged alone, the
    service change would be refused (the rule set does not exist yet)."""
    import urllib.parse
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    h0 = {"X-CSRF-Token": me["csrf"]}
    v = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/blocks/service/public", data={"rule-set": "edge"},
                               headers=dict(h0, **{"If-Match": '"%s"' % v}))
    check(st == 422 and b"edge" in body, "a dangling rule-set alone: %d %r" % (st, body))
    st, h, body = root.request(a.url + "/api/v1/transactions", data=b"", headers=h0)
    tx = json.loads(body)["id"]
    stages = [{"op": "block-add", "kind": "rules", "fields": urllib.parse.urlencode(
                  {"_name": "edge", "rule": "no-who deny 403 if path prefix /whoami"})},
              {"op": "block-set", "kind": "service", "name": "public",
               "fields": urllib.parse.urlencode({"rule-set": "edge", "idle-timeout": "77s"})}]
    for form in stages:
        st, h, body = root.request(a.url + "/api/v1/transactions/" + tx, data=form, headers=h0)
        check(st == 200, "stage %r: %d %r" % (form["op"], st, body))
    st, h, body = root.request(a.url + "/api/v1/transactions/" + tx, headers=h0,
                               data={"op": "block-set", "kind": "ca", "name": "x", "fields": ""})
    check(st == 422, "a block kind the API does not edit: %d" % st)
    hdir = env.path("gatehouse-state/admin/history")
    hist = len([f for f in os.listdir(hdir) if f.endswith(".conf")]) if os.path.isdir(hdir) else 0
    st, h, body = root.request(a.url + "/api/v1/transactions/%s/commit" % tx, data=b"",
                               headers=dict(h0, **{"If-Match": '"%s"' % a.version(root)}))
    check(st == 200, "commit: %d %r" % (st, body))
    conf = open(a.conf).read()
    check("rules edge {" in conf and "    rule-set edge\n" in conf and
          "    idle-timeout 77s\n" in conf, "after commit:\n%s" % conf)
    check(len([f for f in os.listdir(hdir) if f.endswith(".conf")]) == hist + 1,
          "one history entry for the transaction")
    wait_until(lambda: status_of(env, "https://localhost:%d/whoami" % a.pub) == 403,
               timeout=5, what="the rule in force")


@test
def admin_concurrent_editors_exactly_one_wins(env):
    """Eight editors send a change at the same moment, all with the same
    version: exactly one is written, the seven others get 412 with the
    new version, and the file holds that one change."""
    import threading
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    v = a.version(root)
    results = {}
    go = threading.Event()

    def edit(i):
        b = a.browser("root")
        st, me_i = a.whoami(b)
        go.wait(10)
        st, h, body = b.request(a.url + "/api/v1/blocks/service/public",
                                data={"idle-timeout": "%ds" % (100 + i)},
                                headers={"X-CSRF-Token": me_i["csrf"], "If-Match": '"%s"' % v})
        results[i] = (st, json.loads(body))
    ts = [threading.Thread(target=edit, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join(60)
    won = [i for i, (st, j) in results.items() if st == 200]
    lost = [j for st, j in results.values() if st == 412]
    check(len(results) == 8 and len(won) == 1 and len(lost) == 7, "results: %r" % results)
    nv = results[won[0]][1]["version"]
    check(all(j["version"] == nv for j in lost), "a 412 without the winner's version")
    conf = open(a.conf).read()
    check(conf.count("idle-timeout") == 1 and "idle-timeout %ds" % (100 + won[0]) in conf,
          "the file: %s" % conf)


PIPE_UUID = "5d0c1e2a-8f3b-4c6d-9e7f-0a1b2c3d4e5f"


def pipeline_conf(env, port_conf, entity):
    """An identity provider (whose SAML SP the conference service serves)
    and a conference service: what a reload must keep whole."""
    from t_j_saml import sp_cert
    if not os.path.exists(env.path("sp.pem")):
        sp_cert(env)
    return ("certificate sp {\n    cert %s\n    key %s\n}\n" % (env.path("sp.pem"),
                                                                 env.path("sp.key")) +
            'identity-provider "Corp SSO" {\n    uuid %s\n    sp-certificate sp\n'
            "    sp-entity-id %s\n    acs-url https://localhost:%d/api/v1/samlconsumer/%s\n"
            "    idp-entity-id https://idp.example.com/x\n"
            "    idp-sso-url https://idp.example.com/sso\n    idp-certificate %s\n}\n"
            'identity-provider-group staff {\n    identity-providers "Corp SSO"\n}\n'
            % (PIPE_UUID, entity, port_conf, PIPE_UUID, env.path("sp.pem")) +
            service("conference", port_conf, app="conference", hosts="localhost"))


@test
def admin_reload_failing_halfway_keeps_the_previous_configuration_running(env):
    """One configuration pipeline: a change is parsed once, every module
    prepares (the SAML SP, the persistence keys, the proxy generation and
    its listeners) and only then is anything committed. A change whose last
    step fails (a new service's address is in use, after the new SAML SP
    was built) leaves everything as it ran: the SP's metadata, the real
    server's state, the file, the history; the answer and the audit log say
    why and which version runs. The same change by hand + SIGHUP: the old
    configuration still runs whole, and the API the UI reads says the file's
    version is not the running one, and why; once the address is free a
    SIGHUP brings the file's version in."""
    import urllib.parse
    port_conf = free_port()
    a = Admin(env, extra=pipeline_conf(env, port_conf, "https://localhost/saml-old"))
    root = a.browser("root")
    st, me = a.whoami(root)
    h0 = {"X-CSRF-Token": me["csrf"]}
    md_url = "https://localhost:%d/api/v1/samlmetadata/%s" % (port_conf, PIPE_UUID)

    def entity():
        st, h, md = Browser(env.ca).request(md_url)
        check(st == 200, "metadata: %d" % st)
        m = re.search(rb'entityID="([^"]+)"', md)
        return m.group(1).decode() if m else None

    def web1_state():
        st, h, body = root.request(a.url + "/api/v1/stats")
        m = re.search(r'"name":"web1","address":"[^"]*","weight":\d+,"state":"(\w+)"',
                      body.decode())
        check(st == 200 and m, "stats: %d %r" % (st, body[:300]))
        return m.group(1)

    def config():
        st, h, body = root.request(a.url + "/api/v1/config")
        check(st == 200, "config: %d" % st)
        return json.loads(body)

    check(entity() == "https://localhost/saml-old", "metadata before: %r" % entity())
    v0 = a.version(root)
    j = config()
    check(j["running_version"] == v0 and "reload_failed" not in j, "at start: %r" % {
        k: j[k] for k in j if k != "text"})
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    busy_port = busy.getsockname()[1]
    # One transaction: a new SP entity ID, web1 to maint, a service on the busy port.
    st, h, body = root.request(a.url + "/api/v1/transactions", data=b"", headers=h0)
    tx = json.loads(body)["id"]
    block = ("service late {\n    listen 127.0.0.1:%d\n    certificate main\n"
             "    allowed-hosts localhost\n    allowed-dirs /*\n    app status\n}" % busy_port)
    for form in ({"op": "block-set", "kind": "identity-provider", "name": "Corp SSO",
                  "fields": urllib.parse.urlencode({"sp-entity-id": "https://localhost/saml-new"})},
                 {"op": "server-state", "service": "public", "server": "web1", "state": "maint"},
                 {"op": "service-add", "block": block}):
        st, h, body = root.request(a.url + "/api/v1/transactions/" + tx, data=form, headers=h0)
        check(st == 200, "stage %r: %d %r" % (form["op"], st, body))
    before = open(a.conf).read()
    hist = history_versions(env)
    st, h, body = root.request(a.url + "/api/v1/transactions/%s/commit" % tx, data=b"",
                               headers=dict(h0, **{"If-Match": '"%s"' % v0}))
    err = json.loads(body).get("error", "")
    check(st == 422 and "listen 127.0.0.1:%d" % busy_port in err and "in use" in err and
          ("version %s stays" % v0) in err, "commit with a busy port: %d %r" % (st, body))
    check(open(a.conf).read() == before, "the refused change touched the file")
    check(history_versions(env) == hist, "the refused change added a history entry")
    check(entity() == "https://localhost/saml-old",
          "the new SAML SP was installed by a refused reload: %r" % entity())
    check(web1_state() == "up", "web1 changed state: %s" % web1_state())
    check(status_of(env, "https://localhost:%d/whoami" % a.pub) == 200, "public stopped serving")
    j = config()
    check(j["version"] == v0 and j["running_version"] == v0 and "reload_failed" not in j,
          "after the refusal: %r" % {k: j[k] for k in j if k != "text"})
    last = [e for e in a.audit() if e["action"] == "transaction"][-1:]
    check(last and last[0]["result"] == "invalid" and "in use" in last[0].get("reason", ""),
          "audit: %r" % last)
    # The same change by hand, then SIGHUP: the file moves on, the running state must not.
    edited = before.replace("https://localhost/saml-old", "https://localhost/saml-new") + \
        block + "\n"
    with open(a.conf, "w") as f:
        f.write(edited)
    n = a.gh.output().count("reload refused")
    a.gh.signal(signal.SIGHUP)
    wait_until(lambda: a.gh.output().count("reload refused") > n, 5, "the refused reload")
    check(entity() == "https://localhost/saml-old", "SIGHUP half-installed: %r" % entity())
    check(status_of(env, "https://localhost:%d/whoami" % a.pub) == 200, "public stopped serving")
    j = config()
    v1 = j["version"]
    check(v1 != v0 and j["running_version"] == v0 and j.get("reload_failed", {}).get("version")
          == v1 and "in use" in j["reload_failed"]["reason"],
          "the API does not say the file's version is not running: %r" % {
              k: j[k] for k in j if k != "text"})
    from harness import ROOT
    r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/admin_running.mjs"), a.url,
                        "viewer", PW["viewer"]], capture_output=True, timeout=120,
                       cwd=os.path.join(ROOT, "tests/browser"))
    check(r.returncode == 0, "browser run: %s %s" % (r.stdout[-2000:], r.stderr[-2000:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    for page, p in res["pages"].items():
        check(p["cls"] == "running-stale" and p["visible"] and
              ("holds version %s, which is NOT running" % v1) in p["text"] and
              ("Version %s keeps running" % v0) in p["text"] and "in use" in p["text"],
              "the %s page does not say which version runs: %r" % (page, p))
    check(sorted(res["pages"]) == ["home", "system"] and not res["errors"], "%r" % res)
    sig = [e for e in a.audit() if e["user"] == "(SIGHUP)"]
    check(sig and sig[-1]["result"] == "failed" and sig[-1]["before"] == v1 and
          sig[-1]["after"] == v0 and "in use" in sig[-1]["reason"], "audit: %r" % sig[-1:])
    busy.close()
    n = a.gh.output().count("configuration reloaded")
    a.gh.signal(signal.SIGHUP)
    wait_until(lambda: a.gh.output().count("configuration reloaded") > n, 5, "the reload")
    check(entity() == "https://localhost/saml-new", "after the good reload: %r" % entity())
    wait_until(lambda: status_of(env, "https://localhost:%d/healthcheck.html" % busy_port) == 200,
               5, "the new service")
    j = config()
    check(j["running_version"] == v1 == j["version"] and "reload_failed" not in j,
          "after the good reload: %r" % {k: j[k] for k in j if k != "text"})


@test
def admin_service_switched_off_and_on(env):
    """`enabled off` through the block API (what the Services page's switch
    sends): the file says so, the address is no longer listened on, nothing
    reaches the real servers, the statistics say enabled false; in Chromium
    the Services page shows each service's status and pool health, the
    admin service's own switch disabled with the reason, and turning public
    on again serves it."""
    from harness import ROOT
    a = Admin(env)
    root = a.browser("root")
    st, me = a.whoami(root)
    check(status_of(env, "https://localhost:%d/whoami" % a.pub) == 200, "public before")
    logs = [env.path("backend-%d.log" % p) for p in (a.b1, a.b2)]
    reqs = lambda: sum(open(f).read().count("REQ ") for f in logs)
    v = a.version(root)
    st, h, body = root.request(a.url + "/api/v1/blocks/service/public", data={"enabled": "off"},
                               headers=a.edit_headers(me, v))
    check(st == 200, "switch off: %d %r" % (st, body))
    text = open(a.conf).read()
    block = text[text.index("service public {"):]
    check("    enabled off\n" in block[:block.index("}")], "not in the block:\n%s" % block)

    def refused():
        try:
            socket.create_connection(("127.0.0.1", a.pub), timeout=2).close()
            return False
        except ConnectionRefusedError:
            return True
    wait_until(refused, 5, "the public address closed")
    seen = reqs()
    for _ in range(3):
        check(refused(), "a connection to a service that is off was accepted")
    check(reqs() == seen, "a request reached a real server of a service that is off")
    st, h, body = root.request(a.url + "/api/v1/stats")
    check(re.search(r'"name":"public","listen":"[^"]+","enabled":false,"listening":false',
                    body.decode()), "stats: %r" % body[:300])
    st, h, body = root.request(a.url + "/api/v1/services")
    svcs = {s["name"]: s for s in json.loads(body)["services"]}
    check(svcs["public"]["enabled"] is False and svcs["admin"]["enabled"] is True, "%r" % svcs)
    r = subprocess.run(["node", os.path.join(ROOT, "tests/browser/admin_services.mjs"), a.url,
                        "root", PW["root"], "public"], capture_output=True, timeout=120,
                       cwd=os.path.join(ROOT, "tests/browser"))
    check(r.returncode == 0, "browser run: %s %s" % (r.stdout[-2000:], r.stderr[-2000:]))
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    before = {x["name"]: x for x in res["before"]}
    check(before["public"]["status"] == "off" and not before["public"]["on"] and
          not before["public"]["disabled"], "public before: %r" % before)
    check(before["admin"]["status"] == "up" and before["admin"]["on"] and
          before["admin"]["disabled"] and "app admin" in before["admin"]["title"],
          "admin row: %r" % before["admin"])
    after = {x["name"]: x for x in res["after"]}
    check(after["public"]["status"] == "up" and after["public"]["on"] and
          after["public"]["pool"] == "2 of 2 up", "public after: %r" % after["public"])
    check("public turned on" in res["message"] and not res["errors"], "%r" % res)
    check("    enabled on\n" in open(a.conf).read(), "the file was not switched on")
    check(status_of(env, "https://localhost:%d/whoami" % a.pub) == 200, "public after")
    check(reqs() > seen, "nothing reached the real servers after switching on")
