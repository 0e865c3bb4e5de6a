#!/usr/bin/env bash
# servers.sh - the real servers the Lua specs and benchmarks talk to, on
# loopback only:
#   tests/servers.sh start DIR   start them from DIR (created), write DIR/env
#   tests/servers.sh stop DIR    stop them by PID and wait until they are gone
#
# That is one nginx (Debian: nginx, libnginx-mod-http-echo), run in the
# foreground with its config, temp paths, pid file and logs under DIR, on
# free 127.0.0.1 ports: plain HTTP, HTTPS with a certificate from a test CA
# made at start (SAN IP:127.0.0.1, DNS:localhost), and a second HTTPS port
# whose certificate names only wrong.example.  DIR/env exports
#   DRRUN_TEST_HTTP          http://127.0.0.1:PORT
#   DRRUN_TEST_HTTPS         https://127.0.0.1:PORT
#   DRRUN_TEST_HTTPS_WRONG   https://127.0.0.1:PORT (hostname mismatch)
#   DRRUN_TEST_CA            the test CA's certificate (PEM)
#   DRRUN_TEST_HTTP_LOG      nginx's access log, a line per request (with its URL)
#   DRRUN_TEST_CLOSED_PORT   a loopback port nothing listens on
# Locations are listed in nginx_conf below.
#
# And the five SaaS fakes of tests/fakes/ (Python, one process each, each on a
# free 127.0.0.1 port it picks itself; tests/fakes/README.md documents their
# seeded state and their control API under /_fake/).  DIR/env exports
#   DRRUN_HEROKU_URL            http://127.0.0.1:PORT (Platform API)
#   DRRUN_HEROKU_DATA_URL       the same fake (Data API paths, /client/v11/...)
#   DRRUN_NETLIFY_URL           http://127.0.0.1:PORT/api/v1
#   DRRUN_STATUSPAGE_URL        http://127.0.0.1:PORT/v1
#   DRRUN_PAGERDUTY_URL         http://127.0.0.1:PORT (events: .../v2/enqueue)
#   DRRUN_TEST_SLACK_WEBHOOK    http://127.0.0.1:PORT/services/T0000/B0000/XXXXXXXXXXXXXXXX
#   DRRUN_TEST_HEROKU_TOKEN, DRRUN_TEST_NETLIFY_TOKEN, DRRUN_TEST_STATUSPAGE_KEY,
#   DRRUN_TEST_PAGERDUTY_KEY    the credentials the fakes accept
#   DRRUN_TEST_FAKES_CONTROL    "heroku=http://127.0.0.1:PORT/_fake netlify=... ..."
# Their state, config and the tail of their request logs are in
# DIR/fakes/SERVICE.json after every request, their output in SERVICE.out.
#
# And S3: s3rver (npm) behind an independent SigV4 check, tests/fakes/s3-signed.js
# (node; the npm packages come from tests/deps.sh), its buckets under
# DIR/fakes/s3-data.  DIR/env exports
#   DRRUN_TEST_S3_URL           http://127.0.0.1:PORT (path-style buckets)
#   DRRUN_TEST_S3_HTTPS_URL     https://127.0.0.1:PORT, the same front over TLS
#                               (the test CA's certificate, DRRUN_TEST_CA)
#   DRRUN_TEST_S3_KEY, DRRUN_TEST_S3_SECRET   the key pair it accepts
#
# Needs nginx, openssl, curl and python3; reads no stdin; works as root
# (workers then run as root too, so DIR's mode does not matter) and as any
# other user.  A failed start leaves nothing running.
set -euo pipefail

