-- Run by blackhole.sh, where every name takes 3 s to fail to resolve.
local ssh = require "drrun.ssh"

runbook { name = "ssh-slow-dns-cancel" }

local function connect(timeout)
	return ssh.connect { host = "slow.drrun.test", port = 22, user = "nobody", key = "/nonexistent",
		known_hosts = "/dev/null", agent = false, timeout = timeout }
end

-- still resolving when its step times out: cancelled, and the run ends
-- while the lookup is still in the thread pool
step "stuck" {
	timeout = "1500ms",
	run = function() drrun.must(connect("30s")) end,
}
