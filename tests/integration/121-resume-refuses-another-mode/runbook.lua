-- A real run that stops at an approval gate; resuming it in another mode is
-- refused before anything runs.
local exec = require "drrun.exec"

runbook { name = "mode-resume" }

step "prepare" {
	run = function(ctx)
		exec.run { "sh", "-c", "echo prepared >> ledger.txt" }
	end,
}

step "promote" {
	after = "prepare",
	approve = "Promote the replica?",
	run = function(ctx)
		exec.run { "sh", "-c", "echo promoted >> ledger.txt" }
	end,
}
