-- "bad\xff" is not valid UTF-8 and would lose its journal field.
runbook { name = "name-not-ascii" }

step "bad\xff" { run = function() end }
