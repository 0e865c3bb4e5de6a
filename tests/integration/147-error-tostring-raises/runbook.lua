-- The error object of step b cannot be turned into text: its __tostring
-- raises.  drrun describes it instead, and rolls back step a.
local exec = require "drrun.exec"

runbook { name = "error-tostring-raises" }

step "a" {
	run = function() return "A" end,
	rollback = function()
		exec.run { "sh", "-c", "echo 'undo a' >> ledger.txt" }
	end,
}

step "b" {
	after = "a",
	run = function()
		error(setmetatable({}, { __tostring = function() error("no text for you") end }))
	end,
}
