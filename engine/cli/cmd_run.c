/*
 * cmd_run.c - `drrun run RUNBOOK.lua`: validate, bind, and hand the runbook
 * to the scheduler.
 */
#include "cli/cli.h"

int cmd_run(int argc, char **argv)
{
	struct drr_opts o;
	const char *file = NULL;
	int rc = drr_cli_parse(argc, argv, "run", &o, &file, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
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
