-- drrun: the table every runbook sees as the global `drrun`.
-- Mechanism lives in C (drrun.core); this file holds the policy helpers.
local core = require "drrun.core"

local M = {
  version = core.version,
  sleep = core.sleep,          -- drrun.sleep("2s"): yields this step only
  parallel = core.parallel,    -- drrun.parallel(list, fn, { limit = n })
  now = core.now,              -- wall clock, seconds since the epoch
  redact = core.redact,        -- drrun.redact(value): hide it like a declared secret
}

-- drrun.duration("1h30m") -> 5400 (seconds), or nil, err
M.duration = core.duration

-- drrun.must(v, err, ...) turns the `nil, err` convention into a raised
-- error, so `local r = drrun.must(exec.run{ ... })` stops the step with the
-- operation's own message.  Returns all its arguments on success.
function M.must(v, err, ...)
  if v == nil or v == false then
    error(err ~= nil and tostring(err) or "operation failed", 2)
  end
  return v, err, ...
end

-- drrun.sh(cmd, opts): run a shell command and raise unless it exits 0.
-- Returns the result table of exec.run.  opts are passed to exec.run.
function M.sh(cmd, opts)
  local exec = require "drrun.exec"
  local spec = { "/bin/sh", "-c", cmd }
  for k, v in pairs(opts or {}) do spec[k] = v end
  local r = M.must(exec.run(spec))
  if r.status ~= 0 then
    local why = r.signal and ("killed by signal " .. r.signal) or ("exit " .. tostring(r.status))
    local err = r.stderr:gsub("%s+$", "")
    error(string.format("command failed (%s): %s%s", why, cmd,
      err ~= "" and ("\n" .. err:sub(-2000)) or ""), 2)
  end
  return r
end

return M
