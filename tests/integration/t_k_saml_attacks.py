"""Hostile responses: each a real signed response from SimpleSAMLphp
altered one way, posted to the assertion consumer through the proxy, and
each refused with its own reason in the security log. Where a case needs
a well-signed but wrong assertion (expired, wrong audience, ...), it is
re-signed with the IdP's own key by xmlsec1, so only the one check under
test can refuse it. XSW1-XSW8 follow the shapes of Somorovsky et al.,
"On Breaking SAML: Be Whoever You Want to Be" (USENIX Security 2012)."""
import base64
import copy
import os
import subprocess

from lxml import etree

from harness import check, test
from saml_idp import Browser, idp_response
from t_j_saml import Topology

NS = {"samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
      "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
      "ds": "http://www.w3.org/2000/09/xmldsig#"}
DS = "{%s}" % NS["ds"]
SAML = "{%s}" % NS["saml"]
SAMLP = "{%s}" % NS["samlp"]


def parse(b64):
    return etree.fromstring(base64.b64decode(b64), etree.XMLParser(resolve_entities=False))


def enc(root):
    return base64.b64encode(etree.tostring(root)).decode()


def assertion(root):
    return root.find("saml:Assertion", NS)


def resign(env, root, key, cert, name):
    """Re-signs the (only) Assertion signature with key/cert: the result is
    validly signed by whoever holds key."""
    for s in root.findall("ds:Signature", NS):  # a Response signature would no longer match
        root.remove(s)
    sig = assertion(root).find("ds:Signature", NS)
    sig.find(".//ds:DigestValue", NS).text = ""
    sig.find("ds:SignatureValue", NS).text = ""
    ki = sig.find("ds:KeyInfo", NS)
    for c in list(ki):
        ki.remove(c)
    etree.SubElement(ki, DS + "X509Data")
    tpl, out = env.path(name + ".tpl.xml"), env.path(name + ".signed.xml")
    with open(tpl, "wb") as f:
        f.write(etree.tostring(root))
    r = subprocess.run(["xmlsec1", "--sign", "--privkey-pem", "%s,%s" % (key, cert),
                        "--id-attr:ID", NS["saml"] + ":Assertion", "--output", out, tpl],
                       capture_output=True, timeout=30)
    check(r.returncode == 0, "xmlsec1 --sign failed: %r" % r.stderr[:300])
    with open(out, "rb") as f:
        return etree.fromstring(f.read())


class Attacks:
    def __init__(self, env, sign_response=False):
        self.env = env
        # Dozens of hostile posts from one address, each for its own reason:
        # past the default per-source limit they would all be 429.
        self.t = Topology(env, sign_response=sign_response,
                          extra_main="saml-rate-per-source 10000")
        self.idp = self.t.idps[0][0]

    def capture(self):
        """A fresh, genuine response (not yet posted) and its browser."""
        b = Browser(self.env.ca)
        acs, fields = idp_response(b, self.t.url, "staff", "alice", "wonderland")
        return b, acs, fields

    def post(self, b, acs, fields, b64):
        f = dict(fields)
        f["SAMLResponse"] = b64
        return b.request(acs, data=f)

    def refused(self, case, b, acs, fields, b64, reason):
        n = len(self.t.security())
        st, h, body = self.post(b, acs, fields, b64)
        check(st in (403, 413), "%s: accepted or odd status %d %r" % (case, st, body[:100]))
        check(b"__Host-gh-sp=" not in str(h).encode(), "%s: a session cookie was set" % case)
        log = self.t.security()[n:]
        check(log, "%s: nothing in the security log" % case)
        got = log[-1]["reason"].split(":", 1)[0]
        check(got == reason, "%s: refused as %r, expected %r (%s)" %
              (case, got, reason, log[-1]["reason"]))
        return got


def sign_response_only(env, root, key, cert, name):
    """The Assertion's signature moved up: the Response signed (validly, by
    whoever holds key) and the Assertion inside it unsigned."""
    a = assertion(root)
    sig = a.find("ds:Signature", NS)
    a.remove(sig)
    for s in root.findall("ds:Signature", NS):
        root.remove(s)
    sig.find(".//ds:DigestValue", NS).text = ""
    sig.find("ds:SignatureValue", NS).text = ""
    sig.find(".//ds:Reference", NS).set("URI", "#" + root.get("ID"))
    ki = sig.find("ds:KeyInfo", NS)
    for c in list(ki):
        ki.remove(c)
    etree.SubElement(ki, DS + "X509Data")
    root.find("saml:Issuer", NS).addnext(sig)
    tpl, out = env.path(name + ".tpl.xml"), env.path(name + ".signed.xml")
    with open(tpl, "wb") as f:
        f.write(etree.tostring(root))
    r = subprocess.run(["xmlsec1", "--sign", "--privkey-pem", "%s,%s" % (key, cert),
                        "--id-attr:ID", NS["samlp"] + ":Response", "--output", out, tpl],
                       capture_output=True, timeout=30)
    check(r.returncode == 0, "xmlsec1 --sign failed: %r" % r.stderr[:300])
    with open(out, "rb") as f:
        return etree.fromstring(f.read())


