/*
 * approve.c - the gates before a step starts: `when` (a quick check on the
 * main thread, bounded by a count hook) and `approve` (--yes, a question on
 * the terminal, or a stop saying how to approve).
 */
#include "run/sched.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WHEN_BUDGET 5.0

/* Returns 1 to run, 0 to skip, -1 if `when` raised (the step then fails).
 * `when` runs on the main thread, so it cannot wait on I/O; a bounded call
 * limits its time. */
int eval_when(struct run *r, struct drr_stepstate *s)
{
	if (s->def->when_ref == LUA_NOREF)
		return 1;
	lua_State *L = r->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->def->when_ref);
	push_ctx(r, s);
	drr_eng.lua_depth++; /* a cancel from inside `when` only marks */
	/* bounded so that pcall inside `when` cannot outlive the budget */
	int rc = drr_lua_pcall_bounded(L, 1, 1, 0, WHEN_BUDGET, 0,
				       "when ran for more than 5s: keep it quick and move slow "
				       "checks into a step");
	drr_eng.lua_depth--;
	if (rc != LUA_OK) {
		char *e = drr_xasprintf("when: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
		s->t_start = drr_mono();
		record_start(r, s);
		r->running++;
		step_fail(r, s, "failed", e);
		free(e);
		int first = r->stop != STOP_FAILED;
		r->failed = 1;
		set_stop(r, STOP_FAILED, NULL);
		if (first) {
			free(r->reason);
			r->reason = drr_xasprintf("step '%s' failed", s->def->name);
		}
		abandon_retries(r);
		return -1;
	}
	int go = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return go;
}

/* Who answers here: the operator behind sudo ($SUDO_USER), else $USER,
 * else the account drrun runs as; looked up once. */
const char *drr_operator_name(void)
{
	static char name[256];
	if (!name[0]) {
		const char *v = getenv("SUDO_USER");
		if (!v || !*v)
			v = getenv("USER");
		struct passwd *pw = (!v || !*v) ? getpwuid(getuid()) : NULL;
		snprintf(name, sizeof name, "%s",
			 v && *v ? v : pw && pw->pw_name ? pw->pw_name : "unknown");
	}
	return name;
}

static void approval_rec(struct run *r, struct drr_stepstate *s, const char *status, const char *by)
{
	json_t *rec = rec_step("approval", s);
	json_object_set_new(rec, "question", drr_json_str(step_question(s)));
	json_object_set_new(rec, "status", json_string(status));
	json_object_set_new(rec, "by", by ? json_string(by) : json_null());
	if (by) { /* an answer: who gave it, and where */
		char host[256] = "";
		gethostname(host, sizeof host - 1);
		json_object_set_new(rec, "who", drr_json_str(drr_operator_name()));
		json_object_set_new(rec, "host", drr_json_str(host));
		const char *tty = !strcmp(by, "terminal") ? ttyname(0) : NULL;
		if (tty)
			json_object_set_new(rec, "tty", drr_json_str(tty));
	}
	jrec(r, rec, 0); /* the group commit covers it */
}

void prompt_answer(struct run *r, int yes)
{
	struct drr_stepstate *s = r->prompt_step;
	r->prompting = 0;
	r->prompt_step = NULL;
	uv_read_stop((uv_stream_t *)&r->tty);
	drr_view_resume(r->view);
	if (s->gw)
		gate_answered(s); /* answered here: the gate stops waiting */
	if (yes) {
		approval_rec(r, s, "approved", "terminal");
		s->approved = 1;
		s->state = DRR_PENDING;
		r->rescan = 1; /* it may start now */
		drr_view_event(r->view, s, "approved", NULL);
	} else {
		approval_rec(r, s, "declined", "terminal");
		approval_declined(r, s, "terminal");
	}
	kick();
}

/* The question on the terminal is void: answered elsewhere, or the run stops. */
void prompt_cancel(struct run *r, const char *why)
{
	r->prompting = 0;
	r->prompt_step = NULL;
	uv_read_stop((uv_stream_t *)&r->tty);
	drr_buf_free(&r->answer);
	fprintf(stderr, "(%s)\n", why);
	drr_view_resume(r->view);
}

/* A declined gate: the step does not run; the run stops, resumable (a
 * resume asks again), or rolls back what was done (on_deny = "rollback"). */
void approval_declined(struct run *r, struct drr_stepstate *s, const char *by)
{
	s->state = DRR_NOT_RUN;
	if (r->stop) { /* stopping already (a signal, a failure): that decides */
		drr_view_event(r->view, s, "declined", by);
		return;
	}
	char *why = drr_xasprintf("approval declined for step '%s'%s", s->def->name,
				  strcmp(by, "timeout") ? "" : " (no answer before the timeout)");
	if (s->def->gate.on_deny == DRR_DENY_ROLLBACK)
		r->deny_rollback = 1;
	else
		r->resumable = 1;
	set_stop(r, STOP_ABORTED, why);
	free(why);
	drr_view_event(r->view, s, "declined", by);
}

static void tty_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	(void)h, (void)hint;
	static char buf[256];
	b->base = buf;
	b->len = sizeof buf;
}

