-- Declarations that do not hold together: each is an error at its line.
runbook {
	name = "typed-bad",
	params = {
		port  = { type = "integer", default = 80.5 },
		wait  = { type = "duration", default = "soon" },
		api   = { type = "url", default = "example.com/x" },
		ratio = { type = "number", default = "0.5" },
		force = { type = "boolean", default = 1 },
		name  = { type = "text", default = "x" },
		ok    = { type = "duration", default = "0s" },
	},
}

step "a" { run = function() end }
