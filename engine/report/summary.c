/*
 * report.c - the summary printed when a run ends: each step with its phase,
 * result, attempts and duration; each phase's wall time; the total against
 * the runbook's RTO; the result and where the journal is.  Names, errors
 * and paths reach the terminal escaped (term.c).
 */
#include "report/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A step's state once the run is over: what was still going on when the
 * process stopped was interrupted; what never started was not run. */
static enum drr_step_state final_state(enum drr_step_state st)
{
	switch (st) {
	case DRR_RUNNING:
	case DRR_RETRY_WAIT:
	case DRR_ROLLING_BACK:
		return DRR_INTERRUPTED;
	case DRR_PENDING:
	case DRR_WAIT_APPROVAL:
		return DRR_NOT_RUN;
	default:
		return st;
	}
}

static const char *met_word(int met, int color)
{
	if (met < 0)
		return "not measured";
	if (!color)
		return met ? "met" : "MISSED";
	return met ? "\033[32mmet\033[0m" : "\033[1;31mMISSED\033[0m";
}

/* RTO, RPO and phase budgets against their objectives. */
static void print_objectives(FILE *out, const struct drr_objectives *ob, int color)
{
	char a[32], t[32], ts[40];
	if (!ob->any)
		return;
	const char *from = !strcmp(ob->from, "trigger") ? "the alert's startsAt" : "the run's start";
	if (ob->tier) {
		char *tier = drr_term_str(ob->tier);
		fprintf(out, "  objectives of env %s:\n", tier);
		free(tier);
	}
	if (ob->rto.has_target) {
		if (ob->rto.measured)
			fprintf(out, "  RTO: %s from %s to the end of %s (objective %s): %s\n",
				drr_duration_fmt(ob->rto.achieved, a, sizeof a), from, ob->rto_to,
				drr_duration_fmt(ob->rto.target, t, sizeof t),
				met_word(ob->rto.met, color));
		else
			fprintf(out, "  RTO: not recovered (objective %s): %s\n",
				drr_duration_fmt(ob->rto.target, t, sizeof t),
				met_word(ob->rto.met, color));
	}
	if (ob->rpo.has_target) {
		if (ob->rpo.measured)
			fprintf(out, "  RPO: %s, recovery point %s (objective %s): %s\n",
				drr_duration_fmt(ob->rpo.achieved, a, sizeof a),
				drr_rfc3339(ob->recovery_point_us, ts, sizeof ts),
				drr_duration_fmt(ob->rpo.target, t, sizeof t),
				met_word(ob->rpo.met, color));
		else
			fprintf(out,
				"  RPO: no step reported a recovery point (objective %s): %s\n",
				drr_duration_fmt(ob->rpo.target, t, sizeof t),
				met_word(-1, color));
	}
	for (int i = 0; i < ob->nphases; i++) {
		const struct drr_phase_time *p = &ob->phases[i];
		if (!p->has_budget)
			continue;
		char *ph = drr_term_str(p->phase);
		fprintf(out, "  budget %s: %s (budget %s): %s\n", ph,
			p->met < 0 ? "-" : drr_duration_fmt(p->secs, a, sizeof a),
			drr_duration_fmt(p->budget, t, sizeof t), met_word(p->met, color));
		free(ph);
	}
}

/* What the steps of phase teardown did. */
static void print_teardown(FILE *out, const struct drr_runbook *rb, const struct drr_stepstate *st)
{
	int n = 0, done = 0, failed = 0;
	for (int i = 0; i < rb->nsteps; i++) {
		if (!rb->steps[i].teardown)
			continue;
		n++;
		done += st[i].state == DRR_COMPLETED || st[i].state == DRR_SKIPPED;
		failed += st[i].state == DRR_FAILED || st[i].state == DRR_CANCELLED;
	}
	if (!n)
		return;
	fprintf(out, "  teardown: %d of %d step%s done", done, n, n == 1 ? "" : "s");
	if (failed)
		fprintf(out, ", %d failed", failed);
	if (n - done - failed)
		fprintf(out, ", %d not run", n - done - failed);
	fprintf(out, "\n");
}

