-- agent_spec.lua: ssh.connect through an ssh-agent that makes the user
-- confirm each signature (`ssh-add -c`) holds up no other step.  The spec
-- starts its own ssh-agent, whose "user" (SSH_ASKPASS) takes 1.5 s to say
-- yes, and runs agent_confirm.lua with a second drrun that has
-- SSH_AUTH_SOCK; that runbook fails if its loop stalled.  Needs the ssh
-- servers of tests/sshd.sh (DRRUN_TEST_SSH_*).
local exec = require "drrun.exec"

runbook { name = "agent-spec" }

local function sh(script, ...)
	local r = assert(exec.run { "sh", "-c", script, "sh", ..., timeout = "90s" })
	if r.status ~= 0 then
		error(("exit %s: %s\n%s%s"):format(tostring(r.status), script, r.stdout, r.stderr), 2)
	end
	return r.stdout
end

step "agent-confirm" {
	timeout = "2m",
	run = function()
		local out = sh([[
			drrun=$(readlink "/proc/$PPID/exe") && d=$(mktemp -d) || exit 90
			printf '#!/bin/sh\nsleep 1.5\nexit 0\n' > "$d/askpass" && chmod +x "$d/askpass"
			eval "$(SSH_ASKPASS="$d/askpass" SSH_ASKPASS_REQUIRE=force DISPLAY=none \
				ssh-agent -s -a "$d/agent.sock")" >/dev/null || exit 91
			trap 'kill "$SSH_AGENT_PID"; rm -rf "$d"' EXIT
			ssh-add -q -c "$DRRUN_TEST_SSH_KEY" 2>&1 || exit 92
			"$drrun" run --no-color --state-dir "$d/state" agent_confirm.lua 2>&1
		]])
		if not out:find("result: completed", 1, true) then error("agent_confirm.lua did not complete:\n" .. out) end
	end,
}
