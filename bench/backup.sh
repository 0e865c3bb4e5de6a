#!/usr/bin/env bash
# bench/backup.sh - what drrun.backup's envelope costs over drrun.crypto's
# streaming file encryption it wraps, and both against Python's
# `cryptography` (OpenSSL's AES-256-GCM in one call) and sha256sum (one read
# of the file), on the same random file of MB megabytes (default 256), in one
# run.  Each figure is the best of REPS (default 3) runs, wall and CPU
# (user + system of the whole process tree, bench/measure.py); the machine
# is shared, so the CPU column and the ratios are the steadier ones.
# backup.encrypt writes the envelope's header and the encrypted body in one
# pass (crypto.encrypt_file's prefix and hash_output), backup.decrypt reads
# the body in place (decrypt_file's offset).  The "two passes" rows do what
# they did before: encrypt_file to a temporary file, then `cat | tee |
# sha256sum` to join the header (encrypt); `tail -c` to split it off, then
# decrypt_file (decrypt).
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${MB:-256}
REPS=${REPS:-3}
OUT=bench/out/backup; rm -rf "$OUT"; mkdir -p "$OUT"
DRRUN=./drrun
[ -x "$DRRUN" ] || { echo "build first: make" >&2; exit 1; }
head -c $((MB * 1024 * 1024)) /dev/urandom >"$OUT/data"
(umask 077; openssl rand -hex 32 >"$OUT/k1.key")

best() { # COMMAND... -> "wall cpu": the best of REPS runs of each, in seconds
	local bw="" bc="" m rc w c
	for _ in $(seq "$REPS"); do
		m=$(python3 bench/measure.py 600 "$OUT/cmd.out" -- "$@")
		read -r rc w c _ <<<"$m"
		[ "$rc" = 0 ] || { echo "failed ($rc): $*" >&2; cat "$OUT/cmd.out" >&2; exit 1; }
		if [ -z "$bw" ] || awk "BEGIN{exit !($w < $bw)}"; then bw=$w; fi
		if [ -z "$bc" ] || awk "BEGIN{exit !($c < $bc)}"; then bc=$c; fi
	done
	echo "$bw $bc"
}

cat >"$OUT/bench.lua" <<'LUA'
local backup, crypto, fs = require "drrun.backup", require "drrun.crypto", require "drrun.fs"
local exec = require "drrun.exec"
runbook { name = "bench-backup", params = { what = { default = "" }, dir = { default = "" } } }
step "one" { run = function(ctx)
  local d, keys = ctx.params.dir, { active = "k1", keys = { k1 = ctx.params.dir .. "/k1.key" } }
  local key = assert(crypto.unhex((assert(fs.read(d .. "/k1.key")):gsub("%s+", ""))))
  local w = ctx.params.what
  if w == "encrypt_file" then assert(crypto.encrypt_file(key, d .. "/data", d .. "/data.encf"))
  elseif w == "decrypt_file" then assert(crypto.decrypt_file(key, d .. "/data.encf", d .. "/data.outf"))
  elseif w == "backup.encrypt" then assert(backup.encrypt { src = d .. "/data", dst = d .. "/data.enc", keys = keys })
  elseif w == "backup.decrypt" then assert(backup.decrypt { src = d .. "/data.enc", dst = d .. "/data.out", keys = keys })
  elseif w == "two-pass.encrypt" then -- the former backup.encrypt's I/O (a header of its size)
    local h = ("H"):rep(75)
    assert(crypto.encrypt_file(key, d .. "/data", d .. "/body", { aad = h }))
    local r = assert(exec.run { "bash", "-c", [[set -o pipefail; t=$(mktemp "$1.tmp.XXXXXX")
      cat - "$2" | tee "$t" | sha256sum && sync "$t" && mv -f "$t" "$1" && rm -f "$2"]],
      "x", d .. "/data.2p", d .. "/body", stdin = h, timeout = "1h" })
    assert(r.status == 0, r.stderr)
  elseif w == "two-pass.decrypt" then -- the former backup.decrypt's I/O
    local r = assert(exec.run { "bash", "-c", [[tail -c +76 -- "$1" > "$2"]], "x",
      d .. "/data.2p", d .. "/body", timeout = "1h" })
    assert(r.status == 0, r.stderr)
    local h = ("H"):rep(75)
    assert(crypto.decrypt_file(key, d .. "/body", d .. "/data.out2", { aad = h }))
    exec.run { "rm", "-f", "--", d .. "/body" }
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
te=$(run two-pass.encrypt); td=$(run two-pass.decrypt)
cmp -s "$OUT/data" "$OUT/data.out2" || { echo "the two-pass decrypt did not give the data back" >&2; exit 1; }
read -r efw efc <<<"$ef"
printf '%-36s %8s %8s  %s\n' "($MB MiB, best of $REPS)" "wall s" "cpu s" "vs crypto.encrypt_file (wall, cpu)"
for row in "sha256sum (one read):$sha" "python cryptography AESGCM:$py" "crypto.encrypt_file:$ef" \
	"crypto.decrypt_file:$df" "backup.encrypt (one pass):$be" "backup.decrypt (in place):$bd" \
	"two passes, encrypt (before):$te" "two passes, decrypt (before):$td"; do
	read -r w c <<<"${row##*:}"
	printf '%-36s %8s %8s  %sx %sx\n' "${row%%:*}" "$w" "$c" "$(awk "BEGIN{printf \"%.2f\", $w / $efw}")" \
		"$(awk "BEGIN{printf \"%.2f\", $c / $efc}")"
done
rm -rf "$OUT"
