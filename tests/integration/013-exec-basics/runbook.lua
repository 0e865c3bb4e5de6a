-- exec.run: status and both streams captured; a non-zero status is a result;
-- a program that cannot start gives nil, err; env, cwd, stdin and timeout
-- options; a signal is reported.
local exec = require "drrun.exec"

runbook { name = "exec-basics" }

step "status-and-streams" {
	run = function()
		local r = assert(exec.run { "sh", "-c", "echo out; echo err >&2; exit 3" })
		return { status = r.status, stdout = r.stdout, stderr = r.stderr,
			duration = type(r.duration) }
	end,
}

step "missing-binary" {
	run = function()
		local r, err = exec.run { "./no-such-program-here" }
		if r ~= nil then
			error("expected nil for a program that cannot start")
		end
		return { err = err, err_type = type(err) }
	end,
}

step "env-cwd-stdin" {
	run = function()
		local r = assert(exec.run {
			"sh", "-c", 'printf "%s|%s|" "$DRRUN_TEST_VAR" "$(pwd)"; cat',
			env = { DRRUN_TEST_VAR = "from-env" },
			cwd = "sub",
			stdin = "from-stdin",
		})
		return r.stdout
	end,
}

step "signal" {
	run = function()
		local r = assert(exec.run { "sh", "-c", "kill -TERM $$" })
		return { signal = r.signal }
	end,
}

step "exec-timeout" {
	run = function()
		local r, err = exec.run { "sleep", "30", timeout = "500ms" }
		return { r = r == nil, err = err }
	end,
}
