runbook { name = "report-usage" }
step "a" { run = function() end }