void drr_report_summary(FILE *out, const struct drr_runbook *rb, const struct drr_stepstate *st,
			const struct drr_summary *sm)
{
	char d[32];
	int w = 4;
	for (int i = 0; i < rb->nsteps; i++) {
		int n = (int)strlen(rb->steps[i].name);
		if (n > w)
			w = n < 40 ? n : 40;
	}
	const char *bold = sm->color ? "\033[1m" : "", *reset = sm->color ? "\033[0m" : "";
	char *name = drr_term_str(rb->name), *id = drr_term_str(sm->run_id);
	fprintf(out, "\n%sSummary of %s%s (%s)%s\n", bold, name, reset, id,
		sm->dry_run ? ": a DRY RUN" : "");
	free(name);
	free(id);
	if (sm->dry_run)
		fprintf(out, "  dry run: side effects were described, not made; only reads and "
			     "calls marked safe ran\n");
	fprintf(out, "  %-*s  %-12s %-16s %8s  %s\n", w, "step", "phase", "result", "attempts",
		"duration");
	for (int i = 0; i < rb->nsteps; i++) {
		const struct drr_stepstate *s = &st[i];
		const char *dur = "-";
		if (s->t_start > 0 && s->t_end > 0)
			dur = drr_duration_fmt(s->t_end - s->t_start, d, sizeof d);
		else if (s->prior > 0) /* done in an earlier session of a resumed run */
			dur = drr_duration_fmt(s->prior, d, sizeof d);
		char *sn = drr_term_str(s->def->name), *ph = drr_term_str(s->def->phase);
		fprintf(out, "  %-*.*s  %-12.12s %-16s %8d  %s\n", w, w, sn, ph,
			drr_state_word(final_state(s->state)), s->attempt, dur);
		free(sn);
		free(ph);
		if (s->error && (s->state == DRR_FAILED || s->state == DRR_ROLLBACK_FAILED ||
				 s->state == DRR_ABORTED)) {
			char *e = drr_redact(s->error), *te = drr_term_str(e);
			fprintf(out, "  %-*s  error: %.300s\n", w, "", te);
			free(te);
			free(e);
		}
	}

	/* phases, in the order they first appear; wall time first start -> last end */
	fprintf(out, "  phases:");
	int printed = 0;
	for (int i = 0; i < rb->nsteps; i++) {
		const char *ph = rb->steps[i].phase;
		int seen = 0;
		for (int k = 0; k < i && !seen; k++)
			seen = !strcmp(rb->steps[k].phase, ph);
		if (seen)
			continue;
		double lo = 0, hi = 0;
		for (int k = i; k < rb->nsteps; k++) {
			const struct drr_stepstate *s = &st[k];
			if (strcmp(s->def->phase, ph) || s->t_start <= 0 || s->t_end <= 0)
				continue;
			if (lo == 0 || s->t_start < lo)
				lo = s->t_start;
			if (s->t_end > hi)
				hi = s->t_end;
		}
		char *tph = drr_term_str(ph);
		fprintf(out, "%s %s %s", printed++ ? "," : "", tph,
			lo > 0 ? drr_duration_fmt(hi - lo, d, sizeof d) : "-");
		free(tph);
	}
	fprintf(out, "\n");
	fprintf(out, "  total: %s", drr_duration_fmt(sm->total, d, sizeof d));
	if (sm->sessions > 1)
		fprintf(out, " over %d sessions (this one %s)", sm->sessions,
			drr_duration_fmt(sm->session, d, sizeof d));
	fprintf(out, "\n");
	if (sm->ob)
		print_objectives(out, sm->ob, sm->color);
	print_teardown(out, rb, st);
	const char *col = !sm->color ? "" : sm->exit_code == 0 ? "\033[1;32m" : "\033[1;31m";
	fprintf(out, "  result: %s%s%s (exit %d)", col, sm->status, reset, sm->exit_code);
	if (sm->reason) {
		char *rr = drr_redact(sm->reason), *tr = drr_term_str(rr);
		fprintf(out, ": %s", tr);
		free(tr);
		free(rr);
	}
	char *jp = drr_term_str(sm->journal);
	fprintf(out, "\n  journal: %s\n", jp);
	free(jp);
	fflush(out);
}
