"""The example sites of docs/examples/ (issue 14).

- Every docs/examples/*.conf passes `gatehouse -t` with the files
  scripts/example-certs.sh makes, run from that folder as the examples
  expect (relative names), and fails without them; every configuration
  block of docs/examples/*.md passes -t there too.
- The Edge pool, the reverse proxy and the Pexip site run, with only their
  addresses, ports, log and state paths and check intervals moved to
  loopback: each row checks what the client got and what the real servers
  (TLS and plain TCP peers, UDP STUN/echo servers, HTTP backends) saw."""
import base64
import glob
import os
import re
import socket
import ssl
import subprocess
import sys
import urllib.parse
import zlib

from harness import GATEHOUSE, HERE, ROOT, check, curl, port_open, test, wait_until
from t_w_udp import Client, Echo, free_port_udp, metric
from t_x_tcp import Peer, tls_exchange

EXAMPLES = os.path.join(ROOT, "docs", "examples")
SCRIPT = os.path.join(ROOT, "scripts", "example-certs.sh")
# first words that start a configuration (the top-level directives a block
# of the docs may begin with)
TOP = ("workers", "state-dir", "error-log", "access-log", "security-log", "certificate", "ca",
       "service", "rules", "identity-provider", "identity-provider-group")


def example(name):
    with open(os.path.join(EXAMPLES, name)) as f:
        return f.read()


def make_example_certs(env, where=None):
    where = where or env.dir
    r = subprocess.run([SCRIPT, where], capture_output=True, text=True,
                       env=dict(os.environ, GATEHOUSE=GATEHOUSE))
    check(r.returncode == 0, "example-certs.sh: %s" % r.stderr)
    return where


def check_conf(path, cwd):
    return subprocess.run([GATEHOUSE, "-t", "-c", path], capture_output=True, text=True, cwd=cwd)


def doc_blocks(path):
    """(first line number, text) of each fenced block that is configuration."""
    out, block, start = [], None, 0
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.startswith("```"):
                if block is None:
                    block, start = [], n + 1
                    continue
                words = [l.split()[0] for l in block if l.strip() and not l.startswith("#")]
                if words and words[0] in TOP:
                    out.append((start, "".join(block)))
                block = None
            elif block is not None:
                block.append(line)
    return out


@test
def examples_pass_check_with_the_scripts_certificates(env):
    d = make_example_certs(env, env.path("certs"))
    confs = sorted(glob.glob(os.path.join(EXAMPLES, "*.conf")))
    check(len(confs) >= 3, "the examples: %r" % confs)
    for p in confs:
        r = check_conf(p, d)
        check(r.returncode == 0 and "configuration ok" in r.stderr,
              "%s: -t from the certificates' folder: %s" % (os.path.basename(p), r.stderr))
    # The check is real: from a folder without those files, every example that
    # names a file fails, naming it with its block's line.
    empty = env.path("empty")
    os.mkdir(empty)
    for p in confs:
        r = check_conf(p, empty)
        names_files = re.search(r"^\s*(cert|key|file|idp-certificate) ", example(p), re.M)
        if names_files:
            check(r.returncode == 1 and re.search(r"\.conf:\d+:\d+: certificate '", r.stderr),
                  "%s without its files: %r" % (os.path.basename(p), r.stderr))
        else:
            check(r.returncode == 0, "%s names no file: %r" % (os.path.basename(p), r.stderr))
    # Every configuration block of the examples' pages passes -t there too.
    blocks = 0
    for md in sorted(glob.glob(os.path.join(EXAMPLES, "*.md"))):
        for start, text in doc_blocks(md):
            p = env.write("block-%d.conf" % start, text)
            r = check_conf(p, d)
            check(r.returncode == 0, "%s, block at line %d: %s" % (md, start, r.stderr))
            blocks += 1
    check(blocks >= 1, "the README's configuration block was found")


