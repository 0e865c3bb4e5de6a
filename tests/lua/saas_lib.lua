-- saas_lib.lua: what the saas_*_spec.lua specs share: assertions, the
-- fakes' control API (tests/fakes/README.md) and reading this run's journal.
-- Loaded with require "saas_lib" from a spec in this directory (a runbook's
-- local module); not a spec itself.
local http = require "drrun.http"
local json = require "drrun.json"
local exec = require "drrun.exec"


local function eq(got, want, what)
	if got ~= want then
		error(("%s: got %s, want %s"):format(what or "value", tostring(got), tostring(want)), 2)
	end
end

local function has(s, part, what)
	if type(s) ~= "string" or not s:find(part, 1, true) then
		error(("%s: %q does not contain %q"):format(what or "text", tostring(s), part), 2)
	end
end

local function raises(fn, ...)
	local good, err = pcall(fn, ...)
	if good then error("expected an error", 2) end
	return tostring(err)
end

-- a call that must fail with token tok: the message
local function fails(tok, v, err, got)
	if v ~= nil then error(("want failure %q, got a result"):format(tok), 2) end
	if got ~= tok then error(("want token %q, got %q (%s)"):format(tok, tostring(got), tostring(err)), 2) end
	return err
end

-- the fakes' control API: DRRUN_TEST_FAKES_CONTROL="heroku=URL netlify=URL ..."
local function control(svc, method, what, body)
	local base
	for name, url in (os.getenv("DRRUN_TEST_FAKES_CONTROL") or ""):gmatch("([%w_]+)=(%S+)") do
		if name == svc then base = url:gsub("/+$", "") end
	end
	if not base then error("no control URL for the " .. svc .. " fake in DRRUN_TEST_FAKES_CONTROL", 2) end
	if not base:match("/_fake$") then base = base .. "/_fake" end
	local r, err = http.request { method = method, url = base .. "/" .. what, json = body }
	if not r or r.status ~= 200 then
		error(("%s %s/%s: %s"):format(method, base, what, r and (r.status .. " " .. r.body) or err), 2)
	end
	return json.decode(r.body)
end
local function reset(svc) control(svc, "POST", "reset") end
local function config(svc, t) return control(svc, "POST", "config", t) end
local function clear(svc) control(svc, "DELETE", "requests") end
local function state(svc) return control(svc, "GET", "state") end
-- what the fake received since the last clear, optionally only METHOD PATH
local function received(svc, method, path)
	local out = {}
	for _, r in ipairs(control(svc, "GET", "requests")) do
		if (not method or r.method == method) and (not path or r.path == path) then out[#out + 1] = r end
	end
	return out
end

-- This run's journal, as text (the state dir is on drrun's command line).
local function journal(ctx)
	local r = assert(exec.run { "bash", "-c", [[
		sd=${DRRUN_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/drrun} prev=
		while IFS= read -r -d '' a; do
			[ "$prev" = --state-dir ] && sd=$a
			case $a in --state-dir=*) sd=${a#--state-dir=} ;; esac
			prev=$a
		done < /proc/$PPID/cmdline
		cd /proc/$PPID/cwd && cat -- "$sd/runs/$1/journal.jsonl"]], "journal", ctx.run_id })
	eq(r.status, 0, "reading the journal: " .. r.stderr)
	return r.stdout
end

return { eq = eq, has = has, raises = raises, fails = fails, control = control, reset = reset, config = config, clear = clear, state = state, received = received, journal = journal }
