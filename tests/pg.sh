#!/usr/bin/env bash
# pg.sh - a real PostgreSQL 15 on loopback for the backup specs and cases:
#   tests/pg.sh start DIR   initdb and start a server; DIR/env exports
#                           PGHOST=127.0.0.1 PGPORT PGUSER=postgres and
#                           DRRUN_TEST_PG_DATA, DRRUN_TEST_PG_PID
#   tests/pg.sh stop DIR    stop it by PID (SIGINT: fast shutdown), wait, and
#                           remove its data directory
# The cluster lives in a directory of its own under $TMPDIR (mktemp -d, owned
# by the server's user: DIR may not be reachable by it), trust auth, listening
# on 127.0.0.1 only, its unix socket in that directory.  As root the server
# runs as the postgres user (setpriv, which keeps the PID); as another user,
# as that user.  fsync is off: a test cluster need not survive a power cut.
# Needs postgresql-15 (/usr/lib/postgresql/15/bin) and python3.  A failed
# start leaves nothing running.
set -euo pipefail

usage() { echo "usage: tests/pg.sh start|stop DIR" >&2; exit 64; }
[ $# -eq 2 ] || usage
CMD=$1
mkdir -p "$2"
D=$(cd "$2" && pwd)
B=/usr/lib/postgresql/15/bin

stop() {
	[ -e "$D/env" ] || return 0
	local pid data
	pid=$(sed -n 's/^export DRRUN_TEST_PG_PID=//p' "$D/env")
	data=$(sed -n 's/^export DRRUN_TEST_PG_DATA=//p' "$D/env")
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$data"; then
		kill -INT "$pid" 2>/dev/null || true
		for _ in $(seq 1 1000); do kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
	fi
	case $data in */drrun-pg.*) rm -rf "$data" ;; esac
	rm -f "$D/env"
}

start() {
	stop
	local as=() data port pid
	if [ "$(id -u)" -eq 0 ]; then as=(setpriv --reuid=postgres --regid=postgres --init-groups); fi
	data=$(mktemp -d "${TMPDIR:-/tmp}/drrun-pg.XXXXXX")
	chmod 755 "$data"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$data"
	trap 'rm -rf "$data"' EXIT
	"${as[@]}" "$B/initdb" -D "$data/db" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
		>"$D/initdb.log" 2>&1 || { cat "$D/initdb.log" >&2; return 1; }
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"${as[@]}" "$B/postgres" -D "$data/db" -p "$port" -k "$data" -c listen_addresses=127.0.0.1 \
		-c fsync=off -c full_page_writes=off </dev/null >"$D/pg.log" 2>&1 &
	pid=$!
	trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
	for _ in $(seq 1 2000); do # 20 s at most
		pg_isready -q -h 127.0.0.1 -p "$port" && break
		kill -0 "$pid" 2>/dev/null || { echo "pg.sh: postgres exited at start:" >&2; cat "$D/pg.log" >&2; return 1; }
		sleep 0.01
	done
	pg_isready -q -h 127.0.0.1 -p "$port" || { echo "pg.sh: postgres not ready in 20 s" >&2; cat "$D/pg.log" >&2; return 1; }
	printf 'export %s=%q\n' PGHOST 127.0.0.1 PGPORT "$port" PGUSER postgres \
		DRRUN_TEST_PG_DATA "$data" DRRUN_TEST_PG_PID "$pid" >"$D/env"
	trap - EXIT
	echo "pg.sh: postgres $pid on 127.0.0.1:$port"
}

case $CMD in
start) start ;;
stop) stop ;;
*) usage ;;
esac
