-- a rules file as the issue shows it (mode auto), checked by drrun check
rule "db-primary-down" {
  source = "alertmanager",
  match = { alertname = "PostgresPrimaryDown", severity = "critical" },
  match_re = { instance = "^db-[0-9]+" },
  runbook = "db.lua",
  params = function(alert) return { host = alert.labels.instance } end,
  mode = "auto",
  dedupe = "{labels.alertname}/{labels.instance}",
  cooldown = "30m",
}
schedule "weekly-restore-test" { cron = "0 5 * * 1", runbook = "db.lua",
  params = { env = "dr" }, drill = true }
schedule "nightly-utc" { cron = "30 2 * * *", tz = "UTC", runbook = "db.lua" }
