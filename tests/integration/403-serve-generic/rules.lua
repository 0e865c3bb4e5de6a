rule "generic-down" {
  source = "generic",
  match = { alertname = "SiteDown" },
  runbook = "note.lua",
  params = function(a) return { who = a.labels.site } end,
  dedupe = "{labels.alertname}/{labels.site}",
  cooldown = "1h",
}
