/*
 * run/sched.h - private to the scheduler's files (sched.c, ctx.c, approve.c,
 * rollback.c, signals.c): the one run of this process and the pieces they share.
 */
#ifndef DRR_SCHED_H
#define DRR_SCHED_H

#include "report/report.h"
#include "run/run.h"

enum {
	P_STEPS,
	P_ROLLBACK,
	P_TEARDOWN, /* the steps of phase teardown, whatever happened before */
	P_DONE
};
enum {
	STOP_NONE,
	STOP_FAILED,
	STOP_ABORTED,
	STOP_INTERRUPTED,
	STOP_JOURNAL
};

enum {
	LAUNCH_FIRST,	/* a step's first attempt in this session */
	LAUNCH_RETRY,	/* a further attempt */
	LAUNCH_ROLLBACK /* a completed step's rollback */
};

struct durable_wait {
	struct drr_stepstate *s;
	int kind;     /* LAUNCH_* */
	int64_t upto; /* the journal seq that must be on disk first */
};

struct run {
	struct drr_runbook *rb;
	struct drr_stepstate *st;     /* indexed like rb->steps */
	int *dep_first, *dep_list;    /* dependents of step i: dep_list[dep_first[i] ..
				      dep_first[i + 1]) */
	int *ready, nready;	      /* min-heap of steps that may start */
	int rescan;		      /* states changed outside the pass: rebuild it */
	int *held;		      /* ready steps put back for the next pass */
	struct drr_stepstate **start; /* the pass's steps to launch */
	struct durable_wait *wait;    /* FIFO ring: what waits for a sync */
	int wait_head, nwait, wait_cap;
	int rb_waiting; /* a rollback_start is being synced */
	const struct drr_opts *o;
	struct drr_journal *j;
	lua_State *L;
	uv_loop_t loop;
	char run_id[160];
	int phase, stop, hard, failed, rollback_failed, finished;
	char *reason;
	int running;
	int *done_list, ndone, rb_pos;
	struct drr_stepstate *rb_step;
	struct drr_task *rb_task;
	double t0;
	int exit_code;
	int outputs_ref;
	int trigger_ref; /* ctx.trigger, read-only; LUA_NOREF without --trigger */
	int tags_ref;	 /* ctx.tags, read-only: what marks a resource as this run's */
	struct drr_view *view;
	uv_signal_t sigint, sigterm;
	uv_timer_t tick;
	uv_tty_t tty;
	int tty_open, prompting;
	int asking; /* the Ctrl-C question is open (prompting is set too) */
	struct drr_stepstate *prompt_step;
	int deny_rollback; /* a declined approval asked to roll back what was done */
	struct drr_buf answer;
	const struct drr_resume *res;
	int lock_fd, resumable, explicit_rollback;
	int teardown_failed;	/* a teardown step failed: something may be left */
	int teardown_signalled; /* a signal came during teardown: the next stops at once */
	char *teardown_error;	/* the first failed teardown step's reason */
	int invalid_input;	/* a step failed on a value drrun refused (exit 65) */
	struct drr_elock *elock; /* --lock: the runbook's lock in etcd, or NULL */
	int lock_lost;		 /* ... and it was lost: no step starts any more */
};

extern struct run *run_current; /* the one run of this process, for Lua callbacks */

static inline void kick(void)
{
	drr_engine_kick();
}

/* ---- sched.c ---------------------------------------------------------------- */

/* Append rec (stolen) to the journal, synced if sync; a failure stops the run. */
void jrec(struct run *r, json_t *rec, int sync);
/* A new record of this type, about step s (or the run when s is NULL). */
json_t *rec_step(const char *type, const struct drr_stepstate *s);
json_t *jsecs(double secs);
/* The approval question: the runbook's, or the one a resume asks instead. */
const char *step_question(const struct drr_stepstate *s);
/* The step's own timer (retry delay or attempt timeout), made on first use. */
uv_timer_t *step_timer(struct run *r, struct drr_stepstate *s);
void step_timer_stop(struct drr_stepstate *s);
void set_stop(struct run *r, int why, const char *reason);
/* Settle steps waiting to retry: a stopping run retries nothing. */
void abandon_retries(struct run *r);
/* Journal step_start for the step's next attempt; not yet synced. */
void record_start(struct run *r, struct drr_stepstate *s);
void step_fail(struct run *r, struct drr_stepstate *s, const char *status, const char *err);
/* Begin s (LAUNCH_*) once every record appended so far is on disk; it
 * counts as running (or r->rb_waiting, for a rollback) meanwhile. */
