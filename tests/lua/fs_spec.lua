-- fs_spec.lua: drrun.fs on real files, run as a runbook; every step must
-- complete.  Files go under STATE/fs-spec (run.sh drops the state dir of a
-- passing run).  Dry runs are integration case 232.
--   drrun run --state-dir STATE fs_spec.lua   (from tests/lua; exit 0 = pass)
local fs = require "drrun.fs"
local drrun = require "drrun"

runbook { name = "fs-spec" }

local T = require "lib.spec"
local eq, ok, fails, raises_with, sh = T.eq, T.ok, T.fails, T.raises_with, T.sh

local D

step "setup" {
	run = function()
		D = T.state_dir() .. "/fs-spec"
		sh('rm -rf "$1" && mkdir -p "$1"', D)
	end,
}

step "write_read" {
	after = "setup",
	run = function()
		local f = D .. "/a.txt"
		local bytes = "line 1\n\0binary\255\n"
		eq(ok(fs.write(f, bytes)), true, "write")
		eq(ok(fs.read(f)), bytes, "read back, NULs and all")
		eq(sh('stat -c %a "$1"', f), "644\n", "default mode")
		-- a rewrite keeps the mode it had, unless one is given
		sh('chmod 600 "$1"', f)
		ok(fs.write(f, "two"))
		eq(sh('stat -c %a "$1"', f), "600\n", "mode kept")
		ok(fs.write(f, "three", { mode = "0640" }))
		eq(sh('stat -c %a "$1"', f), "640\n", "mode as text")
		ok(fs.write(f, "four", { mode = 384 }))
		eq(sh('stat -c %a "$1"', f), "600\n", "mode as a number")
		eq(ok(fs.read(f)), "four", "replaced")
		-- atomic: a new inode, renamed over; no temporary file left
		local ino = sh('stat -c %i "$1"', f)
		ok(fs.write(f, "five"))
		ok(sh('stat -c %i "$1"', f) ~= ino, "a new file renamed into place")
		eq(sh('ls -A "$1"', D), "a.txt\n", "no temporary file left")
		ok(fs.write(f, ""))
		eq(ok(fs.read(f)), "", "empty file")
		-- failures
		fails("not_found", fs.write(D .. "/no/such/dir/x", "x"))
		fails("conflict", fs.write(D, "x"))
		fails("not_found", fs.read(D .. "/nope"))
		fails("invalid", fs.read(D))
		ok(fs.write(f, "12345"))
		fails("too_large", fs.read(f, { max = 4 }))
		eq(ok(fs.read(f, { max = 5 })), "12345", "at the limit")
		raises_with("mode must be octal", fs.write, f, "x", { mode = "rw-r--r--" })
		raises_with("mode must be within", fs.write, f, "x", { mode = 0x10000 })
		raises_with("empty path", fs.write, "", "x")
		raises_with("bad argument #2", fs.write, f)
	end,
}

step "append" {
	after = "write_read",
	run = function()
		local f = D .. "/log"
		ok(fs.append(f, "a\n"))
		ok(fs.append(f, "b\n"))
		eq(ok(fs.read(f)), "a\nb\n", "appended")
		ok(fs.append(D .. "/m", "x", { mode = "0600" }))
		eq(sh('stat -c %a "$1"', D .. "/m"), "600\n", "mode of a new file")
		fails("not_found", fs.append(D .. "/none/x", "x"))
		-- many appends at once from parallel children, none lost or torn
		drrun.parallel({ 1, 2, 3, 4, 5, 6, 7, 8 }, function(i)
			for j = 1, 20 do ok(fs.append(f, ("%d-%d\n"):format(i, j))) end
		end)
		local n = 0
		for _ in ok(fs.read(f)):gmatch("%d+%-%d+\n") do n = n + 1 end
		eq(n, 160, "parallel appends")
	end,
}

step "stat_exists" {
	after = "append",
	run = function()
		local f = D .. "/s"
		ok(fs.write(f, "12345", { mode = "0604" }))
		local st = ok(fs.stat(f))
		eq(st.type, "file", "type")
		eq(st.size, 5, "size")
		eq(st.mode, 0x184, "mode 0604")
		ok(math.abs(st.mtime - drrun.now()) < 60, "mtime is now-ish: " .. st.mtime)
		eq(math.type(st.uid), "integer", "uid")
		eq(ok(fs.stat(D)).type, "directory", "a directory")
		fails("not_found", fs.stat(D .. "/nope"))
		eq(fs.exists(f), true, "exists")
		eq(fs.exists(D), true, "a directory exists")
		eq(fs.exists(D .. "/nope"), false, "does not exist")
		eq(fs.exists(f .. "/under-a-file"), false, "under a file")
	end,
}

step "mkdir_glob_remove" {
	after = "stat_exists",
	run = function()
		local d = D .. "/x/y/z"
		eq(ok(fs.mkdir(d)), true, "mkdir -p")
		eq(ok(fs.stat(d)).type, "directory", "made")
		eq(sh('stat -c %a "$1"', d), "755\n", "default mode")
		ok(fs.mkdir(d), "existing directory is fine")
		ok(fs.mkdir(D .. "/x/y/z/"), "a trailing slash")
		ok(fs.mkdir(D .. "/p", { mode = "0700" }))
		eq(sh('stat -c %a "$1"', D .. "/p"), "700\n", "given mode")
		fails("conflict", fs.mkdir(D .. "/s"))
		fails("conflict", fs.mkdir(D .. "/s/sub"))
		for _, n in ipairs({ "b.dump", "a.dump", "c.txt", "sp ace.dump" }) do ok(fs.write(d .. "/" .. n, n)) end
		local g = ok(fs.glob(d .. "/*.dump"))
		eq(#g, 3, "three matches")
		eq(g[1], d .. "/a.dump", "sorted 1")
		eq(g[2], d .. "/b.dump", "sorted 2")
		eq(g[3], d .. "/sp ace.dump", "sorted 3")
		eq(#ok(fs.glob(d .. "/*.nothing")), 0, "no match: empty")
		eq(#ok(fs.glob(D .. "/x/*/z/c.txt")), 1, "wildcard directory")
		-- remove
		ok(fs.remove(d .. "/c.txt"))
		eq(fs.exists(d .. "/c.txt"), false, "removed")
		fails("not_found", fs.remove(d .. "/c.txt"))
		ok(fs.remove(d .. "/c.txt", { missing_ok = true }), "missing_ok")
		fails("conflict", fs.remove(D .. "/x"))
		eq(fs.exists(d .. "/a.dump"), true, "a failed remove removed nothing")
		ok(fs.remove(D .. "/x", { recursive = true }))
		eq(fs.exists(D .. "/x"), false, "removed recursively")
		ok(fs.remove(D .. "/p"), "an empty directory")
		-- a symlink is removed, not what it points to
		sh('mkdir "$1/keep" && echo k > "$1/keep/f" && ln -s keep "$1/ln"', D)
		ok(fs.remove(D .. "/ln", { recursive = true }))
		eq(ok(fs.read(D .. "/keep/f")), "k\n", "the link's target stays")
	end,
}
