#!/usr/bin/env bash
# knot.sh - real Knot DNS on loopback for the drrun.dns specs, cases and
# bench: a primary that takes TSIG-signed RFC 2136 updates for example.test.,
# and a secondary that transfers the zone from it (NOTIFY, then IXFR).
#   tests/knot.sh start DIR     start both from DIR (created); write DIR/env
#   tests/knot.sh hold DIR      freeze the secondary: it keeps answering, with
#                               the old zone, until...
#   tests/knot.sh release DIR   ...it is thawed and refreshes from the primary
#   tests/knot.sh stop DIR      stop both by PID and wait for them
# DIR/env exports
#   DRRUN_TEST_KNOT             127.0.0.1:PORT (primary)
#   DRRUN_TEST_KNOT2            127.0.0.1:PORT (secondary)
#   DRRUN_TEST_TSIG_NAME        drrun-key
#   DRRUN_TEST_TSIG_SECRET      its secret (base64, made at start)
#   DRRUN_TEST_TSIG_KEYFILE     the same key as a BIND key file, mode 0600
#   DRRUN_TEST_KNOT_DIR         DIR
# The zone (fresh for every start): SOA serial 1, NS ns1, ns1 A 127.0.0.1,
# www A 192.0.2.10 TTL 300, www AAAA 2001:db8::10, mail MX, txt TXT, srv SRV,
# caa CAA.  Readiness is a TCP SOA query answered by each server (servers.md:
# UDP in the first ~50 ms may be dropped), and the secondary's serial equal
# to the primary's.  Needs knotd, knotc, kdig, openssl, python3.
set -euo pipefail

usage() {
	echo "usage: tests/knot.sh start|hold|release|stop DIR" >&2
	exit 64
}
[ $# -eq 2 ] || usage
CMD=$1
[ "$CMD" = start ] && mkdir -p "$2"
if [ -d "$2" ]; then D=$(cd "$2" && pwd); else case $2 in /*) D=$2 ;; *) D=$PWD/$2 ;; esac; fi

freeport_tu() { # free for TCP and UDP, as DNS needs both
	/usr/bin/python3 -c '
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(type=socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()'
}

alive() {
	local st
	{ read -r _ _ st _ <"/proc/$1/stat"; } 2>/dev/null || return 1
	[ "$st" != Z ]
}

stop() {
	local f pid i
	for f in "$D"/primary/knotd.pid.run "$D"/secondary/knotd.pid.run; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 500); do
			alive "$pid" || break
			sleep 0.01
		done
		alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		rm -f "$f"
	done
}

conf() { # NAME PORT ROLE OTHER_PORT
	local n=$1 p=$2 role=$3 other=$4
	mkdir -p "$D/$n/zones" "$D/$n/db"
	{
		cat <<EOF
server:
    rundir: "$D/$n"
    pidfile: "$D/$n/knot.pid"
    listen: 127.0.0.1@$p
log:
  - target: stderr
    any: info
database:
    storage: "$D/$n/db"
control:
    listen: "$D/$n/knot.sock"
key:
  - id: drrun-key
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: other
    address: 127.0.0.1@$other
acl:
  - id: drrun-update
    key: drrun-key
    action: update
  - id: transfer
    address: 127.0.0.1
    action: [transfer, notify]
template:
  - id: default
    storage: "$D/$n/zones"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: changes
zone:
  - domain: example.test.
EOF
		if [ "$role" = primary ]; then
			echo "    acl: [drrun-update, transfer]"
			echo "    notify: other"
		else
			echo "    master: other"
			echo "    acl: transfer"
		fi
	} >"$D/$n/knot.conf"
}

serial() { # PORT
	kdig +tcp +time=1 +retry=0 @127.0.0.1 -p "$1" example.test SOA +short 2>/dev/null |
		awk '{print $3}' || true
}

start() {
	stop
	rm -rf "$D/primary" "$D/secondary"
	SECRET=$(openssl rand -base64 32)
	P1=$(freeport_tu)
	P2=$(freeport_tu)
	while [ "$P2" = "$P1" ]; do P2=$(freeport_tu); done
	conf primary "$P1" primary "$P2"
	conf secondary "$P2" secondary "$P1"
	cat >"$D/primary/zones/example.test.zone" <<'EOF'
$ORIGIN example.test.
$TTL 60
@     SOA   ns1 hostmaster 1 3600 600 86400 60
@     NS    ns1
ns1   A     127.0.0.1
www   300   A     192.0.2.10
www   300   AAAA  2001:db8::10
mail  MX    10 mx.example.test.
txt   TXT   "v=spf1 -all"
srv   SRV   0 5 5060 sip.example.test.
caa   CAA   0 issue "letsencrypt.org"
EOF
	umask 077
	printf 'key "drrun-key" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$SECRET" \
		>"$D/drrun-key.conf"
	chmod 600 "$D/drrun-key.conf"
	knotc -c "$D/primary/knot.conf" conf-check >/dev/null
	knotd -c "$D/primary/knot.conf" </dev/null >/dev/null 2>"$D/primary/knotd.log" &
	echo $! >"$D/primary/knotd.pid.run"
	knotd -c "$D/secondary/knot.conf" </dev/null >/dev/null 2>"$D/secondary/knotd.log" &
	echo $! >"$D/secondary/knotd.pid.run"
	local i s1 s2
	for i in $(seq 1 1000); do
		s1=$(serial "$P1")
		s2=$(serial "$P2")
		[ -n "$s1" ] && [ "$s1" = "$s2" ] && break
		sleep 0.01
	done
	if [ -z "$s1" ] || [ "$s1" != "$s2" ]; then
		echo "knot: not ready (primary serial '${s1:-}', secondary '${s2:-}')" >&2
		tail -n 20 "$D/primary/knotd.log" "$D/secondary/knotd.log" >&2
		stop
		exit 1
	fi
	cat >"$D/env" <<EOF
export DRRUN_TEST_KNOT=127.0.0.1:$P1
export DRRUN_TEST_KNOT2=127.0.0.1:$P2
export DRRUN_TEST_TSIG_NAME=drrun-key
export DRRUN_TEST_TSIG_SECRET=$SECRET
export DRRUN_TEST_TSIG_KEYFILE=$D/drrun-key.conf
export DRRUN_TEST_KNOT_DIR=$D
EOF
}

case $CMD in
start) start ;;
stop) stop ;;
hold) knotc -c "$D/secondary/knot.conf" zone-freeze example.test. >/dev/null ;;
release)
	knotc -c "$D/secondary/knot.conf" zone-thaw example.test. >/dev/null
	knotc -c "$D/secondary/knot.conf" zone-refresh example.test. >/dev/null
	;;
*) usage ;;
esac
