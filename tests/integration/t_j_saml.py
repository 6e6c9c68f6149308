"""Participant authentication against a real identity provider nobody on
the team wrote (SimpleSAMLphp from Debian): metadata both ways, the
HTTP-Redirect login, the HTTP-POST assertion consumer through the proxy,
sessions; plain and encrypted assertions; two IdPs in one group."""
import json
import subprocess

from harness import GATEHOUSE, base_conf, check, free_port, service, test
from saml_idp import Browser, Idp, idp_response, post_acs

UUID_A = "0f5e2a36-6c1e-4d0b-9c41-5b7a2f0e9d11"
UUID_B = "7c2d9e84-1b3a-4f6e-8d25-c0a1b2c3d4e5"


def sp_cert(env):
    """Our SP key: RSA, since IdPs encrypt to it with RSA-OAEP."""
    key, crt = env.path("sp.key"), env.path("sp.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "30", "-subj", "/CN=gatehouse-sp"],
                   check=True, capture_output=True)
    import os
    os.chmod(key, 0o600)
    return "certificate sp {\n    cert %s\n    key %s\n}\n" % (crt, key)


class Topology:
    """SimpleSAMLphp IdP(s) registered with gatehouse and the other way
    round; public TLS service -> conference service (app conference)."""

    def __init__(self, env, idps=(("Test IdP", UUID_A),), encrypt=False, display=None,
                 sign_response=False, extra_idp=""):
        self.env = env
        self.port = free_port()
        self.conf_port = free_port()
        self.url = "https://localhost:%d" % self.port
        self.idps = []
        blocks = []
        for i, (name, uuid) in enumerate(idps):
            idp = Idp(env, "i%d" % i, sign_response=sign_response)
            block = idp.import_into_gatehouse(
                name, env.path("idp%d.pem" % i), uuid=uuid,
                extra=["--sp-certificate", "sp", "--sp-entity-id", self.url + "/saml/" + uuid,
                       "--acs-url", "%s/api/v1/samlconsumer/%s" % (self.url, uuid)])
            extra = extra_idp
            if display is not None:
                extra += '\n    display-name-attribute "%s"' % display
            block = block.replace("\n}\n", "\n" + extra + "\n}\n") if extra else block
            blocks.append(block)
            self.idps.append((idp, name, uuid))
        group = "identity-provider-group staff {\n    identity-providers %s\n}\n" % " ".join(
            '"%s"' % n for _, n, _ in self.idps)
        text = base_conf(env) + sp_cert(env) + "".join(blocks) + group + \
            service("public", self.port, servers=[("conf", self.conf_port)], hosts="localhost") + \
            service("conference", self.conf_port, app="conference", hosts="localhost")
        self.gh = env.gatehouse(text)
        self.browser = Browser(env.ca)
        for idp, name, uuid in self.idps:
            st, h, md = self.browser.request("%s/api/v1/samlmetadata/%s" % (self.url, uuid))
            check(st == 200 and b"EntityDescriptor" in md, "SP metadata: %d %r" % (st, md[:200]))
            idp.register_sp(md, encrypt=encrypt)

    def login(self, user="alice", password="wonderland", pick=None, browser=None):
        b = browser or Browser(self.env.ca)
        acs, fields = idp_response(b, self.url, "staff", user, password, pick=pick)
        st, h, body = post_acs(b, acs, fields)
        return b, st, h, body

    def session(self, b):
        st, h, body = b.request(self.url + "/api/v1/samlsession")
        return st, (json.loads(body) if st == 200 else None)

    def security(self):
        try:
            with open(self.env.path("security.log")) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


@test
def saml_login_with_simplesamlphp_ends_in_session(env):
    t = Topology(env)
    acs_seen = None
    b, st, h, body = t.login()
    check(st == 303, "ACS answered %d: %r %r" % (st, body, t.security()[-3:]))
    check(h["Location"] == "/welcome", "relay state: %r" % h["Location"])
    cookie = [v for k, v in h.items() if k.lower() == "set-cookie"][0]
    for attr in ("__Host-gh-sp=", "Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        check(attr in cookie, "cookie lacks %s: %s" % (attr, cookie))
    sid = cookie.split("=", 1)[1].split(";", 1)[0]
    check(len(sid) == 64 and all(c in "0123456789abcdef" for c in sid), "session id %r" % sid)
    st, s = t.session(b)
    check(st == 200, "no session after login: %d" % st)
    check(s["name_id"] == "alice" and s["display_name"] == "alice" and
          s["display_name_from_idp"] is True, "session: %r" % s)
    check(s["idp_uuid"] == UUID_A and s["idp_name"] == "Test IdP", "idp in session: %r" % s)
    # An IdP-provided name cannot be changed.
    st, h, body = b.request(t.url + "/api/v1/samlsession/display-name", data={"name": "Mallory"})
    check(st == 409, "renaming an IdP-provided name answered %d" % st)
    # Logout ends it server-side: the old cookie is worthless afterwards.
    st, h, body = b.request(t.url + "/api/v1/samllogout", data={})
    check(st == 200, "logout %d" % st)
    other = Browser(env.ca)
    other.jar.set_cookie(b.cookie("__Host-gh-sp") or list(b.jar)[0])
    st, h, body = b.request(t.url + "/api/v1/samlsession", headers={"Cookie": "__Host-gh-sp=" + sid})
    check(st == 401, "session survived logout: %d" % st)
    del acs_seen
