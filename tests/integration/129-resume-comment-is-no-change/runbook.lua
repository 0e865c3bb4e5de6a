-- While b runs, someone adds a comment line above step "b" and drrun dies.
-- The file changed, but no step did: resume goes on without --force.
local exec = require "drrun.exec"

runbook { name = "comment" }

step "a" {
	run = function() exec.run { "sh", "-c", "echo a >> ledger.txt" } end,
	rollback = function() end,
}

step "b" {
	after = "a",
	timeout = "10s",
	run = function()
		exec.run { "sh", "-c", [[
test -e killed || {
  touch killed
  sed -i '/^step "b"/i -- b runs only once a is done' runbook.lua
  kill -9 $PPID; sleep 5
}
echo b >> ledger.txt]] }
	end,
}

step "c" {
	after = "b",
	run = function() exec.run { "sh", "-c", "echo c >> ledger.txt" } end,
}
