-- dns_providers_spec.lua: dns.switch and dns.restore over Cloudflare (the
-- strict fake tests/fakes/cloudflare.py, started here on a free port) and
-- Route 53 (the aws fake of tests/servers.sh, DRRUN_TEST_AWS_URL).  What is
-- checked is the fakes' state and the requests they received.
local dns = require "drrun.dns"
local http = require "drrun.http"
local json = require "drrun.json"
local drrun = require "drrun"

runbook { name = "dns-providers-spec" }

local T = require "lib.spec"
local F = require "lib.saas"
local eq, ok, fails, sh = T.eq, T.ok, T.fails, T.sh

local TOKEN = "test-cloudflare-token"
local ZONE = "d56084adb405e0b7e32c52321bf07be6"
local CF, DIR -- the fake's base URL (/client/v4) and scratch dir

local function control(method, what, body)
	local r = assert(http.request { method = method, url = CF:gsub("/client/v4$", "") .. "/_fake/" .. what,
		body = body and json.encode(body), headers = body and { ["Content-Type"] = "application/json" } })
	eq(r.status, 200, "control " .. what .. ": " .. r.body)
	return json.decode(r.body)
end

local function records(name, t)
	local out = {}
	for _, r in ipairs(control("GET", "state").records) do
		if r.name == name and (not t or r.type == t) then out[#out + 1] = r end
	end
	table.sort(out, function(a, b) return a.content < b.content end)
	return out
end

local function cf(o)
	local t = { provider = "cloudflare", zone = ZONE, name = "www.example.com", type = "A",
		token = TOKEN, base_url = CF, retry = { attempts = 3, delay = "10ms", backoff = 1 } }
	for k, v in pairs(o or {}) do t[k] = v end
	return t
end

step "start-cloudflare-fake" {
	run = function()
		DIR = T.state_dir() .. "/cf"
		sh([[mkdir -p "$1" || exit 1
			/usr/bin/python3 -S -u ../fakes/serve.py cloudflare 0 >"$1/out" 2>&1 </dev/null &
			echo $! >"$1/pid"
			for i in $(seq 1 500); do grep -q '^ready ' "$1/out" 2>/dev/null && exit 0; sleep 0.01; done
			cat "$1/out" >&2; exit 1]], DIR)
		CF = "http://127.0.0.1:" .. sh('sed -n "s/^ready //p" "$1/out"', DIR):gsub("%s", "") .. "/client/v4"
	end,
	rollback = function() sh('kill "$(cat "$1/pid")"', DIR) end,
}

step "cloudflare-switch-patches-by-id" {
	after = "start-cloudflare-fake",
	run = function()
		control("POST", "reset")
		local before = records("www.example.com", "A")[1]
		local out = ok(dns.switch(cf { to = { "198.51.100.20" }, ttl = 120 }))
		eq(out.previous.values[1], "203.0.113.10", "the old value")
		eq(out.previous.ttl, 300, "the old TTL")
		local now = records("www.example.com", "A")
		eq(#now, 1, "one record")
		eq(now[1].id, before.id, "the same record, PATCHed by its id")
		eq(now[1].content, "198.51.100.20", "new content")
		eq(now[1].ttl, 120, "new TTL")
		eq(records("www.example.com", "AAAA")[1].content, "2001:db8::10", "AAAA untouched")
		-- what went over the wire
		local log = control("GET", "requests")
		eq(log[1].method, "GET", "read first")
		eq(log[1].query.name, "www.example.com", "by name (no final dot)")
		eq(log[1].query.type, "A", "and type")
		eq(log[1].headers.authorization, "Bearer " .. TOKEN, "an API token")
		eq(log[2].method, "PATCH", "then the change")
		ok(dns.restore(out, { token = TOKEN }))
		now = records("www.example.com", "A")
		eq(#now, 1, "one record again")
		eq(now[1].content, "203.0.113.10", "restored")
		eq(now[1].ttl, 300, "TTL included")
		eq(now[1].id, before.id, "the same record")
	end,
}

step "cloudflare-more-values-and-all-pages" {
	after = "cloudflare-switch-patches-by-id",
	run = function()
		control("POST", "reset")
		-- seven records at one name: two pages of 5
		for i = 1, 7 do
			local r = assert(http.request { method = "POST", url = CF .. "/zones/" .. ZONE .. "/dns_records",
				headers = { Authorization = "Bearer " .. TOKEN, ["Content-Type"] = "application/json" },
				body = json.encode { type = "A", name = "multi.example.com", content = "192.0.2." .. i, ttl = 60 } })
			eq(r.status, 200, r.body)
		end
		local out = ok(dns.switch(cf { name = "multi.example.com", to = { "198.51.100.1", "198.51.100.2" }, per_page = 5 }))
		eq(#out.previous.values, 7, "read every page")
		local now = records("multi.example.com")
		eq(#now, 2, "two left: two PATCHed, five deleted")
		eq(now[1].content .. "," .. now[2].content, "198.51.100.1,198.51.100.2", "the new values")
		local pages = 0
		for _, r in ipairs(control("GET", "requests")) do
			if r.method == "GET" and r.query.page then pages = math.max(pages, tonumber(r.query.page)) end
		end
		eq(pages, 2, "asked for page 2, and no page 3")
		ok(dns.restore(out, { token = TOKEN }))
		now = records("multi.example.com")
		eq(#now, 7, "all seven back")
		for i = 1, 7 do eq(now[i].content, "192.0.2." .. i, "value " .. i) end
		-- a name with no record: created, then removed again
		local fresh = ok(dns.switch(cf { name = "new.example.com", to = { "198.51.100.9", "198.51.100.8" }, ttl = 60 }))
		eq(fresh.previous, nil, "nothing before")
		eq(#records("new.example.com"), 2, "created both")
		ok(dns.restore(fresh, { token = TOKEN }))
		eq(#records("new.example.com"), 0, "gone again")
	end,
}

step "cloudflare-errors" {
	after = "cloudflare-more-values-and-all-pages",
	run = function()
		control("POST", "reset")
		local svc = T.service_fails("cloudflare")
		local err = svc("auth", dns.switch(cf { token = "wrong", to = { "198.51.100.20" } }))
		T.has(err, "Authentication error (10000)", "the envelope's message")
		T.has(err, "HTTP 403", "and the status")
		svc("not_found", dns.switch(cf { zone = "0000", to = { "198.51.100.20" } }))
		-- rate limited: 429 with Retry-After, waited for, then through
		control("POST", "config", { burst = 1, burst_window = 1.0, retry_after = 1 })
		local t0 = drrun.now()
		local out = ok(dns.switch(cf { to = { "198.51.100.21" }, retry = { attempts = 4, delay = "10ms" } }))
		eq(drrun.now() - t0 >= 0.9, true, "waited for Retry-After")
		control("POST", "config", { burst = json.null })
		local statuses = {}
		for _, r in ipairs(control("GET", "requests")) do statuses[#statuses + 1] = r.status end
		T.has(table.concat(statuses, ","), "429", "a 429 was answered")
		-- someone changed the record since: restore refuses (conflict), changes nothing
		local rec = records("www.example.com", "A")[1]
		assert(http.request { method = "PATCH", url = CF .. "/zones/" .. ZONE .. "/dns_records/" .. rec.id,
			headers = { Authorization = "Bearer " .. TOKEN, ["Content-Type"] = "application/json" },
			body = json.encode { content = "198.51.100.99" } })
		fails("conflict", dns.restore(out, { token = TOKEN }))
		eq(records("www.example.com", "A")[1].content, "198.51.100.99", "their change stands")
		T.raises_with("takes A, AAAA, CNAME or TXT", dns.switch, cf { type = "MX", to = { "10 mx.example.com." } })
	end,
}

step "route53-through-aws" {
	after = "cloudflare-errors",
	run = function()
		F.reset("aws")
		local O = { endpoint_url = os.getenv("DRRUN_TEST_AWS_URL"), region = "us-east-1",
			credentials = { access_key = os.getenv("DRRUN_TEST_AWS_KEY"),
				secret_key = os.getenv("DRRUN_TEST_AWS_SECRET") }, interval = "100ms", timeout = "10s" }
		local o = { provider = "route53", zone = "Z0EXAMPLE1", name = "www.example.com", to = { "192.0.2.44" }, ttl = 60 }
		for k, v in pairs(O) do o[k] = v end
		local out = ok(dns.switch(o))
		eq(out.previous.values[1], "192.0.2.10", "the old value")
		eq(out.previous.ttl, 300, "the old TTL")
		local z = F.state("aws").zones.Z0EXAMPLE1.records["www.example.com.|A|"]
		eq(z.values[1], "192.0.2.44", "switched")
		eq(z.ttl, 60, "new TTL")
		ok(dns.restore(out, O))
		z = F.state("aws").zones.Z0EXAMPLE1.records["www.example.com.|A|"]
		eq(z.values[1], "192.0.2.10", "restored")
		eq(z.ttl, 300, "TTL included")
		F.reset("aws")
	end,
}

step "stop-cloudflare-fake" {
	after = "route53-through-aws",
	run = function() sh('kill "$(cat "$1/pid")"', DIR) end,
}
