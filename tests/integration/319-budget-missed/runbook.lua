-- The restore phase spans both of its steps (first start to last end) and
-- exceeds its budget; no RTO or RPO is declared: exit 4 for the budget.
runbook { name = "budget-missed", budgets = { restore = "100ms" } }

step "restore_db" { phase = "restore", run = function() drrun.sleep("80ms") end }

step "restore_app" {
	phase = "restore", after = "restore_db",
	run = function() drrun.sleep("80ms") end,
}
