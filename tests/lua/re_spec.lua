-- re_spec.lua: drrun.re, run as a runbook; every step must complete.
--   drrun run tests/lua/re_spec.lua --state-dir DIR   (exit 0 = pass)
local re = require "drrun.re"

runbook { name = "re-spec" }

local raises = require("lib.spec").raises

-- all results of a call, as a table with n
local function pack(...) return table.pack(...) end

step "captures" {
	run = function()
		assert(re.match("hello world", "o w") == "o w", "whole match without groups")
		local a, b = re.match("hello world", "(\\w+) (\\w+)")
		assert(a == "hello" and b == "world")
		local r = pack(re.match("hello", "xyz"))
		assert(r.n == 1 and r[1] == nil, "no match: one nil")
		-- a group that took no part is false, so the count never changes
		r = pack(re.match("b", "(a)|(b)"))
		assert(r.n == 2 and r[1] == false and r[2] == "b")
		-- empty captures are empty strings
		local e1, e2 = re.match("ab", "(x*)a(y*)")
		assert(e1 == "" and e2 == "")
		-- numbers are subjects too, as in string.match
		assert(re.match(12345, "\\d{3}") == "123")
		-- find: positions like string.find, captures in a table
		local s, e, caps = re.find("say hello", "l+")
		assert(s == 7 and e == 8 and next(caps) == nil)
		s, e, caps = re.find("abc", "x*")
		assert(s == 1 and e == 0, "empty match at the start")
		s, e = re.find("abc", "$")
		assert(s == 4 and e == 3)
		assert(re.find("abc", "z") == nil)
		-- binary subjects and patterns
		assert(re.match("a\0b\0c", "b\\0c") == "b\0c")
		assert(re.match("a\0b", "\0") == "\0")
	end,
}

step "named-captures" {
	run = function()
		local s, e, c = re.find("user=alice id=42", "(?<key>\\w+)=(?<val>\\w+)")
		assert(s == 1 and e == 10)
		assert(c[1] == "user" and c[2] == "alice" and c.key == "user" and c.val == "alice")
		local _
		_, _, c = re.find("id=42", "(?<word>[a-z]+)|(?<num>\\d+)", 4)
		assert(c.num == "42" and c.word == false and c[1] == false and c[2] == "42")
		-- duplicate names: the one that matched
		_, _, c = re.find("2024", "(?J)(?<v>[a-z]+)|(?<v>\\d+)")
		assert(c.v == "2024")
		-- match returns named groups positionally
		assert(select(2, re.match("k=v", "(?<k>\\w)=(?<v>\\w)")) == "v")
	end,
}

