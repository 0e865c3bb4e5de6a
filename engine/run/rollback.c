/*
 * rollback.c - after a failure (or an interrupt, or the rollback verb), the
 * rollbacks of completed steps run one at a time, newest completion first,
 * each journalled with rollback_start before it begins.
 */
#include "run/sched.h"

#include <stdlib.h>

void begin_rollbacks(struct run *r)
{
	r->phase = P_ROLLBACK;
	r->rb_pos = r->ndone - 1;
}

static void rollback_done(struct drr_task *t, int status, void *ud)
{
	struct run *r = ud;
	struct drr_stepstate *s = t->owner;
	step_timer_stop(s);
	double dur = drr_mono() - s->t_attempt;
	json_t *rec = rec_step("rollback_end", s);
	if (status == DRR_TASK_OK) {
		s->state = DRR_ROLLED_BACK;
		json_object_set_new(rec, "status", json_string("completed"));
		json_object_set_new(rec, "duration", jsecs(dur));
		drr_view_event(r->view, s, "rolled back", NULL);
	} else {
		s->state = DRR_ROLLBACK_FAILED;
		r->rollback_failed = 1;
		char *e = drr_redact(t->error ? t->error : "failed");
		json_object_set_new(rec, "status", json_string("failed"));
		json_object_set_new(rec, "duration", jsecs(dur));
		json_object_set_new(rec, "error", drr_json_str(e));
		drr_view_event(r->view, s, "rollback failed", e);
		free(s->error);
		s->error = e;
	}
	jrec(r, rec, 0); /* the group commit covers it */
	r->rb_task = NULL;
	r->rb_step = NULL;
	drr_task_free(t);
	kick();
}

static void on_rollback_timeout(uv_timer_t *h)
{
	struct drr_stepstate *s = h->data;
	if (run_current->rb_task && run_current->rb_step == s) {
		char d[32], *msg = drr_xasprintf("timeout: rollback exceeded %s",
						 drr_duration_fmt(s->def->timeout, d, sizeof d));
		drr_task_cancel(run_current->rb_task, msg);
		free(msg);
	}
}

void schedule_rollback(struct run *r)
{
	if (r->rb_task || r->rb_waiting || r->hard)
		return;
	while (r->rb_pos >= 0) {
		struct drr_stepstate *s = &r->st[r->done_list[r->rb_pos--]];
		if (s->def->rollback_ref == LUA_NOREF)
			continue;
		jrec(r, rec_step("rollback_start", s), 0);
		if (r->stop == STOP_JOURNAL)
			return;
		/* the rollback begins once its rollback_start is on disk */
		r->rb_waiting = 1;
		r->rb_step = s;
		s->state = DRR_ROLLING_BACK;
		when_durable(r, s, LAUNCH_ROLLBACK);
		return;
	}
	enter_teardown(r);
}

void rollback_launch(struct run *r, struct drr_stepstate *s)
{
	lua_State *L = r->L;
	r->rb_waiting = 0;
	if (r->stop == STOP_JOURNAL || r->hard) {
		/* stopped at once: left as a crash would leave it, resumable */
		r->rb_step = NULL;
		kick();
		return;
	}
	s->t_attempt = drr_mono();
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->def->rollback_ref);
	push_ctx(r, s);
	if (s->output_ref != LUA_NOREF)
		lua_rawgeti(L, LUA_REGISTRYINDEX, s->output_ref);
	else
		lua_pushnil(L);
	struct drr_task *t = drr_task_spawn(L, 2, rollback_done, r);
	t->owner = s;
	r->rb_task = t;
	r->rb_step = s;
	if (s->def->timeout > 0) {
		t->deadline = s->t_attempt + s->def->timeout;
		uv_timer_start(step_timer(r, s), on_rollback_timeout,
			       (uint64_t)(s->def->timeout * 1000 + 0.5), 0);
	}
	drr_view_event(r->view, s, "rolling back", NULL);
}
