-- A drill of three phases with a retried step, for the HTML report: one
-- bar per attempt in the Gantt, checked in headless Chromium.
runbook { name = "report-html", rto = "5m" }

step "provision" { phase = "provision", run = function() drrun.sleep("60ms") end }
step "copy_a" { phase = "restore", after = "provision", run = function() drrun.sleep("80ms") end }
step "copy_b" {
	phase = "restore", after = "provision", retry = { attempts = 3, delay = "20ms" },
	run = function(ctx) drrun.sleep("30ms") if ctx.attempt < 3 then error("busy") end end,
}
step "smoke" { phase = "verify", after = { "copy_a", "copy_b" }, run = function() drrun.sleep("40ms") end }
step "drop" { phase = "teardown", run = function() drrun.sleep("20ms") return { removed = { "vm-1" } } end }
