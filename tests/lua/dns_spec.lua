-- dns_spec.lua: drrun.dns against real Knot DNS (tests/knot.sh: a primary
-- taking TSIG-signed updates, a secondary fed by NOTIFY/IXFR), with BIND's
-- dig, Knot's kdig and BIND's nsupdate as independent clients.  The spec
-- starts its own Knot pair under the state dir and stops it at the end (or
-- in its rollback when a step failed).
-- Every step must complete.
local dns = require "drrun.dns"
local dcore = require "drrun.dns.core"
local exec = require "drrun.exec"
local drrun = require "drrun"

runbook { name = "dns-spec" }

local T = require "lib.spec"
local eq, ok, fails, raises_with, sh = T.eq, T.ok, T.fails, T.raises_with, T.sh

local E = {} -- DRRUN_TEST_KNOT... of the Knot pair
local DIR

local function port(addr) return addr:match(":(%d+)$") end

-- dig's (or kdig's) answer lines for name/type at server, "TTL TYPE VALUE"
local function dig(server, name, t, tool)
	local out = sh((tool or "dig") .. ' +norec +noall +answer @127.0.0.1 -p "$1" "$2" "$3"',
		port(server), name, t)
	local lines = {}
	for ttl, ty, v in out:gmatch("%S+%s+(%d+)%s+IN%s+(%S+)%s+([^\n]+)") do
		lines[#lines + 1] = ttl .. " " .. ty .. " " .. v
	end
	table.sort(lines)
	return table.concat(lines, "\n")
end

local function nsupdate(script)
	local r = assert(exec.run { "nsupdate", "-y", "hmac-sha256:drrun-key:" .. E.SECRET,
		stdin = ("server 127.0.0.1 %s\nzone example.test.\n%s\nsend\n"):format(port(E.KNOT), script) })
	eq(r.status, 0, "nsupdate: " .. r.stderr)
end

local function key(o)
	local k = { name = "drrun-key", algorithm = "hmac-sha256", secret = E.SECRET }
	for kk, v in pairs(o or {}) do k[kk] = v end
	return k
end

local function switch(o)
	local t = { provider = "rfc2136", server = E.KNOT, zone = "example.test.", key = key(),
		name = "www.example.test.", type = "A", wait_servers = { E.KNOT, E.KNOT2 },
		wait_timeout = "10s", interval = "100ms" }
	for k, v in pairs(o or {}) do t[k] = v end
	return dns.switch(t)
end

step "start-knot" {
	run = function()
		DIR = T.state_dir() .. "/knot"
		T.run { "../knot.sh", "start", DIR }
		for k, v in sh('cat "$1"', DIR .. "/env"):gmatch("export DRRUN_TEST_([%w_]+)=([^\n]*)") do
			E[k] = v
		end
		E.SECRET = E.TSIG_SECRET
		drrun.redact(E.SECRET)
		ok(E.KNOT and E.KNOT2 and E.SECRET, "knot.sh wrote its env")
	end,
	-- a later step failed: the rollback stops the servers
	rollback = function() T.run { "../knot.sh", "stop", DIR } end,
}

step "query-every-type" {
	after = "start-knot",
	run = function()
		local want = {
			{ "www.example.test", "A", "192.0.2.10", 300 },
			{ "www.example.test", "AAAA", "2001:db8::10", 300 },
			{ "mail.example.test", "MX", "10 mx.example.test.", 60 },
			{ "txt.example.test", "TXT", '"v=spf1 -all"', 60 },
			{ "srv.example.test", "SRV", "0 5 5060 sip.example.test.", 60 },
			{ "caa.example.test", "CAA", '0 issue "letsencrypt.org"', 60 },
			{ "example.test", "NS", "ns1.example.test.", 60 },
		}
		for _, w in ipairs(want) do
			local r = ok(dns.query { name = w[1], type = w[2], server = E.KNOT })
			eq(r.rcode, "NOERROR", w[2])
			eq(#r.answers, 1, w[2] .. " answers")
			eq(r.answers[1].value, w[3], w[2] .. " value")
			eq(r.answers[1].ttl, w[4], w[2] .. " ttl")
			eq(r.answers[1].name, (w[1] .. "."), w[2] .. " name")
			eq(r.aa, true, "authoritative")
			-- BIND's dig reads the same
			T.has(dig(E.KNOT, w[1], w[2]), w[4] .. " " .. w[2] .. " " .. w[3], "dig " .. w[2])
		end
		local soa = ok(dns.query { name = "example.test", type = "SOA", server = E.KNOT })
		eq(soa.answers[1].serial, 1, "SOA serial")
		local nx = ok(dns.query { name = "nothing.example.test", type = "A", server = E.KNOT })
		eq(nx.rcode, "NXDOMAIN", "a name that is not there")
		eq(nx.authority[1].type, "SOA", "with the zone's SOA")
		-- the NS answer carries ns1's glue: compressed names decompressed
		local ns = ok(dns.query { name = "example.test", type = "NS", server = E.KNOT })
		eq(ns.additional[1].name, "ns1.example.test.", "glue name")
		eq(ns.additional[1].value, "127.0.0.1", "glue")
		eq(ns.edns.udp_size > 0, true, "EDNS0 answered")
		-- over TCP on request
		local tr = ok(dns.query { name = "www.example.test", type = "A", server = E.KNOT, tcp = true })
		eq(tr.tcp, true, "went over TCP")
		eq(tr.answers[1].value, "192.0.2.10", "TCP answer")
	end,
}

step "random-ids-and-ports" {
	after = "query-every-type",
	run = function()
		local ids, ports, nid, nport = {}, {}, 0, 0
		local list = {}
		for i = 1, 40 do list[i] = i end
		local res = drrun.parallel(list, function()
			return ok(dns.query { name = "www.example.test", server = E.KNOT })
		end, { limit = 40 })
		for i = 1, 40 do
			local r = res[i]
			if not ids[r.id] then ids[r.id], nid = true, nid + 1 end
			if not ports[r.source_port] then ports[r.source_port], nport = true, nport + 1 end
			eq(r.answers[1].value, "192.0.2.10", "every answer matched its query")
		end
		-- 16 random bits each: 40 draws collide rarely; a counter or a fixed
		-- port would give 1 (or 40 in a row, which the >= also allows)
		eq(nid >= 36, true, ("distinct IDs: %d of 40"):format(nid))
		eq(nport >= 36, true, ("distinct source ports: %d of 40"):format(nport))
	end,
}

step "failures-and-bad-input" {
	after = "random-ids-and-ports",
	run = function()
		-- a loopback port nothing listens on: ICMP port unreachable
		local closed = "127.0.0.1:" .. sh([[/usr/bin/python3 -c 'import socket; s=socket.socket(type=socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]):gsub("%s", "")
		fails("refused", dns.query { name = "www.example.test", server = closed, timeout = "500ms", retries = 0 })
		raises_with("not an IP address", dns.query, { name = "www.example.test", server = "ns1.example.test:53" })
		raises_with("longer than 63", dns.query, { name = ("a"):rep(64) .. ".test", server = E.KNOT })
		raises_with("longer than 255", dns.query, { name = (("b"):rep(63) .. "."):rep(4), server = E.KNOT })
		raises_with("is not a record type", dns.query, { name = "x.test", type = "AX", server = E.KNOT })
		raises_with("to[1] '300.1.1.1': '300.1.1.1' is not an IPv4 address", switch, { to = { "300.1.1.1" } })
		raises_with("not an IPv6 address", switch, { type = "AAAA", to = { "192.0.2.1" } })
		-- nothing was sent: the zone is as it was
		eq(dig(E.KNOT, "www.example.test", "A"), "300 A 192.0.2.10", "unchanged")
	end,
}

step "truncated-answer-goes-to-tcp" {
	after = "failures-and-bad-input",
	run = function()
		local changes = {}
		for i = 1, 12 do
			changes[i] = { op = "add", name = "big.example.test.", type = "TXT", ttl = 60,
				value = ("%02d"):format(i) .. ("x"):rep(90) }
		end
		local r = ok(dcore.update { server = E.KNOT, zone = "example.test.", key = key(), changes = changes })
		eq(r.rcode, "NOERROR", "added a big TXT RRset")
		local q = ok(dns.query { name = "big.example.test", type = "TXT", server = E.KNOT, edns = false })
		eq(q.tcp, true, "the UDP answer was truncated: asked again over TCP")
		eq(#q.answers, 12, "the whole RRset")
		eq(q.tc, false, "the TCP answer is whole")
		nsupdate("update delete big.example.test. TXT")
	end,
}

step "switch-and-restore-exactly" {
	after = "truncated-answer-goes-to-tcp",
	run = function()
		local serial = ok(dns.query { name = "example.test", type = "SOA", server = E.KNOT }).answers[1].serial
		local out = ok(switch { to = { "192.0.2.20", "192.0.2.21" }, ttl = 60 })
		eq(out.previous.ttl, 300, "the old TTL")
		eq(table.concat(out.previous.values, ","), "192.0.2.10", "the old RRset")
		eq(out.serial, serial, "the serial before")
		-- both servers (the secondary by IXFR) answer the new RRset; dig and kdig agree
		eq(dig(E.KNOT, "www.example.test", "A"), "60 A 192.0.2.20\n60 A 192.0.2.21", "dig primary")
		eq(dig(E.KNOT2, "www.example.test", "A", "kdig"), "60 A 192.0.2.20\n60 A 192.0.2.21", "kdig secondary")
		-- the AAAA RRset at the same name is untouched
		eq(dig(E.KNOT, "www.example.test", "AAAA"), "300 AAAA 2001:db8::10", "AAAA kept")
		ok(dns.restore(out))
		eq(dig(E.KNOT, "www.example.test", "A"), "300 A 192.0.2.10", "restored, TTL included")
		eq(dig(E.KNOT2, "www.example.test", "A"), "300 A 192.0.2.10", "secondary restored")
		-- a switch to what is there already changes nothing
		local same = ok(switch { to = { "192.0.2.10" }, ttl = 300 })
		eq(same.unchanged, true, "unchanged")
		ok(dns.restore(same))
		-- a name that had no record: restore removes it again
		local fresh = ok(switch { name = "new.example.test", to = { "192.0.2.30" }, ttl = 120 })
		eq(fresh.previous, nil, "nothing before")
		eq(dig(E.KNOT, "new.example.test", "A"), "120 A 192.0.2.30", "created")
		ok(dns.restore(fresh))
		eq(dig(E.KNOT, "new.example.test", "A"), "", "gone again")
	end,
}

step "wrong-key-and-skewed-clock" {
	after = "switch-and-restore-exactly",
	run = function()
		local wrong = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		local err = fails("auth", switch { key = key { secret = wrong }, to = { "192.0.2.66" } })
		T.has(err, "BADSIG", "a wrong secret")
		err = fails("auth", switch { key = key { name = "other-key", secret = wrong }, to = { "192.0.2.66" } })
		T.has(err, "BADKEY", "an unknown key")
		err = fails("clock", switch { tsig_time = os.time() - 3600, to = { "192.0.2.66" } })
		T.has(err, "BADTIME", "a clock an hour behind")
		-- refused before the zone changed
		eq(dig(E.KNOT, "www.example.test", "A"), "300 A 192.0.2.10", "unchanged")
		-- the secret never reaches the step's messages
		eq(err:find(E.SECRET, 1, true), nil, "no secret in the message")
		-- hmac-sha512 works too (Knot has only the sha256 key: BADKEY for it)
		err = fails("auth", switch { key = key { algorithm = "hmac-sha512" }, to = { "192.0.2.66" } })
		T.has(err, "BADKEY", "sha512 under a sha256 key's name")
	end,
}

step "prerequisite-failure-is-conflict" {
	after = "wrong-key-and-skewed-clock",
	run = function()
		local out = ok(switch { to = { "192.0.2.20" }, ttl = 60 })
		-- someone else changes it meanwhile, with BIND's nsupdate
		nsupdate("update delete www.example.test. A\nupdate add www.example.test. 90 A 192.0.2.77")
		fails("conflict", dns.restore(out))
		eq(dig(E.KNOT, "www.example.test", "A"), "90 A 192.0.2.77", "their change stands")
		-- put the seed back for the next steps
		nsupdate("update delete www.example.test. A\nupdate add www.example.test. 300 A 192.0.2.10")
		-- a prerequisite that does not hold, at the core: NXRRSET, nothing changed
		local r = ok(dcore.update { server = E.KNOT, zone = "example.test.", key = key(),
			prereq = { { kind = "value", name = "www.example.test.", type = "A", value = "192.0.2.99" } },
			changes = { { op = "delete_rrset", name = "www.example.test.", type = "A" } } })
		eq(r.rcode, "NXRRSET", "value-dependent prerequisite")
		r = ok(dcore.update { server = E.KNOT, zone = "example.test.", key = key(),
			prereq = { { kind = "not_in_use", name = "www.example.test." } },
			changes = { { op = "delete_name", name = "www.example.test." } } })
		eq(r.rcode, "YXDOMAIN", "name not in use")
		r = ok(dcore.update { server = E.KNOT, zone = "example.test.", key = key(),
			prereq = { { kind = "in_use", name = "nope.example.test." } },
			changes = { { op = "delete_name", name = "nope.example.test." } } })
		eq(r.rcode, "NXDOMAIN", "name in use")
		r = ok(dcore.update { server = E.KNOT, zone = "example.test.", key = key(),
			prereq = { { kind = "exists", name = "www.example.test.", type = "AAAA" } },
			changes = { { op = "delete", name = "www.example.test.", type = "AAAA", value = "2001:db8::10" },
				{ op = "add", name = "www.example.test.", type = "AAAA", ttl = 300, value = "2001:db8::11" } } })
		eq(r.rcode, "NOERROR", "RRset exists; delete one RR, add one")
		eq(dig(E.KNOT, "www.example.test", "AAAA"), "300 AAAA 2001:db8::11", "one RR replaced")
		eq(dig(E.KNOT, "www.example.test", "A"), "300 A 192.0.2.10", "the A RRset untouched")
		raises_with("is not in the zone", dcore.update, { server = E.KNOT, zone = "example.test.",
			changes = { { op = "add", name = "www.other.test.", type = "A", ttl = 1, value = "192.0.2.1" } } })
	end,
}

step "wait-for-names-the-lagging-server" {
	after = "prerequisite-failure-is-conflict",
	run = function()
		-- both have the seed again before the secondary is held back
		ok(dns.wait_for { name = "www.example.test", values = { "192.0.2.10" },
			servers = { E.KNOT, E.KNOT2 }, timeout = "10s", interval = "50ms" })
		T.run { "../knot.sh", "hold", DIR }
		local err = fails("timeout", switch { to = { "192.0.2.40" }, ttl = 60, wait_timeout = "1500ms" })
		T.has(err, E.KNOT2 .. " still answers 192.0.2.10", "names the secondary and its answer")
		T.has(err, "want 192.0.2.40 with serial after", "and what it waits for")
		-- released while wait_for waits: it returns once the secondary caught up
		local res = drrun.parallel({ "release", "wait" }, function(what)
			if what == "release" then
				drrun.sleep("700ms")
				T.run { "../knot.sh", "release", DIR }
				return true
			end
			return ok(dns.wait_for { name = "www.example.test", type = "A", values = { "192.0.2.40" },
				servers = { E.KNOT, E.KNOT2 }, zone = "example.test", serial = 1, timeout = "15s",
				interval = "100ms" })
		end)
		local w = res[2]
		eq(w.elapsed > 0.5, true, ("waited for the release (%.2fs)"):format(w.elapsed))
		eq(w.servers[E.KNOT2].values[1], "192.0.2.40", "the secondary has it")
		eq(w.servers[E.KNOT2].serial > 1, true, "its serial moved")
		-- "authoritative": the zone's NS (ns1 -> 127.0.0.1) on the primary's port
		local a = ok(dns.authoritative("example.test", { server = E.KNOT, port = tonumber(port(E.KNOT)) }))
		eq(a.servers[1], E.KNOT, "found through NS and glue")
		ok(dns.wait_for { name = "www.example.test", values = { "192.0.2.40" }, servers = "authoritative",
			zone = "example.test", server = E.KNOT, port = tonumber(port(E.KNOT)), timeout = "5s" })
		nsupdate("update delete www.example.test. A\nupdate add www.example.test. 300 A 192.0.2.10")
	end,
}

step "prepare-ttl-then-switch" {
	after = "wait-for-names-the-lagging-server",
	run = function()
		nsupdate("update add p.example.test. 2 A 192.0.2.50")
		local t0 = drrun.now()
		local out = ok(switch { name = "p.example.test", to = { "192.0.2.51" }, ttl = 30, prepare_ttl = 1 })
		eq(out.prepared.ttl, 1, "lowered to 1 first")
		eq(out.prepared.waited, 2, "then waited out the old TTL")
		eq(drrun.now() - t0 >= 2, true, "really waited")
		eq(dig(E.KNOT, "p.example.test", "A"), "30 A 192.0.2.51", "switched")
		ok(dns.restore(out))
		eq(dig(E.KNOT, "p.example.test", "A"), "2 A 192.0.2.50", "restored with the original TTL")
	end,
}

step "key-file" {
	after = "prepare-ttl-then-switch",
	run = function()
		local out = ok(switch { key = { file = E.TSIG_KEYFILE }, to = { "192.0.2.60" }, ttl = 60 })
		eq(out.key.file, E.TSIG_KEYFILE, "the output names the file")
		eq(out.key.secret, nil, "never the secret")
		ok(dns.restore(out))
		eq(dig(E.KNOT, "www.example.test", "A"), "300 A 192.0.2.10", "restored")
		local open = DIR .. "/open-key.conf"
		sh('cp "$1" "$2" && chmod 644 "$2"', E.TSIG_KEYFILE, open)
		local err = fails("invalid", switch { key = { file = open }, to = { "192.0.2.61" } })
		T.has(err, "0600", "a key file others can read is refused")
		fails("not_found", switch { key = { file = DIR .. "/missing.conf" }, to = { "192.0.2.61" } })
	end,
}

step "dry-run-describes-and-writes-nothing" {
	after = "key-file",
	run = function()
		-- a child run under --dry-run: its queries go out, its update does not
		local rb = DIR .. "/dry.lua"
		sh([[cat > "$1" <<'RB'
local dns = require "drrun.dns"
runbook { name = "dns-dry", secrets = { "TSIG_SECRET" } }
step "switch" {
  run = function(ctx)
    return drrun.must(dns.switch { provider = "rfc2136", server = os.getenv("KNOT"),
      key = { name = "drrun-key", secret = ctx.secret("TSIG_SECRET") }, zone = "example.test.",
      name = "www.example.test.", to = { "192.0.2.99" }, ttl = 30, prepare_ttl = 10 })
  end,
}
RB]], rb)
		local drrun_bin = sh("readlink /proc/$PPID/exe"):gsub("%s+$", "")
		local r = assert(exec.run { drrun_bin, "run", "--no-color", "--dry-run", "--json",
			"--state-dir", DIR .. "/dry-state", rb,
			env = { KNOT = E.KNOT, TSIG_SECRET = E.SECRET, PATH = os.getenv("PATH") }, timeout = "30s" })
		eq(r.status, 0, "the dry run completes: " .. r.stderr)
		local out = r.stdout .. r.stderr
		T.has(out, "would lower the TTL first: www.example.test. A: 192.0.2.10 (ttl 300) -> 192.0.2.10 (ttl 10)", "the TTL step described")
		T.has(out, "would send an UPDATE to " .. E.KNOT .. ": www.example.test. A: 192.0.2.10 (ttl 300) -> 192.0.2.99 (ttl 30)", "the change described")
		local ww
		for line in r.stdout:gmatch("[^\n]+") do
			local rec = require("drrun.json").decode(line)
			if type(rec) == "table" and rec.type == "step_end" then ww = rec.output.would_write end
		end
		ok(ww, "the output holds would_write")
		eq(ww.ttl, 30, "the TTL it would write")
		eq(ww.values[1], "192.0.2.99", "the value it would write")
		eq(#ww.values, 1, "one value")
		eq(out:find(E.SECRET, 1, true), nil, "no secret in the dry run's output")
		-- nothing was written, and the old TTL was not waited out
		eq(dig(E.KNOT, "www.example.test", "A"), "300 A 192.0.2.10", "unchanged")
	end,
}

step "stop-knot" {
	after = "dry-run-describes-and-writes-nothing",
	run = function() T.run { "../knot.sh", "stop", DIR } end,
}
