#!/usr/bin/env bash
# bench/drill.sh - drrun report over a big drill's journal.
#  A 10,000-step drill (five phases of 2,000 steps, each a chain of 200-step
#  waves, one step in ten retried once, a teardown) is run once; then the
#  report is made from its journal in each format, side by side with the
#  floors of reading that journal: `drrun audit verify` (read, parse and hash
#  every record) and, when present, `jq -c .` (read and reprint it).
# Prints wall, CPU and peak RSS of each, the size of each report, and the
# ratios to audit verify.  The issue's goals for html: under 0.5 s and under
# 2 MB (reported, not asserted).  REPS=N keeps the median of N (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
N=${N:-10000}
OUT=bench/out; mkdir -p "$OUT"
DRRUN=${DRRUN:-./drrun}
[ -x "$DRRUN" ] || { echo "build first: make" >&2; exit 1; }

rb="$OUT/drill$N.lua"
{ echo "runbook { name = \"bench-drill\", rto = \"1h\", rpo = \"1h\", budgets = { restore = \"30m\" } }"
  phases=(provision restore dns verify communicate)
  per=$((N / 5))
  for p in 0 1 2 3 4; do
    for i in $(seq 1 "$per"); do
      k=$((p * per + i))
      dep=""
      if [ "$k" -gt 200 ]; then dep=", after = \"s$((k - 200))\""; fi
      if [ $((k % 10)) -eq 0 ]; then
        echo "step \"s$k\" { phase = \"${phases[$p]}\"$dep, retry = { attempts = 2, delay = \"1ms\" }, run = function(ctx) if ctx.attempt == 1 then error(\"busy\") end ctx.log(\"done %d\", $k) end }"
      else
        echo "step \"s$k\" { phase = \"${phases[$p]}\"$dep, run = function(ctx) ctx.log(\"done %d\", $k) return { n = $k } end }"
      fi
    done
  done
  echo "step \"rp\" { phase = \"restore\", run = function(ctx) ctx.recovery_point(os.time() - 60) end }"
  echo "step \"cleanup\" { phase = \"teardown\", run = function() return { removed = { \"all\" } } end }"
} > "$rb"

rm -rf "$OUT/state"
$DRRUN drill "$rb" --state-dir "$OUT/state" --max-parallel 256 >/dev/null </dev/null || {
  rc=$?; [ "$rc" -eq 4 ] || { echo "the drill failed: exit $rc" >&2; exit 1; }; }
RID=$(ls "$OUT/state/runs" | head -1)
J="$OUT/state/runs/$RID/journal.jsonl"
RECS=$(wc -l < "$J")
JSZ=$(stat -c %s "$J")

# measure LABEL CMD... -> "wall cpu maxrss_kb" (median of REPS by wall)
measure() {
  local label=$1; shift
  local rows=()
  for _ in $(seq 1 "$REPS"); do
    /usr/bin/time -f '%e %U %S %M' -o "$OUT/time.txt" "$@" >/dev/null 2>"$OUT/err.txt" </dev/null \
      || { echo "$label failed:" >&2; cat "$OUT/err.txt" >&2; exit 1; }
    rows+=("$(awk '{ printf "%.3f %.3f %d\n", $1, $2 + $3, $4 }' "$OUT/time.txt")")
  done
  printf '%s\n' "${rows[@]}" | sort -n | sed -n "$(( (REPS + 1) / 2 ))p"
}

echo "journal: $RECS records, $JSZ bytes ($N steps)"
printf '%-40s %8s %8s %9s %10s %8s\n' "what" "wall s" "cpu s" "rss KiB" "bytes" "x verify"
row() { # LABEL "wall cpu rss" BYTES BASE_WALL
  local w; w=$(echo "$2" | awk '{ print $1 }')
  printf '%-40s %8s %8s %9s %10s %8s\n' "$1" $2 "$3" \
    "$(awk -v a="$w" -v b="$4" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
}
v=$(measure verify $DRRUN audit verify "$RID" --state-dir "$OUT/state")
base=$(echo "$v" | awk '{ print $1 }')
row "floor: drrun audit verify" "$v" "-" "$base"
if command -v jq >/dev/null; then
  jqm=$(measure jq jq -c . "$J"); row "floor: jq -c . journal" "$jqm" "-" "$base"
fi
for f in json md html; do
  m=$(measure "$f" $DRRUN report "$RID" --format "$f" -o "$OUT/report.$f" --state-dir "$OUT/state")
  row "drrun report --format $f" "$m" "$(stat -c %s "$OUT/report.$f")" "$base"
  [ "$f" = html ] && HTML="$m"
done
hw=$(echo "$HTML" | awk '{ print $1 }')
hs=$(stat -c %s "$OUT/report.html")
awk -v w="$hw" -v s="$hs" 'BEGIN {
  printf "goal html < 0.5 s: %s (%.3f s); goal html < 2 MB: %s (%.2f MB)\n",
    (w < 0.5 ? "met" : "MISSED"), w, (s < 2 * 1024 * 1024 ? "met" : "MISSED"), s / 1048576 }'
