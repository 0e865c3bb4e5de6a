-- A --dry-run run that stops at an approval gate, then resumed with --yes:
-- the resumed session is dry too, so nothing is written and nothing promoted.
local exec = require "drrun.exec"

runbook { name = "dry-resume" }

step "prepare" {
	run = function(ctx)
		exec.run { "sh", "-c", "echo prepared > prepared.txt" }
		return { dry = ctx.dry_run }
	end,
}

step "promote" {
	after = "prepare",
	approve = "Promote the replica?",
	run = function(ctx)
		exec.run { "sh", "-c", "echo promoted > promoted.txt" }
		return { dry = ctx.dry_run }
	end,
}
