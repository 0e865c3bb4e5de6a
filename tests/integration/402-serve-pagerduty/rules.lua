rule "pd-incident" {
  source = "pagerduty",
  match = { event_type = "incident.priority_updated" },
  runbook = "note.lua",
  params = function(a) return { who = a.labels.service } end,
  dedupe = "{labels.incident_id}",
}
