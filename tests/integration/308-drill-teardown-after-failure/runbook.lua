-- verify fails: the completed steps roll back, newest first, and then the
-- teardown steps run, in dependency order, before the run ends.
local exec = require "drrun.exec"
runbook { name = "drill-teardown-fail" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "provision" {
	phase = "provision",
	run = function() note("provision") end,
	rollback = function() note("undo provision") end,
}

step "restore" {
	phase = "restore", after = "provision",
	run = function() note("restore") end,
	rollback = function() note("undo restore") end,
}

step "verify" {
	phase = "verify", after = "restore",
	run = function() error("row counts differ") end,
}

step "never" { phase = "dns", after = "verify", run = function() note("NEVER") end }

step "drop_instance" {
	phase = "teardown", after = "drop_snapshot",
	run = function() note("drop instance") end,
}

step "drop_snapshot" {
	phase = "teardown",
	run = function() note("drop snapshot") end,
}
