runbook { name = "needs-creds", secrets = { "API_TOKEN", "DB_URL" } }
step "touch" {
  run = function(ctx)
    require("drrun.exec").run { "sh", "-c", "echo ran >> side-effect.txt" }
    return {}
  end,
}
