"""Participant authentication against a real identity provider nobody on
the team wrote (SimpleSAMLphp from Debian): metadata both ways, the
HTTP-Redirect login, the HTTP-POST assertion consumer through the proxy,
sessions; plain and encrypted assertions; two IdPs in one group."""
import json
import os
import re
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
    os.chmod(key, 0o600)
    return "certificate sp {\n    cert %s\n    key %s\n}\n" % (crt, key)


class Topology:
    """SimpleSAMLphp IdP(s) registered with gatehouse and the other way
    round; public TLS service -> conference service (app conference)."""

    def __init__(self, env, idps=(("Test IdP", UUID_A),), encrypt=False, display=None,
                 sign_response=False, extra_idp="", extra_main=""):
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
        text = base_conf(env, extra=extra_main) + sp_cert(env) + "".join(blocks) + group + \
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
    st, h, body = Browser(env.ca).request(t.url + "/api/v1/samlsession", headers={"Cookie": "__Host-gh-sp=" + sid})
    check(st == 401, "session survived logout: %d" % st)


def encrypt_gcm(env, b64):
    """Replaces the Assertion of a response by an EncryptedAssertion made by
    xmlsec1: AES-128-GCM content, RSA-OAEP key transport to our SP cert."""
    import base64
    from lxml import etree
    ns = {"saml": "urn:oasis:names:tc:SAML:2.0:assertion"}
    root = etree.fromstring(base64.b64decode(b64))
    a = root.find("saml:Assertion", ns)
    data, tpl, out = env.path("a.xml"), env.path("enc-tpl.xml"), env.path("enc.xml")
    with open(data, "wb") as f:
        f.write(etree.tostring(a))
    with open(tpl, "w") as f:
        f.write('<xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" '
                'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
                'Type="http://www.w3.org/2001/04/xmlenc#Element">'
                '<xenc:EncryptionMethod Algorithm="http://www.w3.org/2009/xmlenc11#aes128-gcm"/>'
                '<ds:KeyInfo><xenc:EncryptedKey><xenc:EncryptionMethod '
                'Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>'
                '<xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey>'
                '</ds:KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData>'
                '</xenc:EncryptedData>')
    r = subprocess.run(["xmlsec1", "--encrypt", "--pubkey-cert-pem", env.path("sp.pem"),
                        "--session-key", "aes-128", "--xml-data", data, "--node-xpath", "/*",
                        "--output", out, tpl], capture_output=True, timeout=30)
    check(r.returncode == 0, "xmlsec1 --encrypt: %r" % r.stderr[:300])
    ea = etree.Element("{%s}EncryptedAssertion" % ns["saml"])
    ea.append(etree.parse(out).getroot())
    root.replace(a, ea)
    return base64.b64encode(etree.tostring(root)).decode()


@test
def saml_encrypted_assertion_is_decrypted(env):
    """The IdP encrypts the assertion to the key in our metadata; with
    require-encryption on, only that is accepted."""
    t = Topology(env, encrypt=True, extra_idp="    require-encryption on",
                 display="displayName")
    b = Browser(env.ca)
    acs, fields = idp_response(b, t.url, "staff", "bob", "builder")
    import base64
    raw = base64.b64decode(fields["SAMLResponse"])
    check(b"EncryptedAssertion" in raw and b"<saml:Assertion" not in raw,
          "the IdP did not encrypt the assertion")
    check(b"rsa-oaep" in raw, "key transport is not RSA-OAEP")
    st, h, body = post_acs(b, acs, fields)
    check(st == 303, "encrypted assertion refused: %d %r" % (st, t.security()[-1:]))
    st, s = t.session(b)
    check(st == 200 and s["name_id"] == "bob" and s["display_name"] == "Bob the Builder",
          "session: %r" % s)
    # AES-128-GCM (XML Encryption 1.1): SimpleSAMLphp 1.19 encrypts to a
    # certificate with AES-128-CBC only, so xmlsec1 encrypts its genuine
    # signed assertion to our certificate instead.
    idp, name, uuid = t.idps[0]
    st, h, md = t.browser.request("%s/api/v1/samlmetadata/%s" % (t.url, uuid))
    idp.register_sp(md, encrypt=False)
    b = Browser(env.ca)
    acs, fields = idp_response(b, t.url, "staff", "alice", "wonderland")
    fields["SAMLResponse"] = encrypt_gcm(env, fields["SAMLResponse"])
    st, h, body = post_acs(b, acs, fields)
    check(st == 303, "AES-GCM assertion refused: %d %r" % (st, t.security()[-1:]))
    idp.register_sp(md, encrypt=True)
    # A flipped byte in the ciphertext is a decryption failure, not a crash.
    b = Browser(env.ca)
    acs, fields = idp_response(b, t.url, "staff", "alice", "wonderland")
    raw = bytearray(base64.b64decode(fields["SAMLResponse"]))
    i = raw.rfind(b"</xenc:CipherValue>") - 10
    raw[i] = ord("A") if raw[i] != ord("A") else ord("B")
    fields["SAMLResponse"] = base64.b64encode(bytes(raw)).decode()
    st, h, body = post_acs(b, acs, fields)
    check(st == 403 and t.security()[-1]["reason"].startswith("saml-decrypt"),
          "tampered ciphertext: %d %r" % (st, t.security()[-1:]))


