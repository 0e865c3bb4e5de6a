-- SIGINT while a step computes inside a sort comparator (a C boundary,
-- where the coroutine cannot yield): the step still stops as interrupted.
local exec = require "drrun.exec"

runbook { name = "pcall-sigint-c-boundary" }

step "spin" {
	run = function()
		exec.run { "sh", "-c", "touch ready" }
		table.sort({ 3, 2, 1 }, function()
			while true do
				pcall(function()
					for i = 1, 1e7 do end
				end)
			end
		end)
	end,
}
