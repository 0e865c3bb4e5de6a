-- tiny.lua: a runbook for the meta-tests of drrun test.  It tries to create
-- the file named by its param `marker` (a side effect no test may cause), in
-- a pcall, so only the guard's record can tell that it tried.
local exec = require "drrun.exec"

runbook { name = "tiny", params = { marker = { default = "" } } }

step "wait" {
  run = function(ctx)
    local t0, n0 = os.time(), drrun.now()
    drrun.sleep("1h")
    return { waited = "1h", os_time = os.time() - t0, now = drrun.now() - n0 }
  end,
}

step "touch" {
  after = "wait",
  run = function(ctx)
    if ctx.params.marker == "" then return { touched = false } end
    local ok, r = pcall(exec.run, { "touch", ctx.params.marker })
    ctx.log("touch: %s", ok and "ran" or tostring(r))
    return { touched = ok }
  end,
}
