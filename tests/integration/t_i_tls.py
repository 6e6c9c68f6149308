"""Certificates and TLS policy, observed from the client with openssl
s_client and sslscan: SNI selection (exact, wildcard, default, ECDSA vs
RSA), refused versions and ciphers, resumption, HSTS, expiry checks, the
ALPN alert, and failed handshakes counted by reason and logged (limited)."""
import os
import re
import subprocess

from harness import GATEHOUSE, Fail, base_conf, check, curl, free_port, service, test, wait_until


def make_cert(env, name, sans, key="ec", days=30):
    """A certificate signed by the test CA; key is "ec" (P-256) or "rsa"."""
    keyf, csr, crt = env.path(name + ".key"), env.path(name + ".csr"), env.path(name + ".pem")
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else \
        ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-new", "-nodes"] + newkey +
                   ["-keyout", keyf, "-out", csr, "-subj", "/CN=" + sans[0],
                    "-addext", "subjectAltName=" + ",".join("DNS:" + s for s in sans)],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", env.ca,
                    "-CAkey", env.path("ca.key"), "-out", crt, "-days", str(days),
                    "-copy_extensions", "copy"], check=True, capture_output=True)
    os.chmod(keyf, 0o600)
    return crt, keyf


def cert_block(name, crt, key):
    return "certificate %s {\n    cert %s\n    key %s\n}\n" % (name, crt, key)


def s_client(port, *args, data=b""):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input=data, capture_output=True, timeout=20)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def served_cert(port, *args):
    rc, out = s_client(port, "-showcerts", *args)
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    if not m:
        return None, None
    txt = subprocess.run(["openssl", "x509", "-noout", "-subject", "-text"], input=m.group(0).encode(),
                         capture_output=True).stdout.decode()
    cn = re.search(r"subject=.*CN = ([^,\n]+)", txt)
    alg = "ec" if "id-ecPublicKey" in txt else "rsa" if "rsaEncryption" in txt else "?"
    return (cn.group(1).strip() if cn else None), alg


@test
def sni_selects_exact_wildcard_default_and_key_type(env):
    a_ec = make_cert(env, "a-ec", ["a.example.com"], "ec")
    a_rsa = make_cert(env, "a-rsa", ["a.example.com"], "rsa")
    wild = make_cert(env, "wild", ["*.wild.example.com"], "ec")
    b = env.backend()
    p = free_port()
    text = base_conf(env) + cert_block("a-ec", *a_ec) + cert_block("a-rsa", *a_rsa) + \
        cert_block("wild", *wild) + service("front", p, servers=[("b", b)]).replace(
            "    certificate main", "    certificate main a-ec a-rsa wild")
    g = env.gatehouse(text)
    cn, alg = served_cert(p, "-servername", "a.example.com")
    check(cn == "a.example.com" and alg == "ec", "exact SAN, ECDSA preferred: %r %r" % (cn, alg))
    cn, alg = served_cert(p, "-servername", "a.example.com", "-tls1_2",
                          "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    check(cn == "a.example.com" and alg == "rsa", "an RSA-only client gets the RSA one: %r %r"
          % (cn, alg))
    cn, _ = served_cert(p, "-servername", "x.wild.example.com")
    check(cn == "*.wild.example.com", "wildcard: %r" % cn)
    cn, _ = served_cert(p, "-servername", "a.b.wild.example.com")
    check(cn == "localhost", "a wildcard covers one label only: %r" % cn)
    cn, _ = served_cert(p, "-servername", "unknown.example.org")
    check(cn == "localhost", "default for an unknown name: %r" % cn)
    cn, _ = served_cert(p, "-noservername")
    check(cn == "localhost", "default without SNI: %r" % cn)


