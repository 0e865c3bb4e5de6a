/*
 * run/run.h - running a runbook (the scheduler) and reading a past run
 * back from its journal.
 */
#ifndef DRR_RUN_H
#define DRR_RUN_H

#include "journal/journal.h"
#include "lua/task.h"
#include "run/state.h"
#include "runbook/runbook.h"

/* ---- past.c: a run as its journal tells it ------------------------------- */

struct drr_past_step {
	const char *name;
	int started, ended, skipped, approved;
	const char *status; /* of step_end: completed, failed, aborted, cancelled */
	int attempts;
	double duration;
	json_t *output; /* borrowed from the records */
	const char *error;
	int done_order; /* 1-based completion order; 0 if not completed */
	int rb_started, rb_ended;
	const char *rb_status;
	json_t *redacted; /* step_end's map of the secrets its output hid */
	const char *rb_error;
	json_t *gate;	/* its approval record "waiting", while no decision followed */
	json_t *votes;	/* that gate's answers so far (array of records, borrowed) */
};

struct drr_past {
	json_t *recs;
	json_t *start, *end; /* run_start; the run_end of the last session, or NULL */
	const char *run_id, *runbook, *file, *path, *sha256, *env;
	json_t *params, *plan;
	struct drr_past_step *steps;
	int nsteps, capsteps;
	struct drr_names by_name; /* step name -> index in steps */
	int in_rollback;	/* a rollback had begun (rollback_start, or a rollback session) */
	int failed;		/* a step failed */
	int interrupted;	/* a run_interrupt: the operator stopped it */
	int interrupt_rollback; /* ... and it was to roll back */
	const char *interrupted_by; /* SIGINT or SIGTERM */
	int sessions;
	int64_t start_us; /* run_start's ts, in microseconds since the epoch (0: unreadable) */
	size_t torn;
	char dir[4096];
};
/* Find a run directory under state_dir: by its id, `last` (the newest run),
 * or any part of its id that only one run has; otherwise err says why (an
 * ambiguous part lists what it matches). */
int drr_run_find(const char *state_dir, const char *id, char *dir, size_t n, char *err,
		 size_t errlen);
int drr_past_load(const char *run_dir, struct drr_past *p, char *err, size_t errlen);
struct drr_past_step *drr_past_step(struct drr_past *p, const char *name);
/* The step's state as the journal tells it, in the one vocabulary of
 * run/state.h; running: the run is still going on in another process. */
enum drr_step_state drr_past_step_state(const struct drr_past_step *s, int running);
/* running, completed, failed, rolled-back, interrupted, aborted, or crashed
 * (no run_end and no process holding the run's lock: SIGKILL, power loss) */
const char *drr_past_state(const struct drr_past *p, const char *state_dir);
/* Whether `drrun resume` takes the run: crashed, or a run_end saying so. */
int drr_past_resumable(const struct drr_past *p, const char *state_dir);
/* What `drrun resume` would do with it: "carries on" or "finishes its rollback". */
const char *drr_past_resume_hint(const struct drr_past *p);
void drr_past_free(struct drr_past *p);

/* ---- secrets.c: the secrets a journal hides, given back to a resume ----- */

/* run_start's "secrets": each set secret's name -> a salted PBKDF2 of its
 * value (keyed by the audit key when there is one); never the value. */
json_t *drr_secrets_stamp(char **names, int n, const char *key, size_t klen);
/* -1 (err names the secret) when a secret now in the environment is not the
 * value its stamp was made from. */
int drr_secrets_verify(json_t *stamps, const char *key, size_t klen, const char *run_id, char *err,
		       size_t errlen);
/* Where redaction will hide a secret in v: a "redacted" member (new
 * reference), or NULL when nowhere. */
json_t *drr_secrets_map(json_t *v, char **names, int n);
/* Put the secrets of map back into v (as read from the journal) from the
 * environment; -1 with err naming the place and the secret when it cannot. */
int drr_secrets_restore(json_t *v, json_t *map, const char *what, char *err, size_t errlen);

/* ---- answer.c: answers to a run's approval gates ------------------------ */

#define DRR_ANSWER_MAX 4096 /* bytes of one answer file */

struct drr_answer {
	const char *gate, *step; /* the open gate (its id from the journal) */
	int approve;		 /* 1 approve, 0 deny */
	const char *as;		 /* the approver's name */
	const char *comment;	 /* or NULL */
	const char *via;	 /* "drrun approve", "link" */
	const char *from;	 /* where it came from (a peer address), or NULL */
};
/* Who answers from this process: $SUDO_USER, else $USER, else the account
 * (approve.c; read once). */
const char *drr_operator_name(void);
/* Whether s may name an approver: a letter or digit, then letters, digits,
 * '-', '_', '.'; at most 64 bytes. */
int drr_approver_name_ok(const char *s);
/* Leave the answer for the run in run_dir to read: <run_dir>/answers/
 * <gate>-<as>.json, whole or not at all (temp file, fsync, link, fsync of
 * the directory).  0; -1 with err (errno EEXIST: that approver answered). */
int drr_answer_write(const char *run_dir, const struct drr_answer *a, char *err, size_t errlen);
/* The gate of a past run still waiting for answers: step's, or the only one
 * when step is NULL.  NULL with err (none, several, or step has none). */
const json_t *drr_past_open_gate(const struct drr_past *p, const char *step, char *err,
				 size_t errlen);

/* ---- token.c: signed links to answer a gate ------------------------------ */

/* A link token naming run, step, gate and approver, valid until exp (unix
 * seconds); registered with the redactor.  malloc'd. */
char *drr_approval_token(const char *secret, const char *run, const char *step,
			 const char *gate, const char *as, int64_t exp);
/* The token's payload ({run, step, gate, as, exp}, a new reference) when its
 * HMAC is right and it has not expired at now (microseconds since the
 * epoch); else NULL with why: "malformed", "forged" or "expired". */
json_t *drr_approval_token_check(const char *secret, const char *tok, int64_t now,
				 const char **why);

/* ---- sched.c: running a runbook ------------------------------------------ */

enum {
	DRR_MODE_RUN,
	DRR_MODE_RESUME,
	DRR_MODE_ROLLBACK
};

/* Where a resumed or rolled-back run stands. */
struct drr_resume {
	int mode;
	struct drr_past *past;
	struct drr_journal *j; /* reopened for appending (after taking the lock) */
	int lock_fd;	       /* the runbook's lock, already held */
	struct drr_elock *elock; /* and with --lock, its etcd lock (or NULL) */
	size_t repaired;       /* bytes of torn tail cut off */
};

/* Run a loaded, bound runbook; returns the exit code.  A fresh run (res
 * NULL) creates its journal under o->state_dir; either way the runbook's
 * lock is taken first (exit 75 when held or when nothing can be written),
 * and with o->lock its etcd lock too (exit 75 when held or etcd does not
 * answer).  A resume's locks are the scheduler's to release. */
int drr_sched_run(struct drr_runbook *rb, const struct drr_opts *o, const struct drr_resume *res);
/* A new run id: 20261122T051022.123Z-<name>-<4 hex>. */
void drr_run_id(const char *name, char *buf, size_t n);

#endif
