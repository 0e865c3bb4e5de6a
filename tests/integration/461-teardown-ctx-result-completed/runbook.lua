-- A drill that completes: its teardown step reads ctx.result "completed".
local exec = require "drrun.exec"
runbook { name = "result-completed" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "restore" { run = function(ctx) note("restore: " .. ctx.result) end }

step "drop" {
	phase = "teardown",
	run = function(ctx)
		note("teardown: " .. ctx.result)
		if ctx.result ~= "completed" then error("recovery " .. ctx.result) end
	end,
}
