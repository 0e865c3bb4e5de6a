-- The runbook named does not exist.
local t = require "drrun.test"
t.runbook "no-such-runbook.lua"
t.case "never runs" { expect = { result = "completed" } }
