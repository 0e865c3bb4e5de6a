-- one run per alert group's name: a group of several instances is one run
rule "db-down" {
  source = "alertmanager",
  match = { alertname = "DbDown", severity = "critical" },
  match_re = { instance = "^db-[0-9]+$" },
  runbook = "hold.lua",
  params = function(a) return { who = a.labels.alertname } end,
  dedupe = "{labels.alertname}",
}
rule "wrong-token" {
  source = "alertmanager",
  match = { alertname = "WrongToken" },
  runbook = "hold.lua",
}
