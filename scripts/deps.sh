#!/bin/sh
# Installs the Debian packages a target needs, and only those missing, so that
# `make run` and `make test` work on a fresh Debian 12 machine as root.
# Usage: scripts/deps.sh build|test|bench|fuzz
set -eu
build="gcc make pkg-config libssl-dev libpcre2-dev libmicrohttpd-dev libxml2-dev \
libxmlsec1-dev zlib1g-dev libsqlite3-dev libcurl4-openssl-dev libjansson-dev libhiredis-dev \
libpq-dev openssl"
test_pkgs="$build curl python3 nginx-light wrk procps sslscan simplesamlphp php-cli php-xml \
php-mbstring xmlsec1 python3-lxml python3-cryptography python3-websockets chromium strace \
redis-server redis-sentinel redis-tools iproute2 postgresql-15"
# iproute2: the cluster-configuration test makes network namespaces (ip
# netns); redis-tools: redis-cli, which the cluster tests probe Redis with;
# postgresql-15: the server the meetings-store postgresql tests start
# (initdb and postgres of their own, as the postgres user, on free ports;
# the package's own cluster is never started).
# libnginx-mod-stream: nginx-light builds `stream` as a module; the bench's
# Layer-4 rows load it (TCP pass-through with ssl_preread, UDP). strace (in
# test_pkgs: t_readahead holds a worker's epoll_wait with it) also counts
# system calls per request for make bench-callgrind.
bench_pkgs="$test_pkgs haproxy apache2-utils util-linux valgrind libnginx-mod-stream"
fuzz_pkgs="$build clang"
case "${1:-build}" in
build) want=$build ;;
test) want=$test_pkgs ;;
bench) want=$bench_pkgs ;;
fuzz) want=$fuzz_pkgs ;;
*) echo "usage: $0 build|test|bench|fuzz" >&2; exit 2 ;;
esac
# The browser tests drive Debian's chromium with playwright-core from npm
# (test-only). A machine without Node.js gets Debian's.
if [ "${1:-build}" = test ] || [ "${1:-build}" = bench ]; then
    command -v node >/dev/null 2>&1 || want="$want nodejs npm"
fi
missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
npm_deps() {
    case "${1:-build}" in test | bench) ;; *) return 0 ;; esac
    [ -d tests/browser/node_modules/playwright-core ] && return 0
    echo "deps: npm ci in tests/browser (playwright-core, test-only)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}
cd "$(dirname "$0")/.."
if [ -z "$missing" ]; then
    npm_deps "${1:-build}"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages:$missing (run as root, or install them)" >&2
    exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
npm_deps "${1:-build}"
