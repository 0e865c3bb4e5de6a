rule "relative" {
  source = "generic",
  match = { alertname = "SiteDown" },
  runbook = "note.lua",
  dedupe = "{labels.site}",
}