def localize(env, text, servers, mgmt=None):
    """The example with every listen address on a free loopback port (one
    port per address, shared by the services that share it), every real
    server on servers[address] (or on the loopback port its address was
    moved to), logs and state in env, checks every 300 ms. Returns the text
    and {original listen address: port}."""
    ports = {}

    def listen(m):
        ports.setdefault(m.group(2), free_port_udp())
        return "%s127.0.0.1:%d" % (m.group(1), ports[m.group(2)])

    def server(m):
        a = m.group(2)
        port = servers[a] if a in servers else ports[a]
        return "%s127.0.0.1:%d" % (m.group(1), port)
    text = re.sub(r"^(\s*listen )(\S+)", listen, text, flags=re.M)
    text = re.sub(r"^(\s*server \S+ )(\S+)", server, text, flags=re.M)
    text = re.sub(r"^state-dir .*$", "state-dir " + env.path("state"), text, flags=re.M)
    text = re.sub(r"^access-log .*$", "access-log " + env.path("access.log"), text, flags=re.M)
    text = re.sub(r"^security-log .*$", "security-log " + env.path("security.log"), text,
                  flags=re.M)
    text = text.replace(" interval 5s", " interval 300ms timeout 250ms")
    if mgmt:
        text += ("certificate gh-test {\n    cert %s\n    key %s\n}\nservice mgmt {\n"
                 "    listen 127.0.0.1:%d\n    certificate gh-test\n    allowed-hosts localhost\n"
                 "    allowed-dirs /*\n    app management\n}\n" % (env.cert, env.key, mgmt))
    return text, ports


def server_cert(env, ca, name, sans):
    r = subprocess.run([GATEHOUSE, "certs", "server", "--ca", env.path(ca), "--out",
                        env.path(name), "--cn", sans[0],
                        "--san", ",".join("DNS:" + s for s in sans)], capture_output=True)
    check(r.returncode == 0, "certs server %s: %r" % (name, r.stderr))
    return env.path(name + ".pem"), env.path(name + ".key")


def wait_up(env, m, pairs):
    for svc, srv in pairs:
        wait_until(lambda: metric(env, m, "gatehouse_server_up", service=svc, server=srv,
                                  state="up") == 1, 15, "%s/%s up by its check" % (svc, srv))


