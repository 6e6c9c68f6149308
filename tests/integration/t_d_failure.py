"""Real servers that are down, refuse, hang or misbehave: 502/504, plain
pages, never a hang; retry on another server when nothing is lost."""
import socket
import time

from harness import base_conf, check, curl, free_port, service, test


def closed_port():
    p = free_port()
    return p


@test
def server_down_gives_502(env):
    front = free_port()
    dead = closed_port()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("dead", dead)],
                                               extra="    retries 0"))
    t0 = time.time()
    r = curl("--cacert", env.ca, "-w", "%{http_code}", "-o", env.path("body"),
             "https://localhost:%d/" % front)
    check(r.stdout == b"502", "502 for a refused connect: %r" % r.stdout)
    check(time.time() - t0 < 3, "quickly")
    body = open(env.path("body"), "rb").read()
    check(b"502" in body and str(dead).encode() not in body and b"127.0.0.1" not in body,
          "plain page without internal address")


@test
def failover_to_second_server(env):
    front = free_port()
    dead = closed_port()
    live = env.backend()
    g = env.gatehouse(base_conf(env) + service("front", front,
                                               servers=[("dead", dead), ("live", live)]))
    codes = []
    for _ in range(6):
        r = curl("--cacert", env.ca, "-w", "%{http_code}", "-o", "/dev/null",
                 "https://localhost:%d/conn-id" % front)
        codes.append(r.stdout)
    check(codes == [b"200"] * 6, "every request served despite a dead server: %r" % codes)


@test
def server_timeout_gives_504(env):
    front = free_port()
    b = env.backend()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("b", b)],
                                               extra="    server-timeout 1s"))
    t0 = time.time()
    r = curl("--cacert", env.ca, "-w", "%{http_code}", "-o", "/dev/null",
             "https://localhost:%d/hang" % front)
    check(r.stdout == b"504", "504 when the server does not answer: %r" % r.stdout)
    check(0.8 < time.time() - t0 < 5, "after server-timeout")


@test
def malformed_responses_give_502(env):
    front = free_port()
    b = env.backend()
    g = env.gatehouse(base_conf(env) + service("front", front, servers=[("b", b)]))
    for path in ("/garbage", "/bad-cl"):
        r = curl("--cacert", env.ca, "-w", "%{http_code}", "-o", "/dev/null",
                 "https://localhost:%d%s" % (front, path))
        check(r.stdout == b"502", "%s -> 502: %r" % (path, r.stdout))
    r = curl("--cacert", env.ca, "https://localhost:%d/conn-id" % front)
    check(r.returncode == 0, "still serving afterwards")


@test
def untrusted_server_certificate_refused(env):
    # The backend's certificate is for localhost/127.0.0.1; verifying another
    # name must fail the handshake and answer 502.
    front = free_port()
    b = env.backend()
    text = base_conf(env) + """service front {
    listen 127.0.0.1:%d
    certificate main
    allowed-hosts *
    allowed-dirs /*
    reencrypt verify internal
    retries 0
    server b 127.0.0.1:%d verify-name fe1.internal.example
}
""" % (front, b)
    g = env.gatehouse(text)
    r = curl("--cacert", env.ca, "-w", "%{http_code}", "-o", "/dev/null",
             "https://localhost:%d/" % front)
    check(r.stdout == b"502", "502 on a name mismatch: %r" % r.stdout)
    check("TLS handshake failed" in g.output(), "logged why")


@test
def out_of_descriptors_sheds_without_spinning(env):
    import socket as so
    b = env.backend()
    front = free_port()
    g = env.gatehouse(base_conf(env, workers=1) + service("front", front, servers=[("b", b)]),
                      wrapper=("prlimit", "--nofile=48:48"))
    flood = []
    for _ in range(80):
        try:
            flood.append(so.create_connection(("127.0.0.1", front), timeout=2))
        except OSError:
            break
    cpu0, t0 = g.cpu_seconds(), time.time()
    time.sleep(1.0)  # measuring an interval of CPU use, not waiting for an event
    used = (g.cpu_seconds() - cpu0) / (time.time() - t0)
    check(used < 0.5, "no busy loop while out of descriptors: %.2f cores" % used)
    check("shedding new connections" in g.output(), "logged")
    for s in flood:
        s.close()
    ok = False
    for _ in range(50):
        r = curl("--cacert", env.ca, "-m", "2", "https://localhost:%d/conn-id" % front)
        if r.returncode == 0:
            ok = True
            break
    check(ok, "serves again once descriptors are free")
