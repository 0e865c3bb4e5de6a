-- ssh_spec.lua: drrun.ssh against real OpenSSH daemons, run as a runbook;
-- every step must complete.  tests/sshd.sh starts the daemons (N hosts on
-- loopback ports, a lean-shell test user, keys, known_hosts) and writes the
-- DRRUN_TEST_SSH_* exports; without them the first step fails, and so the
-- spec.
--   tests/sshd.sh start DIR && . DIR/env
--   drrun run --state-dir STATE ssh_spec.lua   (from tests/lua; exit 0 = pass)
-- The steps form one chain, so the sshd log read by the host key steps has
-- no other connection in it while they look.  Local files go under
-- STATE/ssh-spec-tmp (run.sh drops the state dir of a passing run); remote
-- files under DRRUN_TEST_SSH_DIR, which the login user may write.
--
-- Not covered here: --dry-run.  run.sh runs every spec without it and a
-- runbook cannot switch it on for itself, so "would run ..." belongs in an
-- integration case (tests/integration/NNN-*/ with `args run ... --dry-run`).
local ssh = require "drrun.ssh"
local exec = require "drrun.exec"
local drrun = require "drrun"

runbook { name = "ssh-spec" }

local USER = os.getenv("DRRUN_TEST_SSH_USER")
local KEY = os.getenv("DRRUN_TEST_SSH_KEY")
local RSA = os.getenv("DRRUN_TEST_SSH_RSA_KEY")
local WRONG = os.getenv("DRRUN_TEST_SSH_WRONG_KEY")
local KH = os.getenv("DRRUN_TEST_SSH_KNOWN_HOSTS")
local DOWN = tonumber(os.getenv("DRRUN_TEST_SSH_DOWN_PORT") or "")
local SHA1_OFF = tonumber(os.getenv("DRRUN_TEST_SSH_SHA1_OFF_PORT") or "")
local RDIR = os.getenv("DRRUN_TEST_SSH_DIR")
local LOG = os.getenv("DRRUN_TEST_SSH_LOG")
local PORTS = {}
for p in (os.getenv("DRRUN_TEST_SSH_PORTS") or ""):gmatch("%d+") do PORTS[#PORTS + 1] = tonumber(p) end

-- ---- helpers ----------------------------------------------------------------

local T = require "lib.spec"
local eq, ok, fails, raises, sh, exists, sha256sum = T.eq, T.ok, T.fails, T.raises, T.sh, T.exists,
	T.sha256sum

-- connection options for port p (the first host by default), overridden by o
local function opts(o)
	local t = { host = "127.0.0.1", port = PORTS[1], user = USER, key = KEY, known_hosts = KH,
		agent = false, timeout = "10s" }
	for k, v in pairs(o or {}) do t[k] = v end
	return t
end

-- a scratch directory under the state dir (run.sh drops the state dir of a
-- passing run), absolute, made empty on first use
local scratch_dir
local function scratch()
	if not scratch_dir then
		scratch_dir = T.state_dir() .. "/ssh-spec-tmp"
		sh('rm -rf "$1" && mkdir -p "$1"', scratch_dir)
	end
	return scratch_dir
end

-- the remote shell's parent: the sshd process of the connection, so two
-- commands with the same answer went over the same session
local function conn_id(s)
	local r = ok(s:exec("echo $PPID"))
	eq(r.status, 0, "echo $PPID")
	return r.stdout
end

-- how many times the sshd log says `what` (a plain string)
local function log_count(what)
	local n = 0
	for line in sh('cat "$1"', LOG):gmatch("[^\n]+") do
		if line:find(what, 1, true) then n = n + 1 end
	end
	return n
end

-- run on this run's steps in a chain: each step waits for the one before
local prev
local function chained(name, def)
	def.after = prev
	prev = name
	step(name)(def)
end

-- ---- steps ----------------------------------------------------------------------

chained("servers", {
	doc = "the daemons of tests/sshd.sh are there (a spec without them fails)",
	run = function()
		for _, name in ipairs { "DRRUN_TEST_SSH_PORTS", "DRRUN_TEST_SSH_USER", "DRRUN_TEST_SSH_KEY",
			"DRRUN_TEST_SSH_RSA_KEY", "DRRUN_TEST_SSH_WRONG_KEY", "DRRUN_TEST_SSH_KNOWN_HOSTS",
			"DRRUN_TEST_SSH_DOWN_PORT", "DRRUN_TEST_SSH_SHA1_OFF_PORT", "DRRUN_TEST_SSH_DIR",
			"DRRUN_TEST_SSH_LOG" } do
			if not os.getenv(name) then
				error(name .. " is not set: run the specs with tests/run.sh, which starts "
					.. "tests/sshd.sh and sources its env", 0)
			end
		end
		assert(#PORTS >= 3, "want at least 3 ports in DRRUN_TEST_SSH_PORTS")
		assert(ssh.libssh2_version:match("^%d+%.%d+"), ssh.libssh2_version)
		local s = ok(ssh.connect(opts()))
		eq(ok(s:exec("id -un")).stdout, USER .. "\n", "login user")
	end,
})

chained("exec", {
	doc = "exit status, stdout and stderr apart, signals; a non-zero status is a result",
	run = function()
		local s = ok(ssh.connect(opts()))
		local r, err, tok = s:exec("echo out; echo err >&2; exit 3")
		assert(r, err)
		eq(err, nil, "err")
		eq(tok, nil, "token")
		eq(r.status, 3, "status")
		eq(r.stdout, "out\n", "stdout")
		eq(r.stderr, "err\n", "stderr (the pid report is removed)")
		eq(r.signal, nil, "signal")
		eq(r.truncated, false, "truncated")
		eq(r.host, "127.0.0.1", "host")
		assert(type(r.duration) == "number" and r.duration >= 0 and r.duration < 10, r.duration)
		r = ok(s:exec("true"))
		eq(r.status, 0, "true")
		eq(r.stdout .. r.stderr, "", "no output")
		for _, code in ipairs { 1, 2, 126, 255 } do
			eq(ok(s:exec("exit " .. code)).status, code, "exit " .. code)
		end
		eq(ok(s:exec("no-such-command-drrun")).status, 127, "command not found")
		-- stderr without a final newline, and stderr only
		r = ok(s:exec("printf 'a\\nb' >&2"))
		eq(r.stderr, "a\nb", "stderr without newline")
		eq(r.stdout, "", "stdout")
		-- killed by a signal: signal name, no status
		r = ok(s:exec("kill -TERM $$; sleep 5"))
		eq(r.signal, "TERM", "signal")
		eq(r.status, nil, "status of a killed command")
		-- binary output, NULs included
		r = ok(s:exec("printf 'a\\000b\\377c'"))
		eq(r.stdout, "a\0b\255c", "binary stdout")
		-- a pty merges the streams (CRLF line ends); the pid report is still removed
		r = ok(s:exec("echo hi; echo err >&2", { pty = true }))
		eq(r.stdout, "hi\r\nerr\r\n", "stdout with a pty")
		eq(r.stderr, "", "stderr with a pty")
		eq(r.status, 0, "status with a pty")
		-- a max_output shorter than the pid report: the report is still removed
		r = ok(s:exec("echo 0123456789; echo abcdefghij >&2", { max_output = 4 }))
		eq(r.stdout, "0123\n[drrun: output truncated: 4 of 11 bytes kept]\n", "tiny max_output, stdout")
		eq(r.stderr, "abcd\n[drrun: output truncated: 4 of 11 bytes kept]\n", "tiny max_output, stderr")
		-- the remote environment: the lean shell, the right port
		r = ok(s:exec("echo $SSH_CONNECTION"))
		eq(tonumber(r.stdout:match("(%d+)%s*$")), PORTS[1], "server port")
		-- commands on one session at once, each on its own channel
		local outs = drrun.parallel({ 1, 2, 3, 4, 5, 6, 7, 8 }, function(i)
			local x = ok(s:exec(("sleep 0.%d; echo %d; echo e%d >&2; exit %d"):format(9 - i, i, i, i)))
			return x.stdout .. x.stderr .. x.status
		end, { limit = 8 })
		for i = 1, 8 do eq(outs[i], ("%d\ne%d\n%d"):format(i, i, i), "parallel exec " .. i) end
		-- misuse raises
		raises(s.exec, s)
		raises(s.exec, s, "true", { max_output = 0 })
		raises(s.exec, s, "true", { timeout = "soon" })
	end,
})

chained("big-output", {
	doc = "10 MB of stdout (and of stderr) arrive whole; max_output cuts with a marker",
	run = function()
		local s = ok(ssh.connect(opts()))
		local line = "0123456789abcdef\n"
		local want = line:rep(10000000 // #line + 1):sub(1, 10000000)
		local r = ok(s:exec("yes 0123456789abcdef | head -c 10000000"))
		eq(r.status, 0, "status")
		eq(#r.stdout, 10000000, "10 MB length")
		assert(r.stdout == want, "10 MB of stdout differs")
		eq(r.truncated, false, "truncated")
		-- both streams at once, 5 MB each, interleaved
		r = ok(s:exec("yes 0123456789abcdef | head -c 5000000 >&2 & yes 0123456789abcdef | head -c 5000000; wait"))
		eq(#r.stdout, 5000000, "stdout length")
		eq(#r.stderr, 5000000, "stderr length")
		assert(r.stderr == want:sub(1, 5000000), "5 MB of stderr differs")
		-- max_output: the first bytes, a marker, the total
		r = ok(s:exec("yes 0123456789abcdef | head -c 10000000; echo tail >&2", { max_output = 1000 }))
		eq(r.truncated, true, "truncated")
		eq(r.stdout, want:sub(1, 1000) .. "\n[drrun: output truncated: 1000 of 10000000 bytes kept]\n",
			"truncated stdout")
		eq(r.stderr, "tail\n", "stderr under the limit is whole")
		eq(r.status, 0, "status after truncation")
	end,
})

chained("stdin", {
	doc = "stdin is sent and closed; none means an empty stdin",
	run = function()
		local s = ok(ssh.connect(opts()))
		eq(ok(s:exec("cat", { stdin = "hello\n" })).stdout, "hello\n", "stdin")
		eq(ok(s:exec("cat", { stdin = "" })).stdout, "", "empty stdin")
		local t0 = drrun.now()
		eq(ok(s:exec("cat")).stdout, "", "no stdin: EOF at once")
		assert(drrun.now() - t0 < 5, "cat without stdin waited")
		local bin = "\0\1\2\255\r\n"
		eq(ok(s:exec("od -An -tx1 | tr -d ' \\n'", { stdin = bin })).stdout, "000102ff0d0a", "binary stdin")
		-- 8 MB both ways: more than every window and buffer on the way
		local big = ("stdin-line-0123456789\n"):rep(8000000 // 22)
		local r = ok(s:exec("sha256sum; wc -c >&2", { stdin = big }))
		eq(r.stdout:match("^(%x+)"), require("drrun.crypto").sha256_hex(big), "sha256 of 8 MB of stdin")
		eq(r.stderr, "0\n", "stderr") -- wc read nothing: sha256sum had it all
		eq(ok(s:exec("cat", { stdin = big })).stdout == big, true, "8 MB echoed back")
	end,
})

chained("timeout", {
	doc = "a command past its timeout: nil, \"timeout: ...\", \"timeout\", and it is killed remotely",
	run = function()
		local s = ok(ssh.connect(opts()))
		-- a fractional length nobody else uses, so the check finds only ours
		local secs = ("100.%04d"):format(math.random(1000, 9999))
		local pat = ("[s]leep %s"):format(secs:gsub("%.", "[.]"))
		local t0 = drrun.now()
		local err = fails("timeout", s:exec("sleep " .. secs, { timeout = "1s" }))
		local took = drrun.now() - t0
		assert(took >= 0.9 and took < 5, ("took %.2fs: %s"):format(took, err))
		assert(err:find("sleep " .. secs, 1, true), err)
		-- the kill ran before exec returned: nothing of the command is left
		-- ([s] keeps pgrep's own shell from matching)
		local r = ok(s:exec(("pgrep -f -a '%s'"):format(pat)))
		eq(r.status, 1, "pgrep status (1: no process): " .. r.stdout)
		-- the session is still good, and so is a command in the background
		-- of a timed-out one (its whole process group goes)
		eq(ok(s:exec("echo again")).stdout, "again\n", "exec after a timeout")
		err = fails("timeout", s:exec(("sleep %s & sleep %s; wait"):format(secs, secs), { timeout = 0.5 }))
		r = ok(s:exec(("pgrep -f -a '%s'"):format(pat)))
		eq(r.status, 1, "pgrep after a timed-out group: " .. r.stdout)
		-- with a pty too
		fails("timeout", s:exec("sleep " .. secs, { timeout = 0.5, pty = true }))
		r = ok(s:exec(("pgrep -f -a '%s'"):format(pat)))
		eq(r.status, 1, "pgrep after a timeout with a pty: " .. r.stdout)
		-- a timeout that is not reached changes nothing
		eq(ok(s:exec("sleep 0.2; echo done", { timeout = "5s" })).stdout, "done\n", "in time")
	end,
})

chained("sftp", {
	doc = "put and get 100 MB; sha256 as sha256sum says; get leaves no partial file",
	timeout = "5m",
	run = function()
		local s = ok(ssh.connect(opts()))
		local dir = scratch()
		local src, back = dir .. "/big.bin", dir .. "/big.back"
		local remote = RDIR .. "/big-" .. math.random(1e6) .. ".bin"
		local r = ok(exec.run { "sh", "-c", 'head -c 100000000 /dev/urandom > "$1"', "sh", src })
		eq(r.status, 0, "making 100 MB")
		local want = sha256sum(src)
		local p = ok(s:put(src, remote, { mode = tonumber("640", 8) }))
		eq(p.bytes, 100000000, "bytes put")
		eq(p.sha256, want, "sha256 of what was put")
		assert(type(p.duration) == "number", "duration")
		-- what the remote side has
		r = ok(s:exec(("sha256sum %s; stat -c %%a %s"):format(remote, remote)))
		eq(r.stdout, ("%s  %s\n640\n"):format(want, remote), "remote sha256 and mode")
		local g = ok(s:get(remote, back))
		eq(g.bytes, 100000000, "bytes got")
		eq(g.sha256, want, "sha256 of what was got")
		eq(sha256sum(back), want, "sha256sum of the local copy")
		eq(exists(back .. ".drrun-part"), false, "temp file left")
		eq(sh('ls -a "$1"', dir):find(".drrun-part", 1, true), nil, "a temp file left")
		-- the temporary name is unique: a file of that name that is not ours
		-- is left alone, and two gets into one file at once do not mix
		local theirs = back .. "2.drrun-part"
		sh('printf theirs > "$1"', theirs)
		local twice = drrun.parallel({ 1, 2 }, function()
			return ok(s:get(remote, back .. "2")).sha256
		end, { limit = 2 })
		eq(twice[1], want, "first of two gets into one file")
		eq(twice[2], want, "second of two gets into one file")
		eq(sha256sum(back .. "2"), want, "sha256sum of the file two gets wrote")
		eq(sh('cat "$1"', theirs), "theirs", "a file named like the temp file")
		sh('rm -f "$1"', theirs)
		eq(sh('ls -a "$1"', dir):find(".drrun-part", 1, true), nil, "a temp file left by two gets")
		-- put and get at once on one session (one SFTP channel)
		local small = dir .. "/small.txt"
		sh('printf "small file\\n" > "$1"', small)
		local both = drrun.parallel({ 1, 2, 3, 4 }, function(i)
			if i % 2 == 1 then return ok(s:put(small, RDIR .. "/small-" .. i)).sha256 end
			return ok(s:get(remote, dir .. "/big.back" .. i)).sha256
		end, { limit = 4 })
		eq(both[1], sha256sum(small), "parallel put")
		eq(both[2], want, "parallel get")
		-- a missing remote file: nil, "sftp: ...", no local file at all
		local miss = dir .. "/missing.out"
		local err = fails("sftp", s:get(RDIR .. "/no-such-file", miss))
		assert(err:find("no-such-file", 1, true), err)
		eq(exists(miss), false, "local file after a failed get")
		eq(exists(miss .. ".drrun-part"), false, "temp file after a failed get")
		eq(sh('ls -a "$1"', dir):find(".drrun-part", 1, true), nil, "a temp file after a failed get")
		-- an existing local file is left alone by a failed get
		sh('printf keep > "$1"', miss)
		fails("sftp", s:get(RDIR .. "/no-such-file", miss))
		eq(sh('cat "$1"', miss), "keep", "local file overwritten by a failed get")
		-- a remote directory nobody may write; a missing local file
		fails("sftp", s:put(small, "/proc/drrun-no"))
		fails("io", s:put(dir .. "/no-such-local", RDIR .. "/x"))
		-- the session is still good after SFTP errors
		eq(ok(s:exec("echo fine")).stdout, "fine\n", "exec after SFTP errors")
		sh('rm -f "$1" "$2" "$2"2 "$2"4', src, back)
		ok(s:exec("rm -f " .. remote))
	end,
})

chained("hostkey-mismatch", {
	doc = "a different key on record: token hostkey, and no credential is sent",
	run = function()
		local dir = scratch()
		sh('rm -f "$1/other" "$1/other.pub"; ssh-keygen -q -t ed25519 -N "" -f "$1/other"', dir)
		local kh = dir .. "/known_hosts.mismatch"
		sh('{ printf "[127.0.0.1]:%s " "$2"; cut -d" " -f1,2 "$1/other.pub"; } > "$3"', dir,
			tostring(PORTS[2]), kh)
		local before = sh('cat "$1"', kh)
		local conns, auths = log_count("Connection from"), log_count("publickey")
		local err = fails("hostkey", ssh.connect(opts { port = PORTS[2], known_hosts = kh }))
		assert(err:find("does not match", 1, true), err)
		-- accept-new records only unknown hosts, never a changed key
		fails("hostkey", ssh.connect(opts { port = PORTS[2], known_hosts = kh, host_key = "accept-new" }))
		eq(sh('cat "$1"', kh), before, "known_hosts after a mismatch")
		-- sshd saw the connections close before any authentication
		local closed = 0
		for _ = 1, 100 do
			closed = log_count("[preauth]") -- "Connection closed by ... [preauth]"
			if log_count("Connection from") == conns + 2 and closed > 0 then break end
			drrun.sleep(0.05)
		end
		eq(log_count("Connection from"), conns + 2, "connections seen by sshd")
		eq(log_count("publickey"), auths, "public key attempts seen by sshd")
		local text = sh('cat "$1"', LOG)
		local last = text:sub(-2000)
		assert(not last:find("authenticating user", 1, true), "sshd saw a user name:\n" .. last)
	end,
})

chained("hostkey-unknown", {
	doc = "unknown host: strict refuses; accept-new records it, then strict accepts",
	run = function()
		local dir = scratch()
		local kh = dir .. "/known_hosts.new"
		sh('rm -f "$1"', kh)
		-- strict is the default: no file, an empty file, a file without this host
		local err = fails("hostkey", ssh.connect(opts { port = PORTS[3], known_hosts = kh }))
		assert(err:find("accept-new", 1, true), err)
		sh(': > "$1"', kh)
		fails("hostkey", ssh.connect(opts { port = PORTS[3], known_hosts = kh, host_key = "strict" }))
		sh('{ echo "# a comment ssh(1) keeps"; grep -v "]:$2 " "$1"; } > "$3"', KH, tostring(PORTS[3]), kh)
		fails("hostkey", ssh.connect(opts { port = PORTS[3], known_hosts = kh }))
		local lines = select(2, sh('cat "$1"', kh):gsub("\n", ""))
		-- accept-new: connects, and the file gains the host's line
		local s = ok(ssh.connect(opts { port = PORTS[3], known_hosts = kh, host_key = "accept-new" }))
		eq(ok(s:exec("echo new")).stdout, "new\n", "exec over accept-new")
		local text = sh('cat "$1"', kh)
		eq(select(2, text:gsub("\n", "")), lines + 1, "lines in known_hosts")
		local key = sh('cut -d" " -f1,2 "$1"', os.getenv("DRRUN_TEST_SSH_HOSTKEY")):gsub("\n$", "")
		assert(text:find(("\n[127.0.0.1]:%d %s\n"):format(PORTS[3], key), 1, true),
			"known_hosts lacks the new host:\n" .. text)
		-- appended: everything that was there is there as it was
		eq(text:sub(1, #"# a comment ssh(1) keeps\n"), "# a comment ssh(1) keeps\n", "comment kept")
		-- ssh(1) agrees with what was recorded
		sh('ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$1" '
			.. '-o IdentitiesOnly=yes -i "$2" -p "$3" "$4"@127.0.0.1 true', kh, KEY, tostring(PORTS[3]), USER)
		-- and strict now accepts it (a new session: the policy is part of the pool key)
		local s2, reused = ok(ssh.connect(opts { port = PORTS[3], known_hosts = kh }))
		eq(reused, nil, "strict reused the accept-new session")
		eq(ok(s2:exec("echo strict")).stdout, "strict\n", "exec over strict")
		-- a second accept-new adds nothing
		s:close()
		ok(ssh.connect(opts { port = PORTS[3], known_hosts = kh, host_key = "accept-new" }))
		eq(select(2, sh('cat "$1"', kh):gsub("\n", "")), lines + 1, "lines after a second accept-new")
		-- the bad policy name is a mistake in the runbook
		raises(ssh.connect, opts { host_key = "yes" })
	end,
})

chained("auth", {
	doc = "a key the server does not know: token auth; the RSA key works",
	run = function()
		local err = fails("auth", ssh.connect(opts { key = WRONG }))
		assert(err:find(USER, 1, true), err)
		fails("auth", ssh.connect(opts { key = scratch() .. "/no-such-key" }))
		fails("auth", ssh.connect(opts { user = "root" }))
		local s = ok(ssh.connect(opts { key = RSA }))
		eq(ok(s:exec("echo rsa")).stdout, "rsa\n", "exec with the RSA key")
		-- a server that refuses SHA-1 RSA signatures (OpenSSH >= 8.8 by default):
		-- the ed25519 key works; the RSA key fails with a message that says why
		-- when this libssh2 cannot sign with rsa-sha2-256
		s = ok(ssh.connect(opts { port = SHA1_OFF }))
		eq(ok(s:exec("echo ed")).stdout, "ed\n", "ed25519 where ssh-rsa is off")
		local r, e, tok = ssh.connect(opts { key = RSA, port = SHA1_OFF })
		if not r then
			fails("auth", r, e, tok)
			assert(e:find("ssh-rsa", 1, true) and e:find("1.11", 1, true), e)
		end
	end,
})

chained("down-host", {
	doc = "ssh.run over every host plus one that is down: the others succeed, in host order",
	run = function()
		local hosts = {}
		for i, p in ipairs(PORTS) do
			hosts[#hosts + 1] = ("%s@127.0.0.1:%d"):format(USER, p)
			if i == 1 then hosts[#hosts + 1] = { host = "127.0.0.1", port = DOWN, name = "down" } end
		end
		local t0 = drrun.now()
		local res = ssh.run(hosts, "echo $SSH_CONNECTION", { key = KEY, known_hosts = KH, agent = false,
			limit = 50, connect_timeout = "10s" })
		assert(drrun.now() - t0 < 10, "ssh.run took too long")
		eq(#res, #PORTS + 1, "results")
		local j = 0
		for i, r in ipairs(res) do
			if i == 2 then
				eq(r.name, "down", "name of the down host")
				eq(r.ok, false, "ok of the down host")
				eq(r.token, "refused", "token of the down host")
				assert(r.error:match("^refused: "), r.error)
				eq(r.port, DOWN, "port")
			else
				j = j + 1
				assert(r.ok, ("host %d: %s"):format(i, tostring(r.error)))
				eq(r.status, 0, "status")
				eq(r.port, PORTS[j], "port, in host order")
				eq(r.name, "127.0.0.1", "name")
				eq(tonumber(r.stdout:match("(%d+)%s*$")), PORTS[j], "the server port that answered")
			end
		end
		-- a failing command is a result, ok = false with its status
		res = ssh.run({ hosts[1] }, "echo no >&2; exit 4", { key = KEY, known_hosts = KH, agent = false })
		eq(res[1].ok, false, "ok")
		eq(res[1].status, 4, "status")
		eq(res[1].stderr, "no\n", "stderr")
		eq(res[1].token, nil, "token")
		-- a timeout in ssh.run is a failed host with token timeout
		res = ssh.run({ hosts[1], hosts[3] }, "sleep 30", { key = KEY, known_hosts = KH, agent = false,
			timeout = "300ms" })
		for _, r in ipairs(res) do
			eq(r.ok, false, "ok after timeout")
			eq(r.token, "timeout", "token")
		end
	end,
})

chained("pooling", {
	doc = "one session per host, user and key for the run; ssh.run reuses them",
	run = function()
		local p = PORTS[#PORTS]
		-- (earlier steps may have left a session to p in the pool already)
		local a = ok(ssh.connect(opts { port = p }))
		local conns = log_count("Connection from")
		local b, rb = ok(ssh.connect(opts { port = p }))
		eq(rb, true, "second connect reused")
		eq(conn_id(a), conn_id(b), "the same sshd connection")
		eq(log_count("Connection from"), conns, "connections")
		-- another key or user is another session
		local c, rc = ok(ssh.connect(opts { port = p, key = RSA }))
		eq(rc, nil, "another key reused a session")
		assert(conn_id(c) ~= conn_id(a), "another key, same connection")
		-- ssh.run twice: the same connections
		local hosts = {}
		for i, port in ipairs(PORTS) do hosts[i] = { host = "127.0.0.1", port = port } end
		local o = { user = USER, key = KEY, known_hosts = KH, agent = false }
		local first = ssh.run(hosts, "echo $PPID", o)
		conns = log_count("Connection from")
		local second = ssh.run(hosts, "echo $PPID", o)
		for i = 1, #hosts do
			assert(first[i].ok and second[i].ok, "ssh.run failed")
			eq(second[i].stdout, first[i].stdout, "connection of host " .. i)
		end
		eq(log_count("Connection from"), conns, "new connections on the second ssh.run")
		eq(first[#hosts].stdout, conn_id(a), "ssh.run uses connect's pool")
	end,
})

chained("config", {
	doc = "ssh.config: Host patterns, negation, first value wins; ssh.run by alias",
	run = function()
		local dir = scratch()
		local path = dir .. "/ssh_config"
		local text = ([[
# drrun ssh_spec: an OpenSSH client config
Host web1
    HostName 127.0.0.1
    Port %d
Host web2 web-two
    HOSTNAME = 127.0.0.1
    Port=%d
Host web2
    Port 1          # never used: the first value wins
Host db* !db-down
    HostName "127.0.0.1"
    Port %d
Host db-down
    HostName 127.0.0.1
    Port %d
Match host nothing
    Port 2
Host *
    User %s
    IdentityFile %s
    IdentityFile %s
    UserKnownHostsFile %s
    StrictHostKeyChecking yes
]]):format(PORTS[1], PORTS[2], PORTS[3], DOWN, USER, KEY, WRONG, KH)
		sh('cat > "$1"', path) -- an empty file first
		ok(exec.run { "sh", "-c", 'cat > "$1"', "sh", path, stdin = text })
		local cfg = ssh.config(path)
		local function res(alias) return cfg:resolve(alias) end
		eq(res("web1").port, PORTS[1], "web1 port")
		eq(res("web1").host, "127.0.0.1", "web1 HostName")
		eq(res("web1").user, USER, "User from Host *")
		eq(res("web1").key, KEY, "the first IdentityFile")
		eq(res("web1").known_hosts, KH, "UserKnownHostsFile")
		eq(res("web1").host_key, nil, "StrictHostKeyChecking yes is strict")
		eq(res("web2").port, PORTS[2], "web2: the first Port wins")
		eq(res("web-two").port, PORTS[2], "second pattern of a Host line")
		eq(res("db7").port, PORTS[3], "wildcard")
		eq(res("db-down").port, DOWN, "negated pattern")
		eq(res("other").port, 22, "no Host block")
		eq(res("other").host, "other", "no HostName")
		eq(res("other").user, USER, "Host * still applies")
		-- ssh.hosts resolves names; explicit fields win
		local hs = ssh.hosts({ "web1", { host = "web2", user = "someone" } }, { config = path })
		eq(hs[1].port, PORTS[1], "hosts: port")
		eq(hs[1].name, "web1", "hosts: name")
		eq(hs[2].user, "someone", "hosts: explicit user")
		-- ssh.run by alias
		local out = ssh.run({ "web1", "web2", "db-a", "db-down" }, "echo $SSH_CONNECTION",
			{ config = path, agent = false })
		for i, want in ipairs { PORTS[1], PORTS[2], PORTS[3] } do
			local r = out[i]
			assert(r.ok, ("%s: %s"):format(r.name, tostring(r.error)))
			eq(tonumber(r.stdout:match("(%d+)%s*$")), want, r.name .. " reached port")
		end
		eq(out[1].name, "web1", "name")
		eq(out[4].name, "db-down", "name")
		eq(out[4].token, "refused", "db-down")
		-- StrictHostKeyChecking accept-new, ~ and %d in paths
		local p2 = dir .. "/ssh_config2"
		ok(exec.run { "sh", "-c", 'cat > "$1"', "sh", p2, stdin = "Host x\n  StrictHostKeyChecking accept-new\n"
			.. "  IdentityFile ~/.ssh/id_x\n  UserKnownHostsFile %d/kh other\n" })
		local home = os.getenv("HOME")
		local x = ssh.config(p2):resolve("x")
		eq(x.host_key, "accept-new", "accept-new")
		eq(x.key, home .. "/.ssh/id_x", "~ in IdentityFile")
		eq(x.known_hosts, home .. "/kh", "%d and the first of several files")
		-- a missing file is an empty config; a broken one raises with its line
		eq(ssh.config(dir .. "/no-such-config"):resolve("h").port, 22, "missing config")
		ok(exec.run { "sh", "-c", 'cat > "$1"', "sh", p2, stdin = "Host a\nPort\n" })
		assert(raises(ssh.config, p2):find(":2:", 1, true), "line number")
	end,
})

chained("close", {
	doc = "session:close() ends the connection; the next connect makes a new one",
	run = function()
		local p = PORTS[2]
		local a = ok(ssh.connect(opts { port = p }))
		local id = conn_id(a)
		assert(tostring(a):find("127.0.0.1:" .. p, 1, true), tostring(a))
		local b = ok(ssh.connect(opts { port = p })) -- another handle on it
		a:close()
		a:close() -- twice is fine
		eq(tostring(a), "ssh session (closed)", "tostring")
		assert(raises(a.exec, a, "true"):find("closed", 1, true), "exec on a closed session")
		raises(a.put, a, "x", "y")
		-- the other handle still holds the connection; a new connect does not get it
		eq(conn_id(b), id, "the other handle")
		local c, reused = ok(ssh.connect(opts { port = p }))
		eq(reused, nil, "connect after close reused")
		assert(conn_id(c) ~= id, "connect after close: same connection")
		b:close()
		-- a <close> variable going out of scope keeps the pooled session
		do
			local d <close> = ok(ssh.connect(opts { port = p }))
			eq(conn_id(d), conn_id(c), "pooled")
		end
		local _, again = ok(ssh.connect(opts { port = p }))
		eq(again, true, "pooled after a scoped close")
	end,
})

chained("misuse", {
	doc = "mistakes in the runbook raise; failures to reach the world return nil, err, token",
	run = function()
		raises(ssh.connect)
		raises(ssh.connect, { port = 22 })
		raises(ssh.connect, opts { port = 70000 })
		raises(ssh.connect, opts { timeout = "soon" })
		raises(ssh.run, "127.0.0.1", "true")
		raises(ssh.run, {}, 42)
		eq(#ssh.run({}, "true"), 0, "no hosts")
		fails("dns", ssh.connect(opts { host = "drrun-test.invalid" }))
		fails("refused", ssh.connect(opts { port = DOWN }))
	end,
})

chained("sftp-off-loop", {
	doc = "put reads its local file off the event loop: a source that is slow to give its bytes (a FIFO) stalls no other step",
	timeout = "1m",
	run = function()
		local s = ok(ssh.connect(opts()))
		local fifo = scratch() .. "/put.fifo"
		local remote = RDIR .. "/fifo-" .. math.random(1e6)
		sh('rm -f "$1" && mkfifo "$1"', fifo)
		local done, gap = false, 0
		local got = drrun.parallel({ "write", "put", "tick" }, function(what)
			if what == "write" then
				-- opens at once (then put's open does not wait), writes 1.5 s later
				sh('exec 3>"$1"; sleep 1.5; printf "slow bytes" >&3', fifo)
				return "written"
			elseif what == "put" then
				local r = ok(s:put(fifo, remote))
				done = true
				return r.bytes
			end
			while not done do
				local t = drrun.now()
				drrun.sleep("20ms")
				gap = math.max(gap, drrun.now() - t)
			end
			return gap
		end, { limit = 3 })
		eq(got[2], 10, "bytes put from the FIFO")
		if gap > 0.75 then error(("the loop stalled for %.2fs while put waited on its file"):format(gap)) end
		eq(ok(s:exec("cat " .. remote .. "; rm -f " .. remote)).stdout, "slow bytes", "what was put")
		sh('rm -f "$1"', fifo)
	end,
})

chained("config-off-loop", {
	doc = "ssh.config reads its file off the event loop: a FIFO with no writer yet holds up no other step",
	run = function()
		local fifo = scratch() .. "/config.fifo"
		sh('rm -f "$1" && mkfifo "$1"', fifo)
		local got = drrun.parallel({ "read", "write" }, function(what)
			if what == "read" then return ssh.config(fifo):resolve("x").port end
			-- only runs while the reader waits if the loop is free
			drrun.sleep("200ms")
			sh('printf "Host x\\n  Port 2222\\n" > "$1"', fifo)
			return "written"
		end, { limit = 2 })
		eq(got[1], 2222, "the port read from the FIFO")
		eq(got[2], "written", "the writer")
		-- a file that cannot be read is an error naming it; a missing one is empty
		sh('rm -f "$1" && mkdir "$1"', fifo)
		assert(raises(ssh.config, fifo):find("config.fifo", 1, true), "error names the file")
		sh('rmdir "$1"', fifo)
	end,
})

chained("file-cache", {
	doc = "the key and known_hosts are read once per version of the file (path, inode, size, mtime)",
	run = function()
		local dir = scratch()
		local key, kh = dir .. "/cache-key", dir .. "/cache-kh"
		sh('cp "$1" "$2" && cp "$1.pub" "$2.pub" && cp "$3" "$4"', KEY, key, KH, kh)
		local function login(what)
			local s = ok(ssh.connect(opts { key = key, known_hosts = kh }))
			eq(ok(s:exec("echo in")).stdout, "in\n", what)
			s:close() -- the next connect is a new connection
		end
		login("first login")
		-- both files scrambled in place, keeping size and mtime: the run's
		-- copies are still good
		sh([[for f in "$1" "$2"; do
			cp -p "$f" "$f.orig" && sz=$(stat -c %s "$f") &&
			head -c "$sz" /dev/zero | tr '\0' x | dd of="$f" conv=notrunc status=none &&
			touch -r "$f.orig" "$f" || exit 1
		done]], key, kh)
		login("login with the files changed but not their version")
		-- a new version (another mtime) is read again: the scrambled files
		sh('touch -d "2000-01-01" "$1" "$2"', key, kh)
		fails("hostkey", ssh.connect(opts { key = key, known_hosts = kh }))
		sh('cp "$1.orig" "$1" && cp "$2.orig" "$2"', kh, key)
		login("login with the files restored")
		sh('rm -f "$1" "$1.pub" "$1.orig" "$2" "$2.orig"', key, kh)
	end,
})

chained("cleanup", {
	doc = "remove the local scratch files",
	run = function()
		if scratch_dir then sh('rm -rf "$1"', scratch_dir) end
	end,
})
