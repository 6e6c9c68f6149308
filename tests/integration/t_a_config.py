"""Configuration checks through the real binary."""
import os
import subprocess

from harness import GATEHOUSE, base_conf, check, service, test


@test
def config_check_ok_and_canonical(env):
    text = base_conf(env) + service("s", 1, servers=[("a", 2)])
    p = env.write("ok.conf", text)
    r = subprocess.run([GATEHOUSE, "-t", "-c", p], capture_output=True, text=True)
    check(r.returncode == 0, "-t on a good config: %d %s" % (r.returncode, r.stderr))
    r = subprocess.run([GATEHOUSE, "-p", "-c", p], capture_output=True, text=True)
    check(r.returncode == 0 and "server a 127.0.0.1:2" in r.stdout, "canonical print")
    p2 = env.write("again.conf", r.stdout)
    r2 = subprocess.run([GATEHOUSE, "-p", "-c", p2], capture_output=True, text=True)
    check(r2.stdout == r.stdout, "canonical form is a fixed point")


@test
def config_errors_name_file_line_col(env):
    cases = [
        ("workers 2\nbogus 1\n", ":2:1: unknown directive 'bogus'"),
        ("service s {\n listen 127.0.0.1:1\n idle-timeout soon\n app status\n}\n",
         ":3:15: 'idle-timeout' needs a duration"),
        ("service s {\n listen 127.0.0.1:1\n", ":1:1: block opened here is not closed"),
    ]
    for text, want in cases:
        p = env.write("bad.conf", text)
        r = subprocess.run([GATEHOUSE, "-t", "-c", p], capture_output=True, text=True)
        check(r.returncode == 1, "exit 1 for %r" % text)
        check(r.stderr.startswith(p + want), "message %r lacks %r" % (r.stderr, want))


@test
def config_check_loads_certificates(env):
    os.chmod(env.key, 0o644)
    p = env.write("perm.conf", base_conf(env) + service("s", 1, app="status"))
    r = subprocess.run([GATEHOUSE, "-t", "-c", p], capture_output=True, text=True)
    check(r.returncode == 1 and "accessible by group or others" in r.stderr,
          "world-readable key refused: %r" % r.stderr)
    os.chmod(env.key, 0o600)
    missing = base_conf(env).replace(env.cert, env.path("nope.pem"))
    p = env.write("missing.conf", missing + service("s", 1, app="status"))
    r = subprocess.run([GATEHOUSE, "-t", "-c", p], capture_output=True, text=True)
    check(r.returncode == 1 and "nope.pem" in r.stderr and ":5:1: certificate 'main'" in r.stderr,
          "missing certificate named with its block: %r" % r.stderr)


@test
def default_topology_generates_state(env):
    r = subprocess.run([GATEHOUSE, "-t"], capture_output=True, text=True, cwd=env.dir)
    check(r.returncode == 0, "default checks: %r" % r.stderr)
    for f in ("ca.pem", "ca.key", "server.pem", "server.key"):
        check(os.path.exists(env.path("gatehouse-state/" + f)), "generated " + f)
    check(os.stat(env.path("gatehouse-state/server.key")).st_mode & 0o077 == 0, "key mode 0600")
    r = subprocess.run([GATEHOUSE, "-p"], capture_output=True, text=True, cwd=env.dir)
    for want in ("listen 127.0.0.1:8443", "server conference-a 127.0.0.1:4443",
                 "server conference-b 127.0.0.1:4444", "listen 127.0.0.1:9443"):
        check(want in r.stdout, "default topology has " + want)


@test
def config_help_on_every_command_and_subcommand(env):
    """-h and --help, asked for, print the command's usage on stdout and exit
    0 (nothing on stderr); bad arguments still get the usage on stderr and 2."""
    import subprocess
    commands = [[], ["certs"], ["certs", "ca"], ["saml"], ["saml", "import"],
                ["saml", "metadata"], ["saml", "uuid"], ["meeting"], ["meeting", "create"],
                ["meeting", "set"], ["meeting", "token"], ["meeting", "token", "add"], ["join"],
                ["admin"], ["admin", "user", "add"], ["admin", "token", "add"]]
    for cmd in commands:
        for flag in ("-h", "--help"):
            r = subprocess.run([GATEHOUSE] + cmd + [flag], capture_output=True, timeout=10)
            check(r.returncode == 0 and r.stdout.startswith(b"usage: gatehouse") and
                  r.stderr == b"", "%s %s: %d %r %r" % (" ".join(cmd), flag, r.returncode,
                                                         r.stdout[:80], r.stderr[:200]))
        if cmd:
            r = subprocess.run([GATEHOUSE] + cmd + ["--no-such-option", "x"], capture_output=True,
                               timeout=10)
            check(r.returncode == 2 and b"usage: gatehouse" in r.stderr and r.stdout == b"",
                  "%s with a bad option: %d %r" % (" ".join(cmd), r.returncode, r.stderr[:200]))
