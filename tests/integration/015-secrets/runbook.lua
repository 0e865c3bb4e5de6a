-- A declared secret is logged, returned (as a value and as a key), passed to a
-- program that echoes it, and put in an error.  Its value must never appear
-- in stdout, stderr or the journal: "***" appears instead.
local exec = require "drrun.exec"

runbook { name = "secrets", secrets = { "API_TOKEN" } }

step "use-token" {
	run = function(ctx)
		local tok = ctx.secret("API_TOKEN")
		ctx.log("token is %s", tok)
		local r = assert(exec.run { "sh", "-c", 'echo "got $T"; echo "err $T" >&2', env = { T = tok } })
		ctx.log("%s", r.stdout)
		return { token = tok, echoed = r.stdout, errput = r.stderr, [tok] = "as a key" }
	end,
	rollback = function(ctx, out)
		ctx.log("rolling back with %s", out.token)
	end,
}

step "fail-with-token" {
	after = "use-token",
	run = function(ctx)
		error("server rejected token " .. ctx.secret("API_TOKEN"))
	end,
}
