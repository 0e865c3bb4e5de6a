#!/usr/bin/env bash
# bench/backup.sh - what drrun.backup's envelope costs over drrun.crypto's
# streaming file encryption it wraps, and both against Python's
# `cryptography` (OpenSSL's AES-256-GCM in one call) and sha256sum (one read
# of the file), on the same random file of MB megabytes (default 256), in one
# run.  Each figure is the best wall time of REPS (default 3).  The ratios
# are the point: backup.encrypt joins the envelope's header and the body
# with cat, and backup.decrypt splits them with tail, so each reads and
# writes the file about twice; decrypt_file alone reads it once.
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-256}
REPS=${REPS:-3}
OUT=bench/out/backup; rm -rf "$OUT"; mkdir -p "$OUT"
DRRUN=./drrun
[ -x "$DRRUN" ] || { echo "build first: make" >&2; exit 1; }
head -c $((MB * 1024 * 1024)) /dev/urandom >"$OUT/data"
(umask 077; openssl rand -hex 32 >"$OUT/k1.key")

best() { # COMMAND... -> the best wall time of REPS, in seconds
	local b="" t
	for _ in $(seq "$REPS"); do
		local s e
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s.%N)
		t=$(awk "BEGIN{printf \"%.3f\", $e - $s}")
		if [ -z "$b" ] || awk "BEGIN{exit !($t < $b)}"; then b=$t; fi
	done
	echo "$b"
}

cat >"$OUT/bench.lua" <<'LUA'
local backup, crypto, fs = require "drrun.backup", require "drrun.crypto", require "drrun.fs"
runbook { name = "bench-backup", params = { what = { default = "" }, dir = { default = "" } } }
step "one" { run = function(ctx)
  local d, keys = ctx.params.dir, { active = "k1", keys = { k1 = ctx.params.dir .. "/k1.key" } }
  local key = assert(crypto.unhex((assert(fs.read(d .. "/k1.key")):gsub("%s+", ""))))
  local w = ctx.params.what
  if w == "encrypt_file" then assert(crypto.encrypt_file(key, d .. "/data", d .. "/data.encf"))
  elseif w == "decrypt_file" then assert(crypto.decrypt_file(key, d .. "/data.encf", d .. "/data.outf"))
  elseif w == "backup.encrypt" then assert(backup.encrypt { src = d .. "/data", dst = d .. "/data.enc", keys = keys })
  elseif w == "backup.decrypt" then assert(backup.decrypt { src = d .. "/data.enc", dst = d .. "/data.out", keys = keys })
  end
end }
LUA
run() { best "$DRRUN" run --no-color --state-dir "$OUT/state" "$OUT/bench.lua" --param what="$1" --param dir="$OUT"; }
PY='import sys,os
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
d=open(sys.argv[1],"rb").read(); open(sys.argv[2],"wb").write(AESGCM(os.urandom(32)).encrypt(os.urandom(12), d, b""))'

sha=$(best sha256sum "$OUT/data")
py=$(best python3 -c "$PY" "$OUT/data" "$OUT/data.py")
ef=$(run encrypt_file); df=$(run decrypt_file)
be=$(run backup.encrypt); bd=$(run backup.decrypt)
cmp -s "$OUT/data" "$OUT/data.out" || { echo "backup.decrypt did not give the data back" >&2; exit 1; }
printf '%-34s %8s  %s\n' "($MB MiB, best of $REPS)" "seconds" "vs crypto.encrypt_file"
for row in "sha256sum (one read):$sha" "python cryptography AESGCM:$py" "crypto.encrypt_file:$ef" \
	"crypto.decrypt_file:$df" "backup.encrypt (envelope):$be" "backup.decrypt (envelope):$bd"; do
	printf '%-34s %8s  %sx\n' "${row%%:*}" "${row##*:}" "$(awk "BEGIN{printf \"%.2f\", ${row##*:} / $ef}")"
done
rm -rf "$OUT"
