-- Run by blackhole.sh, where every name takes 3 s to fail to resolve.
local ssh = require "drrun.ssh"

runbook { name = "ssh-slow-dns-inner" }

local function connect(timeout)
	return ssh.connect { host = "slow.drrun.test", port = 22, user = "nobody", key = "/nonexistent",
		known_hosts = "/dev/null", agent = false, timeout = timeout }
end

-- the 1 s timeout holds although resolution takes 3 s
step "deadline" {
	run = function()
		local t0 = drrun.now()
		local s, err, tok = connect("1s")
		local took = drrun.now() - t0
		if s or tok ~= "timeout" then error(("want a timeout, got %s %s"):format(tostring(err), tostring(tok))) end
		if took > 1.8 then error(("the 1s timeout took %.2fs (%s)"):format(took, err)) end
		return { took = took, err = err }
	end,
}

step "boom" {
	after = "deadline",
	run = function() error("boom") end,
}
