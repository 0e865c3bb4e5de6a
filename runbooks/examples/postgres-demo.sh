#!/usr/bin/env bash
# postgres-demo.sh: run postgres-failover.lua for real on this machine: a
# PostgreSQL 15 primary and its streaming replica on free loopback ports
# (tests/pg.sh), a table of orders, a service file the "clients" follow;
# then the primary crashes (pg_ctl stop -m immediate) and the runbook fails
# over.  Both servers are stopped, by PID, on exit.  Needs postgresql-15.
#   runbooks/examples/postgres-demo.sh [--switchover]   (after make)
# --switchover keeps the primary up: the runbook fences it itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=$PWD/build/pg-demo
rm -rf "$D"; mkdir -p "$D"
trap 'tests/pg.sh stop "$D/pg" >/dev/null 2>&1 || true' EXIT
tests/pg.sh start "$D/pg" --replica
. "$D/pg/env"
ci() { echo "host=127.0.0.1 port=$1 user=postgres dbname=postgres"; }
psql -X -q -d "$(ci "$PGPORT")" -c "create table orders (id serial primary key, note text);
  insert into orders (note) select 'order ' || g from generate_series(1, 1000) g"
# the replica has them before the crash (the demo's servers commit asynchronously)
for _ in $(seq 1 100); do
  [ "$(psql -X -qtA -d "$(ci "$DRRUN_TEST_PG_REPLICA_PORT")" -c 'select count(*) from orders' 2>/dev/null)" = 1000 ] && break
  sleep 0.1
done
printf '[app]\nhost=127.0.0.1\nport=%d\ndbname=postgres\n' "$PGPORT" >"$D/pg_service.conf"
EXTRA=()
if [ "${1:-}" = --switchover ]; then
  EXTRA=(--param switchover=true)
else
  echo "postgres-demo: crashing the primary (pg_ctl stop -m immediate)"
  $DRRUN_TEST_PG_AS "$DRRUN_TEST_PG_BIN/pg_ctl" -D "$DRRUN_TEST_PG_DATA" -m immediate -w stop >/dev/null
fi
YES=()
[ -t 0 ] || YES=(--yes)   # no terminal to answer the approval gate: approve it
set +e
./drrun run runbooks/examples/postgres-failover.lua --state-dir "$D/state" "${YES[@]}" "${EXTRA[@]}" \
  --param primary="$(ci "$PGPORT")" --param replica="$(ci "$DRRUN_TEST_PG_REPLICA_PORT")" \
  --param primary_data="$DRRUN_TEST_PG_DATA" --param pg_bin="$DRRUN_TEST_PG_BIN" \
  --param os_user="$([ "$(id -u)" -eq 0 ] && echo postgres)" --param service_file="$D/pg_service.conf"
rc=$?
set -e
echo "postgres-demo: through the service now: $(PGSERVICEFILE=$D/pg_service.conf PGUSER=postgres \
  psql -X -qtA -d service=app -c "select 'port ' || inet_server_port() || ', ' || count(*) || ' orders' from orders")"
exit $rc
