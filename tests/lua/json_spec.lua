-- json_spec.lua: drrun.json, run as a runbook; every step must complete.
--   drrun run tests/lua/json_spec.lua --state-dir DIR   (exit 0 = pass)
local json = require "drrun.json"

runbook { name = "json-spec" }

-- deep equality that also tells integers from floats; metatables ignored
local function same(a, b)
	if type(a) ~= type(b) then return false end
	if type(a) == "number" then return math.type(a) == math.type(b) and a == b end
	if type(a) ~= "table" then return a == b end
	for k, v in pairs(a) do if not same(v, b[k]) then return false end end
	for k in pairs(b) do if a[k] == nil then return false end end
	return true
end

local function roundtrip(v, opts)
	local text = json.encode(v, opts)
	local back, err = json.decode(text)
	assert(err == nil, err)
	return back, text
end

local T = require "lib.spec"
local raises = T.raises

step "round-trips" {
	run = function()
		for _, v in ipairs {
			true, false, 0, -1, 42, "", "plain", "tab\tquote\"back\\slash\nnl",
			{ 1, 2, 3 }, { a = 1, b = { c = { d = "deep" } } },
			{ list = { 1, "two", { three = 3 } }, flag = false },
			math.maxinteger, math.mininteger, 2.5, -0.125, 1e-7, 6.02214076e23,
			"\0binary\0nul",
		} do
			local back, text = roundtrip(v)
			assert(same(v, back), "round trip changed " .. text)
		end
		-- nested arrays of objects and back
		local doc = { items = {} }
		for i = 1, 50 do doc.items[i] = { id = i, name = "item" .. i, ratio = i / 8 } end
		assert(same(roundtrip(doc), doc))
	end,
}

step "integers-and-floats" {
	run = function()
		assert(json.encode(1) == "1")
		assert(json.encode(1.0) == "1.0")
		assert(json.encode(-0.0) == "-0.0")
		assert(json.encode(0.1) == "0.1")
		assert(json.encode(2.5) == "2.5")
		assert(json.encode(100.0) == "100.0")
		assert(json.encode(1e300) == "1e300", json.encode(1e300))
		assert(json.encode(math.maxinteger) == "9223372036854775807")
		assert(json.encode(math.mininteger) == "-9223372036854775808")
		assert(math.type(json.decode("7")) == "integer")
		assert(math.type(json.decode("7.0")) == "float")
		assert(math.type(json.decode("7e0")) == "float")
		assert(json.decode("9223372036854775807") == math.maxinteger)
		assert(json.decode("-9223372036854775808") == math.mininteger)
		-- every real comes back exactly, whatever its neighbours need
		local v = { 0.1 + 0.2, 1 / 3, 1e-300, 123456789.125, 2 ^ 60 + 0.0 }
		assert(same(roundtrip(v), v))
		-- beyond int64: a float, not an error
		local big = json.decode("[18446744073709551616, -9223372036854775809, 1]")
		assert(math.type(big[1]) == "float" and big[1] == 2.0 ^ 64)
		assert(math.type(big[2]) == "float" and big[2] == -(2.0 ^ 63))
		assert(math.type(big[3]) == "integer")
		-- ... also inside strings the text is left alone
		local t = json.decode('{"s":"99999999999999999999","n":99999999999999999999}')
		assert(t.s == "99999999999999999999" and math.type(t.n) == "float")
		-- a real that does not fit a double is an error
		local r, err, code = json.decode("[1e400]")
		assert(r == nil and code == "invalid" and err:find("overflow"), err)
	end,
}