@test
def old_versions_and_weak_ciphers_refused(env):
    b = env.backend()
    p, old = free_port(), free_port()
    g = env.gatehouse(base_conf(env) + service("front", p, servers=[("b", b)]) +
                      service("legacy", old, servers=[("b", b)],
                              extra="    tls-versions 1.1 1.2 1.3"))
    weak = "DEFAULT:@SECLEVEL=0"
    for v in ("-tls1", "-tls1_1"):
        rc, out = s_client(p, v, "-cipher", weak)
        check(rc != 0, "%s refused by default: %s" % (v, out[-300:]))
    rc, out = s_client(old, "-tls1_1", "-cipher", weak)
    check(rc == 0 and "TLSv1.1" in out, "1.1 accepted only when listed: %s" % out[-300:])
    for c in ("AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "DHE-RSA-AES128-GCM-SHA256"):
        rc, out = s_client(p, "-tls1_2", "-cipher", c)
        check(rc != 0, "weak or non-FS suite %s refused" % c)
    rc, out = s_client(p, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    check(rc == 0, "an AEAD ECDHE suite works")
    scan = subprocess.run(["sslscan", "--no-colour", "127.0.0.1:%d" % p], capture_output=True,
                          text=True, timeout=120).stdout
    check("Accepted" in scan, "sslscan ran: %s" % scan[-500:])
    for proto in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        check(re.search(r"%s\s+enabled" % re.escape(proto), scan) is None, "%s offered" % proto)
    for line in re.findall(r"^(?:Preferred|Accepted)\s+(\S+)\s+\d+ bits\s+(\S+)", scan, re.M):
        ver, suite = line
        ok = suite.startswith("TLS_") or ("ECDHE" in suite and ("GCM" in suite or "CHACHA" in suite))
        check(ok, "only AEAD suites with forward secrecy: %s %s" % line)


@test
def session_resumption_seen_by_the_client(env):
    b = env.backend()
    p = free_port()
    g = env.gatehouse(base_conf(env) + service("front", p, servers=[("b", b)]))
    sess = env.path("sess.pem")
    req = b"GET /conn-id HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    for proto in ("-tls1_3", "-tls1_2"):
        rc, out = s_client(p, proto, "-servername", "localhost", "-ign_eof", "-sess_out", sess,
                           data=req)
        check(rc == 0 and "New," in out, "first handshake is full (%s)" % proto)
        rc, out = s_client(p, proto, "-servername", "localhost", "-ign_eof", "-sess_in", sess,
                           data=req)
        check(rc == 0 and "Reused," in out, "second handshake resumed (%s): %s" % (proto, out[-400:]))
    # Without tickets, TLS 1.2 resumes from the server's session cache.
    rc, out = s_client(p, "-tls1_2", "-no_ticket", "-servername", "localhost", "-ign_eof",
                       "-sess_out", sess, data=req)
    rc, out = s_client(p, "-tls1_2", "-no_ticket", "-servername", "localhost", "-ign_eof",
                       "-sess_in", sess, data=req)
    check(rc == 0 and "Reused," in out, "resumed from the session cache: %s" % out[-300:])
    # Ticket keys are process-wide and outlive a reload's new TLS contexts.
    import signal as sig
    from harness import wait_until
    rc, out = s_client(p, "-tls1_3", "-servername", "localhost", "-ign_eof", "-sess_out", sess,
                       data=req)
    g.signal(sig.SIGHUP)
    wait_until(lambda: "configuration reloaded" in g.output(), 5, "reload")
    rc, out = s_client(p, "-tls1_3", "-servername", "localhost", "-ign_eof", "-sess_in", sess,
                       data=req)
    check(rc == 0 and "Reused," in out, "a ticket from before the reload resumes after it")


@test
def hsts_header_and_expiry_checks(env):
    b = env.backend()
    p = free_port()
    soon = make_cert(env, "soon", ["soon.example.com"], "ec", days=5)
    expired = make_cert(env, "expired", ["old.example.com"], "ec", days=0)
    g = env.gatehouse(base_conf(env) + cert_block("soon", *soon) + service(
        "front", p, servers=[("b", b)], extra="    hsts-max-age 31536000").replace(
            "    certificate main", "    certificate main soon"))
    r = curl("--cacert", env.ca, "-D", "-", "-o", "/dev/null", "https://localhost:%d/conn-id" % p)
    check("strict-transport-security: max-age=31536000" in r.stdout.decode().lower(), "HSTS")
    check("soon.pem expires in 4 days" in g.output() or "soon.pem expires in 5 days" in g.output(),
          "expiry warning at start: %s" % g.output()[-400:])
    path = env.write("expired.conf", base_conf(env) + cert_block("expired", *expired) +
                     service("s", free_port(), servers=[("b", b)]).replace(
                         "    certificate main", "    certificate expired"))
    r = subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True)
    check(r.returncode == 1 and "expired.pem: certificate has expired" in r.stderr,
          "an expired certificate is refused at load, naming the file: %r" % r.stderr)


@test
def certificate_hot_reload_under_load(env):
    import signal as sig
    from harness import wait_until
    from t_e_signals import wrk, wrk_result
    b = env.backend()
    p = free_port()
    crt, key = make_cert(env, "live", ["localhost"], "ec")
    text = base_conf(env) + cert_block("live", crt, key) + service(
        "front", p, servers=[("b", b)]).replace("    certificate main", "    certificate live")
    g = env.gatehouse(text)

    def serial():
        rc, out = s_client(p, "-servername", "localhost", "-showcerts")
        m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
        return subprocess.run(["openssl", "x509", "-noout", "-serial"], input=m.group(0).encode(),
                              capture_output=True).stdout.decode().strip()
    before = serial()
    ka = wrk(p, 3)
    kept = socket_kept(p, env)  # an established connection across the reload
    new_crt, new_key = make_cert(env, "next", ["localhost"], "ec")
    os.replace(new_crt, crt)
    os.replace(new_key, key)
    g.signal(sig.SIGHUP)
    wait_until(lambda: "configuration reloaded" in g.output(), 5, "reload")
    after = serial()
    check(after != before, "new handshakes get the new certificate: %s -> %s" % (before, after))
    kept.sendall(b"GET /conn-id HTTP/1.1\r\nHost: localhost\r\n\r\n")
    from harness import read_response
    st, _, _, _ = read_response(kept)
    check(st == 200, "a connection established before the reload keeps working")
    kept.close()
    reqs, errors, out = wrk_result(ka)
    check(reqs > 100 and errors == 0, "no failed request across the swap: %d/%d\n%s"
          % (errors, reqs, out))


def socket_kept(port, env):
    from harness import tls_client
    s = tls_client(port, env.ca)
    s.sendall(b"GET /conn-id HTTP/1.1\r\nHost: localhost\r\n\r\n")
    from harness import read_response
    read_response(s)
    return s


@test
def certs_commands_generate_and_list(env):
    G = GATEHOUSE
    run = lambda *a: subprocess.run([G, "certs"] + list(a), capture_output=True, text=True,
                                    cwd=env.dir)
    check(run("ca", "--out", "myca").returncode == 0, "CA")
    r = run("server", "--ca", "myca", "--out", "web", "--cn", "meet.example.com",
            "--san", "DNS:meet.example.com,DNS:localhost,IP:127.0.0.1")
    check(r.returncode == 0, "server certificate: %s" % r.stderr)
    check(run("server", "--ca", "myca", "--out", "web-rsa", "--cn", "meet.example.com",
              "--rsa", "3072").returncode == 0, "RSA 3072")
    check(run("csr", "--out", "pub", "--cn", "meet.example.com").returncode == 0, "CSR")
    check(run("selfsigned", "--out", "self", "--cn", "self.example.com").returncode == 0, "self")
    r = run("server", "--ca", "myca", "--out", "web", "--cn", "x")
    check(r.returncode == 1 and "exists; not overwriting" in r.stderr, "no overwrite")
    r = run("server", "--ca", "myca", "--out", "bad", "--cn", "x", "--rsa", "1024")
    check(r.returncode == 1 and "2048, 3072 or 4096" in r.stderr, "weak RSA refused")
    # A SAN list of plain names says which kind each needs.
    for sans, want in (("meet.example.com", "DNS:meet.example.com"),
                       ("DNS:a.example.com,192.0.2.10", "IP:192.0.2.10"),
                       ("DNS:", "DNS:DNS:")):
        r = run("csr", "--out", "plain", "--cn", "x", "--san", sans)
        check(r.returncode == 1 and ("say what it is, " + want) in r.stderr and
              not os.path.exists(env.path("plain.key")), "SAN %r: %s" % (sans, r.stderr))
    v = subprocess.run(["openssl", "verify", "-CAfile", env.path("myca.pem"), env.path("web.pem"),
                        env.path("web-rsa.pem")], capture_output=True, text=True)
    check(v.returncode == 0, "signed by the CA: %s" % v.stdout)
    v = subprocess.run(["openssl", "req", "-in", env.path("pub.csr"), "-noout", "-verify"],
                       capture_output=True, text=True)
    check(v.returncode == 0, "CSR verifies")
    for k in ("myca.key", "web.key", "pub.key", "self.key"):
        check(os.stat(env.path(k)).st_mode & 0o077 == 0, "%s is 0600" % k)
    conf = env.write("l.conf", "certificate web { cert %s; key %s }\ncertificate rsa { cert %s; key %s }\n"
                     % (env.path("web.pem"), env.path("web.key"), env.path("web-rsa.pem"),
                        env.path("web-rsa.key")))
    r = run("list", "-c", conf)
    lines = r.stdout.strip().split("\n")
    check(r.returncode == 0 and len(lines) == 3, "header and two certificates: %r" % r.stdout)
    f = lines[1].split("\t")
    check(f[0] == "web" and "CN=meet.example.com" in f[1] and "IP:127.0.0.1" in f[2] and
          "gatehouse internal CA" in f[3] and f[4] == "ECDSA 256" and int(f[6]) in (824, 825),
          "inventory fields: %r" % f)
    check(lines[2].split("\t")[4] == "RSA 3072", "RSA key type listed")


@test
def mutual_tls_and_pinned_real_servers(env):
    ngx = env.nginx({"f.txt": 10}, extra="ssl_verify_client on; ssl_client_certificate %s;" % env.ca)
    r = subprocess.run([GATEHOUSE, "certs", "server", "--ca", env.path("ca"), "--out",
                        env.path("client"), "--cn", "gatehouse-edge"], capture_output=True, text=True)
    check(r.returncode == 0, "client certificate: %s" % r.stderr)
    fp = subprocess.run(["openssl", "x509", "-in", env.cert, "-noout", "-fingerprint", "-sha256"],
                        capture_output=True, text=True).stdout.strip().split("=", 1)[1]
    no, yes, pinned, wrong = free_port(), free_port(), free_port(), free_port()
    text = base_conf(env) + cert_block("edge", env.path("client.pem"), env.path("client.key"))
    text += service("no", no, servers=[("n", ngx)])
    text += service("yes", yes, servers=[("n", ngx)], extra="    client-certificate edge")
    text += service("pinned", pinned, servers=[("n", ngx)], reencrypt=False,
                    extra="    reencrypt pinned\n    client-certificate edge").replace(
        "server n 127.0.0.1:%d" % ngx, "server n 127.0.0.1:%d pin sha256:%s" % (ngx, fp))
    text += service("wrong", wrong, servers=[("n", ngx)], reencrypt=False,
                    extra="    reencrypt pinned\n    client-certificate edge\n    retries 0").replace(
        "server n 127.0.0.1:%d" % ngx, "server n 127.0.0.1:%d pin sha256:%s" % (ngx, "00" * 32))
    g = env.gatehouse(text)
    code = lambda p: curl("--cacert", env.ca, "-o", "/dev/null", "-w", "%{http_code}",
                          "https://localhost:%d/f.txt" % p).stdout.decode()
    check(code(no) == "400", "nginx refuses the proxy without a client certificate")
    check(code(yes) == "200", "mutual TLS to the real server")
    check(code(pinned) == "200", "pinned fingerprint accepted")
    check(code(wrong) == "502", "wrong pin refused")
    check("certificate does not match its pin" in g.output(), "logged")


@test
def chain_order_and_key_mismatch_are_named(env):
    r = subprocess.run([GATEHOUSE, "certs", "ca", "--out", env.path("inter")], capture_output=True)
    leaf = make_cert(env, "leaf", ["leaf.example.com"], "ec")
    other = make_cert(env, "other", ["other.example.com"], "ec")
    good = env.write("good-chain.pem", open(leaf[0]).read() + open(env.ca).read())
    bad = env.write("bad-chain.pem", open(env.ca).read() + open(leaf[0]).read())
    wrong_order = env.write("wrong.pem", open(leaf[0]).read() + open(env.path("inter.pem")).read())

    def check_conf(cert, key):
        path = env.write("c.conf", cert_block("c", cert, key) +
                         service("s", free_port(), app="status").replace(
                             "    certificate main", "    certificate c"))
        return subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True)
    r = check_conf(good, leaf[1])
    check(r.returncode == 0, "leaf then issuer is fine: %s" % r.stderr)
    r = check_conf(wrong_order, leaf[1])
    check(r.returncode == 1 and "wrong.pem: chain is not in order" in r.stderr,
          "an unrelated second certificate is refused: %r" % r.stderr)
    r = check_conf(bad, leaf[1])
    check(r.returncode == 1 and "bad-chain.pem" in r.stderr, "issuer first is refused: %r" % r.stderr)
    r = check_conf(leaf[0], other[1])
    check(r.returncode == 1 and "other.key" in r.stderr and "does not match" in r.stderr,
          "a key of another certificate is named: %r" % r.stderr)