@test
def example_edge_pool_runs(env):
    # The Edge servers hold the public certificates (from the env's CA here).
    sip = server_cert(env, "ca", "sip", ["sip.mycloud.ag"])
    webconf = server_cert(env, "ca", "webconf", ["webconf.mycloud.ag"])
    peers, udp = {}, {}
    for edge, i in (("edge1", 1), ("edge2", 2)):
        peers["10.154.200.1%d:5061" % i] = Peer(edge + "-sip5061", *sip)
        peers["10.154.200.1%d:443" % i] = Peer(edge + "-sip443", *sip)
        peers["10.154.200.2%d:443" % i] = Peer(edge + "-webconf", *webconf)
        peers["10.154.200.3%d:443" % i] = Peer(edge + "-av")
        udp["10.154.200.3%d:3478" % i] = Echo(env, edge)
    ports = {a: p.port for a, p in peers.items()}
    ports.update({a: e.port for a, e in udp.items()})
    m = free_port_udp()
    text, listen = localize(env, example("lync-edge-l4.conf"), ports, mgmt=m)
    env.gatehouse(text)
    wait_up(env, m, [(s, e) for s in ("access-edge-5061", "access-edge-443", "webconf-edge-443",
                                      "av-edge-443", "av-edge-3478") for e in ("edge1", "edge2")])

    def by_name(prefix):
        return {p.name.decode(): p for p in peers.values() if p.name.decode().endswith(prefix)}

    # Access Edge: TLS passed through by server name; the Edge server's own
    # certificate reaches the client and the client's own bytes the server.
    for addr, host, kind in (("10.154.11.10:5061", "sip.mycloud.ag", "-sip5061"),
                             ("10.154.11.10:443", "sip.mycloud.ag", "-sip443"),
                             ("10.154.11.11:443", "webconf.mycloud.ag", "-webconf")):
        answers = set()
        for i in range(4):
            data = b"OPTIONS sip:%s SIP/2.0 #%d" % (host.encode(), i)
            sent, answer, cn = tls_exchange(listen[addr], host, env.ca, data)
            check(cn == host, "%s: the Edge server's certificate: %r" % (addr, cn))
            name, _, body = answer.partition(b":")
            check(body == data and name.decode().endswith(kind), "%s answered by an Edge %s "
                  "server: %r" % (addr, kind, answer))
            peer = by_name(kind)[name.decode()]
            wait_until(lambda: any(r[:len(sent)] == sent for r in peer.raw), 5,
                       "%s: the client's own ClientHello and bytes at %s" % (addr, name))
            # (the checks' handshakes, in between, send no name)
            check(host in peer.sni, "the server read the client's name: %r" % peer.sni)
            answers.add(name)
        check(len(answers) == 1, "%s: one client address kept its Edge server "
              "(persistence source-ip): %r" % (addr, answers))
    # a name the Access Edge does not publish never reaches an Edge server.
    # Counted by the name, not by bytes: the health checks' handshakes
    # reach the servers at any moment (a fresh Debian run caught one in
    # between), and they send no name.
    def named(n):
        return (sum(x == n for p in peers.values() for x in p.sni) +
                sum(n.encode() in r for p in peers.values() for r in p.raw))
    before = named("webconf.mycloud.ag")
    try:
        tls_exchange(listen["10.154.11.10:5061"], "webconf.mycloud.ag", env.ca, b"x")
        check(False, "another host's name was passed through to the Access Edge")
    except (OSError, ValueError):
        pass
    check(named("webconf.mycloud.ag") == before, "refused before any server")

    # A/V 443/TCP: bytes both ways, untouched.
    s = socket.create_connection(("127.0.0.1", listen["10.154.11.12:443"]), timeout=5)
    s.sendall(b"\x16\x03\x01 pseudo-TLS TURN")
    got = s.recv(1000)
    s.close()
    check(re.match(rb"^edge[12]-av:\x16\x03\x01 pseudo-TLS TURN$", got), "A/V 443: %r" % got)
    av = by_name("-av")[got.split(b":")[0].decode()]
    # (its checks connect and send nothing: their rows are empty)
    check(b"\x16\x03\x01 pseudo-TLS TURN" in av.raw, "the A/V server got the bytes as sent: %r"
          % av.raw)

    # A/V 3478/UDP: a STUN Binding request gets its success response through
    # the pool; flows from one address keep their Edge server.
    port = listen["10.154.11.12:3478"]
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.settimeout(5)
    req = b"\x00\x01\x00\x00\x21\x12\xa4\x42" + b"client000042"
    c.sendto(req, ("127.0.0.1", port))
    reply, frm = c.recvfrom(1000)
    c.close()
    check(reply == b"\x01\x01\x00\x00" + req[4:] and frm == ("127.0.0.1", port),
          "Binding success response with the request's transaction ID: %r" % reply)
    names, clients = set(), []
    for i in range(5):
        # all five open at once: a closed client's port may be the next
        # one's (seen once in a fresh root), and then it is one flow
        cl = Client(port)
        clients.append(cl)
        names.add(cl.ask(b"media %d" % i))
    for cl in clients:
        cl.close()
    check(len(names) == 1, "five flows of one address on one Edge server: %r" % names)
    e = next(e for e in udp.values() if e.name in names)
    check(len(e.ports()) == 5, "the Edge server saw five flows: %r" % e.seen())


