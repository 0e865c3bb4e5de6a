-- a one-character secret: the runbook's own text is redacted, drrun's run id
-- on the terminal is not (its digits would all be ***)
runbook { name = "short-secret", secrets = { "PIN" } }
step "a" { run = function(ctx) ctx.log("pin is %s.", ctx.secret("PIN")) end }
