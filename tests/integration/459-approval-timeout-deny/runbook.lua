runbook { name = "timeout-deny", description = "nobody answers: the default decides" }
step "promote" {
  approve = { "Promote?", timeout = "1s" },
  run = function(ctx) ctx.log("promoted") end,
}
