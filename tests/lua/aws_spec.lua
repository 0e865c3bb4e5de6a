-- aws_spec.lua: drrun.aws (signing, credentials, errors, retries, dry-run)
-- against the aws fake of tests/fakes, which recomputes every signature with
-- botocore's own signer and refuses what AWS would.  tests/run.sh starts it
-- (tests/servers.sh) and exports DRRUN_TEST_AWS_URL/_KEY/_SECRET; without
-- them the first step fails, and so the spec.  Cases that need another
-- environment (profiles, AWS_* variables, --dry-run) run aws_child.lua in a
-- child drrun.
local aws = require "drrun.aws"
local exec = require "drrun.exec"
local json = require "drrun.json"

runbook { name = "aws-spec" }

local T, F = require "lib.spec", require "lib.saas"
local eq, has, raises, journal = T.eq, T.has, T.raises, T.journal
-- drrun.aws's messages start "aws: "; aws.core's, like every primitive's,
-- with their token (T.fails)
local fails = T.service_fails("aws")
local config, reset, state = F.config, F.reset, F.state

local URL = os.getenv("DRRUN_TEST_AWS_URL")
local CREDS = { access_key = os.getenv("DRRUN_TEST_AWS_KEY"),
	secret_key = os.getenv("DRRUN_TEST_AWS_SECRET") }
local S = {} -- S.tmp: a scratch directory
local O = { endpoint_url = URL, region = "us-east-1", credentials = CREDS }

local function with(t)
	local o = {}
	for k, v in pairs(O) do o[k] = v end
	for k, v in pairs(t or {}) do o[k] = v end
	return o
end

