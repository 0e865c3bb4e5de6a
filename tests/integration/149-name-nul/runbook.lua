-- "good\0bad" used to become the step "good".
runbook { name = "name-nul" }

step "good\0bad" { run = function() end }
