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

-- drrun.quote(s) -> s as one POSIX shell word: bare when it is only
-- characters no shell treats specially, else in single quotes (a ' inside
-- becomes '\''). drrun.quote{ "a", "b c" } quotes each and joins them with
-- spaces. A NUL byte, which no shell word can hold, raises.
local function quote1(s, level)
  local t = type(s)
  if t == "number" then s = tostring(s)
  elseif t ~= "string" then
    error(("drrun.quote: expected a string, a number or a list of them, got %s"):format(t), level)
  end
  if s:find("\0", 1, true) then error("drrun.quote: a shell word cannot hold a NUL byte", level) end
  if s ~= "" and not s:find("[^%w@+:,./_-]") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

function M.quote(s)
  if type(s) ~= "table" then return quote1(s, 3) end
  local words = {}
  for i, w in ipairs(s) do words[i] = quote1(w, 3) end
  return table.concat(words, " ")
end

-- drrun.sh(cmd, opts): run a command and raise unless it exits 0. cmd is a
-- shell command line (run by /bin/sh -c) or an argv list, run as it is with
-- no shell in between (drrun.sh{ "pg_ctl", "-D", dir, "promote" }; the list
-- may carry exec.run's options too). Returns the result table of exec.run.
-- opts are passed to exec.run.
function M.sh(cmd, opts)
  local exec = require "drrun.exec"
  local spec, shown
  if type(cmd) == "table" then
    spec = {}
    for k, v in pairs(cmd) do spec[k] = v end
    if #spec == 0 then error("drrun.sh: the argv list is empty", 2) end
    local argv = {}
    for i = 1, #spec do
      local a = spec[i]
      if type(a) ~= "string" and type(a) ~= "number" then
        error(("drrun.sh: argument %d must be a string, not %s"):format(i, type(a)), 2)
      end
      argv[i] = a
    end
    shown = M.quote(argv)
  elseif type(cmd) == "string" then
    spec, shown = { "/bin/sh", "-c", cmd }, cmd
  else
    error(("drrun.sh: expected a command line or an argv list, got %s"):format(type(cmd)), 2)
  end
  for k, v in pairs(opts or {}) do spec[k] = v end
  local r = M.must(exec.run(spec))
  if r.status ~= 0 then
    local why = r.signal and ("killed by signal " .. r.signal) or ("exit " .. tostring(r.status))
    local err = r.stderr:gsub("%s+$", "")
    error(string.format("command failed (%s): %s%s", why, shown,
      err ~= "" and ("\n" .. err:sub(-2000)) or ""), 2)
  end
  return r
end

return M