@test
def saml_plain_assertion_refused_when_encryption_required(env):
    t = Topology(env, encrypt=False, extra_idp="    require-encryption on")
    b, st, h, body = t.login()
    check(st == 403, "plain assertion accepted: %d" % st)
    check(t.security()[-1]["reason"].startswith("saml-not-encrypted"), "%r" % t.security()[-1])


@test
def saml_two_idps_in_one_group(env):
    """A group of two: the login page lists both by name; each signs its
    participants in, and each session records which IdP it came from."""
    t = Topology(env, idps=(("Contoso staff", UUID_A), ("Fabrikam partners", UUID_B)))
    st, h, page = t.browser.request(t.url + "/api/v1/samllogin/staff?RelayState=/room/1")
    check(st == 200 and b"Contoso staff" in page and b"Fabrikam partners" in page,
          "choice page: %d %r" % (st, page[:300]))
    check("script-src" not in h.get("Content-Security-Policy", "x") and
          "default-src 'none'" in h.get("Content-Security-Policy", ""), "page CSP")
    for name, uuid, user, pw in (("Fabrikam partners", UUID_B, "bob", "builder"),
                                 ("Contoso staff", UUID_A, "alice", "wonderland")):
        b, st, h, body = t.login(user, pw, pick=name)
        check(st == 303, "%s: ACS %d %r" % (name, st, t.security()[-1:]))
        st, s = t.session(b)
        check(s["idp_uuid"] == uuid and s["idp_name"] == name and s["name_id"] == user,
              "%s: session %r" % (name, s))
    # A response from one IdP posted to the other's consumer is refused.
    b = Browser(env.ca)
    acs, fields = idp_response(b, t.url, "staff", "alice", "wonderland", pick="Contoso staff")
    wrong = acs.replace(UUID_A, UUID_B)
    st, h, body = b.request(wrong, data=fields)
    check(st == 403, "cross-IdP post accepted: %d" % st)
    check(t.security()[-1]["reason"].split(":")[0] in ("saml-destination", "saml-bad-signature",
                                                        "saml-issuer"), "%r" % t.security()[-1])


@test
def saml_display_name_typed_when_attribute_empty(env):
    """display-name-attribute "": the participant types a name, and can."""
    t = Topology(env, display="")
    b, st, h, body = t.login()
    check(st == 303, "ACS %d" % st)
    st, s = t.session(b)
    check(s["display_name"] == "" and s["display_name_from_idp"] is False, "%r" % s)
    st, h, body = b.request(t.url + "/api/v1/samlsession/display-name", data={"name": "Alice L."})
    check(st == 204, "typing a name answered %d" % st)
    st, s = t.session(b)
    check(s["display_name"] == "Alice L.", "%r" % s)
    # Cross-origin state changes are refused.
    st, h, body = b.request(t.url + "/api/v1/samlsession/display-name", data={"name": "x"},
                            headers={"Origin": "https://evil.example"})
    check(st == 403, "cross-origin rename answered %d" % st)


@test
def saml_open_redirect_and_unknown_paths_refused(env):
    t = Topology(env)
    for relay in ("https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x",
                  "/ok/%2F%2Fevil"):
        import urllib.parse
        st, h, body = t.browser.request(t.url + "/api/v1/samllogin/staff?RelayState=" +
                                        urllib.parse.quote(relay, safe=""))
        check(st == 400, "RelayState %r answered %d" % (relay, st))
    for path in ("/api/v1/samllogin/nogroup", "/api/v1/samlmetadata/" + UUID_B,
                 "/api/v1/samllogin/staff/" + UUID_B):
        st, h, body = t.browser.request(t.url + path)
        check(st == 404, "%s answered %d" % (path, st))
    st, h, body = t.browser.request(t.url + "/api/v1/samlconsumer/" + UUID_A,
                                    data={"SAMLResponse": "not base64 !!"})
    check(st in (400, 403), "garbage SAMLResponse answered %d" % st)
    check(t.security()[-1]["reason"].startswith("saml-encoding"), "%r" % t.security()[-1])


