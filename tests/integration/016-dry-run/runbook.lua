-- --dry-run: exec.run does not run anything; the journal says what it would run.
local exec = require "drrun.exec"

runbook { name = "dry-run" }

step "write" {
	run = function(ctx)
		exec.run { "sh", "-c", "echo ran > side-effect.txt" }
		return ctx.dry_run
	end,
}
