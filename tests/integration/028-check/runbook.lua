-- `drrun check` validates without running anything.
local exec = require "drrun.exec"

runbook { name = "check", params = { region = { default = "eu" } } }

step "side" {
	retry = { attempts = 2, delay = "1s" },
	timeout = "30s",
	run = function()
		exec.run { "sh", "-c", "echo ran > side-effect.txt" }
	end,
}

step "next" { after = "side", run = function() end }
