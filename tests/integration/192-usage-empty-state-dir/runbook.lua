-- --state-dir '' must not mean "journal under /".
runbook { name = "empty-state-dir" }

step "a" {
	run = function() return "A" end,
}
