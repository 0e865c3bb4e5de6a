-- aws_s3_stream_spec.lua: S3 bodies streamed from and to files, and
-- multipart uploads, against s3rver behind the independent SigV4 check
-- (tests/fakes/s3-signed.js, as in aws_s3_spec.lua).  A file far larger than
-- any of drrun's buffers goes up and down while drrun's peak RSS stays
-- small; the real AWS CLI reads back what drrun wrote, and lists the
-- uploads left open (none, after a failure or a cancel).
--
-- Under ASan, freed blocks wait in its quarantine (256 MiB by default) and
-- count in the peak RSS this spec bounds; a small one keeps the bound about
-- drrun (tests/run.sh reads this line):
-- asan-options: quarantine_size_mb=16
local exec = require "drrun.exec"
local json = require "drrun.json"
local s3 = require "drrun.aws.s3"

runbook { name = "aws-s3-stream-spec" }

local T = require "lib.spec"
local eq, has = T.eq, T.has

local URL = os.getenv("DRRUN_TEST_S3_URL")
local KEY, SECRET = os.getenv("DRRUN_TEST_S3_KEY"), os.getenv("DRRUN_TEST_S3_SECRET")
local S = {}
local B = "drrun-streams"

local function cli(args)
	local argv = { "/usr/bin/aws", "--endpoint-url", args.endpoint or URL, "--output", "json" }
	for _, a in ipairs(args) do argv[#argv + 1] = a end
	argv.clear_env = true
	argv.env = { PATH = "/usr/bin:/bin", HOME = S.tmp, AWS_ACCESS_KEY_ID = KEY,
		AWS_SECRET_ACCESS_KEY = SECRET, AWS_DEFAULT_REGION = "us-east-1",
		AWS_CONFIG_FILE = S.tmp .. "/no-config", AWS_SHARED_CREDENTIALS_FILE = S.tmp .. "/no-creds",
		AWS_PAGER = "", AWS_EC2_METADATA_DISABLED = "true" }
	argv.timeout = "60s"
	local r = assert(exec.run(argv))
	return r.status, r.stdout, r.stderr
end

local function write(path, text)
	local r = assert(exec.run { "sh", "-c", 'umask 077; cat > "$1"', "write", path, stdin = text })
	eq(r.status, 0, "writing " .. path)
end

local fails = T.service_fails("aws")
local function has_fail(text, tok, ...)
	local msg = fails(tok, ...)
	if not msg:find(text, 1, true) then error(("%q does not contain %q"):format(msg, text), 2) end
end

local function O(t)
	local o = { endpoint_url = URL, region = "us-east-1",
		credentials = { access_key = KEY, secret_key = SECRET }, bucket = B }
	for k, v in pairs(t or {}) do o[k] = v end
	return o
end

step "server" {
	doc = "the signed s3rver of tests/servers.sh is there (a spec without it fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_S3_URL", "DRRUN_TEST_S3_KEY", "DRRUN_TEST_S3_SECRET" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh", 0)
			end
		end
		S.tmp = assert(exec.run { "mktemp", "-d" }).stdout:gsub("%s+$", "")
		assert(exec.run { "mkdir", "-p", S.tmp .. "/out" })
		local st, _, err = cli { "s3api", "create-bucket", "--bucket", B }
		eq(st, 0, "create-bucket: " .. err)
	end,
}

local BIG = 96 * 1024 * 1024 -- far larger than any buffer of drrun's (256 KiB chunks)
-- KiB: half the file.  drrun's peak RSS may grow by less than this over what
-- it was before any transfer (under ASan the start is higher, and up to
-- 16 MiB of freed buffers wait in its quarantine): holding the file would
-- pass it
local PEAK = 48 * 1024
local function sha256sum(path)
	local r = assert(exec.run { "sha256sum", path, timeout = "60s" })
	eq(r.status, 0, "sha256sum " .. path)
	return r.stdout:match("^(%x+)")
end
-- the peak resident set of this drrun process so far, in KiB (exec's parent)
local function peak_kib()
	local r = assert(exec.run { "sh", "-c", "grep VmHWM /proc/$PPID/status" })
	return tonumber(r.stdout:match("(%d+)"))
end
local function uploads()
	local st, out, err = cli { "s3api", "list-multipart-uploads", "--bucket", B }
	eq(st, 0, "list-multipart-uploads: " .. err)
	return out == "" and {} or (json.decode(out).Uploads or {})
end

step "s3-stream-big" {
	after = "server", timeout = "5m",
	doc = "a 96 MiB file goes up in one streamed PUT and comes down to a file, never in memory",
	run = function()
		local f = S.tmp .. "/big.bin"
		local r = assert(exec.run { "sh", "-c", 'head -c "$2" /dev/urandom > "$1"', "mk", f,
			tostring(BIG), timeout = "60s" })
		eq(r.status, 0, "making the big file")
		S.big, S.big_sha = f, sha256sum(f)
		local before = peak_kib()
		S.base = before
		local p = assert(s3.put(O { key = "big/one.bin", file = f, multipart_threshold = BIG }))
		eq(p.size, BIG, "put size")
		eq(p.sha256, S.big_sha, "put sha256 (what was sent)")
		eq(p.parts, nil, "one PUT, not multipart")
		local g = assert(s3.get(O { key = "big/one.bin", file = S.tmp .. "/big.down",
			sha256 = S.big_sha }))
		eq(g.size, BIG, "get size")
		eq(g.sha256, S.big_sha, "get sha256")
		eq(sha256sum(S.tmp .. "/big.down"), S.big_sha, "the file written")
		local peak = peak_kib()
		T.ok(peak - before < PEAK, ("drrun's peak RSS is %d KiB (it was %d before the transfers)")
			:format(peak, before))
		-- what the AWS CLI reads back is what was sent
		local st, _, err = cli { "s3api", "get-object", "--bucket", B, "--key", "big/one.bin",
			S.tmp .. "/big.cli" }
		eq(st, 0, "the CLI's get-object: " .. err)
		eq(sha256sum(S.tmp .. "/big.cli"), S.big_sha, "what the CLI read")
		assert(exec.run { "rm", "-f", S.tmp .. "/big.cli", S.tmp .. "/big.down" })
		-- a wrong expected checksum leaves no file, not even a temporary one
		has_fail("is not sha256 =", "invalid", s3.get(O { key = "big/one.bin",
			file = S.tmp .. "/out/big.bad", sha256 = string.rep("a", 64) }))
		local ls = assert(exec.run { "sh", "-c", 'ls -A "$1"', "ls", S.tmp .. "/out" })
		eq(ls.stdout, "", "files after the failed get")
		has_fail("cannot open", "not_found", s3.put(O { key = "big/none", file = S.tmp .. "/nope" }))
	end,
}

step "s3-small-files" {
	-- last: the steps before measure drrun's peak RSS, and this one's
	-- bodies in memory would count in it
	after = "s3-multipart-cancel", timeout = "2m",
	doc = "a file of at most 256 KiB is read with its hash in one job and sent from memory; a larger one streams",
	run = function()
		local http = require "drrun.http"
		local SMALL = s3.SMALL_FILE
		eq(SMALL, 256 * 1024, "the small-file limit")
		for _, n in ipairs { 0, 1, SMALL, SMALL + 1 } do
			local f = ("%s/small-%d.bin"):format(S.tmp, n)
			local r = assert(exec.run { "sh", "-c", 'head -c "$2" /dev/urandom > "$1"', "mk", f,
				tostring(n) })
			eq(r.status, 0, "making " .. f)
			local want = sha256sum(f)
			local h = assert(http.file_sha256(f, 0, nil, { small = SMALL }))
			eq(h.size, n, "file_sha256 size of " .. n)
			if n <= SMALL then
				eq(h.sha256, want, "file_sha256 of " .. n)
				eq(#h.body, n, "file_sha256 body of " .. n)
			else
				eq(h.sha256, nil, "a file over small is not hashed")
				eq(h.body, nil, "nor read")
			end
			local key = ("small/%d.bin"):format(n)
			local p = assert(s3.put(O { key = key, file = f }))
			eq(p.size, n, "put size of " .. n)
			eq(p.sha256, want, "put sha256 of " .. n)
			local st, _, err = cli { "s3api", "get-object", "--bucket", B, "--key", key,
				f .. ".cli" }
			eq(st, 0, "the CLI's get-object: " .. err)
			eq(sha256sum(f .. ".cli"), want, "what the CLI read of " .. n)
		end
		-- a range: its bytes only; a range past the end fails before any read
		local f = ("%s/small-%d.bin"):format(S.tmp, SMALL)
		local whole = assert(http.file_sha256(f, 0, nil, { small = SMALL })).body
		local h = assert(http.file_sha256(f, 10, 100, { small = 100 }))
		eq(h.body, whole:sub(11, 110), "a range's bytes")
		local function plain_fail(text, tok, ...)
			local msg = T.fails(tok, ...)
			if not msg:find(text, 1, true) then error(("%q does not contain %q"):format(msg, text), 2) end
		end
		plain_fail("has no bytes", "invalid", http.file_sha256(f, 10, SMALL, { small = SMALL }))
		plain_fail("not a regular file", "invalid", http.file_sha256(S.tmp, 0, nil, { small = 1 }))
		T.raises_with("small must be", http.file_sha256, f, 0, nil, { small = SMALL + 1 })
	end,
}

step "s3-multipart" {
	after = "s3-stream-big", timeout = "5m",
	doc = "a file over the threshold goes up in parts, in parallel; the CLI reads it back whole",
	run = function()
		local p = assert(s3.put(O { key = "big/parts.bin", file = S.big, part_size = 16 * 1024 * 1024,
			parallel = 3 }))
		eq(p.parts, 6, "parts of 16 MiB")
		eq(p.size, BIG, "size")
		eq(p.sha256, S.big_sha, "the whole file's sha256")
		local peak = peak_kib()
		T.ok(peak - S.base < PEAK, ("drrun's peak RSS is %d KiB (it was %d before the transfers)")
			:format(peak, S.base))
		local st, _, err = cli { "s3api", "get-object", "--bucket", B, "--key", "big/parts.bin",
			S.tmp .. "/parts.cli" }
		eq(st, 0, "get-object: " .. err)
		eq(sha256sum(S.tmp .. "/parts.cli"), S.big_sha, "what the CLI read")
		assert(exec.run { "rm", "-f", S.tmp .. "/parts.cli" })
		eq(#uploads(), 0, "uploads left open")
		T.raises_with("part_size must be", s3.put, O { key = "k", file = S.big, part_size = 1024 })
	end,
}

step "s3-multipart-abort" {
	after = "s3-multipart", timeout = "5m",
	doc = "a part that keeps failing aborts the upload: no object, no upload left open",
	run = function()
		-- the fake answers 500 to part 3 of this key, every time (retried, then given up)
		has_fail("InternalError", "unavailable", s3.put(O { key = "big/fail-part-3.bin", file = S.big,
			part_size = 16 * 1024 * 1024, retry = 2 }))
		eq(#uploads(), 0, "uploads left open after the failure")
		has_fail("HTTP 404", "not_found", s3.head(O { key = "big/fail-part-3.bin" }))
		-- the fake's AbortMultipartUpload is the real CLI's too
		local st, out, err = cli { "s3api", "create-multipart-upload", "--bucket", B, "--key", "cli/m" }
		eq(st, 0, "create-multipart-upload: " .. err)
		local id = json.decode(out).UploadId
		st, out, err = cli { "s3api", "abort-multipart-upload", "--bucket", B, "--key", "cli/m",
			"--upload-id", id }
		eq(st, 0, "abort-multipart-upload: " .. err)
		eq(#uploads(), 0, "uploads after the CLI's abort")
	end,
}

step "s3-multipart-cancel" {
	after = "s3-multipart-abort", timeout = "5m",
	doc = "a step cancelled by its timeout mid-upload aborts the upload on its way out",
	run = function()
		local me = assert(exec.run { "bash", "-c", "readlink /proc/$PPID/exe" })
		write(S.tmp .. "/cancel.lua", [[
local s3 = require "drrun.aws.s3"
runbook { name = "s3-cancel" }
step "go" { timeout = "500ms", run = function()
  s3.put { endpoint_url = os.getenv("DRRUN_TEST_S3_URL"), region = "us-east-1",
    bucket = "drrun-streams", key = "big/cancelled.bin", file = os.getenv("BIG"),
    part_size = 5 * 1024 * 1024, parallel = 1 }
end }
step "after" { after = "go", run = function() end }
]])
		local r = assert(exec.run { (me.stdout:gsub("%s+$", "")), "run", "--no-color",
			"--state-dir", S.tmp .. "/cancel-state", S.tmp .. "/cancel.lua", timeout = "60s",
			env = { AWS_ACCESS_KEY_ID = KEY, AWS_SECRET_ACCESS_KEY = SECRET, BIG = S.big } })
		eq(r.status, 1, "the cancelled run: " .. r.stdout .. r.stderr)
		has(r.stdout .. r.stderr, "timeout", "the step's error")
		eq(#uploads(), 0, "uploads left open after the cancel")
		has_fail("HTTP 404", "not_found", s3.head(O { key = "big/cancelled.bin" }))
	end,
}

step "s3-unsigned-tls" {
	after = "s3-small-files", timeout = "2m",
	doc = "unsigned_payload = true sends UNSIGNED-PAYLOAD over TLS only; the CA bundle comes from AWS_CA_BUNDLE or the profile",
	run = function()
		local http = require "drrun.http"
		local HTTPS, CA = os.getenv("DRRUN_TEST_S3_HTTPS_URL"), os.getenv("DRRUN_TEST_CA")
		if not HTTPS or not CA then
			error("DRRUN_TEST_S3_HTTPS_URL and DRRUN_TEST_CA are not set: run the specs with tests/run.sh", 0)
		end
		local function stats()
			local r = assert(http.request { url = HTTPS .. "/_fake/stats", tls = { ca = CA },
				timeout = "10s" })
			eq(r.status, 200, "the fake's stats")
			return json.decode(r.body)
		end
		-- over SMALL_FILE, so the file streams rather than going up from memory
		local f = S.tmp .. "/unsigned.bin"
		local r = assert(exec.run { "sh", "-c", 'head -c 3000000 /dev/urandom > "$1"', "mk", f })
		eq(r.status, 0, "making " .. f)
		local want = sha256sum(f)
		local TLS = { ca = CA }

		local s0 = stats()
		local p = assert(s3.put(O { endpoint_url = HTTPS, tls = TLS, key = "tls/unsigned.bin",
			file = f, unsigned_payload = true }))
		eq(p.size, 3000000, "put size")
		eq(p.sha256, want, "put sha256 (hashed as it was sent)")
		local s1 = stats()
		eq(s1.unsigned_payload.tls, s0.unsigned_payload.tls + 1, "one UNSIGNED-PAYLOAD over TLS")
		eq(s1.requests.tls, s0.requests.tls + 1, "one request over TLS")
		local g = assert(s3.get(O { endpoint_url = HTTPS, tls = TLS, key = "tls/unsigned.bin",
			file = S.tmp .. "/unsigned.down", sha256 = want }))
		eq(g.sha256, want, "what came back over TLS")

		-- without unsigned_payload, over TLS too, the body is hashed and signed
		assert(s3.put(O { endpoint_url = HTTPS, tls = TLS, key = "tls/signed.bin", file = f }))
		-- and over plain HTTP unsigned_payload is ignored: hashed and signed
		local q = assert(s3.put(O { key = "tls/plain.bin", file = f, unsigned_payload = true }))
		eq(q.sha256, want, "put over HTTP")
		-- a multipart upload signs every part with its SHA-256, whatever is asked
		local big = assert(s3.put(O { endpoint_url = HTTPS, tls = TLS, key = "tls/parts.bin",
			file = f, unsigned_payload = true, part_size = 5 * 1024 * 1024, multipart_threshold = 1 }))
		eq(big.parts, 1, "one part")
		eq(big.sha256, want, "the multipart upload's sha256")
		local s2 = stats()
		eq(s2.unsigned_payload.tls, s1.unsigned_payload.tls, "no more UNSIGNED-PAYLOAD over TLS")
		eq(s2.unsigned_payload.plain, s1.unsigned_payload.plain, "none over HTTP")

		-- the real AWS CLI signs UNSIGNED-PAYLOAD over TLS: the fake checks its signature
		local st, _, err = cli { endpoint = HTTPS, "--ca-bundle", CA, "s3api", "put-object",
			"--bucket", B, "--key", "tls/cli.bin", "--body", f }
		eq(st, 0, "the CLI's put-object over TLS: " .. err)
		eq(stats().unsigned_payload.tls, s2.unsigned_payload.tls + 1, "the CLI's UNSIGNED-PAYLOAD")
		local c = assert(s3.get(O { endpoint_url = HTTPS, tls = TLS, key = "tls/cli.bin" }))
		eq(c.sha256, want, "what the CLI sent")

		-- no CA: the test CA is unknown to curl's defaults
		has_fail("tls", "tls", s3.head(O { endpoint_url = HTTPS, key = "tls/cli.bin", retry = 1 }))
		-- the CA bundle as the AWS CLI finds it: AWS_CA_BUNDLE, or the profile's ca_bundle
		local me = assert(exec.run { "bash", "-c", "readlink /proc/$PPID/exe" }).stdout:gsub("%s+$", "")
		write(S.tmp .. "/ca.lua", [[
local s3 = require "drrun.aws.s3"
runbook { name = "s3-ca-bundle" }
step "head" { run = function()
  local h = assert(s3.head { endpoint_url = os.getenv("S3_HTTPS"), region = "us-east-1",
    bucket = "drrun-streams", key = "tls/cli.bin" })
  assert(h.size == 3000000, "size")
end }
]])
		write(S.tmp .. "/ca-config", "[default]\nca_bundle = " .. CA .. "\n")
		local base_env = { AWS_ACCESS_KEY_ID = KEY, AWS_SECRET_ACCESS_KEY = SECRET, S3_HTTPS = HTTPS,
			HOME = S.tmp, AWS_SHARED_CREDENTIALS_FILE = S.tmp .. "/no-creds" }
		local function child(extra)
			local e = { PATH = "/usr/bin:/bin" }
			for k, v in pairs(base_env) do e[k] = v end
			for k, v in pairs(extra) do e[k] = v end
			return assert(exec.run { me, "run", "--no-color", "--state-dir", S.tmp .. "/ca-state",
				S.tmp .. "/ca.lua", timeout = "60s", clear_env = true, env = e })
		end
		local a = child { AWS_CA_BUNDLE = CA, AWS_CONFIG_FILE = S.tmp .. "/no-config" }
		eq(a.status, 0, "with AWS_CA_BUNDLE: " .. a.stdout .. a.stderr)
		local b = child { AWS_CONFIG_FILE = S.tmp .. "/ca-config" }
		eq(b.status, 0, "with the profile's ca_bundle: " .. b.stdout .. b.stderr)
		local n = child { AWS_CONFIG_FILE = S.tmp .. "/no-config" }
		eq(n.status, 1, "with neither: " .. n.stdout .. n.stderr)
		has(n.stdout .. n.stderr, "tls", "the error without a CA bundle")
	end,
}

step "scratch" {
	phase = "teardown",
	doc = "the scratch folder (the 96 MiB file and its copies) goes, whatever happened",
	run = function()
		if S.tmp and S.tmp:match("^/tmp/tmp%.[%w]+$") then
			assert(exec.run { "rm", "-rf", S.tmp, timeout = "60s" })
		end
	end,
}
