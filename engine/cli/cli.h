/*
 * cli/cli.h - what the verbs share, and the verbs.
 */
#ifndef DRR_CLI_H
#define DRR_CLI_H

#include "run/run.h"

/* ---- cli.c: what the verbs share ------------------------------------------ */

/* Parse the run-family flags after the verb; the runbook path goes to *file.
 * Returns 0, or an exit code (64 usage, 0 for --help) to return at once. */
enum {
	DRR_CLI_ARG_OPTIONAL = 1
};
int drr_cli_parse(int argc, char **argv, const char *verb, struct drr_opts *o, const char **file,
		  int flags);
/* Load, validate and bind; prints every error and returns NULL with *rc set
 * to 65 (or 66 when the file is missing). */
struct drr_runbook *drr_cli_load(const char *file, const struct drr_opts *o, int *rc);
void drr_cli_free_opts(struct drr_opts *o);
/* For the verbs with flags of their own (report): o zeroed, with the state
 * dir (given, or the default) and the audit key (--key-file F, or
 * DRRUN_AUDIT_KEY).  0, or -1 after a message (usage). */
int drr_cli_state_and_key(struct drr_opts *o, const char *verb, const char *state,
			  const char *key_file);
/* Print the help text of a verb (NULL: overview) to out. */
void drr_cli_help(FILE *out, const char *verb);

int cmd_run(int argc, char **argv);
int cmd_drill(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_resume(int argc, char **argv);
/* resume and rollback: the same journal replay, in mode DRR_MODE_RESUME or
 * DRR_MODE_ROLLBACK. */
int drr_cli_resume_or_rollback(int argc, char **argv, const char *verb, int mode);
int cmd_rollback(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_approve(int argc, char **argv);
/* Load the runbook a past run used, bound to that run's params and env. */
struct drr_runbook *drr_cli_load_past(struct drr_past *p, struct drr_opts *o, int *rc);

#endif
