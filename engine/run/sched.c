/*
 * sched.c - the DAG scheduler.  Steps whose dependencies are done start as
 * tasks (coroutines) on one libuv loop, up to --max-parallel at once; each
 * attempt has its own timeout; failed attempts are retried with capped
 * exponential backoff; `when` can skip a step and `approve` asks a human.
 * On the first failure no new step starts, running steps finish, and then
 * the rollbacks of completed steps run one at a time in reverse completion
 * order.  Every transition is journalled; a step starts only once its
 * step_start record is on disk (records of one pass share one fdatasync,
 * run on the thread pool: see "group commit" below).
 * The gates are in approve.c, rollbacks in rollback.c, ctx in ctx.c, signals
 * and the end of a run in signals.c.
 */
#include "run/sched.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>

struct run *run_current;

/* ---- journal helpers --------------------------------------------------------- */

static void journal_failed(struct run *r);

void jrec(struct run *r, json_t *rec, int sync)
{
	if (r->stop == STOP_JOURNAL) {
		json_decref(rec);
		return;
	}
	if (drr_journal_append(r->j, rec, sync) < 0)
		journal_failed(r);
}

json_t *rec_step(const char *type, const struct drr_stepstate *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string(type));
	if (s)
		json_object_set_new(o, "step", json_string(s->def->name));
	return o;
}

const char *step_question(const struct drr_stepstate *s)
{
	return s->question ? s->question : s->def->approve;
}

json_t *jsecs(double secs)
{
	return json_real(round(secs * 1e6) / 1e6);
}

/* ---- timers owned by steps --------------------------------------------------- */

void timer_closed(uv_handle_t *h)
{
	free(h);
}

uv_timer_t *step_timer(struct run *r, struct drr_stepstate *s)
{
	if (!s->timer) {
		s->timer = drr_xcalloc(1, sizeof *s->timer);
		uv_timer_init(&r->loop, s->timer);
		s->timer->data = s;
	}
	return s->timer;
}

void step_timer_stop(struct drr_stepstate *s)
{
	if (s->timer)
		uv_timer_stop(s->timer);
}

/* ---- stopping ------------------------------------------------------------------ */

void set_stop(struct run *r, int why, const char *reason)
{
	if (r->stop == STOP_JOURNAL || r->stop == STOP_FAILED)
		return; /* a failure wins over an abort; a dead journal over all */
	if (r->stop == STOP_INTERRUPTED && why == STOP_ABORTED)
		return;
	r->stop = why;
	if (reason) {
		free(r->reason);
		r->reason = drr_redact(reason);
	}
}

static void journal_failed(struct run *r)
{
	if (r->stop == STOP_JOURNAL)
		return;
	free(r->reason);
	r->reason = drr_xasprintf("journal: %s", drr_journal_error(r->j));
	r->stop = STOP_JOURNAL;
	r->hard = 1;
	drr_view_message(r->view, "drrun: %s; stopping (nothing more can be recorded)", r->reason);
	for (int i = 0; i < r->rb->nsteps; i++) {
		struct drr_stepstate *s = &r->st[i];
		if (s->task)
			drr_task_cancel(s->task, "stopped: the journal cannot be written");
	}
	if (r->rb_task)
		drr_task_cancel(r->rb_task, "stopped: the journal cannot be written");
	kick();
}

/* ---- step lifecycle -------------------------------------------------------------- */

static void step_done(struct drr_task *t, int status, void *ud);

/* ---- the ready set: steps whose dependencies are done, lowest index first -- */

static void ready_push(struct run *r, int i)
{
	if (r->st[i].queued || (r->phase == P_TEARDOWN) != r->st[i].def->teardown)
		return; /* teardown steps wait for the end, and then run alone */
	r->st[i].queued = 1;
	int k = r->nready++;
	while (k > 0 && r->ready[(k - 1) / 2] > i) {
		r->ready[k] = r->ready[(k - 1) / 2];
		k = (k - 1) / 2;
	}
	r->ready[k] = i;
}