def xsw_cases(root):
    """XSW3-XSW8 against the Assertion signature: (name, document)."""
    out = []
    a = assertion(root)

    def evil_copy():
        e = copy.deepcopy(a)
        e.set("ID", "_evil" + os.urandom(8).hex())
        s = e.find("ds:Signature", NS)
        if s is not None:
            e.remove(s)
        e.find("saml:Subject/saml:NameID", NS).text = "admin"
        return e

    # XSW3: an evil assertion inserted before the signed one.
    r = copy.deepcopy(root)
    r.insert(list(r).index(assertion(r)), evil_copy())
    out.append(("XSW3", r))
    # XSW4: the signed assertion wrapped inside the evil one.
    r = copy.deepcopy(root)
    orig = assertion(r)
    e = evil_copy()
    r.replace(orig, e)
    e.append(orig)
    out.append(("XSW4", r))
    # XSW5: the signed assertion altered, a pristine copy appended to the Response.
    r = copy.deepcopy(root)
    orig = assertion(r)
    pristine = copy.deepcopy(orig)
    pristine.remove(pristine.find("ds:Signature", NS))
    orig.find("saml:Subject/saml:NameID", NS).text = "admin"
    r.append(pristine)
    out.append(("XSW5", r))
    # XSW6: altered assertion; pristine copy inside the Signature's ds:Object.
    r = copy.deepcopy(root)
    orig = assertion(r)
    pristine = copy.deepcopy(orig)
    pristine.remove(pristine.find("ds:Signature", NS))
    orig.find("saml:Subject/saml:NameID", NS).text = "admin"
    obj = etree.SubElement(orig.find("ds:Signature", NS), DS + "Object")
    obj.append(pristine)
    out.append(("XSW6", r))
    # XSW7: pristine signed copy hidden in an Extensions element, evil assertion consumed.
    r = copy.deepcopy(root)
    orig = assertion(r)
    ext = etree.Element(SAMLP + "Extensions")
    ext.append(copy.deepcopy(orig))
    r.insert(1, ext)
    e = evil_copy()
    r.replace(orig, e)
    out.append(("XSW7", r))
    # XSW8: evil assertion carrying the original signature, with the pristine
    # assertion (signature stripped) inside ds:Object of that signature.
    r = copy.deepcopy(root)
    orig = assertion(r)
    sig = orig.find("ds:Signature", NS)
    pristine = copy.deepcopy(orig)
    pristine.remove(pristine.find("ds:Signature", NS))
    orig.find("saml:Subject/saml:NameID", NS).text = "admin"
    etree.SubElement(sig, DS + "Object").append(pristine)
    out.append(("XSW8", r))
    return out


# Where the wrapped copy keeps the signed element's ID the duplicate ID is
# what gives it away (a reference can then resolve only one way); where the
# attacker gave the evil element a fresh ID, the second assertion does.
EXPECT_XSW = {"XSW1": "saml-duplicate-id", "XSW2": "saml-duplicate-id",
              "XSW3": "saml-assertion-count", "XSW4": "saml-assertion-count",
              "XSW5": "saml-duplicate-id", "XSW6": "saml-duplicate-id",
              "XSW7": "saml-assertion-count", "XSW8": "saml-duplicate-id"}


