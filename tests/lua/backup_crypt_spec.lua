-- backup_crypt_spec: backup.encrypt / backup.decrypt: round trips, key
-- rotation through a keyring (old backups still open, new ones use the
-- active key), refusals (key file modes, unknown key ids, the wrong key
-- under a known id, modified headers and bodies, another aad), an
-- independent decoder and encoder of the file format in Python's
-- `cryptography`, and no key material in the journal.
--
--   drrun run backup_crypt_spec.lua   (from tests/lua; exit 0 = pass)
local backup = require "drrun.backup"
local crypto = require "drrun.crypto"

runbook { name = "backup-crypt-spec" }

local T = require "lib.spec"
local eq, has, raises_with, sh, fails, run = T.eq, T.has, T.raises_with, T.sh, T.fails, T.run

local D
local function p(name) return D .. "/" .. name end
local function ring(active, ids)
  local k = {}
  for _, id in ipairs(ids) do k[id] = p(id .. ".key") end
  return { active = active, keys = k }
end

step "keys" {
  run = function()
    D = T.state_dir() .. "/crypt"
    sh('rm -rf "$1" && mkdir -p "$1" && head -c 3000000 /dev/urandom > "$1/db.dump" && : > "$1/empty"', D)
    eq(backup.new_key(p("k2026-06.key")), true, "new key")
    -- a key made by other tools: 64 hex digits from openssl, and 32 raw bytes
    sh('umask 077 && openssl rand -hex 32 > "$1" && head -c 32 /dev/urandom > "$2"', p("k2026-12.key"), p("raw.key"))
    eq(sh('stat -c %a "$1"', p("k2026-06.key")), "600\n", "made 0600")
    eq(#sh('cat "$1"', p("k2026-06.key")), 65, "64 hex digits and a newline")
    fails("conflict", backup.new_key(p("k2026-06.key")))
  end,
}

step "round_trip_and_rotation" {
  after = "keys",
  run = function()
    local want = T.sha256sum(p("db.dump"))
    -- June: k2026-06 is active
    local r = assert(backup.encrypt { src = p("db.dump"), dst = p("june.enc"), keys = ring("k2026-06", { "k2026-06" }),
                                      aad = "orders" })
    eq(r.sha256, want, "plaintext sha256"); eq(r.bytes, 3000000, "bytes"); eq(r.key_id, "k2026-06", "key id")
    eq(r.encrypted_sha256, T.sha256sum(p("june.enc")), "encrypted sha256")
    eq(assert(backup.key_id(p("june.enc"))), "k2026-06", "the header names the key")
    eq(sh('stat -c %a "$1"', p("june.enc")), "600\n", "private file")
    -- December: the keyring gains k2026-12 as active, keeps k2026-06 to decrypt
    local dec = ring("k2026-12", { "k2026-06", "k2026-12" })
    r = assert(backup.encrypt { src = p("db.dump"), dst = p("dec.enc"), keys = dec, aad = "orders" })
    eq(r.key_id, "k2026-12", "new backups use the active key")
    local d = assert(backup.decrypt { src = p("june.enc"), dst = p("june.out"), keys = dec, aad = "orders" })
    eq(d.key_id, "k2026-06", "an old backup opens with its old key"); eq(d.sha256, want, "same bytes")
    eq(T.sha256sum(p("june.out")), want, "the file on disk")
    d = assert(backup.decrypt { src = p("dec.enc"), dst = p("dec.out"), keys = dec, aad = "orders" })
    eq(d.sha256, want, "december round trip")
    -- a directory keyring: every id is DIR/<id>.key
    d = assert(backup.decrypt { src = p("dec.enc"), dst = p("dir.out"), keys = { dir = D }, aad = "orders" })
    eq(d.key_id, "k2026-12", "dir keyring")
    -- a key file of 32 raw bytes
    local raw = { active = "raw", keys = { raw = p("raw.key") } }
    assert(backup.encrypt { src = p("db.dump"), dst = p("raw.enc"), keys = raw })
    eq(assert(backup.decrypt { src = p("raw.enc"), dst = p("raw.out"), keys = raw }).sha256, want, "raw key")
    -- the empty file
    assert(backup.encrypt { src = p("empty"), dst = p("empty.enc"), keys = dec })
    d = assert(backup.decrypt { src = p("empty.enc"), dst = p("empty.out"), keys = dec })
    eq(d.bytes, 0, "empty")
    -- the two files under different data keys differ entirely
    eq(sh('cmp -s "$1" "$2" && echo same || echo differ', p("june.enc"), p("dec.enc")), "differ\n", "fresh data keys")
    eq(sh('ls "$1" | grep -c drrun- || true', D), "0\n", "no temporary files left")
  end,
}

step "refusals" {
  after = "round_trip_and_rotation",
  run = function()
    local dec = ring("k2026-12", { "k2026-06", "k2026-12" })
    -- a key file others may read: refused, nothing written
    sh('cp "$1" "$2" && chmod 644 "$2"', p("k2026-12.key"), p("loose.key"))
    local loose = { active = "loose", keys = { loose = p("loose.key") } }
    local err = fails("auth", backup.encrypt { src = p("db.dump"), dst = p("loose.enc"), keys = loose })
    has(err, "key file " .. p("loose.key") .. " has mode 0644", "names file and mode")
    has(err, "it must be 0600", "says what to do")
    eq(T.exists(p("loose.enc")), false, "nothing written")
    sh('chmod 640 "$1"', p("loose.key"))
    fails("auth", backup.decrypt { src = p("dec.enc"), dst = p("x.out"), keys = { keys = { ["k2026-12"] = p("loose.key") } } })
    sh('chmod 400 "$1"', p("loose.key"))
    assert(backup.decrypt { src = p("dec.enc"), dst = p("ro.out"), keys = { keys = { ["k2026-12"] = p("loose.key") } },
                            aad = "orders" }, "0400 is fine")
    -- an id the keyring lacks
    err = fails("auth", backup.decrypt { src = p("dec.enc"), dst = p("x.out"), keys = ring("k2026-06", { "k2026-06" }) })
    has(err, "was encrypted with key 'k2026-12', which the keyring does not have (it has: k2026-06)", "names both")
    -- another key under the right id
    assert(backup.new_key(p("impostor.key")))
    err = fails("auth", backup.decrypt { src = p("dec.enc"), dst = p("x.out"), keys = { keys = { ["k2026-12"] = p("impostor.key") } } })
    has(err, "does not open the data key", "wrong key")
    -- another aad
    fails("auth", backup.decrypt { src = p("dec.enc"), dst = p("x.out"), keys = dec, aad = "billing" })
    -- a modified byte: in the key id, in the sealed key, in the body, at the end
    local size = tonumber(sh('stat -c %s "$1"', p("dec.enc")))
    for _, off in ipairs { 14, 40, 200, 2000000, size - 1 } do
      sh('cp "$1" "$2" && printf "\\\\x$(printf %02x $(( ($(od -An -tu1 -j$3 -N1 "$2") + 1) % 256 )))" | dd of="$2" bs=1 seek=$3 conv=notrunc 2>/dev/null',
        p("dec.enc"), p("bent.enc"), tostring(off))
      local r, e, tok = backup.decrypt { src = p("bent.enc"), dst = p("bent.out"), keys = dec, aad = "orders" }
      eq(r, nil, "byte " .. off .. " modified: refused")
      assert(tok == "auth" or tok == "format", "byte " .. off .. ": " .. tostring(e))
      eq(T.exists(p("bent.out")), false, "byte " .. off .. ": no output")
    end
    -- truncated
    sh('head -c 1500000 "$1" > "$2"', p("dec.enc"), p("short.enc"))
    fails("auth", backup.decrypt { src = p("short.enc"), dst = p("x.out"), keys = dec, aad = "orders" })
    -- not ours at all
    err = fails("format", backup.decrypt { src = p("db.dump"), dst = p("x.out"), keys = dec })
    has(err, "is not a drrun encrypted backup", "format")
    fails("not_found", backup.decrypt { src = p("none.enc"), dst = p("x.out"), keys = dec })
    eq(T.exists(p("x.out")), false, "no output from any refusal")
    eq(sh('ls "$1" | grep -c drrun- || true', D), "0\n", "no temporary files left")
    -- misuse
    raises_with("keys.active must name a key of the keyring (it has: k2026-06)", backup.encrypt,
      { src = "a", dst = "b", keys = ring("nope", { "k2026-06" }) })
    raises_with("backup.decrypt: dst is required", backup.decrypt, { src = "a", keys = dec })
    raises_with("src and dst are the same file", backup.encrypt, { src = "a", dst = "a", keys = dec })
    raises_with("keys.kyes: unknown field", backup.encrypt, { src = "a", dst = "b", keys = { kyes = {} } })
  end,
}

-- The format decoded by another implementation: Python's cryptography reads
-- the header, unseals the data key with the master key and decrypts the
-- DRRUNENC stream (docs/modules/drrun.backup.crypt.md).
local DECODER = [[
import sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
path, keyhex, aad, out = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4]
d = open(path, "rb").read()
assert d[:9] == b"DRRUNBAK\x01"
l = d[9]; kid = d[10:10 + l]; w = int.from_bytes(d[10 + l:12 + l], "big")
sealed = d[12 + l:12 + l + w]; header = d[:12 + l + w]
assert sealed[0] == 1
dk = AESGCM(bytes.fromhex(keyhex)).decrypt(sealed[1:13], sealed[13:], b"\x01" + b"DRRUNBAK\x01" + kid)
e = d[12 + l + w:]; hdr = e[:24]; C = int.from_bytes(hdr[12:16], "big")
body, rec = e[24:], C + 16
n = max(1, -(-len(body) // rec))
plain = b"".join(AESGCM(dk).decrypt(hdr[16:24] + i.to_bytes(4, "big"), body[i * rec:(i + 1) * rec],
                 hdr + i.to_bytes(4, "big") + bytes([i == n - 1]) + header + aad) for i in range(n))
open(out, "wb").write(plain)
print(kid.decode())
]]

step "independent_decoder" {
  after = "refusals",
  run = function(ctx)
    local key = sh('cat "$1"', p("k2026-12.key")):gsub("%s+", "")
    -- a careless log line: the redactor must hide keys drrun.backup has read
    -- (k2026-12 was made by openssl, so only reading it registered it)
    for _, id in ipairs { "k2026-06", "k2026-12", "impostor" } do
      ctx.log("key %s is %s", id, (sh('cat "$1"', p(id .. ".key")):gsub("%s+", "")))
    end
    eq(run { "python3", "-c", DECODER, p("dec.enc"), key, "orders", p("py.out") }, "k2026-12\n", "python reads the id")
    eq(T.sha256sum(p("py.out")), T.sha256sum(p("db.dump")), "python decrypts it")
  end,
}

-- And the other way: Python writes a backup in the format, with the header
-- and the body produced separately (as drrun.backup did before it wrote
-- both in one pass); backup.decrypt must read it in place.
local ENCODER = [[
import os, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
src, keyhex, kid, aad, out, C = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode(), sys.argv[5], 4096
dk, n1 = os.urandom(32), os.urandom(12)
sealed = b"\x01" + n1 + AESGCM(bytes.fromhex(keyhex)).encrypt(n1, dk, b"\x01" + b"DRRUNBAK\x01" + kid)
header = b"DRRUNBAK\x01" + bytes([len(kid)]) + kid + len(sealed).to_bytes(2, "big") + sealed
plain = open(src, "rb").read()
hdr = b"DRRUNENC\x01\x00\x00\x00" + C.to_bytes(4, "big") + os.urandom(8)
chunks = [plain[i:i + C] for i in range(0, len(plain), C)] or [b""]
body = b"".join(AESGCM(dk).encrypt(hdr[16:24] + i.to_bytes(4, "big"), c,
                hdr + i.to_bytes(4, "big") + bytes([i == len(chunks) - 1]) + header + aad)
                for i, c in enumerate(chunks))
open(out, "wb").write(header + hdr + body)
]]

step "independent_encoder" {
  after = "independent_decoder",
  run = function()
    local key = sh('cat "$1"', p("k2026-12.key")):gsub("%s+", "")
    run { "python3", "-c", ENCODER, p("db.dump"), key, "k2026-12", "orders", p("py.enc") }
    local r = assert(backup.decrypt { src = p("py.enc"), dst = p("py.dec"), keys = ring("k2026-12", { "k2026-12" }),
      aad = "orders" })
    eq(r.key_id, "k2026-12", "the id from python's header")
    eq(r.sha256, T.sha256sum(p("db.dump")), "sha256 of what python encrypted")
    eq(T.sha256sum(p("py.dec")), T.sha256sum(p("db.dump")), "backup.decrypt reads python's file")
    fails("auth", backup.decrypt { src = p("py.enc"), dst = p("py.dec2"), keys = ring("k2026-12", { "k2026-12" }),
      aad = "invoices" })
    sh('rm -f "$1" "$2"', p("py.enc"), p("py.dec"))
  end,
}

step "no_key_material_in_the_journal" {
  after = "independent_encoder",
  run = function(ctx)
    local j = T.journal(ctx)
    for _, id in ipairs { "k2026-06", "k2026-12", "impostor" } do
      local hex = sh('cat "$1"', p(id .. ".key")):gsub("%s+", "")
      eq(j:find(hex, 1, true), nil, id .. "'s hex is not in the journal")
      eq(j:find(hex:upper(), 1, true), nil, id .. "'s HEX is not in the journal")
    end
    has(j, "encrypted " .. p("db.dump"), "the journal has the log lines")
    has(j, "key k2026-12 is ***", "the careless line, redacted")
  end,
}
