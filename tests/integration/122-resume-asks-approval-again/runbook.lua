-- promote is approved (--yes) and then drrun dies while it runs.  Resumed
-- without --yes and without a terminal, its gate is asked again: the run
-- stops with exit 3 instead of promoting a second time unasked.
local exec = require "drrun.exec"

runbook { name = "gate-again" }

step "check" {
	run = function() end,
}

step "promote" {
	after = "check",
	approve = "Promote the replica?",
	run = function(ctx)
		exec.run { "sh", "-c", "echo promote >> ledger.txt" }
		-- the first time only: SIGKILL drrun itself (the shell's parent)
		exec.run { "sh", "-c", "test -e killed || { touch killed; kill -9 $PPID; sleep 5; }" }
	end,
}

step "dns" {
	after = "promote",
	run = function()
		exec.run { "sh", "-c", "echo dns >> ledger.txt" }
	end,
}
