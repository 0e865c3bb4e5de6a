-- The operator pasted the secret into the wrong --param.
runbook {
	name = "secret-in-param-error",
	secrets = { "DRX_TOKEN" },
	params = { replicas = { default = 2 } },
}

step "a" { run = function() end }
