-- ctx.abort stops the run without failing it: exit 3, status "aborted",
-- later steps never start and nothing is rolled back.
local exec = require "drrun.exec"

runbook { name = "abort" }

step "check-primary" {
	run = function() return "checked" end,
	rollback = function()
		exec.run { "sh", "-c", "echo rolled back > rolled-back.txt" }
	end,
}

step "decide" {
	after = "check-primary",
	run = function(ctx)
		ctx.abort("primary healthy")
		exec.run { "sh", "-c", "echo after abort > after-abort.txt" }
	end,
}

step "failover" {
	after = "decide",
	run = function() return "failed over" end,
}
