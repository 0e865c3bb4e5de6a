-- With no HOME, XDG_STATE_HOME or DRRUN_STATE_DIR there is no state
-- directory: drrun refuses rather than journal under ./.local/state/drrun.
runbook { name = "no-home" }

step "a" {
	run = function() return "A" end,
}
