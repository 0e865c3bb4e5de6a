-- aws_s3_spec.lua: S3 against s3rver behind an independent SigV4 check
-- (tests/fakes/s3-signed.js: every signature recomputed with the AWS SDK's
-- own signer, @smithy/signature-v4, the body checked against
-- x-amz-content-sha256).  tests/run.sh starts it (tests/servers.sh) and
-- exports DRRUN_TEST_S3_URL/_KEY/_SECRET; without them the first step fails,
-- and so the spec.  First the real AWS CLI (Debian's /usr/bin/aws) shows the
-- checker lets AWS's own client through and refuses a wrong secret; then
-- drrun.aws.s3 runs against it.
local exec = require "drrun.exec"
local json = require "drrun.json"

runbook { name = "aws-s3-spec" }

local T = require "lib.spec"
local eq, has = T.eq, T.has

local URL = os.getenv("DRRUN_TEST_S3_URL")
local KEY, SECRET = os.getenv("DRRUN_TEST_S3_KEY"), os.getenv("DRRUN_TEST_S3_SECRET")
local S = {} -- S.tmp: a scratch directory

-- The real AWS CLI against the signed s3rver: its exit status, stdout, stderr.
local function cli(args, secret)
	local argv = { "/usr/bin/aws", "--endpoint-url", URL, "--output", "json" }
	for _, a in ipairs(args) do argv[#argv + 1] = a end
	argv.clear_env = true
	argv.env = { PATH = "/usr/bin:/bin", HOME = S.tmp, AWS_ACCESS_KEY_ID = KEY,
		AWS_SECRET_ACCESS_KEY = secret or SECRET, AWS_DEFAULT_REGION = "us-east-1",
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

local function slurp(path)
	local r = assert(exec.run { "cat", path })
	eq(r.status, 0, "reading " .. path)
	return r.stdout
end

step "server" {
	doc = "the signed s3rver of tests/servers.sh is there (a spec without it fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_S3_URL", "DRRUN_TEST_S3_KEY", "DRRUN_TEST_S3_SECRET" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh", 0)
			end
		end
		local r = assert(exec.run { "mktemp", "-d" })
		S.tmp = r.stdout:gsub("%s+$", "")
	end,
}

step "cli-round-trip" {
	after = "server",
	doc = "the real AWS CLI creates a bucket, puts, gets and lists through the signature check",
	run = function()
		local st, out, err = cli { "s3api", "create-bucket", "--bucket", "cli-bucket" }
		eq(st, 0, "create-bucket: " .. err)
		write(S.tmp .. "/up.txt", "runbook-state v1\n")
		st, out, err = cli { "s3api", "put-object", "--bucket", "cli-bucket", "--key",
			"site a/state 1.txt", "--body", S.tmp .. "/up.txt" }
		eq(st, 0, "put-object: " .. err)
		has(json.decode(out).ETag, '"', "put-object's ETag")
		st, out, err = cli { "s3api", "get-object", "--bucket", "cli-bucket", "--key",
			"site a/state 1.txt", S.tmp .. "/down.txt" }
		eq(st, 0, "get-object: " .. err)
		eq(slurp(S.tmp .. "/down.txt"), "runbook-state v1\n", "the object the CLI read back")
		st, out, err = cli { "s3api", "list-objects-v2", "--bucket", "cli-bucket", "--prefix", "site a/" }
		eq(st, 0, "list-objects-v2: " .. err)
		local l = json.decode(out)
		eq(#l.Contents, 1, "objects listed")
		eq(l.Contents[1].Key, "site a/state 1.txt", "Key")
		eq(l.Contents[1].Size, 17, "Size")
	end,
}

step "cli-wrong-secret" {
	after = "cli-round-trip",
	doc = "a wrong secret is refused as AWS refuses it, and stores nothing",
	run = function()
		local st, _, err = cli({ "s3api", "put-object", "--bucket", "cli-bucket", "--key",
			"forged.txt", "--body", S.tmp .. "/up.txt" }, "not-the-secret")
		T.ok(st ~= 0, "a put signed with a wrong secret succeeded")
		has(err, "SignatureDoesNotMatch", "the CLI's error")
		local st2, out, err2 = cli { "s3api", "list-objects-v2", "--bucket", "cli-bucket" }
		eq(st2, 0, "list-objects-v2: " .. err2)
		eq(#json.decode(out).Contents, 1, "objects after the forged put")
	end,
}

-- ---- drrun.aws.s3 against the same server -------------------------------------

local s3 = require "drrun.aws.s3"
local crypto = require "drrun.crypto"
local http = require "drrun.http"
local fails = T.service_fails("aws")
-- an aws failure with token tok whose message contains text
local function has_fail(text, tok, ...)
	local msg = fails(tok, ...)
	if not msg:find(text, 1, true) then error(("%q does not contain %q"):format(msg, text), 2) end
end
local B = "drrun-backups"

local function O(t)
	local o = { endpoint_url = URL, region = "us-east-1",
		credentials = { access_key = KEY, secret_key = SECRET }, bucket = B }
	for k, v in pairs(t or {}) do o[k] = v end
	return o
end

step "s3-put-get" {
	after = "cli-wrong-secret",
	doc = "put from a string and a file, get to a string and a file, checksums as sent",
	run = function()
		local st, _, err = cli { "s3api", "create-bucket", "--bucket", B }
		eq(st, 0, "create-bucket: " .. err)
		local body = "pg_dump archive\0with bytes\255\n"
		local p = assert(s3.put(O { key = "db/2026 11/a.dump", body = body }))
		eq(p.size, #body, "put size")
		eq(p.sha256, crypto.sha256_hex(body), "put sha256")
		eq(#p.etag, 32, "put etag (MD5 hex)")
		local g = assert(s3.get(O { key = "db/2026 11/a.dump" }))
		eq(g.body, body, "the body read back")
		eq(g.sha256, p.sha256, "get sha256")
		eq(g.etag, p.etag, "get etag")
		-- the CLI reads what drrun wrote: the key was encoded once
		st, _, err = cli { "s3api", "get-object", "--bucket", B, "--key", "db/2026 11/a.dump",
			S.tmp .. "/cli.dump" }
		eq(st, 0, "the CLI's get-object: " .. err)
		eq(slurp(S.tmp .. "/cli.dump"), body, "what the CLI read")
		write(S.tmp .. "/manifest.json", '{"rows": 42}\n')
		assert(exec.run { "mkdir", "-p", S.tmp .. "/out" })
		p = assert(s3.put(O { key = "db/manifest.json", file = S.tmp .. "/manifest.json",
			sse = "AES256" }))
		eq(p.size, 13, "file put size")
		g = assert(s3.get(O { key = "db/manifest.json", file = S.tmp .. "/out/m.json",
			sha256 = p.sha256 }))
		eq(g.body, nil, "no body with file =")
		eq(slurp(S.tmp .. "/out/m.json"), '{"rows": 42}\n', "the file written")
		local h = assert(s3.head(O { key = "db/manifest.json" }))
		eq(h.size, 13, "head size")
		eq(h.etag, p.etag, "head etag")
	end,
}

step "s3-checksum-mismatch" {
	after = "s3-put-get",
	doc = "a get whose SHA-256 is not the one expected fails and leaves no file",
	run = function()
		local target = S.tmp .. "/out/bad.json"
		has_fail("is not sha256 =", "invalid", s3.get(O { key = "db/manifest.json", file = target,
			sha256 = string.rep("0", 64) }))
		local r = assert(exec.run { "sh", "-c", 'ls -A "$1"', "ls", S.tmp .. "/out" })
		eq(r.stdout, "m.json\n", "files left in the directory")
	end,
}

step "s3-list-latest" {
	after = "s3-checksum-mismatch",
	doc = "list follows continuation tokens over every page; latest is the newest object, "
		.. "its LastModified the recovery point reported to ctx",
	run = function(ctx)
		for i = 1, 5 do
			assert(s3.put(O { key = ("pages/obj-%d"):format(i), body = ("x"):rep(i) }))
		end
		drrun.sleep(1.1) -- LastModified has whole seconds
		assert(s3.put(O { key = "pages/aaa-newest", body = "new" }))
		local l = assert(s3.list(O { prefix = "pages/", max_keys = 2 }))
		eq(#l, 6, "objects over all pages")
		local seen = {}
		for _, c in ipairs(l) do seen[c.Key] = c end
		eq(seen["pages/obj-3"].Size, 3, "Size is a number")
		T.ok(seen["pages/obj-3"].LastModified and seen["pages/obj-3"].ETag, "LastModified and ETag")
		local n = assert(s3.latest(O { prefix = "pages/" }))
		eq(n.Key, "pages/aaa-newest", "latest")
		has_fail("no object under", "not_found", s3.latest(O { prefix = "nothing/" }))
		local reported = {}
		local rctx = setmetatable({ recovery_point = function(t)
			reported[#reported + 1] = t
			ctx.recovery_point(t)
		end }, { __index = ctx })
		n = assert(s3.latest(O { prefix = "pages/", ctx = rctx }))
		eq(#reported, 1, "reported to ctx")
		eq(reported[1], require("drrun.aws").parse_time(n.LastModified), "its LastModified")
		T.ok(reported[1] > require("drrun.aws").parse_time(seen["pages/obj-1"].LastModified),
			"the newest object's")
		has_fail("no object under", "not_found", s3.latest(O { prefix = "nothing/", ctx = rctx }))
		eq(#reported, 1, "nothing found, nothing reported")
		T.has(T.raises(s3.latest, O { prefix = "pages/", ctx = 1 }), "s3.latest: ctx must be the step's ctx",
			"a ctx that is not one")
	end,
}

step "s3-copy-delete" {
	after = "s3-list-latest",
	doc = "copy, delete, and a missing key or bucket is not_found",
	run = function()
		assert(s3.copy(O { key = "copy/manifest.json", source_key = "db/manifest.json" }))
		eq(assert(s3.get(O { key = "copy/manifest.json" })).body, '{"rows": 42}\n', "the copy")
		eq(s3.delete(O { key = "copy/manifest.json" }), true, "delete")
		has_fail("NoSuchKey", "not_found", s3.get(O { key = "copy/manifest.json" }))
		has_fail("HTTP 404", "not_found", s3.head(O { key = "copy/manifest.json" }))
		has_fail("NoSuchBucket", "not_found", s3.list(O { bucket = "no-such-bucket" }))
	end,
}

step "s3-auth" {
	after = "s3-copy-delete",
	doc = "a wrong secret is refused as auth, and writes nothing",
	run = function()
		has_fail("SignatureDoesNotMatch", "auth", s3.put(O { key = "forged", body = "x",
			credentials = { access_key = KEY, secret_key = "wrong" } }))
		has_fail("InvalidAccessKeyId", "auth", s3.get(O { key = "db/manifest.json",
			credentials = { access_key = "AKIDNOBODY", secret_key = SECRET } }))
		has_fail("NoSuchKey", "not_found", s3.get(O { key = "forged" }))
	end,
}

step "s3-presign" {
	after = "s3-auth",
	doc = "a presigned GET is fetched with drrun.http; a tampered one is refused",
	run = function()
		local url = assert(s3.presign(O { key = "db/2026 11/a.dump", expires = 300 }))
		has(url, "X-Amz-Signature=", "the presigned URL")
		local r = assert(http.request { url = url, safe = true })
		eq(r.status, 200, "presigned GET")
		eq(r.body, "pg_dump archive\0with bytes\255\n", "presigned body")
		r = assert(http.request { url = url:gsub("a%.dump", "b.dump"), safe = true })
		eq(r.status, 403, "a presigned URL for another key")
		has(r.body, "SignatureDoesNotMatch", "its error")
	end,
}

step "s3-dry-run" {
	after = "s3-presign",
	doc = "under --dry-run reads are made and writes only described; a get writes no file",
	run = function()
		local me = assert(exec.run { "bash", "-c", "readlink /proc/$PPID/exe" })
		write(S.tmp .. "/dry.lua", [[
local s3 = require "drrun.aws.s3"
runbook { name = "s3-dry" }
step "go" { run = function()
  local o = { endpoint_url = os.getenv("DRRUN_TEST_S3_URL"), region = "us-east-1", bucket = "drrun-backups" }
  local function with(t) for k, v in pairs(o) do t[k] = v end return t end
  local p = assert(s3.put(with { key = "dry/new", body = "x" }))
  assert(p.dry_run and p.size == 1, "put under dry-run")
  assert(s3.delete(with { key = "db/manifest.json" }))
  local g = assert(s3.get(with { key = "db/manifest.json", file = os.getenv("OUT") }))
  assert(g.dry_run and g.size == 13, "get under dry-run")
  assert(#assert(s3.list(with { prefix = "db/" })) == 2, "list under dry-run")
end }
]])
		local r = assert(exec.run { (me.stdout:gsub("%s+$", "")), "run", "--dry-run", "--no-color",
			"--state-dir", S.tmp .. "/dry-state", S.tmp .. "/dry.lua", timeout = "60s",
			env = { AWS_ACCESS_KEY_ID = KEY, AWS_SECRET_ACCESS_KEY = SECRET,
				OUT = S.tmp .. "/out/dry.json" } })
		eq(r.status, 0, "the dry run: " .. r.stdout .. r.stderr)
		has(r.stdout .. r.stderr, "would call s3 PutObject", "the dry run's log")
		has(r.stdout .. r.stderr, "would call s3 DeleteObject", "the dry run's log")
		local ls = assert(exec.run { "sh", "-c", 'ls -A "$1"', "ls", S.tmp .. "/out" })
		eq(ls.stdout, "m.json\n", "files after the dry run")
		assert(s3.head(O { key = "db/manifest.json" }), "the object a dry delete kept")
		has_fail("NoSuchKey", "not_found", s3.get(O { key = "dry/new" }))
	end,
}


step "s3-addressing" {
	after = "s3-dry-run",
	doc = "virtual-hosted addressing (bucket.host/key) reaches the objects path style sees, signed",
	run = function()
		local port = URL:match(":(%d+)$")
		local V = { endpoint_url = "http://s3.localhost:" .. port, addressing_style = "virtual" }
		eq(s3.address(O(V), B, "a b/c").url, "http://" .. B .. ".s3.localhost:" .. port, "virtual URL")
		eq(s3.address(O(V), B, "a b/c").path, "/a%20b/c", "virtual path")
		local p = assert(s3.put(O { key = "vhost/a b.txt", body = "virtual", endpoint_url = V.endpoint_url,
			addressing_style = "virtual" }))
		eq(p.size, 7, "put size")
		-- what went in by host name comes out by path, and the other way round
		eq(assert(s3.get(O { key = "vhost/a b.txt" })).body, "virtual", "read path style")
		eq(assert(s3.get(O { key = "db/manifest.json", endpoint_url = V.endpoint_url,
			addressing_style = "virtual" })).body, '{"rows": 42}\n', "read virtual-hosted")
		local l = assert(s3.list(O { prefix = "vhost/", endpoint_url = V.endpoint_url,
			addressing_style = "virtual" }))
		eq(#l, 1, "listed virtual-hosted")
		eq(l[1].Key, "vhost/a b.txt", "the key listed")
		local url = assert(s3.presign(O { key = "vhost/a b.txt", endpoint_url = V.endpoint_url,
			addressing_style = "virtual" }))
		has(url, "http://" .. B .. ".s3.localhost:", "the presigned URL's host")
		local r = assert(http.request { url = url, safe = true })
		eq(r.status, 200, "presigned virtual-hosted GET")
		eq(r.body, "virtual", "its body")
		has_fail("SignatureDoesNotMatch", "auth", s3.get(O { key = "vhost/a b.txt",
			endpoint_url = V.endpoint_url, addressing_style = "virtual",
			credentials = { access_key = KEY, secret_key = "wrong" } }))
		assert(s3.delete(O { key = "vhost/a b.txt", endpoint_url = V.endpoint_url,
			addressing_style = "virtual" }))
		has_fail("NoSuchKey", "not_found", s3.get(O { key = "vhost/a b.txt" }))
		-- auto: virtual on AWS's own endpoint when the name can be a host name, else path
		local A = { region = "eu-west-1", credentials = O().credentials }
		eq(s3.address(A, "db-backups", "k").url, "https://db-backups.s3.eu-west-1.amazonaws.com", "auto on AWS")
		eq(s3.address(A, "db.backups", "k").url, "https://s3.eu-west-1.amazonaws.com", "a dotted name over TLS")
		eq(s3.address(A, "db.backups", "k").path, "/db.backups/k", "its path")
		eq(s3.address(O(), B, "k").path, "/" .. B .. "/k", "auto on another endpoint: path")
		A.addressing_style = "path"
		eq(s3.address(A, "db-backups", "k").url, "https://s3.eu-west-1.amazonaws.com", "path forced")
		T.raises_with("cannot be a host name", s3.get, O { key = "k", bucket = "Bad_Name",
			addressing_style = "virtual" })
		T.raises_with('use "auto", "virtual" or "path"', s3.get, O { key = "k", addressing_style = "vhost" })
	end,
}