static int ready_pop(struct run *r)
{
	int top = r->ready[0], last = r->ready[--r->nready], k = 0;
	for (;;) {
		int c = 2 * k + 1;
		if (c >= r->nready)
			break;
		if (c + 1 < r->nready && r->ready[c + 1] < r->ready[c])
			c++;
		if (r->ready[c] >= last)
			break;
		r->ready[k] = r->ready[c];
		k = c;
	}
	if (r->nready > 0)
		r->ready[k] = last;
	r->st[top].queued = 0;
	return top;
}

/* Rebuild the ready set from every step's state (after a resume or an
 * approval changed states outside the pass). */
static void ready_rescan(struct run *r)
{
	r->rescan = 0;
	for (int i = 0; i < r->rb->nsteps; i++)
		if (r->st[i].state == DRR_PENDING && r->st[i].waiting == 0)
			ready_push(r, i);
}

/* Each step's dependents, as a compressed list: O(steps + edges) once, so
 * that a completion touches only the steps that wait for it. */
static void index_dependents(struct run *r)
{
	struct drr_runbook *rb = r->rb;
	int n = rb->nsteps, nedges = 0;
	r->dep_first = drr_xcalloc((size_t)n + 1, sizeof *r->dep_first);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < rb->steps[i].g->ndeps; k++, nedges++)
			r->dep_first[rb->steps[i].g->deps[k] + 1]++;
	for (int i = 0; i < n; i++)
		r->dep_first[i + 1] += r->dep_first[i];
	r->dep_list = drr_xmalloc((size_t)(nedges ? nedges : 1) * sizeof *r->dep_list);
	int *fill = drr_xmalloc((size_t)(n ? n : 1) * sizeof *fill);
	for (int i = 0; i < n; i++)
		fill[i] = r->dep_first[i];
	for (int i = 0; i < n; i++)
		for (int k = 0; k < rb->steps[i].g->ndeps; k++)
			r->dep_list[fill[rb->steps[i].g->deps[k]]++] = i;
	free(fill);
}

static void dependents_done(struct run *r, struct drr_stepstate *s)
{
	int idx = (int)(s - r->st);
	for (int e = r->dep_first[idx]; e < r->dep_first[idx + 1]; e++) {
		int i = r->dep_list[e];
		if (--r->st[i].waiting == 0 && r->st[i].state == DRR_PENDING)
			ready_push(r, i);
	}
}

static void on_attempt_timeout(uv_timer_t *h)
{
	struct drr_stepstate *s = h->data;
	if (!s->task)
		return;
	char d[32], *msg = drr_xasprintf("timeout: step exceeded %s",
					 drr_duration_fmt(s->def->timeout, d, sizeof d));
	drr_task_cancel(s->task, msg);
	free(msg);
	kick();
}

/* A drill runs the step's drill function instead of run. */
static int drill_variant(const struct run *r, const struct drr_stepstate *s)
{
	return r->o->drill && s->def->drill == DRR_DRILL_FN;
}

static void launch_attempt(struct run *r, struct drr_stepstate *s)
{
	lua_State *L = r->L;
	s->state = DRR_RUNNING;
	s->t_attempt = drr_mono();
	lua_rawgeti(L, LUA_REGISTRYINDEX, drill_variant(r, s) ? s->def->drill_ref : s->def->run_ref);
	push_ctx(r, s);
	struct drr_task *t = drr_task_spawn(L, 1, step_done, r);
	t->owner = s;
	s->task = t;
	if (s->def->timeout > 0) {
		t->deadline = s->t_attempt + s->def->timeout;
		uv_timer_start(step_timer(r, s), on_attempt_timeout,
			       (uint64_t)(s->def->timeout * 1000 + 0.5), 0);
	}
	drr_view_event(r->view, s, "start", NULL);
}

/* Journal step_start for the step's next attempt; not yet synced. */
void record_start(struct run *r, struct drr_stepstate *s)
{
	s->attempt++;
	json_t *rec = rec_step("step_start", s);
	json_object_set_new(rec, "phase", json_string(s->def->phase));
	json_object_set_new(rec, "attempt", json_integer(s->attempt));
	if (s->rerun)
		json_object_set_new(rec, "rerun", json_true());
	if (drill_variant(r, s))
		json_object_set_new(rec, "variant", json_string("drill"));
	jrec(r, rec, 0);
}

/* A teardown step still retries while the run is stopping, short of a
 * stop at once. */
