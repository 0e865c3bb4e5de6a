#!/usr/bin/env bash
# pg.sh - a real PostgreSQL 15 on loopback, and optionally a streaming
# replica of it, for the specs, the integration cases and the example
# failover runbook:
#   tests/pg.sh start DIR [--replica]   initdb and start; DIR/env (DIR created)
#   tests/pg.sh stop DIR                stop every server of DIR by PID (SIGINT:
#                                       fast shutdown), wait, remove their files
#
# The servers live in a directory of their own under $TMPDIR (mktemp -d,
# owned by the server's user: DIR may be a state dir the server's user
# cannot enter): ROOT/primary/data, initdb'd with trust for every user but
# one (below), fsync off, listening on 127.0.0.1 only, no unix socket.  With
# --replica, ROOT/replica/data is `pg_basebackup -R` of it (streaming, hot
# standby), started and waited for until the primary's pg_stat_replication
# says "streaming".  As root the servers run as the postgres user (setpriv,
# which keeps the PID; pg_ctl for the start); as another user, as that user.
#
# DIR/env exports
#   PGHOST PGPORT PGUSER        127.0.0.1, the primary's port, postgres
#   DRRUN_TEST_PG_HOST          127.0.0.1
#   DRRUN_TEST_PG_PORT          the primary's port
#   DRRUN_TEST_PG_PID           the primary's postmaster PID
#   DRRUN_TEST_PG_DATA          the primary's data directory
#   DRRUN_TEST_PG_REPLICA_PORT  the replica's port (--replica only)
#   DRRUN_TEST_PG_REPLICA_PID   its postmaster PID (--replica only)
#   DRRUN_TEST_PG_REPLICA_DATA  its data directory (--replica only)
#   DRRUN_TEST_PG_DOWN_PORT     a loopback port nothing listens on
#   DRRUN_TEST_PG_USER          the superuser (postgres; trust)
#   DRRUN_TEST_PG_PW_USER       a login role that must give a password
#   DRRUN_TEST_PG_PASSWORD      its password (scram-sha-256)
#   DRRUN_TEST_PG_BIN           the server binaries (initdb, pg_ctl, postgres)
#   DRRUN_TEST_PG_AS            the command prefix that runs a server binary as
#                               the servers' user ("" when not root)
#   DRRUN_TEST_PG_ROOT          ROOT; the logs are ROOT/primary/server.log and
#                               ROOT/replica/server.log
# A server started later from one of these data directories (a runbook that
# restarts a fenced primary with pg_ctl) is stopped too: stop takes each
# PID from its data directory's postmaster.pid and checks it against /proc.
# Needs postgresql-15 and python3; reads no stdin.  A failed start leaves
# nothing running.
set -euo pipefail

usage() {
	echo "usage: tests/pg.sh start DIR [--replica] | stop DIR" >&2
	exit 64
}
[ $# -ge 2 ] && [ $# -le 3 ] || usage
CMD=$1
REPLICA=0
case $CMD in start | stop) ;; *) usage ;; esac
if [ $# -eq 3 ]; then
	[ "$CMD" = start ] && [ "$3" = --replica ] || usage
	REPLICA=1
fi
mkdir -p "$2"
D=$(cd "$2" && pwd)
BIN=/usr/lib/postgresql/15/bin
PW_USER=drrun_pw
PASSWORD=drrun-pg-s3cret-pw
AS=""
[ "$(id -u)" -ne 0 ] || AS="setpriv --reuid=postgres --regid=postgres --init-groups"

# the postmaster PID of data directory $1, if one runs from there
pid_of() {
	local pid
	[ -r "$1/postmaster.pid" ] || return 1
	pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || return 1
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	kill -0 "$pid" 2>/dev/null || return 1
	# a recycled PID is someone else's: it must be a postgres on this data dir
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1" || return 1
	echo "$pid"
}

stop_one() { # DATA
	local pid
	pid=$(pid_of "$1") || return 0
	kill -INT "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 3000); do # 30 s, then SIGKILL
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.01
	done
	kill -KILL "$pid" 2>/dev/null || true
}

stop_root() { # ROOT
	# the replica first, so it does not spend its shutdown reconnecting
	stop_one "$1/replica/data"
	stop_one "$1/primary/data"
	case $1 in */drrun-pg.*) rm -rf "$1" ;; esac
}

