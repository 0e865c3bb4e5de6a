#!/usr/bin/env bash
# bench/drill_pg.sh - drrun's own share of a real drill.  A 200-step drill
# restores a ~100 MB pg_dump into a fresh database of a real PostgreSQL on
# loopback (tests/pg.sh), then runs 197 verification queries against it
# (psql, one per step, in dependency waves) and drops it in teardown.  The
# steps run one at a time (--max-parallel 1), so the children never overlap:
# drrun's overhead is the drill's wall time minus the time its children
# took, each child's time as exec.run measured it (spawn to exit), summed
# from the steps' outputs in the journal.  It covers starting each child,
# journalling every step (fdatasync of each step_start before the step
# runs), scheduling and Lua.  Goal (issue 11): under 2 % of the wall time.
# Reported, not asserted.  REPS=N keeps the median of N drills (default 3);
# SIZE_MB sets the dump's size (default 100); STATE=DIR puts the journal
# there (default bench/out, on the repository's disk).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
SIZE_MB=${SIZE_MB:-100}
OUT=bench/out
mkdir -p "$OUT"
DRRUN=${DRRUN:-./drrun}
[ -x "$DRRUN" ] || { echo "build first: make" >&2; exit 1; }
STATE=${STATE:-$OUT/drill-pg-state}

PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/drrun-bench-pg.XXXXXX")
trap 'tests/pg.sh stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"' EXIT
tests/pg.sh start "$PGDIR" >"$OUT/drill-pg-server.log" 2>&1 || {
	cat "$OUT/drill-pg-server.log" >&2
	exit 1
}
# shellcheck disable=SC1091
. "$PGDIR/env"

# the source: one table of about SIZE_MB (a row is ~70 bytes on disk in the dump)
rows=$((SIZE_MB * 1024 * 1024 / 70))
psql -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS src" 2>/dev/null \
	-c "CREATE DATABASE src" >/dev/null
psql -q -v ON_ERROR_STOP=1 -d src -c "CREATE TABLE orders AS SELECT g AS id, g % 197 AS shard,
	md5(g::text) AS ref, now() - (g || ' seconds')::interval AS placed
	FROM generate_series(1, $rows) g" -c "CREATE INDEX ON orders (shard)" >/dev/null
DUMP=$PGDIR/src.dump
pg_dump -Fc -Z0 -d src -f "$DUMP"
dump_mb=$(( $(stat -c %s "$DUMP") / 1024 / 1024 ))

rb=$OUT/drill-pg.lua
{
	cat <<EOF
local exec = require "drrun.exec"
runbook { name = "bench-drill-pg", description = "200 steps: restore a dump, verify, drop",
  rto = "1h", rpo = "24h" }
local function run(argv)
  local r = drrun.must(exec.run(argv))
  if r.status ~= 0 then error(table.concat(argv, " ") .. ": " .. r.stderr, 0) end
  return r
end
step "create_db" { phase = "provision",
  run = function() return { child = run { "psql", "-q", "-d", "postgres", "-c",
    "CREATE DATABASE dr_restore" }.duration } end }
step "restore" { phase = "restore", after = "create_db",
  run = function(ctx)
    local r = run { "pg_restore", "--no-owner", "-d", "dr_restore", "$DUMP", timeout = "30m" }
    ctx.recovery_point(os.time() - 60)
    return { child = r.duration }
  end }
EOF
	# 197 checks: waves of 20 that depend on the previous wave's first step
	for i in $(seq 1 197); do
		dep=restore
		[ "$i" -gt 20 ] && dep="check_$(( (i - 1) / 20 * 20 - 19 ))"
		echo "step \"check_$i\" { phase = \"verify\", after = \"$dep\","
		echo "  run = function() local r = run { \"psql\", \"-Atq\", \"-d\", \"dr_restore\", \"-c\","
		echo "    \"SELECT count(*), max(id) FROM orders WHERE shard = $((i - 1))\" }"
		echo "    if not r.stdout:match(\"^%d+|%d+\") then error(\"no rows: \" .. r.stdout, 0) end"
		echo "    return { child = r.duration } end }"
	done
	cat <<'EOF'
step "drop_db" { phase = "teardown",
  run = function() return { child = run { "psql", "-q", "-d", "postgres", "-c",
    "DROP DATABASE IF EXISTS dr_restore" }.duration } end }
EOF
} >"$rb"

results=()
for _ in $(seq 1 "$REPS"); do
	rm -rf "$STATE"
	t0=$(date +%s.%N)
	"$DRRUN" drill "$rb" --state-dir "$STATE" --max-parallel 1 --no-color \
		>"$OUT/drill-pg.out" 2>&1 </dev/null || { tail -20 "$OUT/drill-pg.out" >&2; exit 1; }
	t1=$(date +%s.%N)
	results+=("$(python3 - "$t0" "$t1" "$STATE" <<'PY'
import glob, json, sys
t0, t1, state = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
(j,) = glob.glob(state + "/runs/*/journal.jsonl")
recs = [json.loads(l) for l in open(j)]
ends = [r for r in recs if r["type"] == "step_end" and r["status"] == "completed"]
child = sum(r["output"]["child"] for r in ends)
steps = len(ends)
wall = t1 - t0
print(f"{wall:.3f} {child:.3f} {steps}")
PY
)")
done
python3 - "$dump_mb" "${results[@]}" <<'PY'
import sys
dump = sys.argv[1]
runs = sorted((tuple(map(float, r.split())) for r in sys.argv[2:]), key=lambda r: r[0] - r[1])
wall, child, steps = runs[len(runs) // 2]
over = wall - child
print(f"drill of {int(steps)} steps restoring a {dump} MB dump (median of {len(runs)}):")
print(f"  wall {wall:.3f} s, children {child:.3f} s, drrun {over:.3f} s = "
      f"{100 * over / wall:.2f} % of the wall ({1000 * over / steps:.1f} ms a step)")
print(f"  goal < 2 %: {'met' if over / wall < 0.02 else 'NOT met'}")
PY
