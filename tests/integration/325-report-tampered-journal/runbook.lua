runbook { name = "report-tampered", rto = "5m" }
step "restore" { phase = "restore", run = function(ctx) ctx.log("restored 1204 rows") end }
step "verify" { phase = "verify", after = "restore", run = function() end }