usage() {
	echo "usage: tests/servers.sh start|stop DIR" >&2
	exit 64
}
[ $# -eq 2 ] || usage
CMD=$1
[ "$CMD" = start ] && mkdir -p "$2"
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FAKES="heroku netlify statuspage pagerduty slack aws"
# DIR as an absolute path; stop must work when DIR has been deleted already
if [ -d "$2" ]; then D=$(cd "$2" && pwd); else case $2 in /*) D=$2 ;; *) D=$PWD/$2 ;; esac; fi
D=${D%/}

# The PID of the nginx master that runs from DIR, if any: the process named
# nginx whose command line has `-c DIR/nginx.conf`.  Found in /proc, not in
# a pid file, as the caller may have removed DIR before calling stop.
our_pid() {
	local f pid comm cmd
	for f in $(grep -lsF -- "$D/nginx.conf" /proc/[0-9]*/cmdline); do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		{ read -r comm <"/proc/$pid/comm"; } 2>/dev/null || continue
		[ "$comm" = nginx ] || continue
		cmd=$(tr '\0' ' ' <"$f" 2>/dev/null) || continue
		case "$cmd " in *" -c $D/nginx.conf "*) echo "$pid" && return 0 ;; esac
	done
	return 1
}

# The PIDs of the fakes that run from DIR: python processes running
# tests/fakes/serve.py with `--state DIR/fakes/...`, found in /proc like nginx.
fake_pids() {
	local f pid argv
	for f in $(grep -lsF -- "$D/fakes/" /proc/[0-9]*/cmdline); do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		{ mapfile -d '' -t argv <"$f"; } 2>/dev/null || continue # gone meanwhile
		case " ${argv[*]} " in
		*"/tests/fakes/serve.py "*" --state $D/fakes/"*) echo "$pid" ;;
		*"/tests/fakes/s3-signed.js $D/fakes/"*) echo "$pid" ;;
		esac
	done
}

# true while PID runs (a zombie, exited but not yet reaped, does not)
alive() {
	local st
	{ read -r _ _ st _ <"/proc/$1/stat"; } 2>/dev/null || return 1
	[ "$st" != Z ]
}

stop_fakes() {
	local pids left pid i
	pids=$(fake_pids)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	for i in $(seq 1 500); do # 5 s at most
		left=
		for pid in $pids; do alive "$pid" && left="$left $pid"; done
		[ -z "$left" ] && break
		sleep 0.01
	done
	if [ -n "$left" ]; then
		echo "servers: fakes$left ignored SIGTERM; killing them" >&2
		# shellcheck disable=SC2086
		kill -KILL $left 2>/dev/null || true
	fi
	# shellcheck disable=SC2086
	wait $pids 2>/dev/null || true # our own children, when start failed part-way
}

stop() {
	stop_fakes
	stop_nginx
	"$(dirname "$0")/sshd.sh" stop "$D/sshd" >/dev/null 2>&1 || true
}

stop_nginx() {
	local pid kids i
	pid=$(our_pid) || return 0
	kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 500); do # TERM is nginx's fast stop; 5 s at most
		our_pid >/dev/null || break
		sleep 0.01
	done
	if our_pid >/dev/null; then
		echo "servers: nginx $pid ignored SIGTERM; killing it" >&2
		# shellcheck disable=SC2086
		kill -KILL "$pid" $kids 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true # our own child, when start failed part-way
}

# N free loopback TCP ports, all distinct (held open together while picked),
# then on a second line python3's absolute path (for the fakes: their $! is
# then python itself, not a wrapper such as a pyenv shim)
free_ports() {
	python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
print(sys.executable)' "$1" </dev/null
}

