/*
 * replay.c - the replay of the past: a resumed or rolled-back run's steps
 * rebuilt from its journal, before the scheduler goes on (sched.c).
 */
#include "run/sched.h"

#include <stdlib.h>
#include <string.h>

/* A resumed or rolled-back run: rebuild each step's state from its journal.
 * A run that failed, was interrupted or was rolling back can only finish
 * stopping: it resumes its rollback and never goes forward (going forward
 * again is a new run).  Otherwise completed steps stay done, steps in
 * flight run again, and every gate is asked again as in a first run. */
void drr_sched_apply_past(struct run *r)
{
	const struct drr_resume *res = r->res;
	struct drr_past *p = res->past;
	struct drr_runbook *rb = r->rb;
	lua_State *L = r->L;
	json_t *rerun = json_array(), *kept = json_array();
	int *stopped = drr_xcalloc((size_t)rb->nsteps + 1, sizeof *stopped), nstopped = 0;
	int rollback =
		res->mode == DRR_MODE_ROLLBACK || p->failed || p->in_rollback || p->interrupted;

	for (int i = 0; i < rb->nsteps; i++) {
		struct drr_stepstate *s = &r->st[i];
		struct drr_past_step *ps = drr_past_step(p, s->def->name);
		if (!ps)
			continue;
		s->attempt = s->attempt_base = ps->attempts;
		s->prior = ps->duration;
		s->approved = 0; /* resumed work passes its gates again */
		int undone = ps->rb_ended && ps->rb_status && !strcmp(ps->rb_status, "completed");
		if (ps->ended && ps->status && !strcmp(ps->status, "completed")) {
			s->state = undone ? DRR_ROLLED_BACK : DRR_COMPLETED;
			drr_json_to_lua(L, ps->output ? ps->output : json_null());
			lua_pushvalue(L, -1);
			s->output_ref = luaL_ref(L, LUA_REGISTRYINDEX);
			lua_rawgeti(L, LUA_REGISTRYINDEX, r->outputs_ref);
			lua_insert(L, -2);
			lua_setfield(L, -2, s->def->name);
			lua_pop(L, 1);
			json_array_append_new(kept, json_string(s->def->name));
		} else if (ps->skipped) {
			s->state = DRR_SKIPPED;
		} else if (ps->ended && ps->status && strcmp(ps->status, "cancelled") != 0) {
			s->state = ps->status && !strcmp(ps->status, "aborted") ? DRR_ABORTED
										: DRR_FAILED;
			free(s->error);
			s->error = drr_xstrdup(ps->error ? ps->error : "failed");
		} else if (ps->started && s->def->teardown) {
			/* teardown in flight: it runs again, whatever the mode */
			s->rerun = 1;
			json_array_append_new(rerun, json_string(s->def->name));
		} else if (ps->started && rollback) {
			/* in flight (or cancelled) when it stopped: a run that is
			 * stopping does not start it again */
			s->state = DRR_CANCELLED;
			s->cancelled = 1;
			free(s->error);
			s->error = drr_xstrdup(ps->error && ps->ended
						       ? ps->error
						       : "in flight when the run stopped; not run "
							 "again: the run is rolling back");
			if (!ps->ended)
				stopped[nstopped++] = i;
		} else if (ps->started) {
			/* in flight when it stopped (or cancelled by a dead journal) */
			s->rerun = 1;
			json_array_append_new(rerun, json_string(s->def->name));
			if (s->def->once) {
				free(s->question);
				s->question =
					drr_xasprintf("step '%s' was in flight when the run "
						      "stopped and is marked once: run it again?",
						      s->def->name);
			}
		}
	}
	/* completed steps, in the order they completed, for rollback */
	for (int order = 1;; order++) {
		int found = 0;
		for (int i = 0; i < rb->nsteps; i++) {
			struct drr_past_step *ps = drr_past_step(p, rb->steps[i].name);
			if (ps && ps->done_order == order) {
				if (r->st[i].state == DRR_COMPLETED && !rb->steps[i].teardown)
					r->done_list[r->ndone++] = i;
				found = 1;
			}
		}
		if (!found && order > p->nsteps)
			break;
	}
	for (int i = 0; i < rb->nsteps; i++) {
		struct drr_stepstate *s = &r->st[i];
		s->waiting = 0;
		for (int k = 0; k < s->def->g->ndeps; k++) {
			enum drr_step_state st = r->st[s->def->g->deps[k]].state;
			s->waiting += st != DRR_COMPLETED && st != DRR_SKIPPED;
		}
	}
	json_t *rec = rec_step("run_resume", NULL);
	json_object_set_new(rec, "mode", json_string(rollback ? "rollback" : "continue"));
	json_object_set_new(rec, "pid", json_integer(getpid()));
	json_object_set_new(rec, "sha256", json_string(rb->sha256));
	json_object_set_new(rec, "version", json_string(DRRUN_VERSION));
	json_object_set_new(rec, "repaired_bytes", json_integer((json_int_t)res->repaired));
	json_object_set_new(rec, "completed", kept);
	json_object_set_new(rec, "rerun", rerun);
	jrec(r, rec, 1);
	/* close the steps a crash left open: they will not run in this run */
	for (int k = 0; k < nstopped; k++) {
		struct drr_stepstate *s = &r->st[stopped[k]];
		json_t *end = rec_step("step_end", s);
		json_object_set_new(end, "status", json_string("cancelled"));
		json_object_set_new(end, "attempts", json_integer(s->attempt));
		json_object_set_new(end, "duration", jsecs(0));
		json_object_set_new(end, "error", drr_json_str(s->error));
		jrec(r, end, k + 1 == nstopped);
	}
	free(stopped);
	if (!rollback)
		return;
	begin_rollbacks(r);
	if (res->mode == DRR_MODE_ROLLBACK) {
		r->explicit_rollback = 1;
		r->reason = drr_xstrdup("rollback requested");
	} else if (p->interrupted) {
		/* the operator stopped it: finish stopping, as that session would have */
		r->stop = STOP_INTERRUPTED;
		r->reason = drr_xasprintf("interrupted by %s; resumed its rollback",
					  p->interrupted_by ? p->interrupted_by : "a signal");
		if (!p->interrupt_rollback || r->o->no_rollback)
			enter_teardown(r); /* it was stopping without rolling back */
	} else if (p->failed) {
		/* the earlier session failed and was rolling back: finish that */
		r->failed = 1;
		r->stop = STOP_FAILED;
		r->reason = drr_xstrdup("resumed the rollback of a failed run");
	} else {
		/* an earlier `drrun rollback` stopped part-way */
		r->explicit_rollback = 1;
		r->reason = drr_xstrdup("resumed a requested rollback");
	}
}