static int may_retry_stopping(const struct run *r, const struct drr_stepstate *s)
{
	return s->def->teardown && r->phase == P_TEARDOWN && !r->hard &&
	       r->stop != STOP_JOURNAL;
}

static void on_retry_timer(uv_timer_t *h)
{
	struct drr_stepstate *s = h->data;
	struct run *r = run_current;
	if (r->stop && !may_retry_stopping(r, s)) {
		abandon_retries(r);
		kick();
		return;
	}
	/* every attempt starts only once its step_start is on disk */
	record_start(r, s);
	s->state = DRR_RUNNING;
	when_durable(r, s, LAUNCH_RETRY);
}

/* ---- group commit: what waits for its records to be on disk -------------------
 * A pass appends its records and asks for one fdatasync on the thread pool;
 * the loop goes on meanwhile.  A step (or a retry, or a rollback) whose
 * start record was appended waits here, counted as running, and begins only
 * once a sync that covers that record has completed.  Records are synced in
 * the order they were appended, so this also covers the records of the pass
 * that completed its dependencies. */

static void sync_done(void *ud, int rc);

static void flush_launches(struct run *r)
{
	int64_t durable = drr_journal_durable(r->j);
	lease_check(r);
	while (r->nwait > 0) {
		struct durable_wait *w = &r->wait[r->wait_head];
		if (r->stop != STOP_JOURNAL && w->upto > durable)
			break;
		struct drr_stepstate *s = w->s;
		int kind = w->kind;
		r->wait_head = (r->wait_head + 1) % r->wait_cap;
		r->nwait--;
		if (kind == LAUNCH_ROLLBACK) {
			rollback_launch(r, s);
		} else if (r->stop == STOP_JOURNAL && kind == LAUNCH_FIRST) {
			s->state = DRR_NOT_RUN;
			r->running--;
		} else if (r->stop == STOP_JOURNAL) {
			step_fail(r, s, "cancelled", "stopped: the journal cannot be written");
		} else if (r->lock_lost) {
			step_fail(r, s, "cancelled", "stopped: the lock was lost");
		} else if (r->hard || (r->stop == STOP_INTERRUPTED && !s->def->teardown)) {
			step_fail(r, s, "cancelled", "interrupted");
		} else {
			launch_attempt(r, s);
		}
	}
}

/* Ask for the journal's records to reach the disk; never blocks. */
static void request_sync(struct run *r)
{
	int rc =
		r->stop == STOP_JOURNAL ? -1 : drr_journal_sync_async(r->j, &r->loop, sync_done, r);
	if (rc < 0 && r->stop != STOP_JOURNAL)
		journal_failed(r);
	if (rc <= 0)
		flush_launches(r);
}

static void sync_done(void *ud, int rc)
{
	struct run *r = ud;
	if (r->finished)
		return;
	if (rc < 0)
		journal_failed(r);
	flush_launches(r);
	/* records appended while that sync ran: the next group */
	if (drr_journal_seq(r->j) > drr_journal_durable(r->j))
		request_sync(r);
	kick();
}

void when_durable(struct run *r, struct drr_stepstate *s, int kind)
{
	struct durable_wait *w = &r->wait[(r->wait_head + r->nwait) % r->wait_cap];
	w->s = s;
	w->kind = kind;
	w->upto = drr_journal_seq(r->j);
	r->nwait++;
	request_sync(r);
}

/* The one step_end builder: a step leaves the running set.  "completed"
 * carries output (stolen; NULL for none), "aborted" s->error as its
 * reason, "failed" and "cancelled" s->error as the error. */
static void record_end(struct run *r, struct drr_stepstate *s, const char *status, json_t *output)
{
	s->t_end = drr_mono();
	json_t *rec = rec_step("step_end", s);
	json_object_set_new(rec, "status", json_string(status));
	json_object_set_new(rec, "attempts", json_integer(s->attempt));
	json_object_set_new(rec, "duration", jsecs(s->t_end - s->t_start));
	if (!strcmp(status, "completed")) {
		json_t *red =
			output ? drr_secrets_map(output, r->rb->secrets, r->rb->nsecrets) : NULL;
		json_object_set_new(rec, "output", output ? output : json_null());
		if (red)
			json_object_set_new(rec, "redacted", red);
	} else
		json_object_set_new(rec, strcmp(status, "aborted") ? "error" : "reason",
				    drr_json_str(s->error));
	jrec(r, rec, 0);
	r->running--;
}

