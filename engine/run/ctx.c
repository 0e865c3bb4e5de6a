/*
 * ctx.c - the ctx a step's run, rollback and when functions are given:
 * params, env, outputs of earlier steps, ctx.log (a step_log record),
 * ctx.abort and ctx.secret; and the log sink behind drr_task_log.
 */
#include "run/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct drr_stepstate *upstep(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

static void step_log(struct drr_stepstate *s, const char *msg)
{
	struct run *r = run_current;
	char *red = drr_redact(msg);
	size_t n = strlen(red);
	while (n > 0 && (red[n - 1] == '\n' || red[n - 1] == '\r' || red[n - 1] == ' '))
		red[--n] = '\0';
	free(s->last_log);
	s->last_log = red;
	json_t *rec = rec_step("step_log", s);
	json_object_set_new(rec, "msg", drr_json_str(red));
	jrec(r, rec, 0);
	drr_view_event(r->view, s, "log", red);
}

void task_log(struct drr_task *t, const char *msg)
{
	if (t && t->owner)
		step_log(t->owner, msg);
	else {
		char *red = drr_redact(msg);
		drr_view_message(run_current ? run_current->view : NULL, "drrun: %s", red);
		free(red);
	}
}

static int l_ctx_log(lua_State *L)
{
	struct drr_stepstate *s = upstep(L);
	int n = lua_gettop(L);
	if (n == 0)
		return 0;
	if (n > 1 || lua_type(L, 1) != LUA_TSTRING) {
		if (n == 1) {
			luaL_tolstring(L, 1, NULL);
		} else {
			lua_rawgeti(L, LUA_REGISTRYINDEX, drr_eng.string_format_ref);
			lua_insert(L, 1);
			lua_call(L, n, 1);
		}
	}
	step_log(s, lua_tostring(L, -1));
	return 0;
}

static int l_ctx_abort(lua_State *L)
{
	const char *reason = luaL_optstring(L, 1, "aborted by the runbook");
	drr_push_abort(L, reason);
	return lua_error(L);
}

const char *declared_secret(const char *name)
{
	for (int i = 0; run_current && i < run_current->rb->nsecrets; i++)
		if (!strcmp(run_current->rb->secrets[i], name))
			return getenv(name);
	return NULL;
}

static int l_ctx_secret(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	for (int i = 0; i < run_current->rb->nsecrets; i++)
		if (!strcmp(run_current->rb->secrets[i], name)) {
			lua_pushstring(L, getenv(name));
			return 1;
		}
	return luaL_error(L, "secret '%s' is not declared in runbook { secrets = { ... } }", name);
}

void push_ctx(struct run *r, struct drr_stepstate *s)
{
	lua_State *L = r->L;
	lua_createtable(L, 0, 14);
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->rb->params_ref);
	lua_setfield(L, -2, "params");
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->rb->ctxenv_ref);
	lua_setfield(L, -2, "env");
	lua_pushstring(L, r->o->env_name ? r->o->env_name : "");
	lua_setfield(L, -2, "env_name");
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->outputs_ref);
	lua_setfield(L, -2, "outputs");
	lua_pushstring(L, r->run_id);
	lua_setfield(L, -2, "run_id");
	lua_pushboolean(L, r->o->dry_run);
	lua_setfield(L, -2, "dry_run");
	lua_pushboolean(L, r->o->drill);
	lua_setfield(L, -2, "drill");
	lua_pushstring(L, s->def->name);
	lua_setfield(L, -2, "step");
	lua_pushstring(L, s->def->phase);
	lua_setfield(L, -2, "phase");
	lua_pushinteger(L, s->attempt);
	lua_setfield(L, -2, "attempt");
	lua_pushlightuserdata(L, s);
	lua_pushcclosure(L, l_ctx_log, 1);
	lua_setfield(L, -2, "log");
	lua_pushcfunction(L, l_ctx_abort);
	lua_setfield(L, -2, "abort");
	lua_pushcfunction(L, l_ctx_secret);
	lua_setfield(L, -2, "secret");
}
