/*
 * cmd_check.c - `drrun check RUNBOOK.lua`: every validation the run does,
 * and nothing else.
 */
#include "cli/cli.h"

int cmd_check(int argc, char **argv)
{
	struct drr_opts o;
	const char *file = NULL;
	int rc = drr_cli_parse(argc, argv, "check", &o, &file, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	o.secrets_optional = 1; /* reviewing needs no credentials; a run does */
	struct drr_runbook *rb = drr_cli_load(file, &o, &rc);
	if (rb) {
		drr_term_line(stdout, "%s: ok: runbook '%s', %d step%s", file, rb->name, rb->nsteps,
			      rb->nsteps == 1 ? "" : "s");
		drr_runbook_free(rb);
		rc = 0;
	}
	drr_redact_clear();
	drr_cli_free_opts(&o);
	return rc;
}