# start the fakes in the background, each on a port it picks (serve.py ... 0);
# -S: no site module (standard library only, and it starts faster)
start_fakes() { # PYTHON
	local py=$1 svc
	rm -rf "$D/fakes"
	mkdir -p "$D/fakes"
	for svc in $FAKES; do
		if [ "$svc" = aws ]; then
			# checks signatures with Debian's python3-botocore: Debian's python,
			# with its site packages
			/usr/bin/python3 -u "$ROOT/tests/fakes/serve.py" "$svc" 0 \
				--state "$D/fakes/$svc.json" </dev/null >"$D/fakes/$svc.out" 2>&1 &
		else
			"$py" -S -u "$ROOT/tests/fakes/serve.py" "$svc" 0 --state "$D/fakes/$svc.json" \
				</dev/null >"$D/fakes/$svc.out" 2>&1 &
		fi
		echo "$svc $!" >>"$D/fakes/pids"
	done
	# node itself (not npx, whose $! would be a wrapper): stopped by PID
	[ -d "$ROOT/tests/fakes/node_modules/s3rver" ] || {
		echo "servers: tests/fakes/node_modules is missing: run make deps" >&2
		return 1
	}
	mkdir -p "$D/fakes/s3-data"
	# --openssl-legacy-provider: s3rver's continuation tokens are DES, which
	# OpenSSL 3 (node >= 17) has only in its legacy provider; without it every
	# ListObjectsV2 with max-keys fails with InternalError
	node --openssl-legacy-provider "$ROOT/tests/fakes/s3-signed.js" "$D/fakes/s3-data" 0 \
		--tls "$D/tls/srv.crt" "$D/tls/srv.key" </dev/null >"$D/fakes/s3.out" 2>&1 &
	echo "s3 $!" >>"$D/fakes/pids"
}

# wait until every fake printed "ready PORT [TLSPORT]"; PORT_<svc> (and
# TLSPORT_<svc>) variables
wait_fakes() {
	local svc pid line pending port tport _
	for _ in $(seq 1 1000); do # 10 s at most
		pending=0
		while read -r svc pid; do
			line=
			{ read -r line <"$D/fakes/$svc.out"; } 2>/dev/null || true
			case "$line" in
			"ready "[0-9]*)
				read -r _ port tport <<<"$line"
				printf -v "PORT_$svc" %s "$port"
				[ -z "$tport" ] || printf -v "TLSPORT_$svc" %s "$tport"
				;;
			*)
				pending=1
				if ! alive "$pid"; then
					echo "servers: the $svc fake exited at start:" >&2
					cat "$D/fakes/$svc.out" >&2
					return 1
				fi
				;;
			esac
		done <"$D/fakes/pids"
		[ "$pending" -eq 0 ] && return 0
		sleep 0.01
	done
	echo "servers: the fakes did not start in time" >&2
	return 1
}

# a test CA, and two server certificates it signs (OpenSSL 3: req -CA)
make_certs() {
	local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2)
	local leaf=(-addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth
		-CA ca.crt -CAkey ca.key)
	(
		cd "$D/tls"
		openssl req -x509 -new "${ec[@]}" -keyout ca.key -out ca.crt -subj /CN=drrun-test-ca
		openssl req -x509 -new "${ec[@]}" "${leaf[@]}" -keyout srv.key -out srv.crt \
			-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost
		openssl req -x509 -new "${ec[@]}" "${leaf[@]}" -keyout wrong.key -out wrong.crt \
			-subj /CN=wrong.example -addext subjectAltName=DNS:wrong.example
	) </dev/null >"$D/openssl.log" 2>&1 || { cat "$D/openssl.log" >&2; return 1; }
}

# the echo module (only /slowhdr and /post need it), wherever this nginx keeps modules
echo_module() {
	local dir
	dir=$("$NGINX" -V 2>&1 | tr ' ' '\n' | sed -n 's/^--modules-path=//p')
	local f=${dir:-/usr/lib/nginx/modules}/ngx_http_echo_module.so
	[ -e "$f" ] && { echo "$f"; return 0; }
	echo "servers: the nginx echo module is missing (package libnginx-mod-http-echo)" >&2
	return 1
}

