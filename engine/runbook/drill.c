/*
 * drill.c - the checks behind `drrun drill` and teardown: the rules that
 * span several steps (teardown comes last, so nothing waits for it and it
 * waits only for teardown), phase budgets that name a real phase, the
 * objectives a run is held to (an env's rto/rpo override the runbook's),
 * and the production guard of a drill.
 */
#include "runbook/runbook.h"
#include "runbook/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void drr_runbook_check_phases(struct drr_runbook *rb, const char *file, struct drr_diag *d)
{
	for (int i = 0; i < rb->nsteps; i++) {
		const struct drr_step *s = &rb->steps[i];
		int at = drr_rb_find_field(drr_rb_src, s->line, 0, "after");
		for (int k = 0; k < s->g->ndeps; k++) {
			const struct drr_step *dep = &rb->steps[s->g->deps[k]];
			if (s->teardown && !dep->teardown)
				drr_diag_add(d, file, at,
					     "step '%s': a teardown step comes after '%s' (phase "
					     "%s), which may not have run: teardown steps run "
					     "whatever happened, so they may only come after "
					     "other teardown steps",
					     s->name, dep->name, dep->phase);
			else if (!s->teardown && dep->teardown)
				drr_diag_add(d, file, at,
					     "step '%s' comes after teardown step '%s', but "
					     "teardown steps run last",
					     s->name, dep->name);
		}
		if (s->teardown && s->approve)
			drr_diag_add(d, file, drr_rb_find_field(drr_rb_src, s->line, 0, "approve"),
				     "step '%s': a teardown step cannot ask for approval: it "
				     "runs whatever happened, with nobody there to answer",
				     s->name);
	}
	for (int b = 0; b < rb->nbudgets; b++) {
		int found = 0;
		for (int i = 0; i < rb->nsteps && !found; i++)
			found = !strcmp(rb->steps[i].phase, rb->budgets[b].phase);
		if (found)
			continue;
		struct drr_buf names = { 0 };
		for (int i = 0; i < rb->nsteps; i++) {
			int seen = 0;
			for (int k = 0; k < i && !seen; k++)
				seen = !strcmp(rb->steps[k].phase, rb->steps[i].phase);
			if (!seen)
				drr_buf_addf(&names, "%s%s", names.len ? ", " : "",
					     rb->steps[i].phase);
		}
		drr_diag_add(d, file, rb->budgets[b].line,
			     "runbook: budgets: no step has phase '%s' (the phases are: %s)",
			     rb->budgets[b].phase, names.data ? names.data : "none");
		drr_buf_free(&names);
	}
}

/* The env's rto or rpo (a duration string) over the runbook's; [-0, +0] on
 * the env table at idx, read raw: its metamethods are not run. */
static void env_objective(struct drr_runbook *rb, lua_State *L, int idx, const char *env,
			  const char *field, double *out, struct drr_diag *d)
{
	lua_pushstring(L, field);
	int t = lua_rawget(L, idx);
	int eline = drr_rb_find_field(drr_rb_src, rb->line, drr_rb_limit, "env");
	int fl = drr_rb_find_field(drr_rb_src, drr_rb_find_field(drr_rb_src, eline, drr_rb_limit,
								 env),
				   drr_rb_limit, field);
	double v;
	const char *why;
	if (t == LUA_TSTRING) {
		if (drr_duration_parse(lua_tostring(L, -1), &v) < 0)
			drr_diag_add(d, rb->path, fl,
				     "env '%s': %s: invalid duration '%s' (use e.g. \"15m\", "
				     "\"1h\", \"24h\")",
				     env, field, lua_tostring(L, -1));
		else if (drr_duration_check(v, 0, &why) < 0)
			drr_diag_add(d, rb->path, fl, "env '%s': %s %s", env, field, why);
		else {
			*out = v;
			free(rb->obj_from);
			rb->obj_from = drr_xstrdup(env);
		}
	} else if (t != LUA_TNIL) {
		drr_diag_add(d, rb->path, fl,
			     "env '%s': %s must be a duration string like \"1h\", not a %s", env,
			     field, lua_typename(L, t));
	}
	lua_pop(L, 1);
}

static int env_is_production(lua_State *L, int idx)
{
	lua_pushliteral(L, "production");
	int yes = lua_rawget(L, idx) == LUA_TBOOLEAN && lua_toboolean(L, -1);
	lua_pop(L, 1);
	return yes;
}

void drr_runbook_bind_drill(struct drr_runbook *rb, const struct drr_opts *o, struct drr_diag *d)
{
	lua_State *L = rb->L;
	rb->obj_rto = rb->rto;
	rb->obj_rpo = rb->rpo;
	free(rb->obj_from);
	rb->obj_from = NULL; /* the runbook's own, unless the env overrides one */
	const char *env = o->env_name ? o->env_name : "default";
	int top = lua_gettop(L);
	if (rb->ctxenv_ref != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, rb->ctxenv_ref);
		if (lua_istable(L, -1)) {
			int idx = lua_gettop(L);
			env_objective(rb, L, idx, env, "rto", &rb->obj_rto, d);
			env_objective(rb, L, idx, env, "rpo", &rb->obj_rpo, d);
			if (o->drill && env_is_production(L, idx))
				drr_diag_add(d, rb->path,
					     drr_rb_find_field(drr_rb_src, rb->line, drr_rb_limit,
							       "production"),
					     "env '%s' is marked production = true: drrun drill "
					     "refuses to run against it (choose a DR environment "
					     "with --env)",
					     env);
		}
	}
	lua_settop(L, top);
	if (!o->drill)
		return;
	for (int i = 0; i < rb->nsteps; i++) {
		const struct drr_step *s = &rb->steps[i];
		if (s->production && s->drill == DRR_DRILL_RUN)
			drr_diag_add(d, rb->path,
				     drr_rb_find_field(drr_rb_src, s->line, 0, "production"),
				     "step '%s' is marked production = true: say what a drill "
				     "does instead, drill = \"skip\" or drill = function(ctx) ... "
				     "end; drrun drill refuses to run it as it is",
				     s->name);
	}
}