@test
def example_reverse_proxy_runs(env):
    make_example_certs(env)
    # The pools' external IIS sites: certificates from the site's internal CA
    # (the seed lists the same two addresses for both pools, so each answers
    # for both names); the HTTP sites on 8080.
    iis = server_cert(env, "internal-ca", "iis", ["ws-ext.mycloud.ag", "fepool-ext.mycloud.ag"])
    backends = {}
    for a in ("10.154.201.2:4443", "10.154.201.3:4443"):
        backends[a] = free_port_udp()
        env.spawn([sys.executable, os.path.join(HERE, "backend.py"), str(backends[a]),
                   iis[0], iis[1], "0"], "iis-%d.log" % backends[a])
        wait_until(lambda: port_open(backends[a]), what="IIS site %s" % a)
    for a in ("10.154.201.2:8080", "10.154.201.3:8080"):
        backends[a] = env.backend(tls=False)
    m = free_port_udp()
    text, listen = localize(env, example("lync-reverse-proxy.conf"), backends, mgmt=m)
    env.gatehouse(text)
    wait_up(env, m, [(s, n) for s, ns in (("ws-ext", ("dir1", "dir2")),
                                           ("fepool-ext", ("fe1", "fe2")),
                                           ("ws-ext-80", ("dir1", "dir2")),
                                           ("fepool-ext-80", ("fe1", "fe2"))) for n in ns])
    https, http = listen["10.154.11.5:443"], listen["10.154.11.5:80"]
    tls_ports = {backends["10.154.201.2:4443"], backends["10.154.201.3:4443"]}
    plain_ports = {backends["10.154.201.2:8080"], backends["10.154.201.3:8080"]}

    def get(url, host, port, *args):
        r = curl("-i", "--cacert", env.path("public-ca.pem"), "--resolve",
                 "%s:%d:127.0.0.1" % (host, port), *args, url)
        return r.returncode, r.stdout.decode("latin-1"), r.stderr.decode()

    # One address, two virtual services: each name gets a certificate naming
    # it (curl verifies), the pool behind 4443 and an MS-WSMAN cookie.
    for host in ("ws-ext.mycloud.ag", "meet.mycloud.ag", "dialin.mycloud.ag",
                 "scheduler.mycloud.ag", "lyncdiscover.mycloud.ag", "fepool-ext.mycloud.ag"):
        rc, out, err = get("https://%s:%d/whoami" % (host, https), host, https)
        check(rc == 0 and out.startswith("HTTP/1.1 200"), "%s over https: %s %s" % (host, out, err))
        body = out.split("\r\n\r\n", 1)[1].strip()
        check(int(body) in tls_ports, "%s reached an IIS site on 4443: %r" % (host, body))
        check(re.search(r"(?mi)^set-cookie: MS-WSMAN=[^;]+;.*Secure", out),
              "%s: persistence cookie MS-WSMAN: %s" % (host, out))
    # ... whose TLS server name picks the certificate: fepool-ext's names only itself
    for sni, want in (("fepool-ext.mycloud.ag", ("fepool-ext.mycloud.ag",)),
                      ("meet.mycloud.ag", ("ws-ext.mycloud.ag", "meet.mycloud.ag",
                                           "dialin.mycloud.ag", "scheduler.mycloud.ag",
                                           "lyncdiscover.mycloud.ag"))):
        ctx = ssl.create_default_context(cafile=env.path("public-ca.pem"))
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", https), timeout=5),
                             server_hostname=sni) as t:
            sans = tuple(v for k, v in t.getpeercert()["subjectAltName"] if k == "DNS")
        check(sans == want, "%s gets its own service's certificate: %r" % (sni, sans))
    # Port 80: the landing pages keep host, path and query on their way to https.
    rc, out, _ = get("http://meet.mycloud.ag:%d/user/ID?x=1" % http, "meet.mycloud.ag", http)
    check(out.startswith("HTTP/1.1 301") and
          "\r\nLocation: https://meet.mycloud.ag/user/ID?x=1\r\n" in out, "meet on 80: %r" % out)
    # ... what must stay HTTP reaches the pools' 8080, never a 4443 site
    for host in ("ws-ext.mycloud.ag", "lyncdiscover.mycloud.ag", "fepool-ext.mycloud.ag"):
        rc, out, _ = get("http://%s:%d/whoami" % (host, http), host, http)
        check(out.startswith("HTTP/1.1 200"), "%s on 80: %r" % (host, out))
        check(int(out.split("\r\n\r\n", 1)[1].strip()) in plain_ports, "%s to 8080" % host)
    # ... and a host no service on 80 allows is refused, not redirected
    rc, out, _ = get("http://intranet.mycloud.ag:%d/" % http, "intranet.mycloud.ag", http)
    check(out.startswith("HTTP/1.1 403") and "Location" not in out, "unknown host: %r" % out)


