#!/usr/bin/env bash
# bench/aws.sh - drrun's AWS signing side by side with botocore's, on the same
# 10,000 requests (N=...): distinct paths, queries and headers, header
# signing with a session token.  Each side reports the best wall time of
# its signing loop, and the CPU the signing took: the process's CPU with N
# requests less the same process's with none, per repeat.  The ratio is of
# those CPU figures, taken in this one run.  Needs
# Debian's python3-botocore (make deps).  REPS=N keeps the best of N loops.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
REPS=${REPS:-3}
OUT=bench/out; mkdir -p "$OUT"
DRRUN=./drrun
[ -x "$DRRUN" ] || { echo "build first: make" >&2; exit 1; }
/usr/bin/python3 -c 'import botocore' 2>/dev/null || { echo "python3-botocore missing: make deps" >&2; exit 1; }

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

run() { # LABEL CMD... -> prints loop seconds, wall, cpu
  local label=$1; shift
  /usr/bin/time -f '%e %U %S' -o "$OUT/time.txt" "$@" >"$OUT/out.txt" 2>&1 </dev/null ||
    { echo "$label failed:" >&2; cat "$OUT/out.txt" >&2; exit 1; }
  local loop; loop=$(grep -o 'loop [0-9.]*' "$OUT/out.txt" | awk '{print $2}')
  echo "$loop $(awk '{ printf "%.3f %.3f", $1, $2 + $3 }' "$OUT/time.txt")"
}
# CPU of the signing alone: the process with N requests less the same
# process with none (start-up, imports), so a loaded machine's waits and the
# interpreters' start-up both drop out
rm -rf "$OUT/state"
d=$(run drrun $DRRUN run --no-color --state-dir "$OUT/state" "$OUT/sign$N.lua")
d0=$(run drrun $DRRUN run --no-color --state-dir "$OUT/state" "$OUT/sign0.lua")
b=$(run botocore /usr/bin/python3 "$OUT/sign$N.py")
b0=$(run botocore /usr/bin/python3 "$OUT/sign0.py")
net() { awk -v a="$1" -v b="$2" -v r="$REPS" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f", (x[3] - y[3]) / r }'; }
dn=$(net "$d" "$d0"); bn=$(net "$b" "$b0")
printf '%-34s %10s %10s %12s %9s\n' "SigV4, $N requests" "loop s" "cpu s" "cpu/sign us" "wall s"
for row in "drrun (aws.core.sign)|$d|$dn" "botocore (S3SigV4Auth.add_auth)|$b|$bn"; do
  label=${row%%|*}; rest=${row#*|}; cpu=${rest##*|}; set -- ${rest%|*}
  printf '%-34s %10.4f %10s %12.1f %9s\n' "$label" "$1" "$cpu" "$(awk -v t="$cpu" -v n="$N" 'BEGIN{print t/n*1e6}')" "$2"
done
awk -v d="$dn" -v b="$bn" 'BEGIN { printf "botocore / drrun, CPU per signature: %.1fx (goal >= 20x)\n", b / d }'
