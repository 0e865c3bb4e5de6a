-- crypto_spec: drrun.crypto against known answers (NIST, RFC 4231, RFC 4648,
-- RFC 7914), round trips, tampering, and the thread-pool operations'
-- behaviour on the loop (it keeps ticking) and under a step timeout.
--
--   drrun run tests/lua/crypto_spec.lua --state-dir DIR   -> exit 0
--
-- Needs sh, coreutils, python3 and its `cryptography` package (which
-- independently decodes both formats; make deps installs it).  Scratch files go to a mktemp -d
-- directory that the last step removes.
local crypto = require "drrun.crypto"
local exec = require "drrun.exec"

runbook { name = "crypto-spec", description = "drrun.crypto known answers and formats" }

-- ---- helpers ------------------------------------------------------------------

local T = require "lib.spec"
local eq, fails_as, raises_with, run, sh, exists, sha256sum = T.eq, T.fails_as, T.raises_with,
	T.run, T.sh, T.exists, T.sha256sum

local function py(code, ...)
	return run { "python3", "-c", code, ... }
end

local function hex(s) return crypto.hex(s) end
local function unhex(s) return assert(crypto.unhex(s)) end

local dir -- scratch directory, made by "setup"
local function path(name) return dir .. "/" .. name end
local function size(p) return tonumber(sh('stat -c %s "$1"', p)) end
-- temporary files left next to destinations in dir
local function leftovers() return tonumber(sh('ls -A "$1" | grep -c "drrun-tmp" || true', dir)) end

-- ---- outside a step ----------------------------------------------------------

-- the quick functions work anywhere; the thread-pool ones only in a step
eq(crypto.sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
	"top-level sha256")
-- (either "can only be called inside a step's run ..." or, when the engine
-- sees a task slot, "cannot be called here": both name the function)
raises_with("crypto.derive_key can", crypto.derive_key, "pw", "salt", 1)
raises_with("crypto.encrypt_file can", crypto.encrypt_file, string.rep("k", 32), "a", "b")
raises_with("crypto.decrypt_file can", crypto.decrypt_file, string.rep("k", 32), "a", "b")

-- ---- hashes and MACs ------------------------------------------------------------

