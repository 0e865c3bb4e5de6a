/*
 * report/report.h - what the terminal shows: the live view and the
 * end-of-run summary.
 */
#ifndef DRR_REPORT_H
#define DRR_REPORT_H

#include "run/state.h"

/* ---- view.c: what the terminal shows ----------------------------------- */

struct drr_view;
/* live: redraw one line per step in place (a terminal); else plain lines. */
/* st: the run's step states, indexed like rb->steps (read, never written). */
struct drr_view *drr_view_new(const struct drr_runbook *rb, const struct drr_stepstate *st,
			      FILE *out, int live, int color);
/* Something happened to step s (NULL for run-level messages). */
void drr_view_event(struct drr_view *v, const struct drr_stepstate *s, const char *what,
		    const char *detail);
void drr_view_redraw(struct drr_view *v);
/* A message for the operator, on stderr: above the live view, which is
 * cleared first and redrawn below it.  Leading newlines only matter without
 * a live view.  The message is escaped (term.c) and ends the line. */
void drr_view_message(struct drr_view *v, const char *fmt, ...) DRR_PRINTF(2, 3);
/* Stop drawing in place (before a prompt or the summary). */
void drr_view_suspend(struct drr_view *v);
/* Erase the frame, then stop drawing: a question asked mid-run leaves no
 * stale frame above the one drawn after it. */
void drr_view_clear(struct drr_view *v);
void drr_view_resume(struct drr_view *v);
void drr_view_free(struct drr_view *v);

/* ---- objectives.c: RTO, RPO and budgets, from the journal -------------- */

/* An RFC 3339 time ("2026-11-30T10:00:00Z", fractions and +hh:mm offsets
 * too) as microseconds since the epoch; -1 when it is not one. */
int drr_rfc3339_parse(const char *s, int64_t *us);

struct drr_objective {
	double target, achieved; /* seconds */
	int has_target, measured;
	int met; /* 1, 0, or -1: not measured */
};
struct drr_phase_time {
	const char *phase; /* borrowed from the records */
	int64_t start_us, end_us;
	double secs, budget;
	int ran, has_budget;
	int met; /* 1, 0, or -1: no budget, or nothing of it ran */
};
struct drr_objectives {
	struct drr_objective rto, rpo;
	const char *from;  /* "trigger" (its startsAt) or "run_start" */
	const char *rto_to; /* "verify", or "last step" with no verify step */
	const char *tier;  /* the env whose rto/rpo override the runbook's, or NULL */
	int64_t start_us, incident_us, rto_end_us, recovery_point_us;
	int has_recovery_point;
	struct drr_phase_time *phases; /* in the order they first started */
	int nphases;
	int any;    /* some objective or budget is declared */
	int missed; /* some declared one was measured and missed */
};
/* Measure from a run's records (the array drr_journal_load gives, borrowed
 * until drr_objectives_free).  status: how the run ended ("completed" is the
 * only end that recovers), or NULL when it has no end (running, crashed):
 * its RTO is then not measured. */
void drr_objectives_compute(json_t *recs, const char *status, struct drr_objectives *ob);
/* The report's and run_end's "objectives" object (new reference). */
json_t *drr_objectives_json(const struct drr_objectives *ob);
/* "met", "missed" or "none" (nothing declared). */
const char *drr_objectives_verdict(const struct drr_objectives *ob);
void drr_objectives_free(struct drr_objectives *ob);

/* ---- evidence.c, render.c: `drrun report` ------------------------------- */

/* The report of the run in run_dir, from its journal alone (new reference;
 * docs/report.md documents it), with `audit verify` under state_dir and the
 * key.  NULL with err when there is no journal or no run_start in it. */
json_t *drr_report_build(const char *run_dir, const char *state_dir, const void *key, size_t klen,
			 char *err, size_t errlen);
void drr_report_md(struct drr_buf *b, json_t *rep);
/* One self-contained page, with an inline-SVG Gantt timeline. */
void drr_report_html(struct drr_buf *b, json_t *rep);

/* ---- history.c: `drrun report --history [RUNBOOK]` ----------------------- */

/* Every run in state_dir (of runbook, when not NULL), oldest first, with its
 * objectives and checks, and the success rate.  NULL with err. */
json_t *drr_history_build(const char *state_dir, const char *runbook, char *err, size_t errlen);
void drr_history_md(struct drr_buf *b, json_t *h);
/* A table and an inline-SVG trend chart of RTO and RPO achieved. */
void drr_history_html(struct drr_buf *b, json_t *h);

/* ---- report.c: the end-of-run summary ---------------------------------- */

struct drr_summary {
	const char *run_id, *status, *journal, *reason;
	int exit_code, color;
	int dry_run;	/* --dry-run: said at the top, so nobody takes it for the real thing */
	double total;	/* since the run first started: what objectives are held to */
	double session; /* of this process alone */
	int sessions;	/* 1, or more for a resumed run */
	const struct drr_objectives *ob; /* as measured at the end, or NULL */
};
void drr_report_summary(FILE *out, const struct drr_runbook *rb, const struct drr_stepstate *st,
			const struct drr_summary *s);

#endif
