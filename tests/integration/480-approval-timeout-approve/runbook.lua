runbook { name = "timeout-approve", description = "nobody objects: the default approves" }
step "promote" {
  approve = { "Promote unless someone objects?", timeout = "1s", default = "approve" },
  run = function(ctx) ctx.log("promoted") end,
}