def authn_request(location):
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    return zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15).decode()


@test
def example_pexip_runs(env):
    make_example_certs(env)  # the nodes' files are read from the working directory
    m = free_port_udp()
    text, listen = localize(env, example("pexip.conf"), {}, mgmt=m)
    env.gatehouse(text)
    wait_up(env, m, [("pexip", "node-a"), ("pexip", "node-b")])
    p = listen["10.154.11.7:443"]

    def get(path, *args):
        r = curl("-i", "--cacert", env.path("public-ca.pem"), "--resolve",
                 "pexip.mycloud.ag:%d:127.0.0.1" % p, "-H", "Host: pexip.mycloud.ag", *args,
                 "https://pexip.mycloud.ag:%d%s" % (p, path))
        return r.stdout.decode("latin-1")

    out = get("/healthcheck.html")
    check(out.startswith("HTTP/1.1 200"), "a node answers through the public name: %r" % out)
    # the admin API and the status page stay off the Internet
    for path in ("/api/v1/admin/meetings", "/"):
        out = get(path)
        check(out.startswith("HTTP/1.1 403"), "%s from the Internet: %r" % (path, out[:200]))
    # One name, one ACS URL: the metadata and the AuthnRequest name it.
    uuid = "0ac6342a-e54b-4a25-96e8-bbbab46f9eef"
    acs = "https://pexip.mycloud.ag/api/v1/samlconsumer/" + uuid
    out = get("/api/v1/samlmetadata/" + uuid)
    check(out.startswith("HTTP/1.1 200") and out.count("AssertionConsumerService ") == 1 and
          'Location="%s"' % acs in out, "SP metadata with one ACS URL: %r" % out[-800:])
    # A group of one IdP sends the participant to it; a group of two lets
    # them choose, by the names the seed says participants see.
    out = get("/api/v1/samllogin/staff?RelayState=/join")
    loc = re.search(r"(?mi)^location: (\S+)", out)
    check(out.startswith("HTTP/1.1 30") and loc and
          loc.group(1).startswith("https://sts.mycloud.ag/adfs/ls/?"), "staff: %r" % out[:300])
    req = authn_request(loc.group(1))
    check('AssertionConsumerServiceURL="%s"' % acs in req and
          "<saml:Issuer>https://pexip.mycloud.ag</saml:Issuer>" in req.replace(
              ' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"', ""),
          "the AuthnRequest: %r" % req)
    out = get("/api/v1/samllogin/everyone")
    check(out.startswith("HTTP/1.1 200") and "MYCLOUD staff" in out and "MYCLOUD partners" in out,
          "the choice page of everyone: %r" % out[-400:])
    # a meeting (the seed's VMR) names its group
    r = subprocess.run([GATEHOUSE, "meeting", "create", "board", "--host-pin", "1234",
                        "--auth", "both", "--idp-group", "staff", "-c", env.path("gh.conf")],
                       capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 0 and "idp-group=staff" in r.stdout, "meeting create: %r" % r.stderr)
