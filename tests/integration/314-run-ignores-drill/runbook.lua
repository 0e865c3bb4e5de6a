-- A real run ignores drill variants (production steps run their run) and
-- still runs its teardown steps last; ctx.tags say it is no drill.
local exec = require "drrun.exec"
runbook { name = "run-not-drill" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "cleanup" { phase = "teardown", run = function() note("teardown") end }

step "promote" {
	production = true,
	run = function(ctx) note("promote drill=" .. tostring(ctx.drill) .. " tag=" .. ctx.tags["drrun-drill"]) end,
	drill = function() note("DRILL VARIANT") end,
}

step "page" { after = "promote", drill = "skip", run = function() note("page") end }