nginx_conf() { # HP SP WP MODULE
	local hp=$1 sp=$2 wp=$3 mod=$4 s
	cat <<EOF
# generated by tests/servers.sh; every path is under this directory
load_module $mod;
$([ "$(id -u)" -eq 0 ] && echo "user root root;")
daemon off;
master_process on;
worker_processes 1;
pid $D/nginx.pid;
error_log $D/error.log notice;
events { worker_connections 4096; }
http {
  access_log $D/access.log;
  client_body_temp_path $D/tmp/body;
  proxy_temp_path $D/tmp/proxy;
  fastcgi_temp_path $D/tmp/fastcgi;
  uwsgi_temp_path $D/tmp/uwsgi;
  scgi_temp_path $D/tmp/scgi;
  default_type text/plain;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$hp;
    listen 127.0.0.1:$sp ssl;
    ssl_certificate $D/tls/srv.crt;
    ssl_certificate_key $D/tls/srv.key;
    root $D/www;
    index index.html;
    location / { }
    location = /big { alias $D/www/big.bin; }                # 64 KiB
    location = /healthz { return 200 "ok\n"; }
    location = /json {
      default_type application/json;
      return 200 '{"service":"orders","db":{"status":"up","lag_ms":12,"replicas":[{"name":"r1","ok":true},{"name":"r2","ok":false}]},"tags":["a","b"],"version":"1.4.2"}';
    }
    location = /moved { return 302 /healthz; }
    location = /slow { limit_rate 8k; limit_rate_after 0; alias $D/www/big.bin; }  # 8 s
    location = /slowhdr { echo_sleep 3; echo "late"; }      # headers after 3 s
    location = /retry-after { add_header Retry-After 1 always; return 429 "slow down\n"; }
    location = /echo-headers {
      add_header X-Seen-UA \$http_user_agent;
      add_header X-Multi one;
      add_header X-Multi two;
      return 200 \$http_x_test;
    }
    location = /post {                                       # reflects the request
      client_max_body_size 1m;
      client_body_buffer_size 1m;
      echo_read_request_body;
      add_header X-Method \$request_method;
      add_header X-Content-Type \$content_type;
      add_header X-Content-Length \$content_length;
      echo_request_body;
    }
$(for s in 200 201 204 301 302 400 401 403 404 408 418 429 444 500 502 503 504; do
	case $s in
	204 | 444) echo "    location = /status/$s { return $s; }" ;; # 444: close, no response
	30?) echo "    location = /status/$s { return $s /healthz; }" ;;
	*) echo "    location = /status/$s { return $s \"status $s\\n\"; }" ;;
	esac
done)
  }
  server {
    listen 127.0.0.1:$wp ssl;
    ssl_certificate $D/tls/wrong.crt;
    ssl_certificate_key $D/tls/wrong.key;
    location = /healthz { return 200 "ok\n"; }
  }
}
EOF
}

