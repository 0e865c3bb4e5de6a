rule "any-generic" {
  source = "generic",
  match_re = { alertname = "." },
  runbook = "note.lua",
  params = function(a) return { who = a.labels.instance } end,
  dedupe = "{labels.alertname}/{labels.instance}",
}
rule "any-am" {
  source = "alertmanager",
  match_re = { alertname = "." },
  runbook = "note.lua",
  params = function(a) return { who = a.labels.instance } end,
  dedupe = "{labels.alertname}/{labels.instance}",
}
