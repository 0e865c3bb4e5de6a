-- While b runs, someone changes what step "c" runs and drrun dies.
-- resume refuses, naming c, and runs nothing.
local exec = require "drrun.exec"

runbook { name = "changed" }

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
  sed -i 's/"echo \(c\) >>/"echo C >>/' runbook.lua
  kill -9 $PPID; sleep 5
}
echo b >> ledger.txt]] }
	end,
}

step "c" {
	after = "b",
	run = function() exec.run { "sh", "-c", "echo c >> ledger.txt" } end,
}