@test
def pkcs12_certificate_with_passphrase_file(env):
    p12, pw, badpw = env.path("edge.p12"), env.path("pass.txt"), env.path("bad.txt")
    env.write("pass.txt", "s3cret phrase\n")
    env.write("bad.txt", "wrong\n")
    for f in (pw, badpw):
        os.chmod(f, 0o600)
    subprocess.run(["openssl", "pkcs12", "-export", "-in", env.cert, "-inkey", env.key,
                    "-certfile", env.ca, "-out", p12, "-passout", "file:" + pw],
                   check=True, capture_output=True)
    os.chmod(p12, 0o600)
    b = env.backend()
    port = free_port()
    block = "certificate edge {\n    pkcs12 %s\n    passphrase-file %s\n}\n"
    g = env.gatehouse(base_conf(env) + block % (p12, pw) + service(
        "front", port, servers=[("b", b)]).replace("    certificate main", "    certificate edge"))
    r = curl("--cacert", env.ca, "https://localhost:%d/conn-id" % port)
    check(r.returncode == 0 and r.stdout.isdigit(), "served with the PKCS#12 certificate")
    path = env.write("bad.conf", base_conf(env) + block % (p12, badpw) + service(
        "s", free_port(), app="status").replace("    certificate main", "    certificate edge"))
    r = subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True)
    check(r.returncode == 1 and "edge.p12: cannot read PKCS#12 (wrong passphrase" in r.stderr,
          "wrong passphrase named: %r" % r.stderr)
    os.chmod(pw, 0o644)
    path = env.write("perm.conf", base_conf(env) + block % (p12, pw) + service(
        "s", free_port(), app="status").replace("    certificate main", "    certificate edge"))
    r = subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True)
    check(r.returncode == 1 and "pass.txt: private key is accessible by group or others" in r.stderr,
          "a readable passphrase file is refused: %r" % r.stderr)


