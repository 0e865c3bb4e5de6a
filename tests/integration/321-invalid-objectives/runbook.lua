runbook {
	name = "bad-objectives",
	rto = "fast",
	env = { dr = { rpo = "soon", rto = 60 } },
}

step "restore" { run = function() end }
