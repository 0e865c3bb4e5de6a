local exec = require "drrun.exec"

runbook { name = "exec-output-cap" }

local FIVE_K = "head -c 5000 /dev/zero | tr '\\0' a; printf err >&2"

step "cap" {
	run = function()
		local r = exec.run { "sh", "-c", FIVE_K, max_output = 1000 }
		local a = r.stdout:match("^a*")
		return { kept = #a, truncated = r.truncated, note = r.stdout:sub(#a + 1), stderr = r.stderr,
			stderr_truncated = r.stderr:find("truncated", 1, true) ~= nil }
	end,
}

step "fits" {
	run = function()
		local r = exec.run { "sh", "-c", FIVE_K, max_output = 5000 }
		return { len = #r.stdout, truncated = r.truncated }
	end,
}
