-- A teardown step that fails does not stop the other teardown steps,
-- except those that come after it; the run ends failed, exit 2 (something
-- may be left behind).
local exec = require "drrun.exec"
runbook { name = "teardown-fails" }

local function note(line)
	exec.run { "sh", "-c", "echo \"$1\" >> ledger.txt", "sh", line }
end

step "restore" { run = function() note("restore") end }

step "drop_db" {
	phase = "teardown",
	retry = { attempts = 2, delay = "10ms" },
	run = function() note("drop db") error("db is busy") end,
}

step "drop_backup" { phase = "teardown", after = "drop_db", run = function() note("NEVER") end }

step "drop_dns" { phase = "teardown", run = function() note("drop dns") end }
