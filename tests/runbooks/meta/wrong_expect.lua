-- Every expectation here is wrong on purpose: drrun test must fail the case
-- and say why, one line for each.
local t = require "drrun.test"
t.runbook "tiny.lua"
t.case "wrong on purpose" {
  expect = {
    result = "rolled-back", exit = 1, completed = { "touch", "wait" },
    outputs = { wait = { waited = "2h" } }, elapsed = { max = "30m" },
  },
}
