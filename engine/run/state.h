/*
 * run/state.h - where each step of a run stands.  The scheduler owns one
 * struct drr_stepstate per step, indexed like rb->steps, so the loaded
 * runbook stays immutable; the live view and the summary only read it.
 */
#ifndef DRR_STATE_H
#define DRR_STATE_H

#include "runbook/runbook.h"

struct drr_task;

enum drr_step_state {
	DRR_PENDING,
	DRR_WAIT_APPROVAL,
	DRR_RUNNING,
	DRR_RETRY_WAIT,
	DRR_COMPLETED,
	DRR_FAILED,
	DRR_SKIPPED,
	DRR_NOT_RUN,
	DRR_ROLLING_BACK,
	DRR_ROLLED_BACK,
	DRR_ROLLBACK_FAILED,
};

struct drr_stepstate {
	const struct drr_step *def; /* the step as the runbook declares it */
	enum drr_step_state state;
	int attempt;
	int waiting;	       /* dependencies not yet done */
	int queued;	       /* in the scheduler's ready set */
	double t_start, t_end; /* monotonic */
	int64_t ts_start_us;
	int output_ref;
	char *error;
	char *last_log;
	char *question; /* approval asked instead of def->approve, or NULL */
	int approved;
	double t_attempt;
	double prior;	  /* seconds spent in earlier sessions (resume) */
	int attempt_base; /* attempts made in earlier sessions */
	int rerun;	  /* was in flight when an earlier session stopped */
	int cancelled;	  /* stopped by an interrupt or a dead journal */
	struct drr_task *task;
	uv_timer_t *timer; /* retry delay or attempt timeout */
};

#endif
