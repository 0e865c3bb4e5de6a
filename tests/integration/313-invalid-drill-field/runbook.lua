runbook { name = "bad-drill" }

step "restore" {
	drill = "maybe",
	production = "yes",
	run = function() end,
}
