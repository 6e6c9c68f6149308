#!/bin/sh
# A PostgreSQL 15 server of one test's own (Debian's postgresql-15 binaries;
# the package's cluster is never touched), run as the postgres user when the
# tests run as root, since postgres refuses to run as root.
#
#   tests/pg_server.sh start DIR PORT PASSWORD          a primary in DIR/data
#   tests/pg_server.sh standby DIR PORT PASSWORD PRIMARY_PORT
#                                                       a streaming standby of it
#   tests/pg_server.sh sync DIR PORT PASSWORD           the primary waits for a
#                                                       standby at every commit
# Prints the postmaster's PID (stop it with kill, by that PID) once it takes
# connections; the database "gatehouse" and the user "gatehouse" (PASSWORD)
# exist on a primary. Loopback, and PG_LISTEN (an address of a network
# namespace the caller runs this in) when set, with password logins from
# PG_LISTEN's /24 then; a standby reaches its primary at PG_PRIMARY
# (default 127.0.0.1). The socket is in DIR.
set -eu
cmd=$1 dir=$2 port=$3 pass=$4
bin=/usr/lib/postgresql/15/bin
listen=127.0.0.1
[ -n "${PG_LISTEN:-}" ] && listen="127.0.0.1,$PG_LISTEN"
primary_host=${PG_PRIMARY:-127.0.0.1}
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
ready() {
    i=0
    while [ $i -lt 300 ]; do
        if as_pg "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then return 0; fi
        i=$((i + 1))
        sleep 0.1
    done
    echo "pg_server: no answer on port $port" >&2
    tail -20 "$dir/log" >&2 || true
    return 1
}
start() {
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -s \
        -o "-p $port -k $dir -c listen_addresses=$listen $1" start >/dev/null
    ready
    head -1 "$dir/data/postmaster.pid"
}
# A root directory only root may enter (a root made by mktemp -d, as a
# chroot built for a newcomer check is) keeps the postgres user from its
# own binaries; a Debian root is 0755.
if [ "$(id -u)" = 0 ] && ! as_pg test -x "$bin/postgres"; then
    echo "pg_server: the postgres user cannot reach $bin (/ is mode $(stat -c %a /));" \
        "giving / o+x, as a Debian root has" >&2
    chmod o+x /
fi
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
case $cmd in
start)
    printf '%s\n' "$pass" >"$dir/pw"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pw"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pw" \
        --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    if [ -n "${PG_LISTEN:-}" ]; then
        net="${PG_LISTEN%.*}.0/24"
        printf 'host all all %s scram-sha-256\nhost replication all %s scram-sha-256\n' \
            "$net" "$net" >>"$dir/data/pg_hba.conf"
    fi
    start "-c wal_level=replica -c max_wal_senders=8 -c wal_keep_size=64MB"
    PGPASSWORD=$pass as_pg "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c "CREATE USER gatehouse PASSWORD '$pass'" \
        -c "CREATE DATABASE gatehouse OWNER gatehouse" >/dev/null
    ;;
standby)
    primary=$5
    PGPASSWORD=$pass as_pg "$bin/pg_basebackup" -h "$primary_host" -p "$primary" -U postgres \
        -D "$dir/data" -R -X stream -c fast >/dev/null
    start "-c hot_standby=on"
    ;;
sync)
    PGPASSWORD=$pass as_pg "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c "ALTER SYSTEM SET synchronous_standby_names = '*'" -c "SELECT pg_reload_conf()" \
        >/dev/null
    ;;
*)
    echo "usage: $0 start|standby|sync DIR PORT PASSWORD [PRIMARY_PORT]" >&2
    exit 2
    ;;
esac
