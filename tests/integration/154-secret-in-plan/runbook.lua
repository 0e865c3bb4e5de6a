-- doc and approve built from a secret's value.
local key = os.getenv("DRX_TOKEN")

runbook { name = "secret-in-plan", secrets = { "DRX_TOKEN" } }

step "rotate" {
	doc = "rotates " .. key,
	approve = "Use key " .. key .. "?",
	run = function() end,
}
