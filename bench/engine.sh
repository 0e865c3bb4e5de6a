#!/usr/bin/env bash
# bench/engine.sh - the engine's own overhead, side by side with its floors.
#  (a) a 1000-step no-op runbook (a chain, and 1000 independent steps)
#      vs 2000 fdatasync'd appends of the same record size (bench/append_floor.c)
#  (b) start-up: `drrun --version` and `drrun check` on a 100-step runbook
#      vs `lua5.4 -e ''` (drrun opens libcurl only when drrun.http is required)
# Prints wall, CPU and peak RSS of each, and the ratios.  REPS=N repeats each
# measurement and keeps the median (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-5}
OUT=bench/out; mkdir -p "$OUT"
DRRUN=${DRRUN:-./drrun}
[ -x "$DRRUN" ] || { echo "build first: make" >&2; exit 1; }
command -v lua5.4 >/dev/null || { echo "lua5.4 missing: make deps" >&2; exit 1; }
cc -O2 -Wall -Wextra -Werror -o "$OUT/append_floor" bench/append_floor.c

gen() { # gen NAME N chain|wide
  local f="$OUT/$1.lua"
  { echo "runbook { name = \"$1\" }"
    for i in $(seq 1 "$2"); do
      if [ "$3" = chain ] && [ "$i" -gt 1 ]; then
        echo "step \"s$i\" { phase = \"restore\", after = \"s$((i-1))\", run = function(ctx) return { n = $i } end }"
      else
        echo "step \"s$i\" { phase = \"restore\", run = function(ctx) return { n = $i } end }"
      fi
    done; } > "$f"
  echo "$f"
}

# measure LABEL CMD... -> "wall user+sys maxrss_kb" (median of REPS by wall)
measure() {
  local label=$1; shift
  local rows=()
  for _ in $(seq 1 "$REPS"); do
    rm -rf "$OUT/state"
    /usr/bin/time -f '%e %U %S %M' -o "$OUT/time.txt" "$@" >/dev/null 2>"$OUT/err.txt" </dev/null \
      || { echo "$label failed:" >&2; cat "$OUT/err.txt" >&2; exit 1; }
    rows+=("$(awk '{ printf "%.3f %.3f %d\n", $1, $2 + $3, $4 }' "$OUT/time.txt")")
  done
  printf '%s\n' "${rows[@]}" | sort -n | sed -n "$(( (REPS + 1) / 2 ))p"
}

chain=$(gen chain1000 1000 chain)
wide=$(gen wide1000 1000 wide)
check=$(gen check100 100 chain)

# the record size drrun writes for these steps, from a real journal
$DRRUN run "$chain" --state-dir "$OUT/state" >/dev/null </dev/null
J=$(ls "$OUT"/state/runs/*/journal.jsonl | head -1)
RECSZ=$(awk '{ s += length($0) + 1 } END { printf "%d", s / NR }' "$J")

printf '%-44s %9s %9s %9s\n' "what" "wall s" "cpu s" "rss KiB"
row() { printf '%-44s %9s %9s %9s\n' "$1" $2; }
fl=$(measure floor "$OUT/append_floor" "$OUT/floor.jsonl" 2000 "$RECSZ"); row "floor: 2000 fdatasync'd ${RECSZ}-byte appends" "$fl"
ch=$(measure chain $DRRUN run "$chain" --state-dir "$OUT/state"); row "drrun: 1000-step chain" "$ch"
wd=$(measure wide $DRRUN run "$wide" --state-dir "$OUT/state"); row "drrun: 1000 independent steps" "$wd"
# process start-up is ~1 ms: time 200 invocations in one go, report per run
N=200
loop() { local label=$1; shift; measure "$label" bash -c 'for i in $(seq '$N'); do "$@" >/dev/null || exit 1; done' _ "$@" |
  awk -v n=$N '{ printf "%.4f %.4f %d\n", $1 / n, $2 / n, $3 }'; }
lu=$(loop lua lua5.4 -e ''); row "lua5.4 -e '' (per run, of $N)" "$lu"
vr=$(loop version $DRRUN --version); row "drrun --version (per run)" "$vr"
ck=$(loop check $DRRUN check "$check"); row "drrun check: 100-step runbook (per run)" "$ck"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
w() { echo "$1" | cut -d' ' -f1; }
echo
echo "(a) 1000-step chain / floor, wall:        $(ratio "$(w "$ch")" "$(w "$fl")")x  (goal <= 1.2)"
echo "    1000 independent steps / floor, wall: $(ratio "$(w "$wd")" "$(w "$fl")")x"
echo "(b) drrun --version / lua5.4, wall:       $(ratio "$(w "$vr")" "$(w "$lu")")x"
echo "    drrun check 100 steps / lua5.4, wall: $(ratio "$(w "$ck")" "$(w "$lu")")x  (goal <= 2)"
echo "    shared libraries mapped at start-up:  $(ldd "$DRRUN" | grep -c '=>')"

# (c) scale
chain10k=$(gen chain10k 10000 chain)
wide10k=$(gen wide10k 10000 wide)
check100k=$(gen check100k 100000 chain)
echo
fl10=$(measure floor10k "$OUT/append_floor" "$OUT/floor.jsonl" 10000 "$RECSZ"); row "floor: 10000 fdatasync'd ${RECSZ}-byte appends" "$fl10"
c10=$(measure chain10k $DRRUN run "$chain10k" --state-dir "$OUT/state"); row "drrun: 10000-step chain" "$c10"
w10=$(measure wide10k $DRRUN run "$wide10k" --state-dir "$OUT/state"); row "drrun: 10000 independent steps" "$w10"
k100=$(measure check100k $DRRUN check "$check100k"); row "drrun check: 100000-step runbook" "$k100"
# reading a big run back (status, resume and rollback all start there)
rm -rf "$OUT/past"
$DRRUN run "$wide10k" --state-dir "$OUT/past" >/dev/null 2>&1 </dev/null
past=$(ls "$OUT/past/runs")
st10=$(measure status10k $DRRUN status "$past" --state-dir "$OUT/past"); row "drrun status: a 10000-step run" "$st10"
cpu() { echo "$1" | cut -d' ' -f2; }
echo
echo "(c) 10000-step chain / 10000 independent steps, wall: $(ratio "$(w "$c10")" "$(w "$w10")")x, cpu: $(ratio "$(cpu "$c10")" "$(cpu "$w10")")x  (goal <= 1.5)"
echo "    10000-step chain / its floor, wall:             $(ratio "$(w "$c10")" "$(w "$fl10")")x"
echo "    drrun check of 100000 steps, wall:              $(w "$k100") s  (goal < 2)"
echo "    drrun status of a 10000-step run, cpu:          $(cpu "$st10") s  (linear in the journal)"
