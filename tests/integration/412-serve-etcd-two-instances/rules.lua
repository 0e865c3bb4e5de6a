rule "site-down" {
  source = "generic",
  match = { alertname = "SiteDown" },
  runbook = "hold.lua",
  params = function(a) return { who = a.labels.site } end,
  dedupe = "{labels.site}",
}
