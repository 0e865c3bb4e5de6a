-- The runbook calls drrun.exec, unfaked, and catches the error: the case must
-- fail anyway, naming the call, and the file must not have been created.
local t = require "drrun.test"
t.runbook "tiny.lua"
t.case "an unfaked call fails the case" {
  params = { marker = os.getenv("DRRUN_META_MARKER") or "/nonexistent/marker" },
  expect = { result = "completed", exit = 0 },
}
