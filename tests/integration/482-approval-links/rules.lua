rule "unused" { source = "generic", match = { alertname = "Never" }, runbook = "runbook.lua" }
