runbook {
	name = "drill-prod-env",
	env = {
		dr = { region = "eu-west-1" },
		prod = { region = "us-east-1", production = true },
	},
}

step "restore" { drill = function() end, run = function() error("must not run") end }
