-- lib/spec.lua: the assertions and helpers every spec in tests/lua shares, in
-- one copy.  A spec loads it as a local module (RUNBOOKS.md, The sandbox):
--   local T = require "lib.spec"
--   local eq, has, raises = T.eq, T.has, T.raises
-- Not a spec itself: tests/run.sh runs only tests/lua/*_spec.lua.
-- Every assertion raises with level 2, so the message names the spec's line.
local exec = require "drrun.exec"

local S = {}

-- a value as an assertion message shows it: strings quoted and escaped
local function show(v)
	if type(v) == "string" then return ("%q"):format(v) end
	return tostring(v)
end
S.show = show

-- got must be want (==)
function S.eq(got, want, what)
	if got ~= want then
		error(("%s: got %s, want %s"):format(what or "value", show(got), show(want)), 2)
	end
end

-- a number within eps (1e-9 by default) of want
function S.near(got, want, what, eps)
	if type(got) ~= "number" or math.abs(got - want) > (eps or 1e-9) then
		error(("%s: got %s, want %.17g"):format(what or "value",
			type(got) == "number" and ("%.17g"):format(got) or show(got), want), 2)
	end
end

-- s is a string that contains part (plain, not a pattern)
function S.has(s, part, what)
	if type(s) ~= "string" or not s:find(part, 1, true) then
		error(("%s: %s does not contain %s"):format(what or "text", show(s), show(part)), 2)
	end
end

-- an operation that must succeed: everything it returned
function S.ok(r, ...)
	if not r then error("failed: " .. tostring((...)), 2) end
	return r, ...
end

-- an operation that must fail as RUNBOOKS.md's Errors section says: nil,
-- "tok: detail", tok (a SaaS module's message starts "<service>: " instead:
-- prefix).  Returns the message.  what labels the call.
local function failed(what, prefix, tok, r, err, got)
	local at = what and what .. ": " or ""
	if r ~= nil then
		local desc = type(r) == "table" and r.status and ("HTTP " .. tostring(r.status))
			or ("a " .. type(r))
		error(("%swant failure %q, got %s"):format(at, tok, desc), 3)
	end
	if got ~= tok then
		error(("%swant token %q, got %s (%s)"):format(at, tok, show(got), tostring(err)), 3)
	end
	prefix = (prefix or tok) .. ": "
	if type(err) ~= "string" or err:sub(1, #prefix) ~= prefix then
		error(("%smessage %s does not start with %q"):format(at, show(err), prefix), 3)
	end
	return err
end
function S.fails(tok, r, err, got) return failed(nil, nil, tok, r, err, got) end
function S.fails_as(what, tok, r, err, got) return failed(what, nil, tok, r, err, got) end
-- the fails of a SaaS module's spec: messages start "<service>: "
function S.service_fails(service)
	return function(tok, r, err, got) return failed(nil, service, tok, r, err, got) end
end

-- fn(...) must raise: the message
function S.raises(fn, ...)
	local good, err = pcall(fn, ...)
	if good then error("expected an error", 2) end
	return tostring(err)
end

-- fn(...) must raise an error whose message contains text: the message
function S.raises_with(text, fn, ...)
	local good, err = pcall(fn, ...)
	if good then error(("expected an error containing %s"):format(show(text)), 2) end
	if not tostring(err):find(text, 1, true) then
		error(("expected an error containing %s, got: %s"):format(show(text), tostring(err)), 2)
	end
	return tostring(err)
end

-- ---- local commands ------------------------------------------------------------

-- run argv; it must exit 0: its stdout
function S.run(argv)
	local r, err = exec.run(argv)
	if not r then error(("%s: %s"):format(argv[1], tostring(err)), 2) end
	if r.status ~= 0 then
		error(("%s exited %s: %s"):format(table.concat(argv, " "), tostring(r.status or r.signal),
			r.stderr), 2)
	end
	return r.stdout
end

-- sh -c script with "$1"... = ...; it must exit 0: its stdout
function S.sh(script, ...)
	local r, err = exec.run { "sh", "-c", script, "sh", ... }
	if not r then error("sh: " .. tostring(err), 2) end
	if r.status ~= 0 then
		error(("local command failed (%s): %s\n%s"):format(tostring(r.status or r.signal), script,
			r.stderr), 2)
	end
	return r.stdout
end

function S.exists(path)
	return exec.run { "test", "-e", path }.status == 0
end

function S.sha256sum(path)
	return (S.sh('sha256sum < "$1"', path):match("^(%x+)"))
end

-- ---- this run's state --------------------------------------------------------------

-- The state dir drrun was started with, absolute: it is on drrun's command
-- line (the parent of the shell exec.run starts), relative to drrun's cwd.
local state_dir
function S.state_dir()
	if not state_dir then
		local r = assert(exec.run { "bash", "-c", [[
			sd=${DRRUN_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/drrun} prev=
			while IFS= read -r -d '' a; do
				[ "$prev" = --state-dir ] && sd=$a
				case $a in --state-dir=*) sd=${a#--state-dir=} ;; esac
				prev=$a
			done < /proc/$PPID/cmdline
			cd /proc/$PPID/cwd && cd -- "$sd" && pwd -P]] })
		S.eq(r.status, 0, "finding the state dir: " .. r.stderr)
		state_dir = r.stdout:gsub("\n$", "")
	end
	return state_dir
end

-- This run's journal, as text
function S.journal(ctx)
	local r = assert(exec.run { "cat", "--", S.state_dir() .. "/runs/" .. ctx.run_id .. "/journal.jsonl" })
	S.eq(r.status, 0, "reading the journal: " .. r.stderr)
	return r.stdout
end

-- ---- the access log of tests/servers.sh's nginx ------------------------------------

-- A counter of the requests nginx logged to LOG with a given query string:
--   local logged = S.access_log(LOG); logged(p, want [, patience])
-- waits (up to patience seconds, 1 by default) for want lines, as nginx
-- writes a line after the response, then a little more, for any extra one.
function S.access_log(log)
	local function count(p)
		return tonumber(assert(exec.run { "grep", "-c", "-F", "--", p, log }).stdout) or -1
	end
	return function(p, want, patience)
		for _ = 1, (patience or 1) * 50 do
			if count(p) >= want then break end
			drrun.sleep("20ms")
		end
		drrun.sleep("50ms") -- nothing more may come
		return count(p)
	end
end

-- A string no other request of this run has ("RUN-WHAT-N"), to put in a
-- request's query and find that request in the access log
local seq = 0
function S.probe(ctx, what)
	seq = seq + 1
	return ("%s-%s-%d"):format(ctx.run_id, what, seq)
end

return S