void step_fail(struct run *r, struct drr_stepstate *s, const char *status, const char *err)
{
	s->cancelled = !strcmp(status, "cancelled");
	s->state = s->cancelled ? DRR_CANCELLED : DRR_FAILED;
	free(s->error);
	s->error = drr_redact(err);
	record_end(r, s, status, NULL);
	drr_view_event(r->view, s, status, s->error);
}

void abandon_retries(struct run *r)
{
	for (int i = 0; i < r->rb->nsteps; i++) {
		struct drr_stepstate *s = &r->st[i];
		if (s->state != DRR_RETRY_WAIT || may_retry_stopping(r, s))
			continue;
		step_timer_stop(s);
		char *e = drr_xasprintf("%s (no retry: the run is stopping)",
					s->error ? s->error : "failed");
		step_fail(r, s, "cancelled", e);
		free(e);
	}
}

static double retry_delay(const struct drr_retry *rt, int failed_attempt)
{
	double d = rt->delay;
	for (int i = 1; i < failed_attempt; i++) {
		d *= rt->backoff;
		if (rt->max_delay > 0 && d > rt->max_delay)
			break;
	}
	if (rt->max_delay > 0 && d > rt->max_delay)
		d = rt->max_delay;
	return d;
}

static void step_done(struct drr_task *t, int status, void *ud)
{
	struct run *r = ud;
	struct drr_stepstate *s = t->owner;
	lua_State *L = r->L;
	step_timer_stop(s);
	s->task = NULL;

	if (status == DRR_TASK_OK) {
		s->state = DRR_COMPLETED;
		s->output_ref = t->result_ref;
		t->result_ref = LUA_NOREF;
		json_t *out = NULL;
		if (s->output_ref != LUA_NOREF) {
			lua_rawgeti(L, LUA_REGISTRYINDEX, s->output_ref);
			out = drr_lua_to_json(L, -1);
			lua_rawgeti(L, LUA_REGISTRYINDEX, r->outputs_ref);
			lua_insert(L, -2);
			lua_setfield(L, -2, s->def->name);
			lua_pop(L, 1);
		}
		record_end(r, s, "completed", out);
		if (!s->def->teardown) /* teardown is not rolled back */
			r->done_list[r->ndone++] = (int)(s - r->st);
		dependents_done(r, s);
		drr_view_event(r->view, s, "completed", NULL);
	} else if (status == DRR_TASK_ABORT) {
		s->state = DRR_ABORTED;
		free(s->error);
		s->error = drr_redact(t->error);
		record_end(r, s, "aborted", NULL);
		set_stop(r, STOP_ABORTED, s->error);
		drr_view_event(r->view, s, "aborted", s->error);
		abandon_retries(r);
	} else {
		const char *err = t->error ? t->error : "failed";
		int interrupted =
			r->stop == STOP_INTERRUPTED || r->stop == STOP_JOURNAL || r->hard;
		int may_retry = (!r->stop || may_retry_stopping(r, s)) && !s->invalid;
		if (s->def->teardown && r->phase == P_TEARDOWN) /* it runs while stopping */
			interrupted = r->hard || r->stop == STOP_JOURNAL;
		if (may_retry && !r->hard &&
		    s->attempt - s->attempt_base < s->def->retry.attempts) {
			double delay = retry_delay(&s->def->retry, s->attempt - s->attempt_base);
			free(s->error);
			s->error = drr_redact(err);
			json_t *rec = rec_step("step_attempt", s);
			json_object_set_new(rec, "attempt", json_integer(s->attempt));
			json_object_set_new(rec, "status", json_string("failed"));
			json_object_set_new(rec, "error", drr_json_str(s->error));
			json_object_set_new(rec, "retry_in", jsecs(delay));
			jrec(r, rec, 0); /* the group commit covers it */
			s->state = DRR_RETRY_WAIT;
			char d[32], *msg = drr_xasprintf(
					    "attempt %d failed, retrying in %s: %s", s->attempt,
					    drr_duration_fmt(delay, d, sizeof d), s->error);
			drr_view_event(r->view, s, "retry", msg);
			free(msg);
			uv_timer_start(step_timer(r, s), on_retry_timer,
				       (uint64_t)(delay * 1000 + 0.5), 0);
		} else if (s->def->teardown) {
			/* teardown goes on with the steps that do not wait for it */
			step_fail(r, s, interrupted ? "cancelled" : "failed", err);
			if (!r->teardown_failed)
				r->teardown_error =
					drr_xasprintf("teardown step '%s' failed", s->def->name);
			r->teardown_failed = 1;
		} else {
			step_fail(r, s, interrupted ? "cancelled" : "failed", err);
			if (!interrupted && s->invalid)
				r->invalid_input = 1;
			if (!interrupted) {
				int first = r->stop != STOP_FAILED;
				r->failed = 1;
				set_stop(r, STOP_FAILED, NULL);
				if (first) { /* a failure outranks an abort: say so */
					free(r->reason);
					r->reason = drr_xasprintf("step '%s' failed", s->def->name);
				}
				abandon_retries(r);
			}
		}
	}
	drr_task_free(t);
	kick();
}

