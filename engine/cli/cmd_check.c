/*
 * cmd_check.c - `drrun check RUNBOOK.lua`: every validation the run does,
 * and nothing else.
 */
#include "cli/cli.h"
#include "serve/serve.h"

/* A rules file for `drrun serve`: its rules and schedules. */
static int check_rules(const char *file)
{
	struct drr_diag d = { 0 };
	struct serve_rules *rs = serve_rules_load(file, &d);
	int rc = 0;
	for (int i = 0; i < d.n; i++)
		drr_term_line(stderr, "%s", d.msgs[i]);
	if (d.n)
		rc = DRR_EXIT_INVALID;
	else
		drr_term_line(stdout, "%s: ok: rules file, %d rule%s, %d schedule%s", file,
			      rs->nrules, rs->nrules == 1 ? "" : "s", rs->nscheds,
			      rs->nscheds == 1 ? "" : "s");
	drr_diag_free(&d);
	serve_rules_free(rs);
	return rc;
}

int cmd_check(int argc, char **argv)
{
	struct drr_opts o;
	const char *file = NULL;
	int rc = drr_cli_parse(argc, argv, "check", &o, &file, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (serve_is_rules_file(file)) {
		rc = check_rules(file);
		drr_cli_free_opts(&o);
		return rc;
	}
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
