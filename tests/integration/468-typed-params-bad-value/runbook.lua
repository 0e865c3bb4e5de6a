-- Values from the command line that are not of their param's type.
runbook {
	name = "typed-value",
	params = {
		port = { type = "integer", default = 5432 },
		wait = { type = "duration", default = "30s" },
		api  = { type = "url", default = "https://api.example.com" },
		dry  = { type = "boolean", default = false },
		note = { type = "string", default = "" },
	},
}

step "a" { run = function() end }
