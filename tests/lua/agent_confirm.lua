-- agent_confirm.lua: not a spec of its own; agent_spec.lua runs it with an
-- ssh-agent whose every signature takes 1.5 s to be confirmed.  The login
-- must succeed through the agent while another step's 20 ms sleeps keep
-- their time.
local ssh = require "drrun.ssh"

runbook { name = "agent-confirm" }

step "login" {
	timeout = "60s",
	run = function()
		local port = tonumber(os.getenv("DRRUN_TEST_SSH_PORTS"):match("%d+"))
		local done, gap = false, 0
		local got = drrun.parallel({ "login", "tick" }, function(what)
			if what == "login" then
				local s = drrun.must(ssh.connect { host = "127.0.0.1", port = port,
					user = os.getenv("DRRUN_TEST_SSH_USER"), agent = true,
					known_hosts = os.getenv("DRRUN_TEST_SSH_KNOWN_HOSTS"), timeout = "30s" })
				local r = drrun.must(s:exec("echo via-agent"))
				done = true
				return r.stdout
			end
			while not done do
				local t = drrun.now()
				drrun.sleep("20ms")
				gap = math.max(gap, drrun.now() - t)
			end
			return gap
		end, { limit = 2 })
		if got[1] ~= "via-agent\n" then error("exec through the agent's login: " .. tostring(got[1])) end
		if got[2] > 0.75 then error(("the loop stalled for %.2fs while the agent asked"):format(got[2])) end
		return { gap = got[2] }
	end,
}
