-- One case passes and one fails: the summary must count both, and the fake
-- must make the first one pass.
local t = require "drrun.test"
t.runbook "tiny.lua"
t.case "passes with exec faked" {
  params = { marker = "/nonexistent/marker" },
  fake = { ["drrun.exec"] = t.exec { touch = { status = 0 } } },
  expect = { result = "completed", exit = 0, completed = { "wait", "touch" },
             outputs = { touch = { touched = true } }, elapsed = { min = "1h", max = "1h1m" } },
}
t.case "fails: exit 0 is not 3" {
  expect = { exit = 3 },
}