def ocsp_response(env, out, revoked=False):
    serial = subprocess.run(["openssl", "x509", "-in", env.cert, "-noout", "-serial"],
                            capture_output=True, text=True).stdout.strip().split("=")[1]
    env.write("index.txt", "%s\t301231235959Z\t%s\t%s\tunknown\t/O=gatehouse/CN=localhost\n" % (
        "R" if revoked else "V", "240101000000Z" if revoked else "", serial))
    subprocess.run(["openssl", "ocsp", "-issuer", env.ca, "-cert", env.cert, "-no_nonce",
                    "-reqout", env.path("req.der")], check=True, capture_output=True)
    subprocess.run(["openssl", "ocsp", "-index", env.path("index.txt"), "-rsigner", env.ca,
                    "-rkey", env.path("ca.key"), "-CA", env.ca, "-reqin", env.path("req.der"),
                    "-respout", out, "-ndays", "1"], check=True, capture_output=True)


@test
def ocsp_stapling_from_a_response_file(env):
    b = env.backend()
    port = free_port()
    resp = env.path("resp.der")
    text = base_conf(env).replace("    key %s\n}" % env.key,
                                  "    key %s\n    ocsp-response %s\n}" % (env.key, resp))
    text += service("front", port, servers=[("b", b)])
    env.write("resp.der", "junk")
    path = env.write("junk.conf", text)
    r = subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True)
    check(r.returncode == 1 and "resp.der: not a successful DER OCSP response" in r.stderr,
          "a bad response file is refused: %r" % r.stderr)
    ocsp_response(env, resp)
    g = env.gatehouse(text)
    rc, out = s_client(port, "-servername", "localhost", "-status")
    check("OCSP Response Status: successful" in out and "Cert Status: good" in out,
          "response stapled: %s" % out[:800])
    rc, out = s_client(port, "-servername", "localhost")
    check("OCSP response" not in out or "no response sent" in out, "only when asked")
    # A renewed file (as a cron job writes it: a new file renamed in) is
    # stapled without a reload; here the renewal says "revoked".
    ocsp_response(env, env.path("next.der"), revoked=True)
    os.rename(env.path("next.der"), resp)
    wait_until(lambda: "Cert Status: revoked" in s_client(port, "-servername", "localhost",
                                                          "-status")[1],
               timeout=10, what="the renewed response stapled")
    check("OCSP response read again" in g.output(), "the refresh is not logged")
    # Junk in its place: the last good response stays, with a warning.
    env.write("next.der", "junk")
    os.rename(env.path("next.der"), resp)
    wait_until(lambda: "still stapled" in g.output(), timeout=10, what="the warning")
    check("Cert Status: revoked" in s_client(port, "-servername", "localhost", "-status")[1],
          "a bad file replaced the last good response")
    # A response past its nextUpdate is not stapled at all.
    expired_ocsp_response(env, env.path("next.der"))
    os.rename(env.path("next.der"), resp)
    wait_until(lambda: "no response sent" in s_client(port, "-servername", "localhost",
                                                      "-status")[1],
               timeout=10, what="an expired response no longer stapled")