@test
def saml_hostile_responses_refused_each_with_its_reason(env):
    at = Attacks(env)
    idp = at.idp
    attacker_key, attacker_cert = env.path("att.key"), env.path("att.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    attacker_key, "-out", attacker_cert, "-days", "2", "-subj", "/CN=attacker"],
                   check=True, capture_output=True)
    b, acs, fields = at.capture()
    genuine = fields["SAMLResponse"]
    root = parse(genuine)
    tally = {}

    def case(name, doc, reason):
        tally[name] = at.refused(name, b, acs, fields, doc if isinstance(doc, str) else enc(doc),
                                 reason)

    # The control: the same response, parsed and re-serialised by lxml, is
    # accepted later (below), so the manipulations themselves break nothing.
    r = copy.deepcopy(root)
    assertion(r).remove(assertion(r).find("ds:Signature", NS))
    case("signature removed", r, "saml-unsigned")
    # The metadata says WantAssertionsSigned: a validly signed Response
    # around an unsigned Assertion is refused too.
    case("only the Response signed",
         sign_response_only(env, copy.deepcopy(root), idp.key, idp.cert, "resp-only"),
         "saml-unsigned")
    r = copy.deepcopy(root)
    assertion(r).find("saml:Subject/saml:NameID", NS).text = "admin"
    case("NameID changed after signing", r, "saml-bad-signature")
    r = copy.deepcopy(root)
    for v in assertion(r).iter(SAML + "AttributeValue"):
        v.text = "Mallory"
    case("attributes changed after signing", r, "saml-bad-signature")
    for name, doc in xsw_cases(root):
        case(name, doc, EXPECT_XSW[name])
    r = copy.deepcopy(root)
    nid = assertion(r).find("saml:Subject/saml:NameID", NS)
    nid.text = "al"
    com = etree.Comment("")
    com.tail = "ice"
    nid.append(com)
    case("comment inside NameID", r, "saml-xml-comment")
    r = copy.deepcopy(root)
    assertion(r).find("saml:Subject/saml:NameID", NS).text = "admin"
    case("signed by another key, that key in KeyInfo",
         resign(env, r, attacker_key, attacker_cert, "attacker"), "saml-bad-signature")
    r = copy.deepcopy(root)
    for el in assertion(r).iter(SAML + "Conditions", SAML + "SubjectConfirmationData"):
        el.set("NotOnOrAfter", "2020-01-01T00:00:00Z")
    case("expired", resign(env, r, idp.key, idp.cert, "expired"), "saml-expired")
    r = copy.deepcopy(root)
    assertion(r).find("saml:Conditions", NS).set("NotBefore", "2099-01-01T00:00:00Z")
    case("not yet valid", resign(env, r, idp.key, idp.cert, "future"), "saml-not-yet-valid")
    r = copy.deepcopy(root)
    assertion(r).find(".//saml:Audience", NS).text = "https://evil.example/sp"
    case("wrong audience", resign(env, r, idp.key, idp.cert, "aud"), "saml-audience")
    r = copy.deepcopy(root)
    r.set("Destination", "https://evil.example/api/v1/samlconsumer/x")
    case("wrong Destination", r, "saml-destination")
    r = copy.deepcopy(root)
    assertion(r).find(".//saml:SubjectConfirmationData", NS).set(
        "Recipient", "https://evil.example/acs")
    case("wrong Recipient", resign(env, r, idp.key, idp.cert, "rcpt"), "saml-recipient")
    r = copy.deepcopy(root)
    other = "_" + os.urandom(20).hex()
    r.set("InResponseTo", other)
    assertion(r).find(".//saml:SubjectConfirmationData", NS).set("InResponseTo", other)
    case("unknown InResponseTo", resign(env, r, idp.key, idp.cert, "irt"),
         "saml-request-unknown")
    laughs = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
              '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">'
              ']><samlp:Response xmlns:samlp="%s">&c;</samlp:Response>' % NS["samlp"])
    case("DOCTYPE with entities (billion laughs)", base64.b64encode(laughs.encode()).decode(),
         "saml-xml-doctype")
    xxe = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' +
           etree.tostring(root).decode().replace("alice</saml:NameID>", "&x;</saml:NameID>", 1))
    case("external entity", base64.b64encode(xxe.encode()).decode(), "saml-xml-doctype")
    case("oversized", base64.b64encode(b"<a>" + b"x" * 400000 + b"</a>").decode(),
         "saml-too-large")
    # None of the above consumed the request: the genuine response, after
    # an lxml round trip, still signs the participant in ...
    st, h, body = at.post(b, acs, fields, enc(root))
    check(st == 303, "genuine response refused after the attacks: %d %r" %
          (st, at.t.security()[-1:]))
    # ... once.
    case("same response posted twice", enc(root), "saml-replay")
    # A second genuine response to the same AuthnRequest: the IdP answers
    # the replayed redirect again with a fresh assertion.
    check(len(tally) >= 20, "only %d cases ran" % len(tally))
    with open(env.path("saml-tally.txt"), "w") as f:
        for k, v in tally.items():
            f.write("%s\t%s\n" % (k, v))
    print("    saml attacks refused: %d (%s)" % (len(tally), ", ".join(sorted(set(tally.values())))))


