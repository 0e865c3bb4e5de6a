-- One case passes and one fails: the summary must count both, and the fake
-- must make the first one pass.
local t = require "drrun.test"
t.runbook "tiny.lua"
t.case "passes with exec faked" {
  params = { marker = "/nonexistent/marker" },
  fake = { ["drrun.exec"] = t.exec { touch = { status = 0 } } },
  expect = { result = "completed", exit = 0, completed = { "wait", "touch" },
             outputs = { touch = { touched = true } }, elapsed = { min = "1h", max = "1h1m" } },
  check = function(j)
    -- the clocks a runbook reads are virtual too
    local out = j:output("wait")
    assert(out.now >= 3600 and out.now < 3601, "drrun.now() moved " .. out.now .. " s")
    assert(out.os_time >= 3600 and out.os_time <= 3601, "os.time() moved " .. out.os_time .. " s")
  end,
}
t.case "fails: exit 0 is not 3" {
  expect = { exit = 3 },
}