step "init" {
	run = function()
		local subject = "one two three"
		assert(re.match(subject, "\\w+", 5) == "two")
		assert(re.match(subject, "\\w+", -5) == "three")
		assert(re.match(subject, "\\w+", -100) == "one", "before the start: from 1")
		assert(re.match(subject, "\\w+", 0) == "one")
		assert(re.match(subject, "\\w+", #subject + 1) == nil)
		assert(re.match(subject, "$", #subject + 1) == "", "empty match at the very end")
		assert(re.match(subject, "\\w+", #subject + 2) == nil, "beyond the end: nil")
		assert(select("#", re.match(subject, "\\w+", 1000)) == 1)
		local s, e = re.find(subject, "t\\w+", 6)
		assert(s == 9 and e == 13)
		s, e = re.find(subject, "t\\w+", -9)
		assert(s == 5 and e == 7)
		-- lookbehind sees the text before init, unlike a substring
		assert(re.match("ab", "(?<=a)b", 2) == "b")
		-- \G and ^ anchor at init and the subject start respectively
		assert(re.match("xxab", "\\Gab", 3) == "ab")
		assert(re.match("xxab", "^ab", 3) == nil)
		assert(raises(re.match, "x", "x", "i"):find("bad argument #3"))
	end,
}

step "flags" {
	run = function()
		assert(re.match("HeLLo", "hello") == nil)
		assert(re.match("HeLLo", "hello", 1, "i") == "HeLLo")
		assert(re.match("a\nb", "^b$") == nil)
		assert(re.match("a\nb", "^b$", 1, "m") == "b")
		assert(re.match("a\nb", "a.b") == nil)
		assert(re.match("a\nb", "a.b", 1, "s") == "a\nb")
		assert(re.match("abc", "a b c  # comment", 1, "x") == "abc")
		assert(re.match("ABC\nabc", "^abc$", 1, "mi") == "ABC")
		-- u: characters, not bytes
		assert(re.match("héllo", "^h.llo$") == nil)
		assert(re.match("héllo", "^h.llo$", 1, "u") == "héllo")
		assert(re.match("ÉCOLE", "école", 1, "iu") == "ÉCOLE")
		assert(re.match("naïve café", "\\w+$", 1, "u") == "café")
		assert(re.match("日本語", "^.{3}$", 1, "u") == "日本語")
		-- u with invalid UTF-8, or an init inside a character
		local r, err, code = re.match("ab\xffc", "c", 1, "u")
		assert(r == nil and code == "invalid" and err:find("at offset 2"), err)
		r, err, code = re.match("héllo", "l", 3, "u")
		assert(r == nil and code == "invalid", err)
		-- without u, any bytes are fine
		assert(re.match("ab\xffc", "\xff(c)") == "c")
		assert(raises(re.match, "x", "x", 1, "g"):find("unknown flag 'g'"))
		assert(raises(re.gsub, "x", "x", "y", nil, "z"):find("bad argument #5"))
	end,
}

step "gmatch" {
	run = function()
		local keys, vals = {}, {}
		for k, v in re.gmatch("a=1, b=22, c=333", "(\\w+)=(\\d+)") do
			keys[#keys + 1] = k
			vals[#vals + 1] = v
		end
		assert(table.concat(keys) == "abc" and table.concat(vals, ",") == "1,22,333")
		local words = {}
		for w in re.gmatch("The quick brown fox", "\\w+") do words[#words + 1] = w end
		assert(#words == 4 and words[4] == "fox")
		-- empty matches follow Lua 5.4's string.gmatch
		for _, case in ipairs { { "baaac", "a*", "a*" }, { "abc", "x*", "x*" }, { "", "x*", "x*" } } do
			local mine, lua = {}, {}
			for m in re.gmatch(case[1], case[2]) do mine[#mine + 1] = "<" .. m .. ">" end
			for m in case[1]:gmatch(case[3]) do lua[#lua + 1] = "<" .. m .. ">" end
			assert(table.concat(mine) == table.concat(lua), table.concat(mine) .. " vs " .. table.concat(lua))
		end
		local n = 0
		for _ in re.gmatch("ÀÉÎ", ".", "u") do n = n + 1 end
		assert(n == 3)
		n = 0
		for _ in re.gmatch("ÀÉÎ", ".") do n = n + 1 end
		assert(n == 6, "bytes without u")
		local it = re.gmatch("x", "x")
		assert(it() == "x" and it() == nil and it() == nil, "stays finished")
		-- gmatch raises: a for loop cannot see nil, err
		assert(raises(re.gmatch, "x", "(x"):find("^re: missing closing parenthesis at offset 2"))
		local ok, err = pcall(function()
			for _ in re.gmatch(string.rep("a", 30) .. "!", "(a+)+$") do end
		end)
		assert(not ok and tostring(err):find("limit exceeded"), tostring(err))
	end,
}

step "gsub-string" {
	run = function()
		local r, n = re.gsub("hello world", "o", "0")
		assert(r == "hell0 w0rld" and n == 2)
		r, n = re.gsub("hello world", "(\\w+) (\\w+)", "%2 %1")
		assert(r == "world hello" and n == 1)
		r = re.gsub("abc", "\\w", "[%0]")
		assert(r == "[a][b][c]")
		r = re.gsub("abc", "b", "%1%1", nil)
		assert(r == "abbc", "%1 is the whole match without groups, as in Lua")
		r = re.gsub("50", "\\d+", "%%%0")
		assert(r == "%50")
		r, n = re.gsub("aaa", "a", "b", 2)
		assert(r == "bba" and n == 2)
		r, n = re.gsub("aaa", "a", "b", 0)
		assert(r == "aaa" and n == 0)
		r = re.gsub("x1y2", "\\d", 7)
		assert(r == "x7y7", "a number replacement")
		-- %{name}
		r = re.gsub("2024-06-30", "(?<y>\\d+)-(?<m>\\d+)-(?<d>\\d+)", "%{d}/%{m}/%{y}")
		assert(r == "30/06/2024")
		r = re.gsub("a-", "(?<x>a)-(?<y>b)?", "[%{y}]")
		assert(r == "[]", "an unset group is empty")
		-- empty matches as string.gsub does
		for _, c in ipairs { { "abc", "x*" }, { "baaac", "a*" }, { "", "x*" }, { "hello world", "o*" } } do
			local mine, mn = re.gsub(c[1], c[2], "-")
			local lua, ln = c[1]:gsub(c[2], "-")
			assert(mine == lua and mn == ln, mine .. " vs " .. lua)
		end
		assert(re.gsub("CaSe", "case", "ok", nil, "i") == "ok")
		-- mistakes in the replacement raise, even when nothing matches
		assert(raises(re.gsub, "x", "y", "%{nope}"):find("no group named 'nope'"))
		assert(raises(re.gsub, "x", "(x)", "%2"):find("invalid capture index %%2"))
		assert(raises(re.gsub, "x", "x", "100%"):find("invalid use of '%%'"))
		assert(raises(re.gsub, "x", "x", "%q"):find("invalid use of '%%'"))
		assert(raises(re.gsub, "x", "x", "%{open"):find("unterminated"))
		assert(raises(re.gsub, "x", "x"):find("bad argument #3"))
	end,
}

step "gsub-table-and-function" {
	run = function()
		local vars = { name = "drrun", version = "1.0" }
		local r, n = re.gsub("$name v$version ($missing)", "\\$(\\w+)", vars)
		assert(r == "drrun v1.0 ($missing)" and n == 3, r)
		r = re.gsub("hello world", "\\w+", { hello = "HI" })
		assert(r == "HI world", "whole match is the key without groups")
		r, n = re.gsub("hello world", "\\w+", function(w) return w:upper() end)
		assert(r == "HELLO WORLD" and n == 2)
		r = re.gsub("a=1 b=2", "(\\w)=(\\d)", function(k, v) return v .. "=" .. k end)
		assert(r == "1=a 2=b")
		r = re.gsub("keep drop", "\\w+", function(w) if w == "drop" then return "X" end end)
		assert(r == "keep X", "nil keeps the match")
		r = re.gsub("a b", "\\w", function() return false end)
		assert(r == "a b")
		r = re.gsub("n1 n2", "\\d", function(d) return tonumber(d) * 10 end)
		assert(r == "n10 n20", "numbers are fine")
		assert(raises(re.gsub, "x", "x", function() return {} end):find("invalid replacement value %(a table%)"))
		-- errors raised by the function pass through
		assert(raises(re.gsub, "x", "x", function() error("boom") end):find("boom"))
		-- nested use from inside the callback
		r = re.gsub("a1 b2", "(\\w)(\\d)", function(l, d)
			return re.gsub(l, "\\w", string.upper) .. re.gsub(d, "\\d", { ["1"] = "one", ["2"] = "two" })
		end)
		assert(r == "Aone Btwo", r)
	end,
}

step "bad-pattern" {
	run = function()
		local r, err, code = re.match("x", "a(b")
		assert(r == nil and code == "invalid")
		assert(err == "re: missing closing parenthesis at offset 3", err)
		r, err, code = re.find("x", "[z-a]")
		assert(r == nil and code == "invalid" and err:find("at offset 3$"), err)
		r, err, code = re.gsub("x", "(?<n>x)(?<n>y)", "")
		assert(r == nil and code == "invalid" and err:find("offset"), err)
		r, err, code = re.match("x", "x{2,1}")
		assert(r == nil and code == "invalid", err)
		-- still an error the second time (nothing cached)
		r, err, code = re.match("x", "a(b")
		assert(r == nil and code == "invalid")
		assert(raises(re.match, "x"):find("bad argument #2"))
	end,
}

step "catastrophic-backtracking" {
	run = function()
		local subject = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"
		local t0 = os.clock()
		local r, err, code = re.match(subject, "(a+)+$")
		local spent = os.clock() - t0
		assert(r == nil and err == "re: match limit exceeded" and code == "limit", tostring(err))
		assert(spent < 1, "took " .. spent .. "s")
		r, err, code = re.gsub(subject, "(a|aa)+$", "x")
		assert(r == nil and code == "limit", tostring(err))
		local s, _
		s, _, code = re.find(string.rep("a", 40) .. "b", "(?:a*)*c")
		assert(s == nil and (code == nil or code == "limit"))
		-- ordinary work on a large subject is not limited
		local big = string.rep("word ", 100000)
		local n = select(2, re.gsub(big, "\\w+", "w"))
		assert(n == 100000)
		-- with u the subject's UTF-8 is checked once, not once per match
		local count = 0
		for _ in re.gmatch(string.rep("wörd ", 100000), "\\w+", "u") do count = count + 1 end
		assert(count == 100000)
		n = select(2, re.gsub(string.rep("wörd ", 100000), "ö", "o", nil, "u"))
		assert(n == 100000)
		assert(os.clock() - t0 < 5, "took " .. (os.clock() - t0) .. "s")
	end,
}

step "cache" {
	run = function()
		local before = re.stats()
		for i = 1, 2000 do
			assert(re.match("item-" .. i, "^item-(\\d+)$") == tostring(i))
		end
		local after = re.stats()
		assert(after.misses - before.misses <= 1, "compiled once")
		assert(after.hits - before.hits >= 1999)
		-- flags are part of the key
		assert(re.match("A", "a", 1, "i") == "A" and re.match("A", "a") == nil)
		assert(re.match("A", "a", 1, "ii") == "A")
		-- the cache stays bounded and evicted patterns still work
		for i = 1, 600 do
			assert(re.match("k" .. i, "k" .. i .. "$") == "k" .. i)
		end
		local st = re.stats()
		assert(st.size <= 256, "size " .. st.size)
		assert(re.match("k1", "k1$") == "k1")
		-- a pattern evicted while gsub is still using it
		local r = re.gsub("a b c", "\\w", function(c)
			for i = 1, 300 do re.match("z", "z" .. i) end
			return c:upper()
		end)
		assert(r == "A B C")
		assert(type(st.jit) == "boolean")
	end,
}