step "sha256" {
	run = function()
		-- FIPS 180-2 examples
		eq(crypto.sha256_hex("abc"),
			"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc")
		eq(crypto.sha256_hex(""),
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty")
		eq(crypto.sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
			"248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "448 bits")
		eq(crypto.sha256_hex(string.rep("a", 1000000)),
			"cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "million a")
		local raw = crypto.sha256("abc")
		eq(#raw, 32, "raw length")
		eq(hex(raw), crypto.sha256_hex("abc"), "raw = hex")
		raises_with("bad argument", crypto.sha256, {})
	end,
}

step "hmac-sha256" {
	run = function()
		-- RFC 4231 test cases 1, 2, 3, 4, 6, 7
		local cases = {
			{ string.rep("\x0b", 20), "Hi There",
				"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
			{ "Jefe", "what do ya want for nothing?",
				"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
			{ string.rep("\xaa", 20), string.rep("\xdd", 50),
				"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
			{ unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), string.rep("\xcd", 50),
				"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
			{ string.rep("\xaa", 131), "Test Using Larger Than Block-Size Key - Hash Key First",
				"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
			{ string.rep("\xaa", 131), "This is a test using a larger than block-size key and a "
				.. "larger than block-size data. The key needs to be hashed before being used by "
				.. "the HMAC algorithm.",
				"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
		}
		for i, c in ipairs(cases) do
			eq(crypto.hmac_sha256_hex(c[1], c[2]), c[3], "RFC 4231 case " .. i)
			eq(hex(crypto.hmac_sha256(c[1], c[2])), c[3], "raw RFC 4231 case " .. i)
		end
		-- empty key and message (checked against Python's hmac)
		eq(crypto.hmac_sha256_hex("", ""),
			"b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", "empty")
	end,
}

step "equal" {
	run = function()
		eq(crypto.equal("abc", "abc"), true, "same")
		eq(crypto.equal("abc", "abd"), false, "last byte differs")
		eq(crypto.equal("xbc", "abc"), false, "first byte differs")
		eq(crypto.equal("abc", "abcd"), false, "prefix")
		eq(crypto.equal("abcd", "abc"), false, "longer")
		eq(crypto.equal("", ""), true, "empty")
		eq(crypto.equal("", "a"), false, "empty vs one")
		eq(crypto.equal("a\0b", "a\0b"), true, "embedded NUL")
		eq(crypto.equal("a\0b", "a\0c"), false, "after NUL")
		local k = crypto.key()
		eq(crypto.equal(k, k:sub(1)), true, "key copy")
		raises_with("bad argument", crypto.equal, "a")
	end,
}

step "random" {
	run = function()
		eq(#crypto.random(0), 0, "zero bytes")
		eq(#crypto.random(16), 16, "16 bytes")
		eq(#crypto.random(1048576), 1048576, "1 MiB")
		local a, b = crypto.random(32), crypto.random(32)
		assert(a ~= b, "two random strings are equal")
		eq(#crypto.key(), 32, "key length")
		assert(crypto.key() ~= crypto.key(), "two keys are equal")
		-- not all zero, and every byte value shows up in 64 KiB
		local seen, r = {}, crypto.random(65536)
		for i = 1, #r do seen[r:byte(i)] = true end
		local n = 0
		for _ in pairs(seen) do n = n + 1 end
		eq(n, 256, "distinct byte values")
		raises_with("between 0 and 1048576", crypto.random, -1)
		raises_with("between 0 and 1048576", crypto.random, 1048577)
		raises_with("bad argument", crypto.random, "many")
	end,
}

-- ---- encodings ---------------------------------------------------------------------

step "hex" {
	run = function()
		local all = {}
		for i = 0, 255 do all[#all + 1] = string.char(i) end
		all = table.concat(all)
		local h = crypto.hex(all)
		eq(#h, 512, "hex length")
		eq(h:sub(1, 8), "00010203", "hex start")
		eq(h:sub(-4), "feff", "hex end (lowercase)")
		eq(crypto.unhex(h), all, "round trip")
		eq(crypto.unhex(h:upper()), all, "uppercase accepted")
		eq(crypto.hex(""), "", "empty")
		eq(crypto.unhex(""), "", "empty back")
		fails_as("odd length", "invalid", crypto.unhex("abc"))
		local err = fails_as("bad digit", "invalid", crypto.unhex("00zz"))
		assert(err:find("offset 2", 1, true), err)
		fails_as("space", "invalid", crypto.unhex("00 1"))
		fails_as("0x prefix", "invalid", crypto.unhex("0x00"))
		for n = 0, 40 do
			local s = crypto.random(n)
			eq(crypto.unhex(crypto.hex(s)), s, "random round trip " .. n)
		end
	end,
}

step "base64" {
	run = function()
		-- RFC 4648 section 10
		local v = { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==",
			fooba = "Zm9vYmE=", foobar = "Zm9vYmFy" }
		for plain, enc in pairs(v) do
			eq(crypto.base64(plain), enc, "base64 " .. plain)
			eq(crypto.unbase64(enc), plain, "unbase64 " .. enc)
			eq(crypto.unbase64((enc:gsub("=", ""))), plain, "unpadded " .. enc)
		end
		-- the two alphabets differ in 62 and 63
		eq(crypto.base64("\xfb\xff"), "+/8=", "standard alphabet")
		eq(crypto.base64("\xfb\xff", { url = true }), "-_8", "url-safe, unpadded")
		eq(crypto.base64("\xfb\xff", { url = true, pad = true }), "-_8=", "url-safe, padded")
		eq(crypto.base64("f", { pad = false }), "Zg", "standard, unpadded")
		eq(crypto.unbase64("-_8", { url = true }), "\xfb\xff", "url-safe back")
		eq(crypto.unbase64("-_8=", { url = true }), "\xfb\xff", "url-safe padded back")
		fails_as("url char in standard", "invalid", crypto.unbase64("-_8="))
		fails_as("standard char in url", "invalid", crypto.unbase64("+/8=", { url = true }))
		fails_as("one char left", "invalid", crypto.unbase64("Zm9vY"))
		fails_as("bad padding", "invalid", crypto.unbase64("Zg="))
		fails_as("too much padding", "invalid", crypto.unbase64("Zm8=="))
		fails_as("three pads", "invalid", crypto.unbase64("Z==="))
		fails_as("padding in the middle", "invalid", crypto.unbase64("Zg==Zg=="))
		fails_as("non-zero trailing bits", "invalid", crypto.unbase64("Zh=="))
		fails_as("whitespace", "invalid", crypto.unbase64("Zm9v\nYmFy"))
		fails_as("bad char", "invalid", crypto.unbase64("Zm9v!mFy"))
		raises_with("url must be a boolean", crypto.base64, "x", { url = "yes" })
		raises_with("bad argument", crypto.base64, "x", 5)
		for n = 0, 64 do
			local s = crypto.random(n)
			eq(crypto.unbase64(crypto.base64(s)), s, "round trip " .. n)
			local u = crypto.base64(s, { url = true })
			assert(not u:find("[+/=]"), "url-safe output has + / or =")
			eq(crypto.unbase64(u, { url = true }), s, "url round trip " .. n)
		end
	end,
}

-- ---- AES-256-GCM on strings ------------------------------------------------------

step "encrypt-strings" {
	run = function()
		local key = crypto.key()
		for _, n in ipairs { 0, 1, 15, 16, 17, 1000, 100000 } do
			local pt = crypto.random(n)
			local blob = crypto.encrypt(key, pt)
			eq(#blob, n + 29, "blob length for " .. n)
			eq(blob:byte(1), 1, "version byte")
			eq(crypto.decrypt(key, blob), pt, "round trip " .. n)
		end
		local blob = crypto.encrypt(key, "attack at dawn")
		assert(crypto.encrypt(key, "attack at dawn") ~= blob, "nonce reused")
		-- wrong key
		local err = fails_as("wrong key", "auth", crypto.decrypt(crypto.key(), blob))
		eq(err, "auth: authentication failed", "message")
		-- a flipped bit anywhere after the version byte: nonce, ciphertext, tag
		for _, pos in ipairs { 2, 13, 14, 20, #blob - 16, #blob } do
			for _, bit in ipairs { 1, 128 } do
				local b = blob:byte(pos) ~ bit
				local t = blob:sub(1, pos - 1) .. string.char(b) .. blob:sub(pos + 1)
				fails_as("bit flipped at " .. pos, "auth", crypto.decrypt(key, t))
			end
		end
		fails_as("unknown version", "format", crypto.decrypt(key, "\2" .. blob:sub(2)))
		-- truncated and extended
		fails_as("one byte short", "auth", crypto.decrypt(key, blob:sub(1, -2)))
		fails_as("tag only", "auth", crypto.decrypt(key, blob:sub(1, 29)))
		fails_as("shorter than the overhead", "auth", crypto.decrypt(key, blob:sub(1, 28)))
		fails_as("empty", "auth", crypto.decrypt(key, ""))
		fails_as("one byte more", "auth", crypto.decrypt(key, blob .. "x"))
		-- additional authenticated data
		local ab = crypto.encrypt(key, "payload", { aad = "run-42" })
		eq(crypto.decrypt(key, ab, { aad = "run-42" }), "payload", "aad round trip")
		fails_as("aad missing", "auth", crypto.decrypt(key, ab))
		fails_as("aad differs", "auth", crypto.decrypt(key, ab, { aad = "run-43" }))
		fails_as("aad added", "auth", crypto.decrypt(key, blob, { aad = "x" }))
		eq(crypto.decrypt(key, blob, { aad = "" }), "attack at dawn", "empty aad = none")
		-- misuse raises
		raises_with("key must be 32 bytes, got 31", crypto.encrypt, key:sub(2), "x")
		raises_with("key must be 32 bytes, got 33", crypto.decrypt, key .. "x", blob)
		raises_with("bad argument #1", crypto.encrypt, nil, "x")
		raises_with("aad must be a string", crypto.encrypt, key, "x", { aad = 5 })
		raises_with("bad argument #3", crypto.encrypt, key, "x", "aad")
	end,
}

-- ---- derive_key ----------------------------------------------------------------------

step "derive-key" {
	run = function()
		-- RFC 7914 section 11, the first 32 of 64 bytes
		eq(hex(crypto.derive_key("passwd", "salt", 1)),
			"55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc", "c=1")
		eq(hex(crypto.derive_key("Password", "NaCl", 80000)),
			"4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56", "c=80000")
		-- the default iteration count (600000) against Python's hashlib
		local k = crypto.derive_key("correct horse battery staple", "drrun-salt")
		eq(#k, 32, "length")
		eq(hex(k), py("import hashlib; print(hashlib.pbkdf2_hmac('sha256', "
			.. "b'correct horse battery staple', b'drrun-salt', 600000).hex())"):match("%x+"),
			"default iterations")
		eq(hex(crypto.derive_key("", "", 2)), py("import hashlib; print(hashlib.pbkdf2_hmac("
			.. "'sha256', b'', b'', 2).hex())"):match("%x+"), "empty passphrase and salt")
		raises_with("iterations must be at least 1", crypto.derive_key, "pw", "salt", 0)
		-- inside a step but where the coroutine cannot yield
		raises_with("crypto.derive_key cannot be called here", table.sort, { 1, 2 }, function()
			crypto.derive_key("pw", "salt", 1)
		end)
		raises_with("bad argument #2", crypto.derive_key, "pw")
	end,
}

-- The loop keeps running while a slow derivation occupies a pool thread.
step "derive-off-loop" {
	after = "derive-key",
	run = function()
		-- about 0.4 s of work whatever the build (sanitizers slow it down)
		local c0 = drrun.now()
		crypto.derive_key("pw", "salt", 50000)
		local iterations = math.floor(50000 * 0.4 / math.max(drrun.now() - c0, 0.001))
		iterations = math.max(200000, math.min(iterations, 20000000))
		local t0, t1, done = nil, nil, false
		local ticks = {}
		drrun.parallel({ "derive", "tick" }, function(what)
			if what == "derive" then
				t0 = drrun.now()
				crypto.derive_key("pw", "salt", iterations)
				t1 = drrun.now()
				done = true
			else
				while not done do
					drrun.sleep("10ms")
					ticks[#ticks + 1] = drrun.now()
				end
			end
		end)
		local during = 0
		for _, t in ipairs(ticks) do
			if t > t0 and t < t1 then during = during + 1 end
		end
		local expect = math.floor((t1 - t0) / 0.010 * 0.5)
		assert(t1 - t0 > 0.1, "derive too fast to tell: " .. (t1 - t0))
		assert(during >= expect and during >= 5, string.format(
			"only %d ticks during a %.3fs derive (want >= %d)", during, t1 - t0, expect))
		return { derive_seconds = t1 - t0, iterations = iterations, ticks = during }
	end,
}

-- ---- files ------------------------------------------------------------------------------

step "setup" {
	after = "derive-off-loop",
	run = function()
		dir = sh("mktemp -d"):match("[^\n]+")
		sh('head -c 20000000 /dev/urandom > "$1"', path("big"))
		return dir
	end,
	-- a failed spec does not leave 20 MB files behind
	rollback = function()
		if dir and dir:match("/tmp%.%w+$") then
			run { "rm", "-rf", dir }
		end
	end,
}

local CHUNK, HDR, TAG = 1048576, 24, 16
local key = crypto.key()

-- decrypt src must fail with token and leave neither dst nor temp files
local function decrypt_fails(token, what, src, opts, k)
	local dst = path("out")
	fails_as(what, token, crypto.decrypt_file(k or key, src, dst, opts))
	assert(not exists(dst), what .. ": destination exists after a failed decrypt")
	eq(leftovers(), 0, what .. ": temporary files left")
end

step "file-round-trip" {
	after = "setup",
	run = function()
		local big = path("big")
		local want = sha256sum(big)
		-- encrypt while another task ticks: the loop stays responsive
		local done, ticks, r = false, 0, nil
		drrun.parallel({ 1, 2 }, function(i)
			if i == 1 then
				r = assert(crypto.encrypt_file(key, big, path("big.enc")))
				done = true
			else
				while not done do drrun.sleep("5ms"); ticks = ticks + 1 end
			end
		end)
		eq(r.bytes, 20000000, "encrypt bytes")
		eq(r.sha256, want, "encrypt sha256 = sha256sum")
		assert(ticks >= 1, "no tick during the encryption")
		local nchunks = math.ceil(20000000 / CHUNK)
		eq(size(path("big.enc")), HDR + 20000000 + nchunks * TAG, "encrypted size")
		eq(sh('stat -c %a "$1"', path("big.enc")), "600\n", "encrypted file mode")
		eq(sh('head -c 8 "$1"', path("big.enc")), "DRRUNENC", "magic")
		local d = assert(crypto.decrypt_file(key, path("big.enc"), path("big.dec")))
		eq(d.bytes, 20000000, "decrypt bytes")
		eq(d.sha256, want, "decrypt sha256")
		eq(sha256sum(path("big.dec")), want, "sha256sum of the decrypted file")
		eq(sh('stat -c %a "$1"', path("big.dec")), "600\n", "decrypted file mode")
		run { "cmp", big, path("big.dec") }
		-- a second encryption of the same file differs (fresh nonce prefix)
		assert(crypto.encrypt_file(key, big, path("big.enc2"), { chunk = CHUNK }))
		assert(sha256sum(path("big.enc2")) ~= sha256sum(path("big.enc")), "same ciphertext twice")
		-- an existing destination is replaced
		assert(crypto.decrypt_file(key, path("big.enc2"), path("big.dec")))
		eq(sha256sum(path("big.dec")), want, "overwritten destination")
		eq(leftovers(), 0, "temporary files left")
		run { "rm", path("big.dec"), path("big.enc2") }
	end,
}

-- Damage the 20 MB file's ciphertext in every way a backup can be damaged.
step "file-tamper" {
	after = "file-round-trip",
	run = function()
		local enc, t = path("big.enc"), path("t.enc")
		local rec = CHUNK + TAG
		local total = size(enc)
		local function copy() run { "cp", enc, t } end
		-- bytes [off, off + n) of file f, to stdout
		local PIECE = 'piece() { dd if="$1" bs=65536 iflag=skip_bytes,count_bytes skip="$2" '
			.. 'count="$3" status=none; }; '
		local function byte_at(f, off)
			return tonumber(run { "od", "-An", "-tu1", "-j", tostring(off), "-N1", f })
		end
		local function flip(off) -- xor one byte with 1
			local b = byte_at(t, off)
			run { "dd", "of=" .. t, "bs=1", "seek=" .. off, "conv=notrunc", "status=none",
				stdin = string.char(b ~ 1) }
			eq(byte_at(t, off), b ~ 1, "flipped byte")
			eq(size(t), total, "size after a flip")
		end
		-- SHA-256 of bytes [off, off + n) of f
		local function piece_sum(f, off, n)
			return sh(PIECE .. 'piece "$1" "$2" "$3" | sha256sum', f, tostring(off), tostring(n))
		end
		local function cut(a, b) -- remove bytes [a, b)
			sh(PIECE .. '{ head -c "$2" "$1"; tail -c +"$(($3 + 1))" "$1"; } > "$1.new" && mv "$1.new" "$1"',
				t, tostring(a), tostring(b))
		end
		local function swap(i, j) -- swap whole records i < j
			local a, b = HDR + i * rec, HDR + j * rec
			sh(PIECE .. '{ head -c "$2" "$1"; piece "$1" "$3" "$4"; piece "$1" "$(($2 + $4))" "$(($3 - $2 - $4))"; '
				.. 'piece "$1" "$2" "$4"; tail -c +"$(($3 + $4 + 1))" "$1"; } > "$1.new" && mv "$1.new" "$1"',
				t, tostring(a), tostring(b), tostring(rec))
		end
		local function append(a, b) -- append a copy of bytes [a, b)
			sh(PIECE .. 'piece "$1" "$2" "$3" > "$1.tail" && cat "$1.tail" >> "$1" && rm "$1.tail"',
				t, tostring(a), tostring(b - a))
		end

		copy(); flip(total // 2)
		decrypt_fails("auth", "byte flipped in the middle", t)
		copy(); flip(total - 1)
		decrypt_fails("auth", "last tag byte flipped", t)
		copy(); flip(HDR + 3)
		decrypt_fails("auth", "first chunk flipped", t)
		copy(); flip(20)
		decrypt_fails("auth", "nonce prefix in the header flipped", t)
		copy(); flip(13)
		decrypt_fails("auth", "chunk size in the header changed", t)
		copy(); flip(0)
		decrypt_fails("format", "magic changed", t)
		copy(); run { "truncate", "-s", "-1", t }
		decrypt_fails("auth", "one byte truncated", t)
		copy(); run { "truncate", "-s", tostring(HDR + 10 * rec), t }
		decrypt_fails("auth", "truncated at a chunk boundary", t)
		copy(); run { "truncate", "-s", tostring(HDR + 10 * rec + 5), t }
		decrypt_fails("auth", "truncated inside a chunk", t)
		copy(); run { "truncate", "-s", tostring(HDR), t }
		decrypt_fails("auth", "header only", t)
		copy(); run { "truncate", "-s", "10", t }
		decrypt_fails("format", "shorter than a header", t)
		copy(); cut(HDR + 5 * rec, HDR + 6 * rec)
		eq(size(t), total - rec, "size after a cut")
		eq(piece_sum(t, HDR + 5 * rec, rec), piece_sum(enc, HDR + 6 * rec, rec), "record after the cut")
		decrypt_fails("auth", "a middle chunk removed", t)
		copy(); cut(HDR, HDR + rec)
		decrypt_fails("auth", "the first chunk removed", t)
		copy(); swap(2, 3)
		eq(piece_sum(t, HDR + 2 * rec, rec), piece_sum(enc, HDR + 3 * rec, rec), "swapped record")
		eq(piece_sum(t, HDR + 3 * rec, rec), piece_sum(enc, HDR + 2 * rec, rec), "swapped record")
		eq(size(t), total, "size after a swap")
		decrypt_fails("auth", "chunks 2 and 3 swapped", t)
		copy(); swap(0, 7)
		decrypt_fails("auth", "chunks 0 and 7 swapped", t)
		copy(); append(HDR + 18 * rec, total)
		eq(size(t), total + total - (HDR + 18 * rec), "size after an append")
		decrypt_fails("auth", "the last chunk appended again", t)
		copy(); append(HDR, HDR + rec)
		decrypt_fails("auth", "the first chunk appended", t)
		copy(); append(0, 1)
		decrypt_fails("auth", "one byte appended", t)
		-- another file's chunk spliced in: same key, different nonce prefix
		assert(crypto.encrypt_file(key, path("big"), path("other.enc")))
		copy()
		sh(PIECE .. 'piece "$2" "$3" "$4" | dd of="$1" bs=65536 oflag=seek_bytes seek="$3" conv=notrunc status=none',
			t, path("other.enc"), tostring(HDR + 4 * rec), tostring(rec))
		decrypt_fails("auth", "a chunk from another file", t)
		run { "rm", path("other.enc") }
		decrypt_fails("auth", "wrong key", enc, nil, crypto.key())
		-- the untouched file still decrypts
		local d = assert(crypto.decrypt_file(key, enc, path("out")))
		eq(d.sha256, sha256sum(path("big")), "intact file")
		run { "rm", t, path("out") }
	end,
}

step "file-edges" {
	after = "file-tamper",
	run = function()
		local function round(n, chunk, aad)
			local p = path("e" .. n)
			sh('head -c "$1" /dev/urandom > "$2"', tostring(n), p)
			local want = sha256sum(p)
			local e = assert(crypto.encrypt_file(key, p, p .. ".enc", { chunk = chunk, aad = aad }))
			eq(e.bytes, n, "bytes for " .. n)
			eq(e.sha256, want, "sha256 for " .. n)
			local chunks = math.max(1, math.ceil(n / chunk))
			eq(size(p .. ".enc"), HDR + n + chunks * TAG, "encrypted size for " .. n)
			local d = assert(crypto.decrypt_file(key, p .. ".enc", p .. ".dec", { aad = aad }))
			eq(d.sha256, want, "round trip " .. n)
			return p
		end
		round(0, 1024)
		round(1, 1024)
		round(1023, 1024)
		round(1024, 1024)
		round(1025, 1024)
		local p = round(4096, 1024, "backup-7")
		-- an exact multiple of the chunk size: dropping the last record
		-- leaves a full chunk that was not sealed as the last one
		sh('head -c "$1" "$2" > "$3"', tostring(HDR + 3 * (1024 + TAG)), p .. ".enc", path("cut.enc"))
		decrypt_fails("auth", "exact multiple, last chunk removed", path("cut.enc"), { aad = "backup-7" })
		-- aad is bound to every chunk
		decrypt_fails("auth", "aad missing", p .. ".enc")
		decrypt_fails("auth", "aad differs", p .. ".enc", { aad = "backup-8" })
		-- an empty file is one empty, final chunk
		sh('head -c "$1" "$2" > "$3"', tostring(HDR), path("e0.enc"), path("cut.enc"))
		decrypt_fails("auth", "empty file without its chunk", path("cut.enc"))
		-- operational failures
		fails_as("missing source", "io", crypto.encrypt_file(key, path("nope"), path("x")))
		fails_as("missing destination dir", "io",
			crypto.encrypt_file(key, path("e1"), path("no/such/dir")))
		fails_as("source is a directory", "io", crypto.encrypt_file(key, dir, path("x")))
		sh('mkfifo "$1"', path("fifo"))
		local err = fails_as("source is a FIFO", "io", crypto.encrypt_file(key, path("fifo"), path("x")))
		assert(err:find("not a regular file", 1, true), err)
		decrypt_fails("format", "not an encrypted file", path("e1024"))
		decrypt_fails("io", "missing encrypted file", path("nope"))
		assert(not exists(path("x")), "destination created on failure")
		eq(leftovers(), 0, "temporary files left")
		-- misuse raises
		raises_with("key must be 32 bytes", crypto.encrypt_file, "short", path("e1"), path("x"))
		raises_with("chunk must be between", crypto.encrypt_file, key, path("e1"), path("x"),
			{ chunk = 1000 })
		raises_with("chunk must be between", crypto.encrypt_file, key, path("e1"), path("x"),
			{ chunk = 64 * 1048576 + 1 })
		raises_with("bad argument #3", crypto.decrypt_file, key, path("e1"))
		sh('rm -f "$1"/e*', dir)
	end,
}

-- Decode both formats with an independent implementation (Python's
-- `cryptography`, which make deps installs; without it the step fails): the
-- documented formats are the real ones.
local PY_DECODE = [[
import sys, hashlib
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = bytes.fromhex(sys.argv[1])
g = AESGCM(key)
blob = bytes.fromhex(sys.argv[2])
assert blob[0] == 1
print(g.decrypt(blob[1:13], blob[13:], b'\x01' + b'blob-aad').decode())
d = open(sys.argv[3], 'rb').read()
hdr = d[:24]
assert hdr[:8] == b'DRRUNENC' and hdr[8] == 1 and hdr[9:12] == b'\0\0\0'
chunk = int.from_bytes(hdr[12:16], 'big')
rec = chunk + 16
body = d[24:]
n = max(1, -(-len(body) // rec))
h = hashlib.sha256()
for i in range(n):
    r = body[i * rec:(i + 1) * rec]
    last = 1 if i == n - 1 else 0
    aad = hdr + i.to_bytes(4, 'big') + bytes([last]) + b'file-aad'
    h.update(g.decrypt(hdr[16:24] + i.to_bytes(4, 'big'), r, aad))
print(h.hexdigest())
]]

step "file-prefix-offset" {
	-- after timeout: both count the temporary files of the one directory
	after = { "file-edges", "timeout" },
	doc = "encrypt_file's prefix and hash_output, decrypt_file's offset: a caller's header in one pass",
	run = function()
		local src = path("pre")
		sh('head -c 4096 /dev/urandom > "$1"', src)
		local want = sha256sum(src)
		local prefix = "HEADER\0\1\2" .. ("p"):rep(300)
		local enc = path("pre.enc")
		local e = assert(crypto.encrypt_file(key, src, enc, { prefix = prefix, hash_output = true,
			chunk = 1024, aad = prefix }))
		eq(e.sha256, want, "sha256 of the plaintext")
		eq(e.output_sha256, sha256sum(enc), "output_sha256: the SHA-256 of all of dst")
		eq(size(enc), #prefix + HDR + 4096 + 4 * TAG, "the prefix, then the encrypted file")
		eq(sh('head -c "$1" "$2"', tostring(#prefix), enc), prefix, "the prefix as given")
		eq(sh('tail -c +"$1" "$2" | head -c 8', tostring(#prefix + 1), enc), "DRRUNENC", "then the magic")
		eq(sh('stat -c %a "$1"', enc), "600\n", "mode")
		-- the body read in place, and the same body split off, decrypt alike
		local d = assert(crypto.decrypt_file(key, enc, path("pre.dec"), { offset = #prefix, aad = prefix }))
		eq(d.sha256, want, "decrypted at the offset")
		run { "cmp", src, path("pre.dec") }
		sh('tail -c +"$1" "$2" > "$3"', tostring(#prefix + 1), enc, path("pre.body"))
		eq(assert(crypto.decrypt_file(key, path("pre.body"), path("pre.dec2"), { aad = prefix })).sha256,
			want, "the body alone")
		-- the prefix is not covered unless the caller puts it in the aad
		decrypt_fails("format", "no offset", enc, { aad = prefix })
		local err = fails_as("wrong offset", "format", crypto.decrypt_file(key, enc, path("out"),
			{ offset = #prefix - 1, aad = prefix }))
		assert(err:find("no drrun encrypted file at offset " .. (#prefix - 1), 1, true), err)
		decrypt_fails("format", "offset past the end", enc, { offset = 1e6, aad = prefix })
		decrypt_fails("auth", "aad differs", enc, { offset = #prefix, aad = "other" })
		-- without hash_output there is no output_sha256; an empty prefix is no prefix
		local plain = assert(crypto.encrypt_file(key, src, path("nopre.enc"), { prefix = "" }))
		eq(plain.output_sha256, nil, "no output_sha256 unless asked")
		eq(size(path("nopre.enc")), HDR + 4096 + TAG, "empty prefix (one chunk of 1 MiB)")
		-- an option of the other direction, or of the wrong type, raises
		raises_with("offset is an option of decrypt_file only", crypto.encrypt_file, key, src,
			path("x"), { offset = 3 })
		raises_with("prefix is an option of encrypt_file only", crypto.decrypt_file, key, enc,
			path("x"), { prefix = "x" })
		raises_with("hash_output is an option of encrypt_file only", crypto.decrypt_file, key, enc,
			path("x"), { hash_output = true })
		raises_with("offset must be a byte count", crypto.decrypt_file, key, enc, path("x"), { offset = -1 })
		raises_with("prefix must be a string", crypto.encrypt_file, key, src, path("x"), { prefix = 5 })
		assert(not exists(path("x")), "nothing written on misuse")
		eq(leftovers(), 0, "temporary files left")
		run { "rm", "-f", src, enc, path("pre.dec"), path("pre.body"), path("pre.dec2"), path("nopre.enc") }
	end,
}

step "format-cross-check" {
	after = "file-edges",
	run = function(ctx)
		local probe = assert(exec.run { "python3", "-c", "import cryptography" })
		if probe.status ~= 0 then
			error("python3's cryptography package is missing (make deps installs "
				.. "python3-cryptography): the independent format check cannot run: "
				.. (probe.stderr:match("([^\n]+)\n*$") or probe.stderr), 0)
		end
		local p = path("x")
		sh('head -c 70000 /dev/urandom > "$1"', p)
		assert(crypto.encrypt_file(key, p, p .. ".enc", { chunk = 4096, aad = "file-aad" }))
		local blob = crypto.encrypt(key, "hello from drrun", { aad = "blob-aad" })
		local out = py(PY_DECODE, hex(key), hex(blob), p .. ".enc")
		eq(out, "hello from drrun\n" .. sha256sum(p) .. "\n", "python decode")
		run { "rm", p, p .. ".enc" }
		return "ok"
	end,
}

-- Steps that time out while their encryption, derivations (running or still
-- queued behind busy pool threads) are on the thread pool: a nested drrun (this same binary) runs it.  The run
-- fails with the timeout, stops promptly (the workers notice the
-- cancellation) and leaves no temporary files.
local TIMEOUT_RUNBOOK = [[
local crypto = require "drrun.crypto"
local key = crypto.unhex(%q)
local src, dst = %q, %q
runbook { name = "crypto-timeout" }
step "encrypt-big" {
	timeout = "200ms",
	run = function()
		local r, err = crypto.encrypt_file(key, src, dst)
		error("encrypt_file returned: " .. tostring(err))
	end,
}
step "derive-long" {
	timeout = "200ms",
	run = function()
		crypto.derive_key("pw", "salt", 2147483647)
		error("derive_key returned")
	end,
}
step "queued" {
	timeout = "300ms",
	run = function()
		drrun.parallel({ 1, 2, 3, 4, 5, 6 }, function(i)
			crypto.derive_key("pw", "salt" .. i, 2147483647)
		end)
	end,
}
]]

-- Run source as a runbook with this same drrun binary (release or
-- sanitizer build); returns exec.run's result and the run's journal.
local function nested(name, source, ...)
	local self = sh("readlink /proc/$PPID/exe"):match("[^\n]+")
	local rb, state = path(name .. ".lua"), path(name .. ".state")
	run { "sh", "-c", 'cat > "$1"', "sh", rb, stdin = source }
	local r = assert(exec.run { self, "run", rb, "--state-dir", state, timeout = "60s", ... })
	assert(not r.stderr:find("Sanitizer", 1, true) and not r.stderr:find("runtime error", 1, true),
		"sanitizer report in the nested run:\n" .. r.stderr)
	return r, sh('cat "$1"/runs/*/journal.jsonl', state)
end

step "timeout" {
	after = "format-cross-check",
	run = function()
		-- 4 GiB, sparse: minutes of work if the cancellation were ignored
		sh('truncate -s 4G "$1"', path("huge"))
		local r, j = nested("timeout",
			string.format(TIMEOUT_RUNBOOK, hex(key), path("huge"), path("huge.enc")))
		eq(r.status, 1, "nested run's exit status\n" .. r.stdout .. r.stderr)
		assert(r.duration < 5, "the cancelled run took " .. r.duration .. "s")
		for _, s in ipairs { "encrypt-big", "derive-long" } do
			assert(j:find('"step":"' .. s:gsub("%-", "%%-") .. '","status":"failed","attempts":1,'
				.. '"duration":[%d.e%-]+,"error":"timeout: step exceeded 200ms"'),
				s .. " did not time out:\n" .. j)
		end
		assert(j:find('"step":"queued","status":"failed"[^\n]*timeout: step exceeded 300ms'),
			"queued did not time out:\n" .. j)
		eq(leftovers(), 0, "temporary files left by cancelled jobs")
		eq(sh('ls "$1" | grep -c "huge.enc" || true', dir), "0\n", "destination written")
		return { seconds = r.duration }
	end,
}

-- --dry-run: the file operations write nothing and say what they would do.
local DRY_RUNBOOK = [[
local crypto = require "drrun.crypto"
local key = crypto.unhex(%q)
local src, dst = %q, %q
runbook { name = "crypto-dry-run" }
step "files" {
	run = function()
		local e = assert(crypto.encrypt_file(key, src, dst))
		assert(e.dry_run == true and e.bytes == 0 and e.sha256 == "", "encrypt_file ran")
		local d = assert(crypto.decrypt_file(key, dst, dst .. ".dec"))
		assert(d.dry_run == true, "decrypt_file ran")
		assert(crypto.decrypt(key, crypto.encrypt(key, "x")) == "x")
		return "ok"
	end,
}
]]

step "dry-run" {
	after = { "timeout", "file-prefix-offset" },
	run = function()
		local r, j = nested("dry", string.format(DRY_RUNBOOK, hex(key), path("big"), path("dry.enc")),
			"--dry-run")
		eq(r.status, 0, "nested dry run's exit status\n" .. r.stdout .. r.stderr)
		assert(j:find("would encrypt '" .. path("big") .. "' to '" .. path("dry.enc") .. "'", 1, true),
			"no 'would encrypt' in the journal:\n" .. j)
		assert(j:find("would decrypt", 1, true), "no 'would decrypt' in the journal:\n" .. j)
		assert(not exists(path("dry.enc")), "dry run wrote the destination")
		eq(leftovers(), 0, "temporary files left")
	end,
}

step "cleanup" {
	after = "dry-run",
	run = function()
		assert(dir and dir:match("/tmp%.%w+$"), "unexpected scratch dir " .. tostring(dir))
		run { "rm", "-rf", dir }
	end,
}
