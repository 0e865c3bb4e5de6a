runbook { name = "marked" }
step "promote" {
  run = function() require("drrun.exec").run { "sh", "-c", "echo promoted > promoted.txt" } return {} end,
}