void when_durable(struct run *r, struct drr_stepstate *s, int kind);
/* uv_close callback of a step's timer: frees it. */
void timer_closed(uv_handle_t *h);

/* ---- ctx.c: what a step's functions are given ------------------------------- */

/* Push a fresh ctx for step s.  [-0, +1, m] */
void push_ctx(struct run *r, struct drr_stepstate *s);
/* A step_log record of step s (redacted), shown in the view. */
void step_log(struct drr_stepstate *s, const char *msg);
/* The engine's log sink (drr_task_log): a step_log record of the task's step. */
void task_log(struct drr_task *t, const char *msg);
/* Push j as Lua tables that raise on any write (nested tables too), named
 * `name` in the error.  [-0, +1, m] */
void push_frozen_json(lua_State *L, const json_t *j, const char *name);
/* The value of a declared secret, or NULL. */
const char *declared_secret(const char *name);
/* The exec.env of the root task's step (drr_eng.exec_env). */
int task_exec_env(struct drr_task *t);

/* ---- approve.c: `when` and `approve` ------------------------------------------ */

/* Returns 1 to run, 0 to skip, -1 if `when` raised (the step then failed). */
int eval_when(struct run *r, struct drr_stepstate *s);
/* Returns 1 when the step may start now; else it waits for a prompt or the
 * run stops. */
int approve(struct run *r, struct drr_stepstate *s);
/* The terminal's question is void (answered elsewhere, or the run stops). */
void prompt_cancel(struct run *r, const char *why);
/* s's gate was declined by `by`: stop (resumable) or roll back, per on_deny. */
void approval_declined(struct run *r, struct drr_stepstate *s, const char *by);

/* ---- gate.c: approvals answered from elsewhere ------------------------------ */

/* approve = { ... }: a gate that waits for answers, terminal or not. */
int gate_is_remote(const struct drr_stepstate *s);
/* Whether one operator (--yes, the terminal) may answer s alone. */
int gate_yes_enough(const struct drr_stepstate *s);
void gate_open(struct run *r, struct drr_stepstate *s);
void gate_answered(struct drr_stepstate *s);
/* The gates still open; once the run stops they are withdrawn first. */
int gates_pending(struct run *r);
void gates_close(struct run *r);
void gates_free(void);
/* A trigger with a "confirm" member (serve's mode = "confirm"): open a gate
 * on the run itself before its first step; whether one is open. */
void gate_confirm_open(struct run *r);
int gate_confirming(void);
/* The prompt was answered (or the run is stopping: no). */
void prompt_answer(struct run *r, int yes);

/* ---- rollback.c: undoing completed steps ------------------------------------- */

void begin_rollbacks(struct run *r);
/* Start the next rollback, newest completed step first, one at a time. */
void schedule_rollback(struct run *r);
/* Its rollback_start is on disk: run s's rollback (unless the run stopped). */
void rollback_launch(struct run *r, struct drr_stepstate *s);

/* Rollbacks (if any) are over: run the teardown steps not run yet, or end. */
void enter_teardown(struct run *r);

/* ---- signals.c: stopping and ending ------------------------------------------ */

/* Watch SIGINT and SIGTERM; with live, redraw the view every 100 ms. */
void signals_start(struct run *r, int live);
/* What the run came to so far, as `status` prints it (completed,
 * rolled-back, failed, interrupted, aborted), and its exit code (when not
 * NULL); a teardown that fails makes it failed afterwards. */
const char *run_outcome(const struct run *r, int *exit_code);
/* The run is over: its status, exit code and run_end, the loop's handles
 * closed, the summary printed. */
void finish_run(struct run *r);

/* ---- lease.c: the runbook's lock in etcd (--lock) ----------------------------- */

/* Take it (a resume's was taken already); 0, or -1 with err. */
int lease_take(struct run *r, char *err, size_t errlen);
/* Keep it alive on the run's loop; a loss stops the run, resumable. */
void lease_watch(struct run *r);
/* Before a pass starts steps: stop the run if the lock is lost. */
void lease_check(struct run *r);
void lease_unwatch(struct run *r);
void lease_release(struct run *r);

/* replay.c: rebuild a resumed or rolled-back run's step states from its
 * journal. */
void drr_sched_apply_past(struct run *r);

#endif