static void tty_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct run *r = st->data;
	if (!r->prompting)
		return;
	if (n < 0) { /* EOF: no answer is a no */
		prompt_answer(r, 0);
		return;
	}
	drr_buf_add(&r->answer, b->base, (size_t)n);
	char *nl = r->answer.data ? strchr(r->answer.data, '\n') : NULL;
	if (!nl)
		return;
	*nl = '\0';
	const char *a = r->answer.data;
	while (*a == ' ')
		a++;
	int yes = !strcasecmp(a, "y") || !strcasecmp(a, "yes");
	drr_buf_free(&r->answer);
	prompt_answer(r, yes);
}

/* `drrun test`: the case answered this gate beforehand ("yes" or "no"). */
static int answered_in_advance(struct run *r, struct drr_stepstate *s)
{
	const char *a = json_string_value(json_object_get(r->o->answers, s->def->name));
	if (a && (!strcasecmp(a, "yes") || !strcasecmp(a, "y"))) {
		approval_rec(r, s, "approved", "test");
		s->approved = 1;
		drr_view_event(r->view, s, "approved", "test");
		return 1;
	}
	approval_rec(r, s, "declined", "test");
	approval_declined(r, s, "test");
	return 0;
}

/* approve = function(ctx): ask it for the question, bounded like `when`.
 * 0, or -1 when it raised or returned no question (the step then fails). */
static int ask_question(struct run *r, struct drr_stepstate *s)
{
	if (s->def->gate.question_ref == LUA_NOREF || s->question)
		return 0;
	lua_State *L = r->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, s->def->gate.question_ref);
	push_ctx(r, s);
	drr_eng.lua_depth++;
	int rc = drr_lua_pcall_bounded(L, 1, 1, 0, WHEN_BUDGET, 0,
				       "approve ran for more than 5s: it must only return the "
				       "question");
	drr_eng.lua_depth--;
	size_t n = 0;
	const char *q = rc == LUA_OK && lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n)
								       : NULL;
	if (q && n && strlen(q) == n) {
		s->question = drr_xstrdup(q);
		lua_pop(L, 1);
		return 0;
	}
	char *e = rc != LUA_OK ? drr_xasprintf("approve: %s", lua_tostring(L, -1))
		  : q	       ? drr_xstrdup("approve: the question it returned is empty or "
					     "holds a NUL byte")
			       : drr_xasprintf("approve: it must return the question (a string), "
					       "not %s",
					       luaL_typename(L, -1));
	lua_pop(L, 1);
	s->t_start = drr_mono();
	record_start(r, s);
	r->running++;
	step_fail(r, s, "failed", e);
	free(e);
	int first = r->stop != STOP_FAILED;
	r->failed = 1;
	set_stop(r, STOP_FAILED, NULL);
	if (first) {
		free(r->reason);
		r->reason = drr_xasprintf("step '%s' failed", s->def->name);
	}
	abandon_retries(r);
	return -1;
}

/* Returns 1 when the step may start now. */
int approve(struct run *r, struct drr_stepstate *s)
{
	if (s->approved)
		return 1;
	if (s->gw) {
		s->state = DRR_WAIT_APPROVAL; /* its gate waits for answers */
		return 0;
	}
	if (ask_question(r, s) < 0)
		return 0;
	if (r->o->yes && gate_yes_enough(s)) {
		approval_rec(r, s, "approved", "--yes");
		s->approved = 1;
		drr_view_event(r->view, s, "approved", "--yes");
		return 1;
	}
	if (r->o->answers && json_object_get(r->o->answers, s->def->name))
		return answered_in_advance(r, s);
	int term = isatty(0) && isatty(2);
	if (gate_is_remote(s)) {
		gate_open(r, s);
		/* one operator at the terminal may answer a gate anyone may answer */
		if (!term || !gate_yes_enough(s) || r->prompting)
			return 0;
	}
	if (term) {
		if (r->prompting)
			return 0;
		if (!r->tty_open) {
			if (uv_tty_init(&r->loop, &r->tty, 0, 1) < 0) {
				if (s->gw)
					return 0; /* answers come from elsewhere */
				goto no_terminal;
			}
			r->tty.data = r;
			r->tty_open = 1;
		}
		r->prompting = 1;
		r->prompt_step = s;
		s->state = DRR_WAIT_APPROVAL;
		drr_view_suspend(r->view);
		char *q = drr_redact(step_question(s)), *tq = drr_term_str(q),
		     *tn = drr_term_str(s->def->name);
		fprintf(stderr, "\n? step '%s': %s [y/N] ", tn, tq);
		fflush(stderr);
		free(tn);
		free(tq);
		free(q);
		uv_read_start((uv_stream_t *)&r->tty, tty_alloc, tty_read);
		return 0;
	}
no_terminal:
	approval_rec(r, s, "needed", NULL);
	s->state = DRR_NOT_RUN;
	{
		char *q = drr_redact(step_question(s));
		drr_term_line(stderr,
			      "drrun: step '%s' needs approval (\"%s\") and there is no terminal "
			      "to ask on: re-run with --yes to approve every gate",
			      s->def->name, q);
		free(q);
	}
	char *why = drr_xasprintf("step '%s' needs approval", s->def->name);
	r->resumable = 1;
	set_stop(r, STOP_ABORTED, why);
	free(why);
	return 0;
}
