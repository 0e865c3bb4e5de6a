/*
 * cmd_plan.c - `drrun plan RUNBOOK.lua`: the waves of steps the scheduler
 * would run together, with what each step carries (phase, gate, timeout,
 * retries, rollback).  Nothing runs.  What the runbook wrote reaches the
 * terminal escaped (term.c).
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

/* A step's doc, one indented line per line of it, each escaped (term.c). */
/* A table's gate: who must answer, how many, until when. */
static void print_gate(const struct drr_gate *g)
{
	struct drr_buf b = { 0 };
	drr_buf_addf(&b, "%d of ", g->quorum);
	for (int i = 0; i < g->napprovers; i++)
		drr_buf_addf(&b, "%s%s", i ? ", " : "", g->approvers[i]);
	if (!g->napprovers)
		drr_buf_adds(&b, "anyone");
	if (g->timeout > 0) {
		char d[32];
		drr_duration_fmt(g->timeout, d, sizeof d);
		drr_buf_addf(&b, "; %s, then %s", d, g->on_timeout ? "approve" : "deny");
	}
	if (g->on_deny == DRR_DENY_ROLLBACK)
		drr_buf_adds(&b, "; a deny rolls back");
	drr_term_line(stdout, "  %-24s   answered by: %s (drrun approve, or a link)", "", b.data);
	drr_buf_free(&b);
}

static void print_doc(const char *doc)
{
	for (const char *p = doc; *p;) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		drr_term_line(stdout, "  %-24s   %.*s", "", n, p);
		p += n + (nl != NULL);
	}
}

int cmd_plan(int argc, char **argv)
{
	struct drr_opts o;
	const char *file = NULL;
	int rc = drr_cli_parse(argc, argv, "plan", &o, &file, 0);
	if (rc)
		return rc < 0 ? 0 : rc;
	o.secrets_optional = 1; /* reviewing needs no credentials; a run does */
	struct drr_runbook *rb = drr_cli_load(file, &o, &rc);
	if (!rb)
		goto out;
	int *level = drr_xcalloc((size_t)rb->nsteps, sizeof *level);
	drr_graph_levels(rb->graph, rb->nsteps, level);
	int maxl = 0;
	for (int i = 0; i < rb->nsteps; i++)
		if (level[i] > maxl)
			maxl = level[i];
	char d[32];
	char *name = drr_term_str(rb->name), *tf = drr_term_str(file);
	printf("Plan for %s (%s)", name, tf);
	free(name);
	free(tf);
	if (rb->rto > 0)
		printf(", RTO %s", drr_duration_fmt(rb->rto, d, sizeof d));
	if (rb->rpo > 0)
		printf(", RPO %s", drr_duration_fmt(rb->rpo, d, sizeof d));
	printf("\n");
	for (int lv = 0; lv <= maxl; lv++) {
		printf("wave %d:\n", lv + 1);
		for (int i = 0; i < rb->nsteps; i++) {
			struct drr_step *s = &rb->steps[i];
			if (level[i] != lv)
				continue;
			struct drr_buf b = { 0 };
			drr_buf_addf(&b, "  %-24s [%s]", s->name, s->phase);
			if (s->g->nafter) {
				drr_buf_adds(&b, " after ");
				for (int k = 0; k < s->g->nafter; k++)
					drr_buf_addf(&b, "%s%s", k ? ", " : "", s->g->after[k]);
			}
			char *head = drr_term_str(b.data);
			fputs(head, stdout);
			free(head);
			drr_buf_free(&b);
			if (s->timeout > 0)
				printf(" timeout %s", drr_duration_fmt(s->timeout, d, sizeof d));
			if (s->retry.attempts > 1)
				printf(" retry %dx", s->retry.attempts);
			if (s->when_ref != LUA_NOREF)
				printf(" conditional");
			if (s->once)
				printf(" once");
			printf("%s\n", s->rollback_ref != LUA_NOREF ? " (has rollback)" : "");
			/* doc and question may quote a declared secret */
			if (s->approve) {
				char *r = drr_redact(s->approve);
				if (s->gate.question_ref != LUA_NOREF)
					drr_term_line(stdout, "  %-24s   approval: %s", "", r);
				else
					drr_term_line(stdout, "  %-24s   approval: \"%s\"", "", r);
				free(r);
			}
			if (s->gate.table)
				print_gate(&s->gate);
			if (s->doc) {
				char *r = drr_redact(s->doc);
				print_doc(r);
				free(r);
			}
		}
	}
	free(level);
	drr_runbook_free(rb);
	rc = 0;
out:
	drr_redact_clear();
	drr_cli_free_opts(&o);
	return rc;
}