/* ---- the scheduler pass ---------------------------------------------------------- */

/* `when`, except that a teardown step whose `when` raises fails alone:
 * the run's own outcome (and its rollbacks) were settled before. */
static int gate_when(struct run *r, struct drr_stepstate *s)
{
	if (!s->def->teardown)
		return eval_when(r, s);
	int stop = r->stop, failed = r->failed;
	char *reason = r->reason ? drr_xstrdup(r->reason) : NULL;
	int go = eval_when(r, s);
	if (go < 0) {
		r->stop = stop;
		r->failed = failed;
		free(r->reason);
		r->reason = reason;
		if (!r->teardown_failed)
			r->teardown_error = drr_xasprintf("teardown step '%s' failed", s->def->name);
		r->teardown_failed = 1;
	} else {
		free(reason);
	}
	return go;
}

static void schedule_steps(struct run *r)
{
	int max = r->o->max_parallel > 0 ? r->o->max_parallel : 32;
	struct drr_stepstate **start = r->start;
	int nstart = 0, nheld = 0;

	int teardown = r->phase == P_TEARDOWN;
	if (!teardown && !r->stop && gate_confirming())
		return; /* serve's mode = "confirm": nothing starts before a human says so */
	if (r->rescan)
		ready_rescan(r);
	while ((teardown ? !r->hard && r->stop != STOP_JOURNAL : !r->stop) && r->nready > 0 &&
	       r->running + nstart < max) {
		int i = ready_pop(r);
		struct drr_stepstate *s = &r->st[i];
		if (s->state != DRR_PENDING || s->waiting > 0)
			continue;
		int go = r->o->drill && s->def->drill == DRR_DRILL_SKIP ? 0 : gate_when(r, s);
		if (go < 0 && teardown)
			continue;
		if (go < 0)
			break;
		if (go == 0) {
			s->state = DRR_SKIPPED;
			json_t *rec = rec_step("step_skipped", s);
			json_object_set_new(rec, "phase", json_string(s->def->phase));
			json_object_set_new(rec, "reason",
					    json_string(r->o->drill && s->def->drill == DRR_DRILL_SKIP
								? "drill = \"skip\""
								: "when returned false"));
			jrec(r, rec, 0);
			dependents_done(r, s);
			drr_view_event(r->view, s, "skipped", NULL);
			continue;
		}
		if (step_question(s) && !approve(r, s)) {
			if (s->state == DRR_PENDING)
				r->held[nheld++] = i; /* another question is being asked */
			continue;
		}
		s->t_start = drr_mono();
		s->ts_start_us = drr_now_us();
		s->state = DRR_RUNNING;
		record_start(r, s);
		start[nstart++] = s;
	}
	for (int k = 0; k < nheld; k++)
		ready_push(r, r->held[k]);
	/* a step starts only once its step_start is on disk */
	for (int i = 0; i < nstart; i++) {
		r->running++;
		when_durable(r, start[i], LAUNCH_FIRST);
	}

	if (r->running > 0 || r->prompting || gates_pending(r))
		return;
	if (teardown) {
		/* what waits for a failed teardown step does not run */
		r->phase = P_DONE;
		return;
	}
	if (r->stop == STOP_FAILED ||
	    ((r->stop == STOP_INTERRUPTED || r->deny_rollback) && !r->o->no_rollback && !r->hard)) {
		begin_rollbacks(r);
		return;
	}
	if (r->stop) {
		enter_teardown(r);
		return;
	}
	for (int i = 0; i < r->rb->nsteps; i++)
		if (r->st[i].state == DRR_PENDING && !r->st[i].def->teardown)
			return; /* more to come on the next pass */
	enter_teardown(r);
}

