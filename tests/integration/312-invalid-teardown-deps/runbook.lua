runbook { name = "bad-teardown", budgets = { restore = "20m", dsn = "5m" } }

step "restore" { phase = "restore", run = function() end }

step "drop" {
	phase = "teardown",
	after = "restore",
	run = function() end,
}

step "late" { after = "drop", run = function() end }

step "ask" { phase = "teardown", approve = "Drop it?", run = function() end }
