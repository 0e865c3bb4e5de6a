-- aws_child.lua: the runbook aws_spec.lua runs as a child drrun, with the
-- environment (AWS_PROFILE, AWS_CONFIG_FILE, ...) that case needs; not a
-- spec itself.  The result is printed as one "result: <json>" line.
local aws = require "drrun.aws"
local json = require "drrun.json"

runbook {
	name = "aws-child",
	params = { mode = { required = true }, url = { required = true }, profile = { default = "" } },
}

step "call" {
	run = function(ctx)
		local out = {}
		local mode, url = ctx.params.mode, ctx.params.url
		local function try(f)
			local ok, r, err, tok, code = pcall(f)
			if not ok then return { raised = tostring(r) } end
			if not r then return { err = err, tok = tok, code = code } end
			return r
		end
		if mode == "identity" or mode == "profile" or mode == "imds" then
			local r = try(function()
				return aws.call("sts", "GetCallerIdentity", {}, { endpoint_url = url,
					profile = mode == "profile" and ctx.params.profile or nil, region = "us-east-1" })
			end)
			out = { arn = r.result and r.result.Arn, err = r.err, tok = r.tok, raised = r.raised }
		elseif mode == "dry-write" then
			local r = aws.call("rds", "CreateDBSnapshot", { DBInstanceIdentifier = "db1",
				DBSnapshotIdentifier = "pre-change" }, { endpoint_url = url })
			local id = aws.call("sts", "GetCallerIdentity", {}, { endpoint_url = url })
			out = { dry_run = r.dry_run, read_made = id and id.result and id.result.Arn ~= nil }
		end
		ctx.log("result: %s", json.encode(out))
	end,
}
