-- Top-level code reads params, and may not write them.
runbook { name = "ro", params = { replicas = { type = "integer", default = 2 } } }

local n = 0
for k, v in pairs(params) do n = n + 1 end
assert(n == 1 and params.replicas == 2, "pairs and reads see the bound params")

params.replicas = 5

step "a" { run = function() end }
