-- SIGTERM while a step computes in a pcall loop that never yields: the
-- signal is noticed by the CPU hook, the step is cancelled as interrupted,
-- and the completed step's rollback runs.
local exec = require "drrun.exec"

runbook { name = "pcall-sigterm" }

step "a" {
	run = function() return "A" end,
	rollback = function()
		exec.run { "sh", "-c", "echo a >> ledger.txt" }
	end,
}

step "spin" {
	after = "a",
	run = function()
		exec.run { "sh", "-c", "touch ready" }
		while true do
			pcall(function()
				for i = 1, 1e7 do end
			end)
		end
	end,
}
