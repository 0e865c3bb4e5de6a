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
void drr_view_resume(struct drr_view *v);
void drr_view_free(struct drr_view *v);

/* ---- report.c: the end-of-run summary ---------------------------------- */

struct drr_summary {
	const char *run_id, *status, *journal, *reason;
	int exit_code, color;
	double total;	/* since the run first started: what objectives are held to */
	double session; /* of this process alone */
	int sessions;	/* 1, or more for a resumed run */
};
void drr_report_summary(FILE *out, const struct drr_runbook *rb, const struct drr_stepstate *st,
			const struct drr_summary *s);

#endif
