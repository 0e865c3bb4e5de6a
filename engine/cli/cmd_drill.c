/*
 * cmd_drill.c - `drrun drill RUNBOOK.lua [--env dr]`: a run with ctx.drill
 * true.  Steps run their drill variant (or are skipped), a step marked
 * production = true must have one, and an env marked production = true is
 * refused; both before anything runs (exit 65).  Teardown, objectives and
 * the journal are the scheduler's, as for any run.
 */
#include "cli/cli.h"

int cmd_drill(int argc, char **argv)
{
	struct drr_opts o;
	const char *file = NULL;
	int rc = drr_cli_parse(argc, argv, "drill", &o, &file, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	o.drill = 1;
	struct drr_runbook *rb = drr_cli_load(file, &o, &rc);
	if (rb) {
		drr_runbook_fingerprints(rb); /* run_start records them */
		rc = drr_sched_run(rb, &o, NULL);
		drr_runbook_free(rb);
	}
	drr_redact_clear();
	drr_cli_free_opts(&o);
	return rc;
}
