-- exec.env is checked at load: names, strings only, the shape of exec.
runbook {
	name = "exec-env-bad",
	exec = {
		env = {
			PGCONNECT_TIMEOUT = 5,
			["1BAD"] = "x",
		},
		shell = "bash",
	},
}

step "a" {
	exec = { env = { ["NO-DASH"] = "x" } },
	run = function() end,
}

step "b" {
	exec = "PGCONNECT_TIMEOUT=5",
	run = function() end,
}

step "c" {
	exec = { env = { "positional" } },
	run = function() end,
}
