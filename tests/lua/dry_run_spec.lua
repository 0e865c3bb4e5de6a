-- dry_run_spec.lua: every plugin's --dry-run placeholder has the one
-- documented shape.  A runbook cannot switch dry-run on for itself, so this
-- spec runs dry_run_shapes.lua with a second drrun, `run --dry-run`, and
-- wants it to complete; nothing it would have done may exist afterwards.
local exec = require "drrun.exec"

runbook { name = "dry-run-spec" }

local function sh(script, ...)
	local r = assert(exec.run { "sh", "-c", script, "sh", ..., timeout = "60s" })
	return r
end

step "placeholders" {
	timeout = "90s",
	run = function()
		local r = sh([[
			drrun=$(readlink "/proc/$PPID/exe") st=$(mktemp -d) || exit 90
			"$drrun" run --no-color --dry-run --state-dir "$st" dry_run_shapes.lua
			rc=$?
			cat "$st"/runs/*/journal.jsonl
			rm -rf "$st"
			exit $rc]])
		if r.status ~= 0 then
			error(("drrun run --dry-run dry_run_shapes.lua: exit %s\n%s%s"):format(tostring(r.status),
				r.stdout, r.stderr))
		end
		for _, what in ipairs { "would run: touch never-exec", "would send: POST http://127.0.0.1:9/never",
			"would encrypt '/nonexistent' to 'never.enc'", ": touch never-ssh",
			"would transfer on " } do
			if not r.stdout:find(what, 1, true) then error(("no %q in\n%s"):format(what, r.stdout)) end
		end
		for _, f in ipairs { "never-exec", "never.enc" } do
			if exec.run { "test", "-e", f }.status == 0 then error(f .. " was made in a dry run") end
		end
	end,
}