step "null" {
	run = function()
		assert(type(json.null) == "userdata")
		assert(json.encode(json.null) == "null")
		assert(json.encode({ a = json.null }) == '{"a":null}')
		assert(json.encode({ 1, json.null, 3 }) == "[1,null,3]")
		assert(json.decode("null") == json.null)
		local t = json.decode('{"a":null,"b":[null,1]}')
		assert(t.a == json.null, "null keeps its key")
		assert(#t.b == 2 and t.b[1] == json.null and t.b[2] == 1, "arrays have no holes")
		assert(json.encode(t, { sort_keys = true }) == '{"a":null,"b":[null,1]}')
		-- nil at the top is null too
		assert(json.encode(nil) == "null")
	end,
}

step "empty-array" {
	run = function()
		assert(json.encode(json.empty_array) == "[]")
		assert(json.encode({}) == "{}")
		assert(json.encode({ list = json.empty_array }) == '{"list":[]}')
		assert(json.encode(setmetatable({}, json.array_mt)) == "[]")
		-- decoded arrays remember they were arrays, even empty
		local t = json.decode('{"a":[],"b":{}}')
		assert(next(t.a) == nil and getmetatable(t.a) == json.array_mt)
		assert(getmetatable(t.b) == nil)
		assert(json.encode(t, { sort_keys = true }) == '{"a":[],"b":{}}')
		assert(json.encode(json.decode("[[],[[]]]")) == "[[],[[]]]")
		-- a marked array still fills like any table
		local list = json.decode("[]")
		list[#list + 1] = "x"
		assert(json.encode(list) == '["x"]')
	end,
}

step "sort-keys-exact" {
	run = function()
		local v = { zeta = 1, alpha = { 3, 2, 1 }, mid = { b = true, a = false }, ["0"] = "s" }
		assert(json.encode(v, { sort_keys = true }) ==
			'{"0":"s","alpha":[3,2,1],"mid":{"a":false,"b":true},"zeta":1}',
			json.encode(v, { sort_keys = true }))
		-- the same text every time: usable for signatures
		for _ = 1, 20 do
			assert(json.encode(v, { sort_keys = true }) == json.encode(v, { sort_keys = true }))
		end
		local pretty = json.encode({ b = 1, a = { 1, 2 } }, { sort_keys = true, indent = 2 })
		assert(pretty == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}', pretty)
		assert(json.encode({ 1 }, { indent = 0 }) == "[1]")
		assert(raises(json.encode, {}, { sortkeys = true }):find("unknown option 'sortkeys'"))
		assert(raises(json.encode, {}, { indent = 99 }):find("indent"))
		assert(raises(json.encode, {}, { sort_keys = "yes" }):find("sort_keys"))
	end,
}

step "encode-errors" {
	run = function()
		assert(raises(json.encode, 0 / 0):find("NaN"))
		assert(raises(json.encode, { x = 1 / 0 }):find("inf %(at %.x%)"))
		assert(raises(json.encode, { -1 / 0 }):find("%-inf %(at %[1%]%)"))
		assert(raises(json.encode, { a = { print } }):find("function %(at %.a%[1%]%)"))
		assert(raises(json.encode, { [true] = 1 }):find("key of type boolean"))
		assert(raises(json.encode, { [1.5] = 1 }):find("key of type number"))
		assert(raises(json.encode, { 1, nil, 3 }):find("key of type number"))
		assert(raises(json.encode, { 1, 2, x = 3 }):find("key of type number"))
		assert(raises(json.encode, { ["a b"] = { 0 / 0 } }):find('%["a b"%]%[1%]'))
		local cyc = { name = "loop" }
		cyc.self = { cyc }
		assert(raises(json.encode, cyc):find("cycle"))
		-- a table seen twice without a cycle is fine
		local shared = { 1 }
		assert(json.encode({ shared, shared }) == "[[1],[1]]")
		assert(raises(json.encode, "\xff"):find("UTF%-8"))
		assert(raises(json.encode, { ["\xff"] = 1 }):find("UTF%-8"))
		assert(raises(json.encode):find("bad argument #1"))
	end,
}

step "decode-errors" {
	run = function()
		local v, err, code = json.decode('{"a": 1,\n  "b": [1, 2,, 3]}')
		assert(v == nil and code == "invalid")
		assert(err:match("^json: .* at line 2 column %d+$"), err)
		assert(err:find("near ',' at line 2 column 14"), err) -- the second comma
		v, err, code = json.decode("[1, 2")
		assert(v == nil and code == "invalid" and err:find("line 1"), err)
		v, err = json.decode("")
		assert(v == nil and err:find("^json: "), err)
		v, err = json.decode("[1] [2]")
		assert(v == nil and err:find("end of file expected"), err)
		v, err = json.decode("{'single': 1}")
		assert(v == nil and err:find("line 1 column 2"), err)
		v, err = json.decode('\n\n\n   tru')
		assert(v == nil and err:find("line 4"), err)
		assert(raises(json.decode):find("bad argument #1"))
		assert(raises(json.decode, {}):find("bad argument #1"))
	end,
}

step "deep-nesting" {
	run = function()
		local depth = 1000
		local text = string.rep("[", depth) .. "1" .. string.rep("]", depth)
		local v = assert(json.decode(text))
		for _ = 1, depth - 1 do v = v[1] end
		assert(v[1] == 1)
		assert(json.encode(json.decode(text)) == text)
		-- objects too
		local obj = {}
		local cur = obj
		for i = 1, 500 do cur.n = { i = i }; cur = cur.n end
		assert(same(roundtrip(obj), obj))
		-- past the parser's limit: an error, not a crash
		local r, err, code = json.decode(string.rep("[", 100000))
		assert(r == nil and code == "invalid" and err:find("depth"), err)
		local deep = {}
		cur = deep
		for _ = 1, 5000 do cur[1] = {}; cur = cur[1] end
		assert(raises(json.encode, deep):find("too deep"))
	end,
}

step "unicode" {
	run = function()
		assert(json.decode('"\\u00e9"') == "é")
		assert(json.decode('"\\u20ac"') == "€")
		assert(json.decode('"\\ud83d\\ude00"') == "😀", "surrogate pair")
		assert(json.decode('"\\u0000"') == "\0")
		assert(json.decode('"a\\nb\\t\\"\\\\\\/"') == 'a\nb\t"\\/')
		assert(json.encode("é€😀") == '"é€😀"', "UTF-8 passes through")
		assert(json.encode("\1\31") == '"\\u0001\\u001F"')
		assert(json.encode("a\0b") == '"a\\u0000b"')
		local s = "ünïcödé ключ 键"
		assert(json.decode(json.encode({ [s] = s }))[s] == s)
		-- a lone surrogate is not text
		local v, err = json.decode('"\\ud800"')
		assert(v == nil and err:find("invalid Unicode"), err)
	end,
}

step "invalid-utf8-input" {
	run = function()
		for _, text in ipairs { '"\xff"', '"\xc3"', '"\xed\xa0\x80"', '["ok", "\xe2\x82"]', "\xfe[]" } do
			local v, err, code = json.decode(text)
			assert(v == nil and code == "invalid" and err:find("^json: "), tostring(err))
		end
		local v, err = json.decode('{"a":\n"\x80"}')
		assert(v == nil and err:find("line 2"), err)
	end,
}

step "journal-uses-the-same-sentinels" {
	run = function()
		-- step outputs go through the engine's lenient converter: json.null,
		-- json.empty_array and decoded arrays come out as JSON says
		return { n = json.null, e = json.empty_array, d = json.decode("[]"), f = print }
	end,
}

step "journal-sentinels-as-written" {
	after = "journal-uses-the-same-sentinels",
	run = function(ctx)
		-- what the step above returned, as its step_end in this run's journal
		local text = T.journal(ctx)
		local line
		for l in text:gmatch("[^\n]+") do
			if l:find('"type":"step_end","step":"journal-uses-the-same-sentinels"', 1, true) then
				line = l
			end
		end
		assert(line, "no step_end for journal-uses-the-same-sentinels in the journal")
		for _, want in ipairs { '"n":null', '"e":[]', '"d":[]', '"f":"<function>"' } do
			assert(line:find(want, 1, true), want .. " not in " .. line)
		end
		local out = assert(json.decode(line)).output
		assert(out.n == json.null, "n is json.null")
		assert(json.encode(out.e) == "[]" and json.encode(out.d) == "[]", "e and d are arrays")
		assert(out.f == "<function>", tostring(out.f))
		-- and the other steps saw the same value in ctx.outputs
		local seen = ctx.outputs["journal-uses-the-same-sentinels"]
		assert(json.encode(seen.e) == "[]" and seen.n == json.null)
	end,
}
