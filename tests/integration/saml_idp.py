"""A real SAML identity provider for the tests: SimpleSAMLphp 1.19 from
Debian under `php -S`, with its configuration folder chosen by
SIMPLESAMLPHP_CONFIG_DIR so all its state lives in the test's temp folder;
and a browser-less participant (cookie jar, no automatic redirects) that
walks the login as a browser would."""
import html
import http.cookiejar
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request

from harness import GATEHOUSE, Fail, check, free_port, port_open, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "idp")


class Idp:
    def __init__(self, env, name, sign_response=False):
        self.env = env
        self.name = name
        self.port = free_port()
        self.dir = env.path("idp-" + name)
        for sub in ("config/metadata", "cert", "log", "data", "tmp"):
            os.makedirs(os.path.join(self.dir, sub))
        shutil.copy(os.path.join(FIX, "config.php"), os.path.join(self.dir, "config"))
        shutil.copy(os.path.join(FIX, "authsources.php"), os.path.join(self.dir, "config"))
        shutil.copy(os.path.join(FIX, "idp-hosted.php"),
                    os.path.join(self.dir, "config/metadata/saml20-idp-hosted.php"))
        self.sp_remote = os.path.join(self.dir, "config/metadata/saml20-sp-remote.php")
        with open(self.sp_remote, "w") as f:
            f.write("<?php\n")
        self.key = os.path.join(self.dir, "cert/idp.key")
        self.cert = os.path.join(self.dir, "cert/idp.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        self.key, "-out", self.cert, "-days", "30", "-subj",
                        "/CN=idp-" + name], check=True, capture_output=True)
        self.base = "http://127.0.0.1:%d/simplesaml/" % self.port
        self.penv = penv = dict(os.environ, GH_SSP_DIR=self.dir, GH_SSP_BASE=self.base,
                    GH_SSP_PORT=str(self.port), GH_SSP_SALT="salt-" + os.urandom(8).hex(),
                    GH_SSP_SIGN_RESPONSE="1" if sign_response else "0",
                    SIMPLESAMLPHP_CONFIG_DIR=os.path.join(self.dir, "config"))
        log = open(os.path.join(self.dir, "php.log"), "ab")
        p = subprocess.Popen(["php", "-S", "127.0.0.1:%d" % self.port,
                              os.path.join(FIX, "router.php")], cwd=self.dir, env=penv,
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        env.procs.append(p)
        wait_until(lambda: port_open(self.port), what="SimpleSAMLphp on %d" % self.port)
        self.entity_id = self.base + "saml2/idp/metadata.php"

    def metadata(self):
        with urllib.request.urlopen(self.entity_id, timeout=20) as r:
            return r.read()

    def register_sp(self, sp_metadata, encrypt=False, algorithm=None):
        """SimpleSAMLphp parses our metadata and checks its signature."""
        mdfile = os.path.join(self.dir, "sp-metadata.xml")
        with open(mdfile, "wb") as f:
            f.write(sp_metadata)
        r = subprocess.run(["php", os.path.join(FIX, "register-sp.php"), mdfile,
                            self.sp_remote, "1" if encrypt else "0"] +
                           ([algorithm] if algorithm else []), capture_output=True,
                           timeout=60, env=self.penv)
        check(r.returncode == 0, "SimpleSAMLphp refused our metadata: %r %r" %
              (r.stdout, r.stderr))

    def import_into_gatehouse(self, display_name, cert_out, uuid=None, extra=()):
        """gatehouse saml import on the IdP's metadata; returns the block."""
        mdfile = os.path.join(self.dir, "idp-metadata.xml")
        with open(mdfile, "wb") as f:
            f.write(self.metadata())
        args = [GATEHOUSE, "saml", "import", mdfile, "--name", display_name,
                "--cert-out", cert_out] + list(extra)
        if uuid:
            args += ["--uuid", uuid]
        r = subprocess.run(args, capture_output=True, timeout=30)
        check(r.returncode == 0, "import failed: %r" % r.stderr)
        return r.stdout.decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Browser:
    def __init__(self, ca):
        self.jar = http.cookiejar.CookieJar()
        ctx = ssl.create_default_context(cafile=ca)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar),
            urllib.request.HTTPSHandler(context=ctx), NoRedirect())

    def request(self, url, data=None, headers=None):
        body = urllib.parse.urlencode(data).encode() if isinstance(data, dict) else data
        req = urllib.request.Request(url, data=body, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def follow(self, url, data=None, limit=8):
        """Request, then follow redirects (GET) up to limit; returns the
        last (status, headers, body, url)."""
        st, h, b = self.request(url, data)
        for _ in range(limit):
            if st not in (301, 302, 303, 307):
                break
            url = urllib.parse.urljoin(url, h["Location"])
            st, h, b = self.request(url)
        return st, h, b, url

    def cookie(self, name):
        for c in self.jar:
            if c.name == name:
                return c
        return None


def form_fields(page):
    """The action and the input fields of the first form of a page."""
    text = page.decode(errors="replace")
    m = re.search(r"<form[^>]*action=\"([^\"]*)\"", text, re.I)
    fields = {}
    for inp in re.finditer(r"<input[^>]*>", text, re.I):
        tag = inp.group(0)
        n = re.search(r"name=\"([^\"]*)\"", tag)
        v = re.search(r"value=\"([^\"]*)\"", tag)
        if n:
            fields[html.unescape(n.group(1))] = html.unescape(v.group(1)) if v else ""
    return (html.unescape(m.group(1)) if m else None), fields


def idp_response(browser, gh_url, group, user, password, relay="/welcome", pick=None):
    """Walks the login up to the IdP's auto-post form: returns (acs, fields)
    where fields holds SAMLResponse and RelayState as the IdP posted them."""
    q = "?RelayState=" + urllib.parse.quote(relay) if relay else ""
    st, h, b = browser.request("%s/api/v1/samllogin/%s%s" % (gh_url, group, q))
    if pick is not None:
        check(st == 200, "expected the IdP choice page, got %d" % st)
        links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', b.decode())
        target = [u for u, n in links if html.unescape(n) == pick]
        check(target, "%s not offered on the choice page: %r" % (pick, links))
        st, h, b = browser.request(gh_url + html.unescape(target[0]))
    check(st == 302, "login start: %d %r" % (st, b[:200]))
    st, h, b, url = browser.follow(h["Location"])
    action, fields = form_fields(b)
    check("password" in fields or "username" in fields,
          "no login form at the IdP (%d): %r" % (st, b[:300]))
    fields["username"] = user
    fields["password"] = password
    st, h, b, url = browser.follow(urllib.parse.urljoin(url, action or url), data=fields)
    action, fields = form_fields(b)
    if "SAMLResponse" not in fields:
        raise Fail("IdP did not answer with a SAMLResponse (%d): %r" % (st, b[:400]))
    return action, fields


def post_acs(browser, acs, fields):
    return browser.request(acs, data=fields)