void enter_teardown(struct run *r)
{
	r->phase = P_DONE;
	/* a stop at once, a dead journal or a gate waiting for an approval
	 * leaves the run to resume: teardown runs when it really ends */
	if (r->hard || r->stop == STOP_JOURNAL || r->resumable)
		return;
	for (int i = 0; i < r->rb->nsteps; i++)
		if (r->st[i].def->teardown && r->st[i].state == DRR_PENDING) {
			r->phase = P_TEARDOWN;
			r->rescan = 1;
			drr_view_event(r->view, NULL, "teardown",
				       "running the steps of phase teardown");
			return;
		}
}

static void pass(void *ud)
{
	struct run *r = ud;
	if (r->finished)
		return;
	lease_check(r); /* a lost lock starts nothing more */
	if (r->phase == P_STEPS)
		schedule_steps(r);
	if (r->phase == P_ROLLBACK)
		schedule_rollback(r);
	if (r->phase == P_TEARDOWN)
		schedule_steps(r);
	request_sync(r); /* the rest of the pass's records, in the background */
	if (r->hard && r->running == 0 && !r->rb_task && !r->rb_waiting)
		r->phase = P_DONE;
	if (r->phase == P_DONE)
		finish_run(r);
	else
		drr_view_redraw(r->view);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void tee_json(const char *line, void *ud)
{
	(void)ud;
	fputs(line, stdout);
	fputc('\n', stdout);
	fflush(stdout);
}

void drr_run_id(const char *name, char *buf, size_t n)
{
	int64_t us = drr_now_us();
	char ts[40];
	drr_rfc3339(us, ts, sizeof ts);
	/* 2026-11-22T05:10:22.123456Z -> 20261122T051022.123Z */
	char compact[32];
	snprintf(compact, sizeof compact, "%.4s%.2s%.2sT%.2s%.2s%.2s.%.3sZ", ts, ts + 5, ts + 8,
		 ts + 11, ts + 14, ts + 17, ts + 20);
	unsigned char rnd[2] = { 0, 0 };
	uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL);
	snprintf(buf, n, "%s-%s-%02x%02x", compact, name, rnd[0], rnd[1]);
}

