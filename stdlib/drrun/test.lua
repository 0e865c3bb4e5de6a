-- drrun.test: runbook tests, for `drrun test` (docs/testing.md).
--
--   local t = require "drrun.test"
--   t.runbook "../../runbooks/heroku-netlify.lua"      -- relative to this file
--   t.case "a name" { params = {}, secrets = {}, fake = {}, faults = {},
--                     answers = {}, expect = {}, check = function(j) end }
--
-- A test file is read twice.  The parent (`drrun test`) reads it for the
-- runbook, the cases and their expectations; then it runs each case in a
-- child drrun with its own state dir and virtual time, and checks the
-- expectations against that case's journal.  The child reads it inside the
-- runbook's own Lua state, before the runbook loads, to install the case's
-- fakes (fake = { [module] = table }), the guards that fail any call that
-- would reach the world unfaked, and the faults injected at step attempts.
local json = require "drrun.json"

local M = {}

-- what the test file declared; `unfaked` collects, in the child, every call
-- a guard stopped
local S = { runbook = nil, cases = {}, unfaked = {}, current = nil }
M._state = S

local CASE_FIELDS = {
  params = true, secrets = true, env = true, fake = true, faults = true, answers = true,
  expect = true, check = true, yes = true, dry_run = true, drill = true, trigger = true,
}
local EXPECT_FIELDS = {
  result = true, exit = true, completed = true, rolled_back = true, failed = true,
  skipped = true, not_run = true, started = true, outputs = true, errors = true,
  approvals = true, logs = true, attempts = true, elapsed = true, reason = true,
}

local function caller_line(level)
  local info = debug.getinfo(level + 1, "Sl")
  return info and (info.short_src .. ":" .. info.currentline) or "?"
end

-- ---- declarations ---------------------------------------------------------

-- t.runbook(path): the runbook the cases run, relative to the test file.
function M.runbook(path)
  if type(path) ~= "string" or path == "" then
    error("t.runbook: give the runbook's path, relative to the test file", 2)
  end
  if S.runbook and S.runbook ~= path then
    error("t.runbook: one runbook per test file (already " .. S.runbook .. ")", 2)
  end
  S.runbook = path
end

local function check_list(name, field, v, where)
  if type(v) ~= "table" then
    error(("%s: case %q: %s must be a list of step names"):format(where, name, field), 0)
  end
  for _, s in ipairs(v) do
    if type(s) ~= "string" then
      error(("%s: case %q: %s must be a list of step names"):format(where, name, field), 0)
    end
  end
end

local function check_case(name, spec, where)
  for k in pairs(spec) do
    if not CASE_FIELDS[k] then
      error(("%s: case %q: unknown field '%s'"):format(where, name, tostring(k)), 0)
    end
  end
  for k, v in pairs(spec.fake or {}) do
    if type(k) ~= "string" or type(v) ~= "table" then
      error(("%s: case %q: fake must map module names to tables (fake = { [\"drrun.exec\"] = t.exec{...} })")
        :format(where, name), 0)
    end
  end
  for i, f in ipairs(spec.faults or {}) do
    if type(f) ~= "table" or type(f.step) ~= "string" or type(f.error) ~= "string"
       or (f.attempt ~= nil and f.attempt ~= "all"
           and (math.type(f.attempt) ~= "integer" or f.attempt < 1)) then
      error(("%s: case %q: faults[%d] must be { step = NAME, attempt = N|\"all\", error = TEXT }")
        :format(where, name, i), 0)
    end
  end
  for k, v in pairs(spec.answers or {}) do
    if type(k) ~= "string" or (v ~= "yes" and v ~= "no") then
      error(("%s: case %q: answers must map step names to \"yes\" or \"no\""):format(where, name), 0)
    end
  end
  local e = spec.expect
  if e == nil and spec.check == nil then
    error(("%s: case %q: nothing to check: give expect = { ... } or check = function(j)")
      :format(where, name), 0)
  end
  if e ~= nil and type(e) ~= "table" then
    error(("%s: case %q: expect must be a table"):format(where, name), 0)
  end
  for k in pairs(e or {}) do
    if not EXPECT_FIELDS[k] then
      error(("%s: case %q: unknown expect field '%s'"):format(where, name, tostring(k)), 0)
    end
  end
  for _, f in ipairs { "completed", "rolled_back", "skipped", "not_run", "started" } do
    if e and e[f] ~= nil then check_list(name, "expect." .. f, e[f], where) end
  end
  if spec.check ~= nil and type(spec.check) ~= "function" then
    error(("%s: case %q: check must be a function(j)"):format(where, name), 0)
  end