@test
def saml_import_refuses_unusable_metadata_clearly(env):
    """gatehouse saml import says what the IdP metadata lacks, and writes
    nothing then; the SP metadata of a record is also available from the
    command line."""
    md = '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="%s">%s' \
         '</md:EntityDescriptor>'
    post_only = ('<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:'
                 'protocol"><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:'
                 'HTTP-POST" Location="https://idp.example/sso"/></md:IDPSSODescriptor>')
    no_key = post_only.replace("HTTP-POST", "HTTP-Redirect")
    cases = [("not-xml.xml", "this is not XML", "not usable XML"),
             ("doctype.xml", '<!DOCTYPE x [<!ENTITY e "x">]>' + md % ("https://idp", post_only),
              "not usable XML"),
             ("sp-only.xml", md % ("https://idp", "<md:SPSSODescriptor/>"),
              "no md:EntityDescriptor with an IDPSSODescriptor"),
             ("post-only.xml", md % ("https://idp", post_only), "HTTP-Redirect"),
             ("no-key.xml", md % ("https://idp", no_key), "no signing certificate")]
    for name, text, want in cases:
        path = env.write(name, text)
        out = env.path(name + ".pem")
        r = subprocess.run([GATEHOUSE, "saml", "import", path, "--name", "X", "--cert-out", out],
                           capture_output=True, timeout=30)
        check(r.returncode == 1 and want in r.stderr.decode(), "%s: %d %r" % (name, r.returncode,
                                                                             r.stderr))
        import os
        check(not os.path.exists(out), "%s: a certificate file was written" % name)
    t = Topology(env)
    r = subprocess.run([GATEHOUSE, "saml", "metadata", "-c", t.gh.conf, "Test IdP"],
                       capture_output=True, timeout=30, cwd=env.dir)
    check(r.returncode == 0 and b"SPSSODescriptor" in r.stdout and
          ("samlconsumer/" + UUID_A).encode() in r.stdout, "saml metadata: %r" % r.stderr)


@test
def saml_acs_from_services_publishes_only_client_facing_names(env):
    """acs-from-services on: the SP metadata lists an ACS URL for the edge
    service's name and port, not for the conference service behind it
    (a real server of the edge: an address only the edge reaches). An
    http:// idp-sso-url passes gatehouse -t with a warning that says so."""
    edge, inner = free_port(), free_port()
    idp = """identity-provider "Plain IdP" {
    uuid %s
    sp-certificate sp
    sp-entity-id https://meet.example.com/saml
    acs-from-services on
    idp-entity-id https://idp.invalid/saml
    idp-sso-url http://idp.invalid/sso
    idp-certificate %s
}
identity-provider-group staff { identity-providers "Plain IdP" }
""" % (UUID_A, env.ca)
    text = base_conf(env) + sp_cert(env) + idp + \
        service("edge", edge, servers=[("conf", inner)], hosts="localhost meet.example.com",
                extra="    certificate-coverage warn") + \
        service("conference", inner, app="conference", hosts="localhost meet.example.com",
                extra="    certificate-coverage warn")
    conf = env.write("acs.conf", text)
    r = subprocess.run([GATEHOUSE, "-t", "-c", conf], capture_output=True, text=True,
                       cwd=env.dir)
    check(r.returncode == 0 and "idp-sso-url http://idp.invalid/sso is not HTTPS" in r.stderr,
          "-t: %r" % r.stderr)
    env.gatehouse(text)
    st, h, md = Browser(env.ca).request("https://localhost:%d/api/v1/samlmetadata/%s" %
                                        (edge, UUID_A))
    locs = re.findall(r'AssertionConsumerService [^>]*Location="([^"]+)"', md.decode())
    want = ["https://%s:%d/api/v1/samlconsumer/%s" % (h, edge, UUID_A)
            for h in ("localhost", "meet.example.com")]
    check(st == 200 and sorted(locs) == want and not any(":%d/" % inner in u for u in locs),
          "ACS URLs: %d %r" % (st, locs))
