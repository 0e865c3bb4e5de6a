-- The secret's value reaches a print before runbook{} and two validation
-- messages; each must show *** instead.
print("early " .. os.getenv("DRX_TOKEN"))

runbook { name = "secret-in-validation", secrets = { "DRX_TOKEN" }, rto = os.getenv("DRX_TOKEN") }

step "a" { after = os.getenv("DRX_TOKEN"), run = function() end }