static void run_start_record(struct run *r)
{
	struct drr_runbook *rb = r->rb;
	lua_State *L = r->L;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	json_t *rec = rec_step("run_start", NULL);
	json_object_set_new(rec, "runbook", json_string(rb->name));
	json_object_set_new(rec, "file", drr_json_str(rb->path));
	char *abs = realpath(rb->path, NULL);
	drr_journal_path_members(rec, abs ? abs : rb->path);
	free(abs);
	json_object_set_new(rec, "sha256", json_string(rb->sha256));
	lua_rawgeti(L, LUA_REGISTRYINDEX, rb->params_ref);
	json_t *params = drr_lua_to_json(L, -1);
	lua_pop(L, 1);
	/* where the journal will hide secrets, so that resume can put them back */
	json_t *red = drr_secrets_map(params, rb->secrets, rb->nsecrets);
	json_object_set_new(rec, "params", params);
	if (red)
		json_object_set_new(rec, "redacted", red);
	json_object_set_new(rec, "secrets",
			    drr_secrets_stamp(rb->secrets, rb->nsecrets, r->o->key, r->o->klen));
	json_object_set_new(rec, "env", r->o->env_name ? json_string(r->o->env_name) : json_null());
	if (r->o->trigger) {
		/* redacted like params, with its own map for resume */
		json_t *t = json_deep_copy(r->o->trigger);
		json_t *tred = drr_secrets_map(t, rb->secrets, rb->nsecrets);
		json_object_set_new(rec, "trigger", t);
		if (tred)
			json_object_set_new(rec, "trigger_redacted", tred);
	}
	json_object_set_new(rec, "dry_run", json_boolean(r->o->dry_run));
	json_object_set_new(rec, "drill", json_boolean(r->o->drill));
	json_object_set_new(rec, "no_rollback", json_boolean(r->o->no_rollback));
	json_object_set_new(rec, "max_parallel",
			    json_integer(r->o->max_parallel > 0 ? r->o->max_parallel : 32));
	json_object_set_new(rec, "pid", json_integer(getpid()));
	json_object_set_new(rec, "host", drr_json_str(host));
	/* who ran it, for the report: the login name, else the uid */
	const char *user = getenv("USER");
	if (!user || !*user)
		user = getenv("LOGNAME");
	char uid[32];
	snprintf(uid, sizeof uid, "uid %ld", (long)geteuid());
	json_object_set_new(rec, "user", drr_json_str(user && *user ? user : uid));
	json_object_set_new(rec, "version", json_string(DRRUN_VERSION));
	/* the objectives the run is held to: the runbook's, or its env's tier */
	json_object_set_new(rec, "rto", rb->obj_rto > 0 ? jsecs(rb->obj_rto) : json_null());
	json_object_set_new(rec, "rpo", rb->obj_rpo > 0 ? jsecs(rb->obj_rpo) : json_null());
	if (rb->obj_from)
		json_object_set_new(rec, "tier", json_string(rb->obj_from));
	if (rb->nbudgets) {
		json_t *b = json_object();
		for (int i = 0; i < rb->nbudgets; i++)
			json_object_set_new(b, rb->budgets[i].phase, jsecs(rb->budgets[i].secs));
		json_object_set_new(rec, "budgets", b);
	}
	json_object_set_new(rec, "steps", json_integer(rb->nsteps));
	json_t *plan = json_object();
	for (int i = 0; i < rb->nsteps; i++)
		json_object_set_new(plan, rb->steps[i].name, json_string(rb->steps[i].fp));
	json_object_set_new(rec, "plan", plan);
	jrec(r, rec, 1);
}

static void free_states(struct run *r)
{
	for (int i = 0; i < r->rb->nsteps; i++) {
		free(r->st[i].error);
		free(r->st[i].last_log);
		free(r->st[i].question);
	}
	free(r->st);
	gates_free();
	free(r->dep_first);
	free(r->dep_list);
	free(r->ready);
	free(r->held);
	free(r->start);
	free(r->wait);
}

