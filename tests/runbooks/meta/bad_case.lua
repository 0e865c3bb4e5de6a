-- A case with a field drrun.test does not know: the file is reported, with
-- the line of the case.
local t = require "drrun.test"
t.runbook "tiny.lua"
t.case "a typo" {
  expext = { result = "completed" },
}
