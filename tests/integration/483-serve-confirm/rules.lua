rule "site-down" {
  source = "generic",
  match = { alertname = "SiteDown" },
  runbook = "failover.lua",
  params = function(a) return { site = a.labels.site } end,
  mode = "confirm",
  confirm = { timeout = "30s", default = "skip", approvers = { "alice", "bob" } },
  dedupe = "{labels.site}",
}

rule "quiet-hours" {
  source = "generic",
  match = { alertname = "Quiet" },
  runbook = "failover.lua",
  params = function(a) return { site = a.labels.site } end,
  mode = "confirm",
  confirm = { timeout = "1s", default = "skip" },
  dedupe = "q/{labels.site}",
}