start() {
	local hp sp wp cp mod pid i ports_pid py
	local PORT_heroku='' PORT_netlify='' PORT_statuspage='' PORT_pagerduty='' PORT_slack='' PORT_aws='' PORT_s3='' TLSPORT_s3='' # wait_fakes
	stop # a leftover from an earlier run in the same DIR
	rm -rf "$D/www" "$D/tmp" "$D/tls"
	rm -f "$D/env" "$D/access.log" "$D/error.log" "$D/nginx.pid"
	mkdir -p "$D/www" "$D/tmp" "$D/tls"
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$NGINX" ] || { echo "servers: nginx not found (tests/deps.sh)" >&2; return 1; }
	mod=$(echo_module)
	free_ports 4 >"$D/ports" & # python's start-up overlaps the certificates'
	ports_pid=$!
	make_certs
	echo "hello static" >"$D/www/index.html"
	openssl rand -out "$D/www/big.bin" 65536 # 64 KiB that does not compress
	wait "$ports_pid"
	{ read -r hp sp wp cp && read -r py; } <"$D/ports"
	nginx_conf "$hp" "$sp" "$wp" "$mod" >"$D/nginx.conf"

	trap 'stop' EXIT # from here on, a failure must not leave anything running
	start_fakes "$py"
	"$NGINX" -p "$D" -c "$D/nginx.conf" -e "$D/error.log" </dev/null >"$D/nginx.out" 2>&1 &
	pid=$!
	for i in $(seq 1 1000); do # 10 s at most
		if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$hp/healthz" 2>/dev/null; then
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "servers: nginx exited at start:" >&2
			cat "$D/nginx.out" "$D/error.log" >&2 2>/dev/null || true
			return 1
		fi
		sleep 0.01
	done
	curl -fsS -o /dev/null --max-time 2 --cacert "$D/tls/ca.crt" "https://127.0.0.1:$sp/healthz" || {
		echo "servers: nginx did not answer in time:" >&2
		cat "$D/nginx.out" "$D/error.log" >&2 2>/dev/null || true
		return 1
	}
	wait_fakes
	local control="" svc port
	for svc in $FAKES; do
		port=PORT_$svc
		control="$control${control:+ }$svc=http://127.0.0.1:${!port}/_fake"
	done
	# the credentials the fakes accept: the same as in tests/fakes/*.py
	printf 'export %s=%q\n' \
		DRRUN_TEST_HTTP "http://127.0.0.1:$hp" \
		DRRUN_TEST_HTTPS "https://127.0.0.1:$sp" \
		DRRUN_TEST_HTTPS_WRONG "https://127.0.0.1:$wp" \
		DRRUN_TEST_CA "$D/tls/ca.crt" \
		DRRUN_TEST_HTTP_LOG "$D/access.log" \
		DRRUN_TEST_CLOSED_PORT "$cp" \
		DRRUN_HEROKU_URL "http://127.0.0.1:$PORT_heroku" \
		DRRUN_HEROKU_DATA_URL "http://127.0.0.1:$PORT_heroku" \
		DRRUN_NETLIFY_URL "http://127.0.0.1:$PORT_netlify/api/v1" \
		DRRUN_STATUSPAGE_URL "http://127.0.0.1:$PORT_statuspage/v1" \
		DRRUN_PAGERDUTY_URL "http://127.0.0.1:$PORT_pagerduty" \
		DRRUN_TEST_SLACK_WEBHOOK "http://127.0.0.1:$PORT_slack/services/T0000/B0000/XXXXXXXXXXXXXXXX" \
		DRRUN_TEST_AWS_URL "http://127.0.0.1:$PORT_aws" \
		DRRUN_TEST_AWS_KEY AKIDDRRUN \
		DRRUN_TEST_AWS_SECRET drrun-test-secret \
		DRRUN_TEST_S3_URL "http://127.0.0.1:$PORT_s3" \
		DRRUN_TEST_S3_HTTPS_URL "https://127.0.0.1:$TLSPORT_s3" \
		DRRUN_TEST_S3_KEY AKIDDRRUN \
		DRRUN_TEST_S3_SECRET drrun-test-secret \
		DRRUN_TEST_HEROKU_TOKEN test-heroku-token \
		DRRUN_TEST_NETLIFY_TOKEN test-netlify-token \
		DRRUN_TEST_STATUSPAGE_KEY test-statuspage-key \
		DRRUN_TEST_PAGERDUTY_KEY d2a0e1f4c7b64a3e9f0d5c8b7a6e3f21 \
		DRRUN_TEST_FAKES_CONTROL "$control" >"$D/env.tmp"
	# OpenSSH's sshd playing 50 hosts (tests/sshd.sh), for the ssh spec: one down
	# among 50 up must not fail the others
	"$(dirname "$0")/sshd.sh" start "$D/sshd" 50 >&2
	cat "$D/sshd/env" >>"$D/env.tmp"
	mv "$D/env.tmp" "$D/env"
	trap - EXIT
	echo "servers: nginx $pid on http $hp, https $sp, https (wrong name) $wp"
	echo "servers: fakes heroku $PORT_heroku, netlify $PORT_netlify," \
		"statuspage $PORT_statuspage, pagerduty $PORT_pagerduty, slack $PORT_slack, aws $PORT_aws, s3 $PORT_s3 (https $TLSPORT_s3)"
}

case $CMD in
start) start ;;
stop) stop ;;
*) usage ;;
esac