stop() {
	[ -e "$D/env" ] || return 0
	local root
	root=$(sed -n 's/^export DRRUN_TEST_PG_ROOT=//p' "$D/env")
	[ -z "$root" ] || stop_root "$root"
	rm -f "$D/env"
}

free_ports() {
	python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1" </dev/null
}

start_server() { # DATA LOG
	$AS "$BIN/pg_ctl" -D "$1" -l "$2" -w -t 60 start >/dev/null </dev/null || {
		echo "pg.sh: $1 did not start:" >&2
		cat "$2" >&2 || true
		return 1
	}
}

start() {
	stop
	local root port rport down state
	root=$(mktemp -d "${TMPDIR:-/tmp}/drrun-pg.XXXXXX")
	chmod 755 "$root"
	mkdir "$root/primary" "$root/replica"
	[ -z "$AS" ] || chown postgres: "$root" "$root/primary" "$root/replica"
	trap 'stop_root "$root"' EXIT
	read -r port rport down <<<"$(free_ports 3)"

	$AS "$BIN/initdb" -D "$root/primary/data" -U postgres --auth=trust -E UTF8 \
		--locale=C.UTF-8 --no-sync >"$D/initdb.log" 2>&1 </dev/null ||
		{ cat "$D/initdb.log" >&2; return 1; }
	# the password role's line first: pg_hba.conf is read top down
	{
		echo "host all $PW_USER 127.0.0.1/32 scram-sha-256"
		cat "$root/primary/data/pg_hba.conf"
	} >"$D/pg_hba.conf"
	cat "$D/pg_hba.conf" >"$root/primary/data/pg_hba.conf"
	rm -f "$D/pg_hba.conf"
	cat >>"$root/primary/data/postgresql.conf" <<-EOF
		# tests/pg.sh
		port = $port
		listen_addresses = '127.0.0.1'
		unix_socket_directories = ''
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		shared_buffers = 16MB
		max_connections = 30
		wal_keep_size = 64MB
	EOF
	start_server "$root/primary/data" "$root/primary/server.log"
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres \
		-c "create role $PW_USER login password '$PASSWORD'" </dev/null

	if [ "$REPLICA" -eq 1 ]; then
		$AS pg_basebackup -h 127.0.0.1 -p "$port" -U postgres -D "$root/replica/data" -R \
			-X stream -c fast --no-sync </dev/null >"$D/basebackup.log" 2>&1 ||
			{ cat "$D/basebackup.log" >&2; return 1; }
		# the copied postgresql.conf ends with the primary's port: the last line wins
		echo "port = $rport" >>"$root/replica/data/postgresql.conf"
		start_server "$root/replica/data" "$root/replica/server.log"
		for i in $(seq 1 300); do # 30 s
			state=$(psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -tA \
				-c "select state from pg_stat_replication" </dev/null)
			[ "$state" = streaming ] && break
			if [ "$i" -eq 300 ]; then
				echo "pg.sh: the replica is not streaming after 30 s" >&2
				return 1
			fi
			sleep 0.1
		done
	fi

	{
		printf 'export %s=%q\n' PGHOST 127.0.0.1 PGPORT "$port" PGUSER postgres \
			DRRUN_TEST_PG_HOST 127.0.0.1 DRRUN_TEST_PG_PORT "$port" \
			DRRUN_TEST_PG_PID "$(pid_of "$root/primary/data")" \
			DRRUN_TEST_PG_DATA "$root/primary/data"
		[ "$REPLICA" -eq 0 ] || printf 'export %s=%q\n' DRRUN_TEST_PG_REPLICA_PORT "$rport" \
			DRRUN_TEST_PG_REPLICA_PID "$(pid_of "$root/replica/data")" \
			DRRUN_TEST_PG_REPLICA_DATA "$root/replica/data"
		printf 'export %s=%q\n' DRRUN_TEST_PG_DOWN_PORT "$down" DRRUN_TEST_PG_USER postgres \
			DRRUN_TEST_PG_PW_USER "$PW_USER" DRRUN_TEST_PG_PASSWORD "$PASSWORD" \
			DRRUN_TEST_PG_BIN "$BIN" DRRUN_TEST_PG_AS "$AS" DRRUN_TEST_PG_ROOT "$root"
	} >"$D/env"
	trap - EXIT
	echo "pg.sh: postgres $(pid_of "$root/primary/data") on 127.0.0.1:$port" \
		"$([ "$REPLICA" -eq 0 ] || echo "(replica on $rport)")"
}

case $CMD in
start) start ;;
stop) stop ;;
esac
