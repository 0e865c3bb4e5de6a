-- Retries.  "flaky" fails twice, then succeeds on attempt 3 (delays 100ms,
-- 200ms).  "doomed" always fails: 4 attempts, delays 100ms then capped at
-- 300ms by max_delay.  Attempt counts live in files: nothing else survives
-- between attempts.
local exec = require "drrun.exec"

runbook { name = "retries" }

local function bump(file)
	local r = assert(exec.run {
		"sh", "-c", 'n=$(cat "$1" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$1"; echo $n',
		"sh", file,
	})
	return tonumber(r.stdout)
end

step "flaky" {
	retry = { attempts = 3, delay = "100ms", backoff = 2 },
	run = function()
		local n = bump("flaky.count")
		if n < 3 then
			error("flaky attempt " .. n .. " failed")
		end
		return { seen = n }
	end,
}

step "doomed" {
	after = "flaky",
	retry = { attempts = 4, delay = "100ms", backoff = 10, max_delay = "300ms" },
	run = function()
		error("doomed attempt " .. bump("doomed.count"))
	end,
}
