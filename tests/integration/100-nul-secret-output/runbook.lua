-- A command prints its environment NUL-separated, a declared secret after a
-- NUL.  The journal keeps the NULs (\u0000) and still hides the secret; the
-- run reads back as completed.
local exec = require "drrun.exec"

runbook { name = "nul-secret", secrets = { "API_TOKEN" } }

step "dump-env" {
	run = function(ctx)
		local r = drrun.must(exec.run {
			"sh", "-c", [[printf 'env\0API_TOKEN=%s\0HOME=x' "$T"]],
			env = { T = ctx.secret("API_TOKEN") },
		})
		assert(r.stdout:find("\0", 1, true), "stdout holds NULs")
		ctx.log("%s", r.stdout)
		return { stdout = r.stdout }
	end,
}

step "after" {
	after = "dump-env",
	run = function(ctx)
		return { n = #ctx.outputs["dump-env"].stdout }
	end,
}
