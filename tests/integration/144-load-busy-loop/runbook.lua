-- Top-level code that never ends: loading is bounded (5 s of CPU by
-- default) and reports the line it was running.
runbook { name = "load-busy-loop" }
step "a" { run = function() end }

while true do end