end

-- t.case(name)(spec): declare a case; returns it (for t.journal).
function M.case(name)
  if type(name) ~= "string" or name == "" then error("t.case: a case needs a name", 2) end
  local where = caller_line(2)
  for _, c in ipairs(S.cases) do
    if c.name == name then error(("%s: a case named %q exists already"):format(where, name), 2) end
  end
  return function(spec)
    if type(spec) ~= "table" then error(("%s: case %q: give a table"):format(where, name), 2) end
    check_case(name, spec, where)
    local c = { name = name, spec = spec, where = where, index = #S.cases + 1 }
    S.cases[#S.cases + 1] = c
    return c
  end
end

-- ---- fakes ------------------------------------------------------------------

local FAIL = {}
FAIL.__index = FAIL
FAIL.__call = function(f) return nil, f.message, f.token end
FAIL.__name = "drrun.test.fail"

-- t.fail(msg [, token]): a failure, as the world's calls give them: used in
-- t.exec, or as a fake function, it returns nil, msg, token.  The token is
-- msg's first word when not given; a bare token reads "token: fault of the test".
function M.fail(msg, token)
  msg = msg ~= nil and tostring(msg) or "failed"
  token = token or msg:match("^([%a_]+)") or "failed"
  if msg == token then msg = token .. ": fault of the test" end
  return setmetatable({ message = msg, token = token }, FAIL)
end

local function is_fail(v) return getmetatable(v) == FAIL end

local function show_argv(argv)
  local out = {}
  for i, a in ipairs(argv) do
    out[i] = a:match("^[%w%._/=:,@%-]+$") and a or ("%q"):format(a)
    if i >= 8 then out[#out + 1] = "..." break end
  end
  return table.concat(out, " ")
end

local function exec_result(r)
  local out = {}
  for k, v in pairs(r) do out[k] = v end
  if out.status == nil and out.signal == nil then out.status = 0 end
  out.stdout = out.stdout or ""
  out.stderr = out.stderr or ""
  out.duration = out.duration or 0
  out.truncated = out.truncated or false
  return out
end

-- t.exec{ [argv0] = result | t.fail(...) | function(argv, opts) }: a fake
-- drrun.exec.  argv0 matches the program as given or its base name; a result
-- table gets status 0 and empty output unless it says otherwise.  A program
-- the table does not name is an unfaked call.
function M.exec(map)
  if type(map) ~= "table" then error("t.exec: give a table { [program] = result }", 2) end
  local fake = {}
  function fake.run(spec)
    if type(spec) ~= "table" or type(spec[1]) ~= "string" then
      error("exec.run: the first element must be the program to run", 2)
    end
    local argv, opts = {}, {}
    for i = 1, #spec do argv[i] = tostring(spec[i]) end
    for k, v in pairs(spec) do if math.type(k) ~= "integer" then opts[k] = v end end
    local prog = argv[1]
    local h = map[prog]
    if h == nil then h = map[prog:match("([^/]+)$")] end
    if h == nil then
      return M._unfaked("drrun.exec.run{ " .. show_argv(argv) .. " }",
        "t.exec names no '" .. prog:match("([^/]+)$") .. "'")
    end
    if is_fail(h) then return nil, h.message, h.token end
    if type(h) == "function" then
      local r, err, tok = h(argv, opts)
      if is_fail(r) then return nil, r.message, r.token end
      if r == nil then return nil, err, tok end
      if type(r) ~= "table" then error("t.exec: the fake for " .. prog .. " must return a result table", 0) end
      return exec_result(r)
    end
    if type(h) ~= "table" then error("t.exec: the fake for " .. prog .. " must be a table or a function", 0) end
    return exec_result(h)
  end
  return fake
end

-- ---- the guards (child) ---------------------------------------------------------

-- Modules whose functions reach the world: every function is guarded but
-- those in `allow`, or only those in `only`.
local GUARDED = {
  ["drrun.exec"] = { allow = {} },
  ["drrun.http.core"] = { allow = { curl_version = true } },
  ["drrun.ssh.core"] = { allow = {} },
  ["drrun.fs"] = { allow = {} },
  ["drrun.crypto"] = { only = { encrypt_file = true, decrypt_file = true } },
}

-- Where the runbook made the call that ended here: the outermost stdlib
-- function it called, and its file:line.
local function call_site()
  local outer, site
  for level = 3, 100 do
    local info = debug.getinfo(level, "Sln")
    if not info then break end
    local mod = info.source:match("^=%[stdlib (.+)%]$")
    if mod then
      if mod ~= "drrun.test" then outer = mod .. (info.name and ("." .. info.name) or "") end
    elseif info.what ~= "C" then
      site = info.short_src .. ":" .. info.currentline
      break
    end
  end
  return outer, site
end

-- Record and raise: the case fails whatever the runbook does with the error.
function M._unfaked(what, hint)
  local outer, site = call_site()
  local msg = "unfaked call: " .. what
  if outer then msg = msg .. ", from " .. outer end
  if site then msg = msg .. " at " .. site end
  msg = msg .. " (" .. (hint or "fake the module in the case: fake = { [\"module\"] = { ... } }") .. ")"
  S.unfaked[#S.unfaked + 1] = msg
  error(msg, 0)
end

local function guard(name, real, how)
  if type(real) ~= "table" then return real end
  local g = {}
  for k, v in pairs(real) do
    local guarded
    if how.only then guarded = how.only[k] else guarded = not how.allow[k] end
    if type(v) == "function" and guarded then
      g[k] = function() return M._unfaked(name .. "." .. tostring(k)) end
    else
      g[k] = v
    end
  end
  return g
end

-- A fake module: its own fields first, then the real module's (guarded),
-- loaded only if the runbook reaches for a field the fake does not have.
local function faked(name, fake, loader)
  local real
  local t = {}
  for k, v in pairs(fake) do t[k] = v end
  return setmetatable(t, {
    __index = function(_, k)
      if real == nil then real = loader and loader(name) or false end
      return real and real[k] or nil
    end,
  })
end

-- In the child: case `index` of the test file just read becomes the one
-- this process runs; guards and fakes go into package.preload/loaded.
function M._install(index)
  local c = S.cases[index]
  if not c then error("drrun test: no case " .. tostring(index), 0) end
  S.current = c
  local preload, loaded = package.preload, package.loaded
  for name, allow in pairs(GUARDED) do
    local loader = preload[name]
    if loader then
      preload[name] = function(...) return guard(name, loader(...), allow) end
    end
  end
  for name, fake in pairs(c.spec.fake or {}) do
    loaded[name] = faked(name, fake, preload[name])
    if not preload[name] then preload[name] = function() return loaded[name] end end
  end
  -- os.time() and os.date() read the virtual clock too, like drrun.now()
  local now = require("drrun.core").now
  local real_time, real_date = os.time, os.date
  os.time = function(t)
    if t == nil then return math.floor(now()) end
    return real_time(t)
  end
  os.date = function(fmt, t)
    if t == nil then t = math.floor(now()) end
    return real_date(fmt, t)
  end
  return c
end

-- Faults: the step's run (or, with rollback = true, its rollback) raises
-- instead of running, at the attempts named (default 1; "all" for every one).
local function fault_message(f, n)
  if f.error:find(":", 1, true) then return f.error end
  return ("%s: fault injected by the test at attempt %d"):format(f.error, n)
end

function M._wrap(step, fn, rollback)
  local list = {}
  for _, f in ipairs(S.current and S.current.spec.faults or {}) do
    if f.step == step and (not not f.rollback) == rollback then list[#list + 1] = f end
  end
  if #list == 0 then return nil end
  local n = 0
  return function(...)
    n = n + 1
    for _, f in ipairs(list) do
      if f.attempt == n or (f.attempt == nil and n == 1) or f.attempt == "all" then
        error(fault_message(f, n), 0)
      end
    end
    return fn(...)
  end
end

-- ---- the journal (parent) -----------------------------------------------------

local J = {}
J.__index = J

local function by_type(self, ty)
  local out = {}
  for _, r in ipairs(self._recs) do if r.type == ty then out[#out + 1] = r end end
  return out
end

-- every record, or those of one type
function J:records(ty)
  if ty == nil then return self._recs end
  return by_type(self, ty)
end

-- steps in the order they first started
function J:steps()
  local out, seen = {}, {}
  for _, r in ipairs(by_type(self, "step_start")) do
    if not seen[r.step] then seen[r.step] = true out[#out + 1] = r.step end
  end
  return out
end
J.started = J.steps

local function ended(self, status)
  local out = {}
  for _, r in ipairs(by_type(self, "step_end")) do
    if r.status == status then out[#out + 1] = r.step end
  end
  return out
end

-- steps that completed, in completion order
function J:completed() return ended(self, "completed") end
function J:failed() return ended(self, "failed") end

-- steps `when` skipped, in order
function J:skipped()
  local out = {}
  for _, r in ipairs(by_type(self, "step_skipped")) do out[#out + 1] = r.step end
  return out
end

-- steps whose rollback completed, in the order they were rolled back
function J:rolled_back()
  local out = {}
  for _, r in ipairs(by_type(self, "rollback_end")) do
    if r.status == "completed" then out[#out + 1] = r.step end
  end
  return out
end

-- steps of the runbook that never started (nor were skipped), by name
function J:not_run()
  local started, out = {}, {}
  for _, s in ipairs(self:steps()) do started[s] = true end
  for _, r in ipairs(by_type(self, "step_end")) do started[r.step] = true end
  for _, r in ipairs(by_type(self, "step_skipped")) do started[r.step] = true end
  local start = by_type(self, "run_start")[1]
  for name in pairs(start and start.plan or {}) do
    if not started[name] then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

local function last_end(self, step)
  local e
  for _, r in ipairs(by_type(self, "step_end")) do if r.step == step then e = r end end
  return e
end

function J:output(step) local e = last_end(self, step) return e and e.output end
function J:error(step) local e = last_end(self, step) return e and e.error end
function J:duration(step) local e = last_end(self, step) return e and e.duration end

function J:attempts(step)
  local n = 0
  for _, r in ipairs(by_type(self, "step_start")) do if r.step == step then n = n + 1 end end
  return n
end

-- { step, status (approved, declined, needed), by, question }, in order
function J:approvals()
  local out = {}
  for _, r in ipairs(by_type(self, "approval")) do
    out[#out + 1] = { step = r.step, status = r.status, by = r.by, question = r.question }
  end
  return out
end

-- the log lines of a step (or of every step)
function J:logs(step)
  local out = {}
  for _, r in ipairs(by_type(self, "step_log")) do
    if step == nil or r.step == step then out[#out + 1] = r.msg end
  end
  return out
end

function J:result() return self._result end
function J:exit() return self._exit end
function J:reason() local e = by_type(self, "run_end")[1] return e and e.reason end
-- the run's duration as it measured it (virtual seconds)
function J:elapsed() local e = by_type(self, "run_end") e = e[#e] return e and e.duration end
-- what the runbook printed (the child's stdout and stderr)
function J:output_text() return self._text end
function J:dir() return self._dir end

local journals = setmetatable({}, { __mode = "k" })

-- t.journal(case): the journal of a case that has run (in check functions)
function M.journal(c)
  local j = journals[c]
  if not j then error("t.journal: that case has not run (use it in check = function(j))", 2) end
  return j
end

function M._journal(c, path, exit, text, dir)
  local recs = {}
  local f = path and io.open(path, "r")
  if f then
    for line in f:lines() do
      local ok, r = pcall(json.decode, line)
      if ok and type(r) == "table" then recs[#recs + 1] = r end
    end
    f:close()
  end
  local ends = {}
  for _, r in ipairs(recs) do if r.type == "run_end" then ends[#ends + 1] = r end end
  local result = #recs == 0 and "not started" or (ends[#ends] and ends[#ends].status or "crashed")
  local j = setmetatable({ _recs = recs, _result = result, _exit = exit, _text = text,
                           _dir = dir }, J)
  journals[c] = j
  return j
end

-- ---- expectations (parent) ---------------------------------------------------------

local function show(v)
  if type(v) == "table" then
    local ok, s = pcall(json.encode, v)
    if ok then return s end
  end
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

local function list_eq(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- every field of want is in got (recursively); lists compare whole
local function matches(want, got)
  if type(want) ~= "table" then return want == got end
  if type(got) ~= "table" then return false end
  if #want > 0 then
    if #want ~= #got then return false end
  end
  for k, v in pairs(want) do
    if not matches(v, got[k]) then return false end
  end
  return true
end

local function seconds(v)
  if type(v) == "number" then return v end
  return require("drrun").duration(v)
end

-- The failures of a case's expectations: a list of messages (empty: passed).
function M._check(c, j)
  local e, bad = c.spec.expect or {}, {}
  local function fail(fmt, ...) bad[#bad + 1] = fmt:format(...) end
  if e.result ~= nil and e.result ~= j:result() then
    fail("result: expected %s, got %s", e.result, j:result())
  end
  if e.exit ~= nil and e.exit ~= j:exit() then
    fail("exit: expected %s, got %s", tostring(e.exit), tostring(j:exit()))
  end
  for _, f in ipairs { "completed", "rolled_back", "skipped", "started", "not_run" } do
    if e[f] ~= nil then
      local got, want = j[f](j), e[f]
      if f == "not_run" then -- a set: sorted by name
        want = { table.unpack(want) }
        table.sort(want)
      end
      if not list_eq(want, got) then fail("%s: expected %s, got %s", f, show(want), show(got)) end
    end
  end
  if e.failed ~= nil then
    local want = type(e.failed) == "table" and e.failed or { e.failed }
    if not list_eq(want, j:failed()) then
      fail("failed: expected %s, got %s", show(want), show(j:failed()))
    end
  end
  for step, want in pairs(e.outputs or {}) do
    local got = j:output(step)
    if not matches(want, got) then fail("outputs.%s: expected %s, got %s", step, show(want), show(got)) end
  end
  for step, pat in pairs(e.errors or {}) do
    local got = j:error(step)
    if type(got) ~= "string" or not got:find(pat) then
      fail("errors.%s: expected an error matching %s, got %s", step, show(pat), show(got))
    end
  end
  for step, want in pairs(e.attempts or {}) do
    if j:attempts(step) ~= want then
      fail("attempts.%s: expected %d, got %d", step, want, j:attempts(step))
    end
  end
  for step, want in pairs(e.approvals or {}) do
    local got
    for _, a in ipairs(j:approvals()) do if a.step == step then got = a.status end end
    if got ~= want then fail("approvals.%s: expected %s, got %s", step, show(want), show(got)) end
  end
  for step, pats in pairs(e.logs or {}) do
    if type(pats) ~= "table" then pats = { pats } end
    local lines = j:logs(step)
    for _, pat in ipairs(pats) do
      local found = false
      for _, l in ipairs(lines) do if l:find(pat) then found = true break end end
      if not found then
        fail("logs.%s: no line matches %s (got %s)", step, show(pat), show(lines))
      end
    end
  end
  if e.reason ~= nil then
    local got = j:reason()
    if type(got) ~= "string" or not got:find(e.reason) then
      fail("reason: expected one matching %s, got %s", show(e.reason), show(got))
    end
  end
  if e.elapsed ~= nil then
    local got = j:elapsed() or 0
    local lo = type(e.elapsed) == "table" and e.elapsed.min and seconds(e.elapsed.min)
    local hi = type(e.elapsed) == "table" and e.elapsed.max and seconds(e.elapsed.max)
    if type(e.elapsed) ~= "table" then lo, hi = seconds(e.elapsed), seconds(e.elapsed) + 1 end
    if (lo and got < lo) or (hi and got > hi) then
      fail("elapsed: expected %s..%s s, got %.3f s", tostring(lo or 0), tostring(hi or "inf"), got)
    end
  end
  if c.spec.check then
    local ok, err = pcall(c.spec.check, j)
    if not ok then fail("check: %s", tostring(err)) end
  end
  if #bad > 0 then -- what went wrong in the run, to read the failures by
    for _, r in ipairs(by_type(j, "step_end")) do
      if r.status == "failed" then
        fail("(the run: step '%s' failed: %s)", r.step, tostring(r.error))
      end
    end
  end
  return bad
end

return M
