-- Runs inner.lua and cancel.lua under tests' slow resolver (blackhole.sh) and checks what
-- the inner drruns did: their journals, exit statuses, and stderr (no
-- sanitizer report).
local exec = require "drrun.exec"

runbook { name = "ssh-connect-slow-dns" }

local function read(path)
	local r = exec.run { "cat", path }
	return r.status == 0 and r.stdout or ""
end

step "slow-dns" {
	timeout = "50s",
	run = function(ctx)
		-- the drrun running this step: the parent of the shell it starts
		local self = exec.run { "sh", "-c", 'readlink "/proc/$PPID/exe"' }.stdout:gsub("\n$", "")
		local r = assert(exec.run { "unshare", "-mn", "sh", "blackhole.sh", self, timeout = "40s" })
		if r.status ~= 0 then error("blackhole.sh failed: " .. r.stdout .. r.stderr) end
		local inner = {}
		for _, rb in ipairs { "inner", "cancel" } do
			local x = { rc = tonumber(read(rb .. ".rc")), err = read(rb .. ".err"),
				journal = read(rb .. ".jsonl") }
			x.diag = ("%s.lua: exit %s\nstdout:\n%s\nstderr:\n%s\njournal:\n%s"):format(rb,
				tostring(x.rc), read(rb .. ".out"), x.err, x.journal)
			if x.err:find("AddressSanitizer", 1, true) or x.err:find("runtime error:", 1, true) then
				error("a sanitizer report\n" .. x.diag)
			end
			if x.rc ~= 1 then error("the run must fail, with exit 1\n" .. x.diag) end
			inner[rb] = x
		end
		local j = inner.inner.journal
		if not j:find('"type":"step_end","step":"deadline","status":"completed"', 1, true) then
			error("step deadline did not complete\n" .. inner.inner.diag)
		end
		if not j:find('"type":"step_end","step":"boom"', 1, true) then error("no boom\n" .. inner.inner.diag) end
		-- stuck was cancelled by its step timeout while resolving, and the
		-- run ended before the lookup did
		j = inner.cancel.journal
		if not j:find('"type":"step_end","step":"stuck","status":"failed"', 1, true) then
			error("step stuck did not time out while resolving\n" .. inner.cancel.diag)
		end
		r.status = inner.inner.rc
		return { deadline_ok = true, inner_exit = r.status }
	end,
}
