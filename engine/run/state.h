/*
 * run/state.h - where each step of a run stands.  The scheduler owns one
 * struct drr_stepstate per step, indexed like rb->steps, so the loaded
 * runbook stays immutable; the live view and the summary only read it.
 */
#ifndef DRR_STATE_H
#define DRR_STATE_H

#include "runbook/runbook.h"

struct drr_task;
struct drr_gatewait;

/* Where a step stands.  Each state has one name, from drr_state_word(),
 * used by the live view, the summary and `status` alike, and documented
 * once, in RUNBOOKS.md ("Step states"). */
enum drr_step_state {
	DRR_PENDING,	     /* waiting: its dependencies are not done yet */
	DRR_WAIT_APPROVAL,   /* awaiting approval */
	DRR_RUNNING,	     /* running */
	DRR_RETRY_WAIT,	     /* retrying: an attempt failed, the next one is due */
	DRR_COMPLETED,	     /* completed */
	DRR_FAILED,	     /* failed: raised an error, retries used up */
	DRR_SKIPPED,	     /* skipped: `when` said no */
	DRR_NOT_RUN,	     /* not run: the run stopped before it started */
	DRR_ROLLING_BACK,    /* rolling back */
	DRR_ROLLED_BACK,     /* rolled back */
	DRR_ROLLBACK_FAILED, /* rollback failed */
	DRR_ABORTED,	     /* aborted: it called ctx.abort */
	DRR_CANCELLED,	     /* cancelled: stopped by an interrupt or a dead journal */
	DRR_INTERRUPTED,     /* interrupted: running when the process stopped */
};
const char *drr_state_word(enum drr_step_state st);

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
	int invalid;	  /* raised on a value drrun refused (ctx.recovery_point) */
	struct drr_task *task;
	uv_timer_t *timer;	 /* retry delay or attempt timeout */
	struct drr_gatewait *gw; /* its approval gate, while it waits for answers (gate.c) */
};

#endif
