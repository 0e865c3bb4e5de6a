#!/usr/bin/env bash
# bench/test.sh - `drrun test` on the heroku-netlify runbook's cases, whose
# waits (a 25-minute restore polled every 3s, a 4-minute capture, retries
# with backoff, a restore past its 2h timeout) add up to hours, run in
# virtual time.  Its peer is the time those cases would take for real: the
# sum of the durations their journals measure.  Prints the wall and CPU time
# of the whole file (median of REPS runs, default 5), the virtual time
# covered, and the ratio.  Goal (issue 14): under 1 s of wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
OUT=bench/out; mkdir -p "$OUT"
DRRUN=${DRRUN:-./drrun}
FILE=tests/runbooks/heroku-netlify_test.lua
[ -x "$DRRUN" ] || { echo "build first: make" >&2; exit 1; }

walls=(); cpus=()
for _ in $(seq 1 "$REPS"); do
  /usr/bin/time -f "%e %U %S" -o "$OUT/test.time" "$DRRUN" test "$FILE" >"$OUT/test.tap"
  tail -n 1 "$OUT/test.tap" | grep -q ' passed, 0 failed$' || { cat "$OUT/test.tap"; exit 1; }
  read -r wall user sys <"$OUT/test.time"
  walls+=("$wall"); cpus+=("$(echo "$user + $sys" | bc -l)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
wall=$(median "${walls[@]}"); cpu=$(median "${cpus[@]}")

# the virtual time the cases covered: their run_end durations
rm -rf "$OUT/test-keep"; mkdir -p "$OUT/test-keep"
TMPDIR=$(cd "$OUT/test-keep" && pwd) "$DRRUN" test --keep "$FILE" >/dev/null 2>&1
virtual=$(cat "$OUT"/test-keep/drrun-test-*/case-*/runs/*/journal.jsonl |
  /usr/bin/python3 -c 'import json, sys
print("%.0f" % sum(json.loads(l).get("duration", 0) for l in sys.stdin if "\"run_end\"" in l))')
cases=$(ls -d "$OUT"/test-keep/drrun-test-*/case-* | wc -l)
rm -rf "$OUT/test-keep"

printf 'drrun test %s: %d cases\n' "$FILE" "$cases"
printf '  wall %.3f s, CPU %.3f s (median of %d)\n' "$wall" "$cpu" "$REPS"
printf '  virtual time covered: %d s (%.1f min); real time / virtual time = 1 : %.0f\n' \
  "$virtual" "$(echo "$virtual / 60" | bc -l)" "$(echo "$virtual / $wall" | bc -l)"
if [ "$(echo "$wall < 1" | bc)" = 1 ]; then echo "  goal < 1 s: met"; else echo "  goal < 1 s: NOT met"; fi
