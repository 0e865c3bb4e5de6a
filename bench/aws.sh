#!/usr/bin/env bash
# bench/aws.sh [sign|s3|all] - drrun's AWS client side by side with its peers,
# in one run.  sign (the default): SigV4 signing against botocore's, on the
# same 10,000 requests (N=...): distinct paths, queries and headers, header
# signing with a session token.  Each side reports the best wall time of
# its signing loop, and the CPU the signing took: the process's CPU with N
# requests less the same process's with none, per repeat.  The ratio is of
# those CPU figures, taken in this one run.  Needs
# Debian's python3-botocore (make deps).  REPS=N keeps the best of N loops.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-sign}
case $WHAT in sign|s3|all) ;; *) echo "usage: bench/aws.sh [sign|s3|all]" >&2; exit 64 ;; esac
N=${N:-10000}
REPS=${REPS:-3}
OUT=bench/out; mkdir -p "$OUT"
DRRUN=./drrun
[ -x "$DRRUN" ] || { echo "build first: make" >&2; exit 1; }
/usr/bin/python3 -c 'import botocore' 2>/dev/null || { echo "python3-botocore missing: make deps" >&2; exit 1; }

sign_bench() {
gen() { # N -> the runbook and the script for N requests
cat >"$OUT/sign$1.lua" <<LUA
local core = require "drrun.aws.core"
runbook { name = "bench-sign" }
step "sign" { run = function(ctx)
  local best
  for _ = 1, $REPS do
    local t0 = drrun.now()
    for i = 1, $1 do
      core.sign { method = "GET", path = "/bucket/key-" .. i .. "/part%20" .. (i % 7),
        query = "list-type=2&prefix=p" .. i .. "&max-keys=1000",
        headers = { Host = "s3.us-east-1.amazonaws.com", ["X-Amz-Meta-N"] = tostring(i) },
        payload_hash = "UNSIGNED-PAYLOAD", region = "us-east-1", service = "s3",
        access_key = "AKIDEXAMPLE", secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token = "session-token", time = 1440938160 }
    end
    local t = drrun.now() - t0
    if not best or t < best then best = t end
  end
  ctx.log("loop %.6f", best)
end }
LUA

cat >"$OUT/sign$1.py" <<PY
import time
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
best = None
for _ in range($REPS):
    t0 = time.perf_counter()
    for i in range(1, $1 + 1):
        r = AWSRequest(method="GET", url="https://s3.us-east-1.amazonaws.com/bucket/key-%d/part%%20%d?list-type=2&prefix=p%d&max-keys=1000" % (i, i % 7, i),
                       headers={"X-Amz-Meta-N": str(i), "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
        S3SigV4Auth(creds, "s3", "us-east-1").add_auth(r)
    t = time.perf_counter() - t0
    best = t if best is None or t < best else best
print("loop %.6f" % best)
PY
}
gen "$N"
gen 0

# CMD... -> "wall user sys" of the command, from wait4's rusage: to the
# microsecond, where /usr/bin/time rounds to 10 ms (a tenth of drrun's CPU
# here, which made the ratio jump by as much)
timed() {
  /usr/bin/python3 -c '
import os, sys, time
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, st, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write("%.6f %.6f %.6f\n" % (time.monotonic() - t0, ru.ru_utime, ru.ru_stime))
sys.exit(os.waitstatus_to_exitcode(st))' "$@"
}
run() { # LABEL CMD... -> prints loop seconds, wall, cpu
  local label=$1; shift
  timed "$OUT/time.txt" "$@" >"$OUT/out.txt" 2>&1 </dev/null ||
    { echo "$label failed:" >&2; cat "$OUT/out.txt" >&2; exit 1; }
  local loop; loop=$(grep -o 'loop [0-9.]*' "$OUT/out.txt" | awk '{print $2}')
  echo "$loop $(awk '{ printf "%.3f %.6f", $1, $2 + $3 }' "$OUT/time.txt")"
}
# CPU of the signing alone: the process with N requests less the same
# process with none (start-up, imports), so a loaded machine's waits and the
# interpreters' start-up both drop out
rm -rf "$OUT/state"
d=$(run drrun $DRRUN run --no-color --state-dir "$OUT/state" "$OUT/sign$N.lua")
d0=$(run drrun $DRRUN run --no-color --state-dir "$OUT/state" "$OUT/sign0.lua")
b=$(run botocore /usr/bin/python3 "$OUT/sign$N.py")
b0=$(run botocore /usr/bin/python3 "$OUT/sign0.py")
net() { awk -v a="$1" -v b="$2" -v r="$REPS" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.4f", (x[3] - y[3]) / r }'; }
dn=$(net "$d" "$d0"); bn=$(net "$b" "$b0")
printf '%-34s %10s %10s %12s %9s\n' "SigV4, $N requests" "loop s" "cpu s" "cpu/sign us" "wall s"
for row in "drrun (aws.core.sign)|$d|$dn" "botocore (S3SigV4Auth.add_auth)|$b|$bn"; do
  label=${row%%|*}; rest=${row#*|}; cpu=${rest##*|}; set -- ${rest%|*}
  printf '%-34s %10.4f %10s %12.1f %9s\n' "$label" "$1" "$cpu" "$(awk -v t="$cpu" -v n="$N" 'BEGIN{print t/n*1e6}')" "$2"
done
awk -v d="$dn" -v b="$bn" 'BEGIN { printf "botocore / drrun, CPU per signature: %.1fx (goal >= 20x)\n", b / d }'
}

# ---- s3: against s3rver behind the SigV4 check (tests/fakes/s3-signed.js) --------
# 1,000 PUTs of 4 KiB, 50 in flight (drrun: drrun.parallel over s3.put;
# aws s3 cp --recursive with max_concurrent_requests = 50; rclone copy
# --transfers 50), then one 1 GiB file up (multipart: 64 MiB parts, 4 at a
# time for drrun, the CLI's and rclone's own defaults otherwise) and down.
# The tools take turns, round after round: one untimed round of PUTs warms
# the server, then ROUNDS (3) timed rounds of the PUTs and ROUNDS of the big
# file (rclone with --ignore-times, or it skips the object it sent the round
# before).  (rclone runs without AWS_CA_BUNDLE: a CA bundle breaks its plain-http
# transport.)  Wall seconds and peak RSS (/usr/bin/time) of each run, and the
# ratios of drrun's median wall to the faster peer's median.  SIZE_MB=...
# changes the big file.
s3_bench() {
	local port e
	tmp=$(mktemp -d) # global: the EXIT trap uses it, and pid

	[ -d tests/fakes/node_modules/s3rver ] || { echo "tests/fakes/node_modules is missing: make deps" >&2; exit 1; }
	node --openssl-legacy-provider tests/fakes/s3-signed.js "$tmp/data" 0 >"$tmp/s3.out" 2>&1 </dev/null &
	pid=$!
	trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/data"
	for _ in $(seq 300); do grep -q '^ready' "$tmp/s3.out" 2>/dev/null && break; sleep 0.05; done
	port=$(awk '/^ready/ { print $2 }' "$tmp/s3.out")
	[ -n "$port" ] || { echo "s3-signed.js did not start:" >&2; cat "$tmp/s3.out" >&2; exit 1; }
	e=http://127.0.0.1:$port
	export AWS_ACCESS_KEY_ID=AKIDDRRUN AWS_SECRET_ACCESS_KEY=drrun-test-secret AWS_DEFAULT_REGION=us-east-1 \
		AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER= AWS_ENDPOINT_URL_S3=$e \
		AWS_CONFIG_FILE=$tmp/aws-config AWS_SHARED_CREDENTIALS_FILE=$tmp/no-creds
	printf '[default]\ns3 =\n  max_concurrent_requests = 50\n' >"$tmp/aws-config"
	export RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT=$e \
		RCLONE_CONFIG_B_ACCESS_KEY_ID=AKIDDRRUN RCLONE_CONFIG_B_SECRET_ACCESS_KEY=drrun-test-secret \
		RCLONE_CONFIG_B_REGION=us-east-1 RCLONE_CONFIG_B_FORCE_PATH_STYLE=true RCLONE_CONFIG=$tmp/none.conf
	/usr/bin/aws --endpoint-url "$e" s3api create-bucket --bucket bench >/dev/null
	mkdir -p "$tmp/small" "$tmp/down"
	head -c $((1000 * 4096)) /dev/urandom | (cd "$tmp/small" && split -b 4096 -d -a 4 - f)
	head -c $((${SIZE_MB:-1024} * 1048576)) /dev/urandom >"$tmp/big.bin"
	cat >"$tmp/s3.lua" <<'LUA'
local s3 = require "drrun.aws.s3"
local exec = require "drrun.exec"
runbook { name = "bench-s3", params = { what = {}, dir = {}, prefix = { default = "drrun/" } } }
step "go" { timeout = "30m", run = function(ctx)
  local d, w = ctx.params.dir, ctx.params.what
  if w == "small" then
    local names = {}
    for n in assert(exec.run { "ls", d .. "/small" }).stdout:gmatch("%S+") do names[#names + 1] = n end
    drrun.parallel(names, function(n)
      drrun.must(s3.put { bucket = "bench", key = ctx.params.prefix .. n, file = d .. "/small/" .. n })
    end, { limit = 50 })
  elseif w == "up" then
    drrun.must(s3.put { bucket = "bench", key = "drrun/big.bin", file = d .. "/big.bin" })
  else
    drrun.must(s3.get { bucket = "bench", key = "drrun/big.bin", file = d .. "/down/drrun.bin" })
  end
end }
LUA
	measure() { # LABEL CMD... -> "wall rss_mb" (and the row printed)
		local label=$1; shift
		sync # the last run's dirty pages are written back before, not during, this one
		/usr/bin/time -f '%e %M' -o "$tmp/t" "$@" >"$tmp/o" 2>&1 </dev/null ||
			{ echo "$label failed:" >&2; tail -20 "$tmp/o" >&2; exit 1; }
		awk -v l="$label" '{ printf "  %-44s %8.2f s %8.1f MB\n", l, $1, $2 / 1024 }' "$tmp/t" >&2
		awk '{ print $1 }' "$tmp/t"
	}
	local dr="$DRRUN run --no-color --state-dir $tmp/state $tmp/s3.lua --param dir=$tmp --param what"
	local have_rclone=; command -v rclone >/dev/null && have_rclone=1
	local rounds=${ROUNDS:-3} r
	echo "S3 against s3rver behind the SigV4 check ($e), the median of $rounds rounds" >&2
	# the PUTs, each tool to its own prefix; "warm" rounds are not timed
	small() { # ROUND -> the three walls ("" for a missing rclone)
		local r=$1 d a c=
		d=$(measure "drrun (s3.put in drrun.parallel)" $dr=small --param prefix=drrun$r/)
		a=$(measure "aws s3 cp --recursive" /usr/bin/aws --endpoint-url "$e" s3 cp --recursive --quiet "$tmp/small" s3://bench/aws$r/)
		[ -n "$have_rclone" ] && c=$(measure "rclone copy --transfers 50" env -u AWS_CA_BUNDLE rclone copy --transfers 50 --checkers 50 "$tmp/small" b:bench/rclone$r)
		echo "$d $a $c"
	}
	# One 1 GiB round: each tool up, then down; the download is compared
	# with the file.  -> the six walls (rclone's "" when it is missing)
	big() { # ROUND
		local r=$1 du dd au ad ru= rd=
		du=$(measure "drrun s3.put (64 MiB parts, 4 at a time)" $dr=up)
		dd=$(measure "drrun s3.get (streamed to a file)" $dr=down)
		cmp -s "$tmp/big.bin" "$tmp/down/drrun.bin" || { echo "drrun's download differs from the file" >&2; exit 1; }
		au=$(measure "aws s3 cp (up)" /usr/bin/aws --endpoint-url "$e" s3 cp --quiet "$tmp/big.bin" s3://bench/aws/big.bin)
		ad=$(measure "aws s3 cp (down)" /usr/bin/aws --endpoint-url "$e" s3 cp --quiet s3://bench/aws/big.bin "$tmp/down/aws.bin")
		if [ -n "$have_rclone" ]; then
			ru=$(measure "rclone copyto (up)" env -u AWS_CA_BUNDLE rclone copyto --ignore-times "$tmp/big.bin" b:bench/rclone/big.bin)
			rd=$(measure "rclone copyto (down)" env -u AWS_CA_BUNDLE rclone copyto b:bench/rclone/big.bin "$tmp/down/rclone.bin")
		fi
		rm -f "$tmp"/down/*.bin # the next round writes fresh files
		echo "$du $dd $au $ad $ru $rd"
	}
	# A fresh s3rver (node) answers its first thousands of requests at a
	# third of its later rate (its JIT and heap warming up): whoever went
	# first paid for it.  One untimed round of all three warms it.  The
	# server's speed then still varies by a third from one minute to the
	# next (its disk writes and garbage collection), so the tools take turns
	# for ROUNDS rounds and each one's median is compared.
	echo "1,000 PUTs of 4 KiB, 50 in flight (warm-up round, not counted):" >&2
	small warm >/dev/null
	local -a sd=() sa=() sr=() bu=() bd=() au=() ad=() ru=() rd=()
	local x1 x2 x3 x4 x5 x6
	for r in $(seq "$rounds"); do
		echo "1,000 PUTs of 4 KiB, 50 in flight (round $r):" >&2
		read -r x1 x2 x3 < <(small "$r")
		sd+=("$x1"); sa+=("$x2"); sr+=("${x3:-}")
	done
	ratio "PUTs" "$(median "${sd[@]}")" "$(median "${sa[@]}")" "$(median "${sr[@]}")" "goal <= 0.5"
	for r in $(seq "$rounds"); do
		echo "$(( ${SIZE_MB:-1024} )) MiB, multipart up and down (round $r):" >&2
		read -r x1 x2 x3 x4 x5 x6 < <(big "$r")
		bu+=("$x1"); bd+=("$x2"); au+=("$x3"); ad+=("$x4"); ru+=("${x5:-}"); rd+=("${x6:-}")
	done
	ratio "upload" "$(median "${bu[@]}")" "$(median "${au[@]}")" "$(median "${ru[@]}")" "goal <= 1.0"
	ratio "download" "$(median "${bd[@]}")" "$(median "${ad[@]}")" "$(median "${rd[@]}")" "goal <= 1.0"
	[ -n "$have_rclone" ] || echo "  (rclone is not installed: Debian's package rclone)" >&2
}
median() { # WALL... -> the median ("" when there is none)
	printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
		if (NR) print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { # WHAT DRRUN AWS RCLONE GOAL
	awk -v w="$1" -v d="$2" -v a="$3" -v r="$4" -v g="$5" 'BEGIN {
		best = a; who = "aws"; if (r != "" && r + 0 < a + 0) { best = r; who = "rclone" }
		printf "  %s: medians %.2f s (drrun), %.2f s (aws)%s: drrun / the faster peer (%s) = %.2f (%s)\n",
			w, d, a, r != "" ? sprintf(", %.2f s (rclone)", r) : "", who, d / best, g }' >&2
}

case $WHAT in
sign) sign_bench ;;
s3) s3_bench ;;
all) sign_bench; s3_bench ;;
esac
