-- quote_spec.lua: drrun.quote (POSIX shell quoting) and drrun.sh with an
-- argv list, checked by real shells (/bin/sh, and bash when it is there);
-- every step must complete.
--   drrun run --state-dir STATE quote_spec.lua   (from tests/lua; exit 0 = pass)
local drrun = require "drrun"
local exec = require "drrun.exec"

runbook { name = "quote-spec" }

local T = require "lib.spec"
local eq, has, raises_with = T.eq, T.has, T.raises_with

-- words a shell would otherwise split, expand, glob or run
local NASTY = {
	"", " ", "plain", "two words", "it's", "'", "''", "\"", "$HOME", "${HOME}", "$(id)", "`id`",
	"a;b", "a&&b", "a|b", "*", "?", "[a]", "~", "~root", "-n", "--", "a\nb", "tab\t", "\\", "\\'",
	"!", "#comment", "a=b", "%1", "{a,b}", "ünï", "\1\2\127\255", ">out", "<in", "(x)",
}

step "quote" {
	run = function()
		eq(drrun.quote("plain"), "plain", "a bare word stays bare")
		eq(drrun.quote("/usr/lib/x-1.2,3:4@5+6_7"), "/usr/lib/x-1.2,3:4@5+6_7", "safe characters")
		eq(drrun.quote(""), "''", "empty")
		eq(drrun.quote("it's"), [['it'\''s']], "a quote inside")
		eq(drrun.quote("a b"), "'a b'", "a space")
		eq(drrun.quote("a=b"), "'a=b'", "= would make an assignment in command position")
		eq(drrun.quote(42), "42", "a number")
		eq(drrun.quote { "ls", "-l", "a b" }, "ls -l 'a b'", "a list")
		raises_with("cannot hold a NUL byte", drrun.quote, "a\0b")
		raises_with("expected a string", drrun.quote, true)
		raises_with("expected a string", drrun.quote, { "a", {} })
		-- what the shells make of it: each word back, byte for byte
		local shells = { "/bin/sh" }
		if exec.run { "test", "-x", "/bin/bash" }.status == 0 then shells[2] = "/bin/bash" end
		for _, shell in ipairs(shells) do
			for _, w in ipairs(NASTY) do
				local r = drrun.sh({ shell, "-c", "printf '%s' " .. drrun.quote(w) }, { env = { HOME = "/nowhere" } })
				eq(r.stdout, w, shell .. " read back " .. T.show(w))
			end
			local r = drrun.sh({ shell, "-c", "printf '[%s]' " .. drrun.quote(NASTY) })
			local want = {}
			for i, w in ipairs(NASTY) do want[i] = "[" .. w .. "]" end
			eq(r.stdout, table.concat(want), shell .. ": the whole list, word for word")
		end
	end,
}

step "sh_argv" {
	run = function()
		-- an argv list runs with no shell: nothing is expanded
		local r = drrun.sh { "printf", "%s|", "$HOME", "`id`", "a b", "it's", "*" }
		eq(r.stdout, "$HOME|`id`|a b|it's|*|", "no shell in between")
		-- the list may carry exec.run's options, and opts still apply
		r = drrun.sh({ "sh", "-c", 'printf "%s" "$X"; pwd', cwd = "/" }, { env = { X = "from opts" } })
		eq(r.stdout, "from opts/\n", "options in the list and in opts")
		r = drrun.sh { "cat", stdin = "in\n" }
		eq(r.stdout, "in\n", "stdin")
		-- a failure names the command, quoted as a shell would need it
		local err = raises_with("command failed (exit 3)", drrun.sh, { "sh", "-c", "echo oops >&2; exit 3", "a b" })
		has(err, [[command failed (exit 3): sh -c 'echo oops >&2; exit 3' 'a b']], "the argv, quoted")
		has(err, "\noops", "stderr")
		err = raises_with("spawn", drrun.sh, { "/no/such/program" })
		raises_with("the argv list is empty", drrun.sh, {})
		raises_with("argument 2 must be a string", drrun.sh, { "echo", true })
		raises_with("expected a command line or an argv list", drrun.sh, 42)
		-- the string form is unchanged
		eq(drrun.sh("echo $((1 + 2))").stdout, "3\n", "a command line still goes to /bin/sh")
	end,
}