int drr_sched_run(struct drr_runbook *rb, const struct drr_opts *o, const struct drr_resume *res)
{
	struct run run, *r = &run;
	memset(r, 0, sizeof *r);
	run_current = r;
	r->rb = rb;
	r->o = o;
	r->L = rb->L;
	r->res = res;
	if (res)
		snprintf(r->run_id, sizeof r->run_id, "%s", res->past->run_id);
	else
		drr_run_id(rb->name, r->run_id, sizeof r->run_id);

	char err[512];
	r->lock_fd = res ? res->lock_fd
			 : drr_lock_take(o->state_dir, rb->name, r->run_id, err, sizeof err);
	if (r->lock_fd < 0) {
		fprintf(stderr, "drrun: cannot start: %s\n", err);
		return DRR_EXIT_CANTSTART;
	}
	if (lease_take(r, err, sizeof err) < 0) {
		fprintf(stderr, "drrun: cannot start: %s\n", err);
		drr_lock_release(r->lock_fd);
		return DRR_EXIT_CANTSTART;
	}
	r->j = res ? res->j : drr_journal_create(o->state_dir, r->run_id, err, sizeof err);
	if (!r->j) {
		fprintf(stderr, "drrun: cannot start: %s (set --state-dir or DRRUN_STATE_DIR)\n",
			err);
		lease_release(r);
		drr_lock_release(r->lock_fd);
		return DRR_EXIT_CANTSTART;
	}
	if (o->key)
		drr_journal_set_key(r->j, o->key, o->klen);
	if (o->json)
		drr_journal_set_tee(r->j, tee_json, NULL);

	uv_loop_init(&r->loop);
	drr_engine_init(r->L, &r->loop);
	drr_eng.after_pass = pass;
	drr_eng.after_ud = r;
	drr_eng.dry_run = o->dry_run;
	drr_eng.run_id = r->run_id;
	drr_eng.log = task_log;
	drr_eng.secret = declared_secret;
	drr_eng.exec_env = task_exec_env;
	lua_getglobal(r->L, "string");
	lua_getfield(r->L, -1, "format");
	drr_eng.string_format_ref = luaL_ref(r->L, LUA_REGISTRYINDEX);
	lua_pop(r->L, 1);
	lua_newtable(r->L);
	r->outputs_ref = luaL_ref(r->L, LUA_REGISTRYINDEX);
	json_t *tags = json_pack("{s:s, s:s, s:s}", "drrun-run", r->run_id, "drrun-runbook",
				 rb->name, "drrun-drill", o->drill ? "true" : "false");
	push_frozen_json(r->L, tags, "ctx.tags");
	json_decref(tags);
	r->tags_ref = luaL_ref(r->L, LUA_REGISTRYINDEX);
	r->trigger_ref = LUA_NOREF;
	if (o->trigger) {
		push_frozen_json(r->L, o->trigger, "ctx.trigger");
		r->trigger_ref = luaL_ref(r->L, LUA_REGISTRYINDEX);
	}
	r->done_list = drr_xcalloc((size_t)rb->nsteps + 1, sizeof *r->done_list);
	r->st = drr_xcalloc((size_t)rb->nsteps + 1, sizeof *r->st);
	for (int i = 0; i < rb->nsteps; i++) {
		r->st[i].def = &rb->steps[i];
		r->st[i].state = DRR_PENDING;
		r->st[i].waiting = rb->steps[i].g->ndeps;
		r->st[i].output_ref = LUA_NOREF;
	}
	index_dependents(r);
	r->ready = drr_xmalloc((size_t)rb->nsteps * sizeof *r->ready + sizeof(int));
	r->held = drr_xmalloc((size_t)rb->nsteps * sizeof *r->held + sizeof(int));
	r->start = drr_xmalloc(((size_t)rb->nsteps + 1) * sizeof *r->start);
	r->wait_cap = rb->nsteps + 1; /* a step waits at most once at a time */
	r->wait = drr_xcalloc((size_t)r->wait_cap, sizeof *r->wait);
	r->rescan = 1;

	int live = !o->json && isatty(1) && getenv("TERM") && strcmp(getenv("TERM"), "dumb");
	r->view = drr_view_new(rb, r->st, o->json ? stderr : stdout, live, o->color);
	r->t0 = drr_mono();
	if (res)
		drr_sched_apply_past(r);
	else
		run_start_record(r);
	if (r->stop == STOP_JOURNAL) {
		drr_view_free(r->view);
		drr_journal_close(r->j);
		lease_release(r);
		drr_lock_release(r->lock_fd);
		/* the engine's idle handle is open already: close it, and
		 * anything else, before the loop goes */
		uv_walk(&r->loop, close_leftover, NULL);
		uv_run(&r->loop, UV_RUN_DEFAULT);
		uv_loop_close(&r->loop);
		free(r->done_list);
		free(r->reason);
		free_states(r);
		return DRR_EXIT_CANTSTART;
	}
	if (!o->json)
		drr_view_event(r->view, NULL, "run", r->run_id);

	signals_start(r, live);
	lease_watch(r);
	if (!res)
		gate_confirm_open(r);

	kick();
	uv_run(&r->loop, UV_RUN_DEFAULT);
	lease_unwatch(r);
	if (uv_loop_close(&r->loop) != 0) {
		/* a plugin left a handle behind: close it so nothing leaks */
		uv_walk(&r->loop, close_leftover, NULL);
		uv_run(&r->loop, UV_RUN_DEFAULT);
		uv_loop_close(&r->loop);
	}
	drr_view_free(r->view);
	drr_journal_close(r->j);
	lease_release(r);
	drr_lock_release(r->lock_fd);
	luaL_unref(r->L, LUA_REGISTRYINDEX, r->outputs_ref);
	luaL_unref(r->L, LUA_REGISTRYINDEX, r->trigger_ref);
	luaL_unref(r->L, LUA_REGISTRYINDEX, r->tags_ref);
	free(r->done_list);
	free(r->reason);
	free(r->teardown_error);
	free_states(r);
	drr_buf_free(&r->answer);
	run_current = NULL;
	return r->exit_code;
}
