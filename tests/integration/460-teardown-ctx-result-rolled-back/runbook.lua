-- ctx.result: "running" in run, rollback and when of ordinary steps; in a
-- teardown step, what the run came to: here rolled-back, after b failed and
-- a rolled back.
local exec = require "drrun.exec"
runbook { name = "result-rolled-back" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "a" {
	when = function(ctx) return ctx.result == "running" end,
	run = function(ctx) note("a: " .. ctx.result) end,
	rollback = function(ctx) note("undo a: " .. ctx.result) end,
}

step "b" { after = "a", run = function(ctx) note("b: " .. ctx.result) error("b broke") end }

step "notify" {
	phase = "teardown",
	when = function(ctx) return ctx.result ~= "running" end,
	run = function(ctx) note("teardown: " .. ctx.result) end,
}