def expired_ocsp_response(env, out):
    """A good response whose nextUpdate is past, signed by the test CA."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509 import ocsp
    cert = x509.load_pem_x509_certificate(open(env.cert, "rb").read())
    ca = x509.load_pem_x509_certificate(open(env.ca, "rb").read())
    key = serialization.load_pem_private_key(open(env.path("ca.key"), "rb").read(), None)
    now = datetime.datetime.now(datetime.timezone.utc)
    b = ocsp.OCSPResponseBuilder().add_response(
        cert=cert, issuer=ca, algorithm=hashes.SHA1(), cert_status=ocsp.OCSPCertStatus.GOOD,
        this_update=now - datetime.timedelta(days=2), next_update=now - datetime.timedelta(days=1),
        revocation_time=None, revocation_reason=None).responder_id(
        ocsp.OCSPResponderEncoding.HASH, ca)
    with open(out, "wb") as f:
        f.write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


def handshakes_done(env, mgmt_port, svc):
    text = curl("--cacert", env.ca, "https://localhost:%d/metrics" % mgmt_port).stdout.decode()
    return {r: int(n) for r, n in re.findall(
        r'^gatehouse_tls_handshakes_total\{service="%s",resumed="(yes|no)"\} (\d+)$'
        % re.escape(svc), text, re.M)}


@test
def tls13_resumption_renews_the_ticket(env):
    # A TLS 1.3 client spends its ticket on the connection it resumes, so
    # each resumption must hand out a new one: a chain of reconnections,
    # each from the ticket of the one before (s_client -sess_in of the last
    # -sess_out, as wrk and browsers do), stays resumed after the first
    # handshake, on either of two workers, and /metrics counts them.
    b = env.backend()
    p, m = free_port(), free_port()
    env.gatehouse(base_conf(env, workers=2) + service("front", p, servers=[("b", b)]) +
                  service("mgmt", m, app="management"))
    req = b"GET /conn-id HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    before = handshakes_done(env, m, "front")
    seen = []
    for i in range(8):
        args = ["-tls1_3", "-servername", "localhost", "-ign_eof", "-sess_out",
                env.path("s%d.pem" % (i + 1))]
        if i:
            args += ["-sess_in", env.path("s%d.pem" % i)]
        rc, out = s_client(p, *args, data=req)
        check(rc == 0 and "HTTP/1.1 200" in out, "connection %d answered: %s" % (i, out[-300:]))
        seen.append("Reused," in out)
    check(seen == [False] + [True] * 7, "each reconnection resumed from the last ticket: %r" % seen)
    after = handshakes_done(env, m, "front")
    check(after.get("no", 0) - before.get("no", 0) == 1 and
          after.get("yes", 0) - before.get("yes", 0) == 7,
          "handshakes counted full / resumed: %r -> %r" % (before, after))


# Failed client handshakes: the reason counted per service in /metrics and
# /api/v1/stats, a tls:WORD line in the security log, nothing sent to the
# real server, and the service still serving right after.

def tls_failures(env, mgmt_port, svc):
    text = curl("--cacert", env.ca, "https://localhost:%d/metrics" % mgmt_port).stdout.decode()
    got = {}
    for reason, n in re.findall(r'^gatehouse_tls_handshake_failures_total\{service="%s",'
                                r'reason="([a-z-]+)"\} (\d+)$' % re.escape(svc), text, re.M):
        got[reason] = int(n)
    return got


def security_tls_lines(env):
    import json
    path = env.path("security.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [json.loads(x) for x in f if x.strip()]
    return [x for x in lines if x["reason"].startswith("tls:")]


def raw_tcp(port, payload=b"", wait_close=True, timeout=10):
    """Connects, sends payload, and (unless told not to) waits until the
    server closes or resets. Returns (seconds until the close, first bytes)."""
    import socket
    import time
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0, got = time.time(), None
    try:
        if payload:
            s.sendall(payload)
        if wait_close:
            got = s.recv(100)
    except ConnectionResetError:
        got = b""
    finally:
        s.close()
    return time.time() - t0, got


TLS_REASONS = ("no-shared-cipher", "protocol-version", "no-application-protocol", "http-on-tls",
               "client-certificate", "eof", "timeout", "other")

GET = b"GET /f.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"


def fail_alpn_h2(env, p):
    rc, out = s_client(p, "-servername", "localhost", "-alpn", "h2")
    return rc != 0 and "no application protocol" in out and "alert number 120" in out, out


def fail_tls11(env, p):
    rc, out = s_client(p, "-servername", "localhost", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
    return rc != 0 and "alert protocol version" in out, out


def fail_cipher(env, p):
    rc, out = s_client(p, "-servername", "localhost", "-tls1_2", "-cipher", "AES128-SHA")
    return rc != 0 and "alert handshake failure" in out, out


def fail_plain_http(env, p):
    secs, got = raw_tcp(p, GET)
    return got is not None and b"HTTP/" not in got, repr(got)


def fail_tcp_close(env, p):
    raw_tcp(p, wait_close=False)
    return True, ""


def fail_silent(env, p):
    secs, got = raw_tcp(p)
    return got == b"" and 0.8 <= secs < 5, "closed after %.2fs: %r" % (secs, got)


def fail_untrusted(env, p):
    r = curl("https://localhost:%d/f.txt" % p)  # without our CA: curl refuses the server
    return r.returncode == 60, r.stderr.decode()


# (reason, attempts, what one attempt does and whether the client saw what it should)
TLS_FAIL_CASES = [
    ("no-application-protocol", 2, fail_alpn_h2),
    ("protocol-version", 2, fail_tls11),
    ("no-shared-cipher", 2, fail_cipher),
    ("http-on-tls", 2, fail_plain_http),
    ("eof", 2, fail_tcp_close),
    ("timeout", 1, fail_silent),
    ("other", 1, fail_untrusted),
]


def tls_fail_env(env, workers=2):
    ngx = env.nginx({"f.txt": 10})
    front, m = free_port(), free_port()
    g = env.gatehouse(base_conf(env, workers=workers) +
                      service("front", front, servers=[("n", ngx)],
                              extra="    client-header-timeout 1s") +
                      service("mgmt", m, app="management"))
    return g, ngx, front, m


def nginx_requests(env, ngx):
    path = env.path("nginx-%d.access" % ngx)
    return open(path).read().count("GET /f.txt") if os.path.exists(path) else 0


def served(env, front):
    r = curl("--cacert", env.ca, "-o", "/dev/null", "-w", "%{http_code}",
             "https://localhost:%d/f.txt" % front)
    return r.stdout.decode() == "200"


@test
def alpn_without_http1_is_refused_with_the_alert(env):
    g, ngx, front, m = tls_fail_env(env)
    ok, out = fail_alpn_h2(env, front)
    check(ok, "h2 only: the handshake fails with no_application_protocol: %s" % out[-600:])
    wait_until(lambda: tls_failures(env, m, "front").get("no-application-protocol") == 1, 5,
               "no-application-protocol counted")
    check(tls_failures(env, m, "mgmt").get("no-application-protocol") == 0,
          "counted for its own service only")
    for alpn, want in (("h2,http/1.1", "http/1.1"), ("http/1.0", "http/1.0"),
                       ("spdy/3,http/1.0,http/1.1", "http/1.1")):
        rc, out = s_client(front, "-servername", "localhost", "-alpn", alpn, "-ign_eof",
                           data=GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        check(rc == 0 and "ALPN protocol: %s" % want in out and "HTTP/1.1 200" in out,
              "-alpn %s negotiates %s and is served: %s" % (alpn, want, out[-600:]))
    rc, out = s_client(front, "-servername", "localhost", "-ign_eof",
                       data=GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
    check(rc == 0 and "No ALPN negotiated" in out and "HTTP/1.1 200" in out,
          "a client without ALPN is unaffected: %s" % out[-600:])
    r = curl("--cacert", env.ca, "-o", "/dev/null", "-w", "%{http_version}",
             "https://localhost:%d/f.txt" % front)
    check(r.returncode == 0 and r.stdout.decode() == "1.1", "curl (h2,http/1.1) gets HTTP/1.1")
    check(nginx_requests(env, ngx) == 5, "only the five served requests reached nginx")
    check(tls_failures(env, m, "front") == dict.fromkeys(TLS_REASONS, 0) |
          {"no-application-protocol": 1}, "nothing else counted: %r" % tls_failures(env, m, "front"))


@test
def tls_handshake_failures_counted_by_reason(env):
    import json
    g, ngx, front, m = tls_fail_env(env)
    before = tls_failures(env, m, "front")
    check(before == dict.fromkeys(TLS_REASONS, 0), "every reason row, zero included: %r" % before)
    reached = 0
    for reason, n, attempt in TLS_FAIL_CASES:
        lines0 = len(security_tls_lines(env))
        for _ in range(n):
            ok, out = attempt(env, front)
            check(ok, "%s: what the client saw: %s" % (reason, out[-600:]))
        want = dict(before)
        want[reason] += n
        try:
            wait_until(lambda: tls_failures(env, m, "front") == want, 5, "%s counted" % reason)
        except Fail:
            raise Fail("%s: counters %r, wanted %r" % (
                reason, tls_failures(env, m, "front"), want))
        lines = security_tls_lines(env)[lines0:]
        check(len(lines) == n and all(x["reason"] == "tls:" + reason and x["service"] == "front"
                                      and x["client"].startswith("127.0.0.1:") and
                                      x["action"] == "close" and "suppressed" not in x
                                      for x in lines),
              "%s: one security line per failure: %r" % (reason, lines))
        check(served(env, front), "%s: a normal request right after works" % reason)
        reached += 1
        check(nginx_requests(env, ngx) == reached,
              "%s: only the normal requests reached nginx" % reason)
        before = want
    sni = [x["sni"] for x in security_tls_lines(env) if x["reason"] == "tls:no-shared-cipher"]
    check(sni == ["localhost"] * 2, "the SNI the client sent is logged: %r" % sni)
    st = json.loads(curl("--cacert", env.ca, "https://localhost:%d/api/v1/stats" % m).stdout)
    svc = [s for s in st["services"] if s["name"] == "front"][0]
    check(svc["tls_failures"] == before, "the JSON stats agree: %r" % svc.get("tls_failures"))
    check(tls_failures(env, m, "mgmt") == dict.fromkeys(TLS_REASONS, 0), "mgmt untouched")


@test
def tls_failure_log_is_rate_limited_but_counting_is_not(env):
    import time
    workers = 2
    g, ngx, front, m = tls_fail_env(env, workers=workers)
    t0 = time.time()
    deadline = t0 + 60
    n = 0
    while n < 300 and time.time() < deadline:
        raw_tcp(front, GET)  # returns once the server closed or reset: it has counted it
        n += 1
    elapsed = time.time() - t0
    check(n == 300, "300 plain-HTTP connects within 60 s (did %d)" % n)
    wait_until(lambda: tls_failures(env, m, "front").get("http-on-tls") == 300, 5,
               "all 300 counted")

    def accounted():
        lines = security_tls_lines(env)
        return len(lines) + sum(x.get("suppressed", 0) for x in lines)
    # A quiet second later each worker writes the line for what it suppressed last.
    wait_until(lambda: accounted() == 300, 5, "lines plus suppressed counts to reach 300")
    lines = security_tls_lines(env)
    import math
    bound = 20 * workers * (math.ceil(elapsed) + 1) + workers
    check(len(lines) <= bound and len(lines) < 300,
          "%d lines for 300 failures in %.2fs (at most %d)" % (len(lines), elapsed, bound))
    check(any(x.get("suppressed", 0) > 0 for x in lines), "a line says how many were suppressed")
    check(all(x["reason"] == "tls:http-on-tls" for x in lines), "every line names the reason")
    check(served(env, front), "still serving after the flood")
    check(nginx_requests(env, ngx) == 1, "none of the 300 reached nginx")
