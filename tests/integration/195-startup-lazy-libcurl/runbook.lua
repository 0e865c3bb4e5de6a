-- libcurl (and the thirty libraries it pulls in) is opened when a runbook
-- first requires drrun.http, never at start-up: `check` of a runbook that
-- does not use HTTP never maps it.  check.py runs one that does.
runbook { name = "startup-lazy-libcurl" }

step "a" {
	run = function() return "A" end,
}
