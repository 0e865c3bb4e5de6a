rule "tls" { source = "generic", match = { alertname = "X" }, runbook = "note.lua" }
