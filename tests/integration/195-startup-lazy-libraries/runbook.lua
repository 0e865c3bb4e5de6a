-- libcurl (and the thirty libraries it pulls in), libssh2 and libcrypto are
-- opened when a runbook first requires their module, never at start-up:
-- `check` never maps them.  check.py runs a runbook that requires them.
runbook { name = "startup-lazy-libcurl" }

step "a" {
	run = function() return "A" end,
}
