#!/usr/bin/env bash
# make demo: run the local failover example for real on this machine, in a
# scratch directory, with free loopback ports; stop what it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
D=build/demo
rm -rf "$D"; mkdir -p "$D"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(freeport); P2=$(freeport)
cleanup() {
  for f in "$D"/work/*/pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
}
trap cleanup EXIT
YES=()
[ -t 0 ] || YES=(--yes)   # no terminal to answer the approval gate: approve it
set +e
./drrun run runbooks/examples/local-failover.lua --state-dir "$D/state" \
  --param dir="$D/work" --param primary_port="$P1" --param standby_port="$P2" "${YES[@]}"
rc=$?
set -e
exit $rc
