-- "web\0evil" used to become the runbook "web".
runbook { name = "web\0evil" }

step "a" { run = function() end }
