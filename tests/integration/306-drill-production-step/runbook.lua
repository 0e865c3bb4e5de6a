runbook { name = "drill-prod-step" }

step "detect" { run = function() end }

step "promote" {
	after = "detect",
	production = true,
	run = function() error("must not run") end,
}