@test
def saml_request_id_is_used_once(env):
    """Two genuine responses to one AuthnRequest (the login redirect is
    replayed to the IdP, which answers it again): the first signs in, the
    second is refused as a reused request."""
    at = Attacks(env)
    b = Browser(env.ca)
    st, h, _ = b.request(at.t.url + "/api/v1/samllogin/staff?RelayState=/x")
    check(st == 302, "login start %d" % st)
    sso = h["Location"]
    from saml_idp import form_fields
    import urllib.parse
    st, h, page, url = b.follow(sso)
    action, f = form_fields(page)
    f.update(username="alice", password="wonderland")
    st, h, page, url = b.follow(urllib.parse.urljoin(url, action or url), data=f)
    acs, first = form_fields(page)
    st, h, page, url = b.follow(sso)  # the same AuthnRequest again; the IdP session answers
    acs2, second = form_fields(page)
    check("SAMLResponse" in first and "SAMLResponse" in second, "no second response")
    check(parse(first["SAMLResponse"]).get("InResponseTo") ==
          parse(second["SAMLResponse"]).get("InResponseTo"), "different requests")
    st, h, body = b.request(acs, data=first)
    check(st == 303, "first response refused: %d %r" % (st, at.t.security()[-1:]))
    at.refused("reused InResponseTo", b, acs2, second, second["SAMLResponse"],
               "saml-request-reused")


@test
def saml_response_signature_wrapping_xsw1_xsw2(env):
    """With the Response signed (SimpleSAMLphp saml20.sign.response): the
    genuine response is accepted, XSW1 and XSW2 refused."""
    at = Attacks(env, sign_response=True)
    b, acs, fields = at.capture()
    root = parse(fields["SAMLResponse"])
    check(root.find("ds:Signature", NS) is not None, "the IdP did not sign the Response")
    evil_id = "_evil" + os.urandom(8).hex()
    # XSW1: an evil Response (new ID, evil assertion, no valid signature for
    # it) carries the original signature, whose ds:Object holds the original.
    r = copy.deepcopy(root)
    sig = r.find("ds:Signature", NS)
    orig = copy.deepcopy(root)
    orig.remove(orig.find("ds:Signature", NS))
    r.set("ID", evil_id)
    assertion(r).find("saml:Subject/saml:NameID", NS).text = "admin"
    etree.SubElement(sig, DS + "Object").append(orig)
    at.refused("XSW1", b, acs, fields, enc(r), EXPECT_XSW["XSW1"])
    # XSW2: the same, the original Response detached beside the signature.
    r = copy.deepcopy(root)
    sig = r.find("ds:Signature", NS)
    r.set("ID", evil_id)
    assertion(r).find("saml:Subject/saml:NameID", NS).text = "admin"
    orig = copy.deepcopy(root)
    orig.remove(orig.find("ds:Signature", NS))
    sig.addprevious(orig)
    at.refused("XSW2", b, acs, fields, enc(r), EXPECT_XSW["XSW2"])
    st, h, body = at.post(b, acs, fields, fields["SAMLResponse"])
    check(st == 303, "genuine signed Response refused: %d %r" % (st, at.t.security()[-1:]))


@test
def saml_login_is_bound_to_the_browser_that_started_it(env):
    """Login forgery: a genuine response posted by a client other than the
    browser that started the login (no cookies, or its own login's binding
    cookie) is refused as saml-request-browser, and the refusal spends
    nothing: the genuine browser then signs in with the same response."""
    at = Attacks(env)
    b, acs, fields = at.capture()
    check(b.cookie("__Host-gh-login") is not None, "the login start set no binding cookie")
    at.refused("no cookies", Browser(env.ca), acs, fields, fields["SAMLResponse"],
               "saml-request-browser")
    other = Browser(env.ca)
    st, h, _ = other.request(at.t.url + "/api/v1/samllogin/staff")
    check(st == 302 and other.cookie("__Host-gh-login").value != b.cookie("__Host-gh-login").value,
          "the other browser's own login: %d" % st)
    at.refused("another browser's binding", other, acs, fields, fields["SAMLResponse"],
               "saml-request-browser")
    st, h, body = b.request(acs, data=fields)
    check(st == 303 and "__Host-gh-sp=" in h.get("Set-Cookie", ""),
          "the genuine browser after the refusals: %d %r" % (st, at.t.security()[-1:]))


@test
def saml_login_on_a_host_without_its_acs_is_refused(env):
    """A login started on a Host for which the IdP has no acs-url is
    refused with the reason in the security log, instead of sending the
    participant to another host's consumer."""
    at = Attacks(env)
    b = Browser(env.ca)
    # The service allows the host name; its acs-url has the port, so a Host
    # without the port has no consumer of its own.
    st, h, body = b.request(at.t.url + "/api/v1/samllogin/staff", headers={"Host": "localhost"})
    check(st == 400 and "Location" not in h, "login on another Host: %d %r" % (st, dict(h)))
    line = at.t.security()[-1]
    check(line["reason"].startswith("saml-login:Host localhost has no acs-url"),
          "security line: %r" % line)