-- Run aws_child.lua in a child drrun with env (and args); its exit status,
-- its "result: {...}" as a table, and its whole output.
local function child(env, params, args)
	local me = assert(exec.run { "bash", "-c", "readlink /proc/$PPID/exe" })
	local drrun = me.stdout:gsub("%s+$", "")
	local argv = { drrun, "run", "--no-color", "--state-dir", S.tmp .. "/child-state" }
	for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
	for k, v in pairs(params) do argv[#argv + 1] = "--param"; argv[#argv + 1] = k .. "=" .. v end
	argv[#argv + 1] = "aws_child.lua"
	local e = { HOME = S.tmp, AWS_EC2_METADATA_DISABLED = "true", AWS_ACCESS_KEY_ID = "",
		AWS_SECRET_ACCESS_KEY = "", AWS_PROFILE = "", AWS_REGION = "us-east-1" }
	for k, v in pairs(env or {}) do e[k] = v end
	argv.env = e
	argv.timeout = "60s"
	local r = assert(exec.run(argv))
	local out = r.stdout .. r.stderr
	local res = out:match("result: (%b{})")
	return r.status, res and json.decode(res) or {}, out
end

local function write(path, text)
	local r = assert(exec.run { "sh", "-c", 'umask 077; cat > "$1"', "write", path, stdin = text })
	eq(r.status, 0, "writing " .. path)
end

step "fakes" {
	doc = "the aws fake of tests/servers.sh is there (a spec without it fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_AWS_URL", "DRRUN_TEST_AWS_KEY", "DRRUN_TEST_AWS_SECRET" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh", 0)
			end
		end
		reset("aws")
		local r = assert(exec.run { "mktemp", "-d" })
		S.tmp = r.stdout:gsub("%s+$", "")
	end,
}

step "signed-call" {
	after = "fakes",
	doc = "a query-protocol call is signed as botocore signs, and its XML answer read",
	run = function()
		local r = assert(aws.call("sts", "GetCallerIdentity", {}, O))
		eq(r.status, 200, "status")
		eq(r.root, "GetCallerIdentityResponse", "root element")
		eq(r.result.Arn, "arn:aws:iam::123456789012:user/drrun-test", "Arn")
		eq(r.result.Account, "123456789012", "Account")
		has(r.request_id, "-", "request id")
		-- the body is form-encoded with Action and Version first in the fake's log
		local calls = state("aws").calls
		eq(calls[#calls].action, "GetCallerIdentity", "the fake saw the call")
	end,
}

step "auth-errors" {
	after = "signed-call",
	doc = "a wrong secret and an unknown key: auth, with AWS's code, message and request id",
	run = function()
		local v, err, tok, code = aws.call("sts", "GetCallerIdentity", {},
			with { credentials = { access_key = CREDS.access_key, secret_key = "wrong-secret" } })
		has(fails("auth", v, err, tok), "aws: SignatureDoesNotMatch: The request signature", "message")
		eq(code, "SignatureDoesNotMatch", "raw code")
		has(err, "(request ", "request id in the message")
		v, err, tok, code = aws.call("sts", "GetCallerIdentity", {},
			with { credentials = { access_key = "AKIDUNKNOWN", secret_key = "x" } })
		fails("auth", v, err, tok)
		eq(code, "InvalidClientTokenId", "unknown key")
	end,
}

step "throttling" {
	after = "auth-errors",
	doc = "throttling is retried (standard mode) and succeeds; past the attempts it is `throttled`",
	run = function()
		config("aws", { throttle = { service = "sts", action = "GetCallerIdentity", count = 2 } })
		local r, err = aws.call("sts", "GetCallerIdentity", {}, O)
		eq(err, nil, "error after two throttles")
		eq(r.status, 200, "third attempt")
		config("aws", { throttle = { service = "sts", action = "GetCallerIdentity", count = 5,
			code = "Throttling" } })
		local v, e2, tok, code = aws.call("sts", "GetCallerIdentity", {}, with { retry = 2 })
		fails("throttled", v, e2, tok)
		eq(code, "Throttling", "code")
		config("aws", { throttle = nil })
		reset("aws")
	end,
}

step "assume-role" {
	after = "throttling",
	doc = "STS AssumeRole through aws.request: temporary keys that the fake then accepts",
	run = function()
		local r = assert(aws.call("sts", "AssumeRole", { RoleArn = "arn:aws:iam::123456789012:role/dr",
			RoleSessionName = "drrun-spec" }, with { safe = true }))
		local c = r.result.Credentials
		has(c.AccessKeyId, "ASIA", "temporary key")
		local who = assert(aws.call("sts", "GetCallerIdentity", {}, with { credentials = {
			access_key = c.AccessKeyId, secret_key = c.SecretAccessKey, token = c.SessionToken } }))
		has(who.result.Arn, ":assumed-role/dr/drrun-spec", "the role's identity")
		-- without the session token the fake refuses, as AWS does
		local v, err, tok = aws.call("sts", "GetCallerIdentity", {}, with { credentials = {
			access_key = c.AccessKeyId, secret_key = c.SecretAccessKey } })
		fails("auth", v, err, tok)
	end,
}

step "misuse" {
	after = "fakes",
	doc = "unknown service, bad region, bad endpoint: errors before anything is sent",
	run = function()
		has(raises(aws.request, with { service = "ec3" }), "aws: unknown service \"ec3\"", "service")
		has(raises(aws.request, with { service = "sts", region = "mars" }), "unknown region \"mars\"", "region")
		has(raises(aws.request, with { service = "sts", endpoint_url = "ftp://x" }), "not an http(s) URL", "endpoint")
		has(raises(aws.call, "s3", "ListBuckets", {}, O), "not a query or ec2 protocol service", "protocol")
	end,
}

step "sign-secrets" {
	doc = "the signing key follows the secret: a change of secret, and back, signs as the vectors say",
	run = function()
		local function sig(secret, extra)
			local t = { method = "GET", path = "/", headers = { Host = "example.amazonaws.com" },
				payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				region = "us-east-1", service = "service", access_key = "AKIDEXAMPLE",
				secret_key = secret, time = 1440938160 }
			for k, v in pairs(extra or {}) do t[k] = v end
			return aws.core.sign(t).signature
		end
		-- aws4_testsuite's get-vanilla
		local VANILLA = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
		local SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
		T.eq(sig(SECRET), VANILLA, "the vector's signature")
		local other = sig("another-secret")
		T.ok(other ~= VANILLA, "another secret, another signature")
		T.eq(sig(SECRET .. ""), VANILLA, "the first secret again")
		local long = string.rep("k", 64) -- past Lua's short, interned strings
		local a = sig(long)
		T.eq(sig(string.rep("k", 63) .. "k"), a, "the same long secret, another string")
		T.ok(sig(string.rep("k", 63) .. "j") ~= a, "a long secret one byte apart")
		T.eq(sig(SECRET, { region = "eu-west-3" }) ~= VANILLA, true, "another region")
		T.eq(sig(SECRET), VANILLA, "and back")
	end,
}

step "not-xml" {
	after = "fakes",
	doc = "an answer that is not XML, or cut short, is `invalid` with its first bytes",
	run = function()
		local v, err, tok = aws.request(with { service = "sts", path = "/index.html",
			endpoint_url = os.getenv("DRRUN_TEST_HTTP") })
		has(fails("invalid", v, err, tok), "with a body that is not XML: \"hello static", "message")
		v, err, tok = aws.call("sts", "GetCallerIdentity", {},
			with { endpoint_url = os.getenv("DRRUN_TEST_HTTP") })
		has(fails("invalid", v, err, tok), "aws: sts answered HTTP 405, not an AWS error: \"<html>", "an HTML error page")
		local x, e2, t2 = aws.core.xml("<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>a")
		has(T.fails("invalid", x, e2, t2), "first bytes: \"<GetCallerIdentityResponse>", "truncated")
		local d, e3, t3 = aws.core.xml('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
		has(T.fails("invalid", d, e3, t3), "DOCTYPE", "entities are refused")
	end,
}

step "xml-shapes" {
	after = "fakes",
	doc = "XML answers read onto AWS's field names; repeated elements are arrays",
	run = function()
		local v = assert(aws.core.xml([[<DescribeInstancesResponse><reservationSet><item>
			<instancesSet><item><instanceId>i-1</instanceId><instanceState><code>16</code>
			<name>running</name></instanceState></item><item><instanceId>i-2</instanceId>
			</item></instancesSet></item></reservationSet></DescribeInstancesResponse>]]))
		eq(v.reservationSet[1].instancesSet[2].instanceId, "i-2", "ec2 item lists")
		eq(v.reservationSet[1].instancesSet[1].instanceState.name, "running", "nested")
		local b = assert(aws.core.xml([[<ListBucketResult><Name>b</Name><Contents><Key>a</Key>
			</Contents></ListBucketResult>]]))
		eq(b.Contents[1].Key, "a", "S3 Contents is a list even when there is one")
		local q = assert(aws.core.xml([[<R><DBInstances><DBInstance><DBInstanceIdentifier>db1
			</DBInstanceIdentifier><TagList><Tag><Key>k</Key></Tag></TagList></DBInstance>
			</DBInstances></R>]]))
		eq(q.DBInstances[1].TagList[1].Key, "k", "member lists by the singular of the parent")
		eq(aws.flatten { ["Filters.Filter"] = { { Name = "n", ["Values.Value"] = { "a", "b" } } } }
			["Filters.Filter.1.Values.Value.2"], "b", "query-protocol flattening")
		eq(#aws.list(""), 0, "an empty list element")
	end,
}

step "profiles" {
	after = "assume-role",
	doc = "the AWS CLI's files: a profile whose role is assumed through STS with an external id",
	run = function()
		write(S.tmp .. "/credentials", "[base]\naws_access_key_id = " .. CREDS.access_key ..
			"\naws_secret_access_key = " .. CREDS.secret_key .. "\n")
		write(S.tmp .. "/config", "[default]\nregion = us-east-1\n\n[profile dr]\n" ..
			"role_arn = arn:aws:iam::123456789012:role/dr-admin\nsource_profile = base\n" ..
			"external_id = ext-1\nrole_session_name = drill\n" ..
			"s3 =\n  addressing_style = path\n")
		local env = { AWS_CONFIG_FILE = S.tmp .. "/config",
			AWS_SHARED_CREDENTIALS_FILE = S.tmp .. "/credentials" }
		local st, res, out = child(env, { mode = "profile", url = URL, profile = "dr" })
		eq(st, 0, "child exit: " .. out)
		has(res.arn, ":assumed-role/dr-admin/drill", "assumed through the profile")
		-- AWS_PROFILE picks the profile when the call names none
		env.AWS_PROFILE = "dr"
		st, res, out = child(env, { mode = "identity", url = URL })
		has(res.arn, ":assumed-role/dr-admin/drill", "AWS_PROFILE: " .. out)
		-- the secrets never reach the journal or the output
		eq(out:find(CREDS.secret_key, 1, true), nil, "secret key in the output")
		local j = assert(exec.run { "sh", "-c", 'cat "$1"/runs/*/journal.jsonl', "j", S.tmp .. "/child-state" })
		eq(j.stdout:find(CREDS.secret_key, 1, true), nil, "secret key in a journal")
		-- a malformed file: an error naming the file and line
		write(S.tmp .. "/config", "[default]\nregion = us-east-1\nthis is not a setting\n")
		st, res, out = child(env, { mode = "identity", url = URL })
		has(res.raised or out, S.tmp .. "/config:3: expected 'key = value'", "file and line")
	end,
}

step "no-credentials" {
	after = "profiles",
	doc = "nothing in the chain: a clear auth failure, and no request made",
	run = function()
		reset("aws")
		local st, res, out = child({ AWS_CONFIG_FILE = S.tmp .. "/none", AWS_SHARED_CREDENTIALS_FILE =
			S.tmp .. "/none" }, { mode = "identity", url = URL })
		eq(st, 0, "child exit: " .. out)
		eq(res.tok, "auth", "token")
		has(res.err, "aws: no credentials: set AWS_ACCESS_KEY_ID", "message")
		eq(#state("aws").calls, 0, "nothing was sent")
	end,
}

step "environment-and-dry-run" {
	after = "no-credentials",
	doc = "AWS_ACCESS_KEY_ID/SECRET from the environment; under --dry-run reads are made, writes described",
	run = function()
		reset("aws")
		local env = { AWS_ACCESS_KEY_ID = CREDS.access_key, AWS_SECRET_ACCESS_KEY = CREDS.secret_key }
		local st, res, out = child(env, { mode = "dry-write", url = URL }, { "--dry-run" })
		eq(st, 0, "child exit: " .. out)
		eq(res.dry_run, true, "the write was not sent")
		eq(res.read_made, true, "the read was made")
		has(out, 'would call rds CreateDBSnapshot {"DBInstanceIdentifier":"db1","DBSnapshotIdentifier":"pre-change"}', "described")
		local calls = state("aws").calls
		eq(#calls, 1, "only the read reached the fake")
		eq(calls[1].action, "GetCallerIdentity", "the read")
	end,
}

step "instance-role" {
	after = "environment-and-dry-run",
	doc = "no keys and no profile: the instance role through IMDSv2 (token PUT, then GETs)",
	run = function()
		reset("aws")
		local env = { AWS_CONFIG_FILE = S.tmp .. "/none", AWS_SHARED_CREDENTIALS_FILE = S.tmp .. "/none",
			AWS_EC2_METADATA_DISABLED = "", AWS_EC2_METADATA_SERVICE_ENDPOINT = URL }
		local st, res, out = child(env, { mode = "imds", url = URL })
		eq(st, 0, "child exit: " .. out)
		has(res.arn, ":assumed-role/drrun-instance-role/", "signed with the instance role's keys")
		eq(#state("aws").imds_tokens, 1, "one IMDSv2 token asked for")
		-- a metadata service that is not there: a clear failure within its 1 s timeouts
		env.AWS_EC2_METADATA_SERVICE_ENDPOINT = "http://127.0.0.1:" .. os.getenv("DRRUN_TEST_CLOSED_PORT")
		st, res, out = child(env, { mode = "imds", url = URL })
		eq(res.tok, "auth", "token: " .. out)
		has(res.err, "no instance metadata service", "says why")
	end,
}
