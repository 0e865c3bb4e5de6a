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
