/*
 * ctx.c - the ctx a step's run, rollback and when functions are given:
 * params, env, outputs of earlier steps, ctx.log (a step_log record),
 * ctx.abort and ctx.secret; and the log sink behind drr_task_log.
 */
#include "run/sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct drr_stepstate *upstep(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

void step_log(struct drr_stepstate *s, const char *msg)
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

int task_exec_env(struct drr_task *t)
{
	const struct drr_stepstate *s = t ? t->owner : NULL;
	return s ? s->def->exec_env_ref : LUA_NOREF;
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

/* The latest time a recovery can have data up to, a year 10000 guard. */
#define RP_MAX 253402300800.0

/* ctx.recovery_point(t): the point the restored data reaches, as epoch
 * seconds or an RFC 3339 string; journalled as a recovery_point record.
 * The last call counts.  Anything else is misuse: it raises, and a step
 * that fails on it ends the run with exit 65. */
static int l_ctx_recovery_point(lua_State *L)
{
	struct drr_stepstate *s = upstep(L);
	double secs = 0;
	int64_t us = 0;
	int ok = 0;
	if (lua_type(L, 1) == LUA_TNUMBER) {
		secs = lua_tonumber(L, 1);
		ok = isfinite(secs) && secs > 0 && secs < RP_MAX;
		us = (int64_t)llround(secs * 1e6);
	} else if (lua_type(L, 1) == LUA_TSTRING) {
		ok = drr_rfc3339_parse(lua_tostring(L, 1), &us) == 0 && us > 0 &&
		     (double)us / 1e6 < RP_MAX;
		secs = (double)us / 1e6;
	}
	if (!ok) {
		s->invalid = 1;
		const char *shown = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
					    ? lua_pushfstring(L, "'%s'", luaL_tolstring(L, 1, NULL))
					    : luaL_typename(L, 1);
		return luaL_error(L,
				  "step '%s': ctx.recovery_point: %s is not a time (give epoch "
				  "seconds or an RFC 3339 string like \"2026-11-30T10:00:00Z\")",
				  s->def->name, shown);
	}
	char ts[40];
	json_t *rec = rec_step("recovery_point", s);
	json_object_set_new(rec, "at", json_string(drr_rfc3339(us, ts, sizeof ts)));
	json_object_set_new(rec, "epoch", jsecs(secs));
	jrec(run_current, rec, 0);
	drr_view_event(run_current->view, s, "recovery point", ts);
	return 0;
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

/* ---- read-only JSON (ctx.trigger) ---------------------------------------- */

static int l_frozen_newindex(lua_State *L)
{
	const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
	luaL_where(L, 1);
	lua_pushfstring(L, "attempt to modify read-only table '%s' (field '%s')",
			lua_tostring(L, lua_upvalueindex(1)), k);
	lua_concat(L, 2);
	return lua_error(L);
}

static int l_frozen_pairs(lua_State *L)
{
	lua_getglobal(L, "next");
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushnil(L);
	return 3;
}

static int l_frozen_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
	return 1;
}

/* Replace the table on top, whose nested tables are frozen already, with
 * an empty proxy that reads through to it and refuses writes (rawset too:
 * the sandbox's rawset honours __drrun_readonly).  [-1, +1, m] */
static void freeze_top(lua_State *L, const char *name)
{
	int real = lua_gettop(L);
	lua_newtable(L);
	lua_createtable(L, 0, 6);
	lua_pushvalue(L, real);
	lua_setfield(L, -2, "__index");
	lua_pushstring(L, name);
	lua_pushcclosure(L, l_frozen_newindex, 1);
	lua_setfield(L, -2, "__newindex");
	lua_pushvalue(L, real);
	lua_pushcclosure(L, l_frozen_pairs, 1);
	lua_setfield(L, -2, "__pairs");
	lua_pushvalue(L, real);
	lua_pushcclosure(L, l_frozen_len, 1);
	lua_setfield(L, -2, "__len");
	lua_pushfstring(L, "read-only table '%s'", name);
	lua_setfield(L, -2, "__metatable");
	lua_pushstring(L, name);
	lua_setfield(L, -2, "__drrun_readonly");
	lua_setmetatable(L, -2);
	lua_replace(L, real);
}

/* Freeze the tables under the table on top, then it.  [-1, +1, m] */
static void freeze_tree(lua_State *L, const char *name)
{
	luaL_checkstack(L, 4, "json nesting");
	int t = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		if (lua_istable(L, -1)) {
			freeze_tree(L, name);
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, t); /* an existing key: allowed during lua_next */
		} else {
			lua_pop(L, 1);
		}
	}
	freeze_top(L, name);
}

void push_frozen_json(lua_State *L, const json_t *j, const char *name)
{
	drr_json_to_lua(L, j);
	if (lua_istable(L, -1))
		freeze_tree(L, name);
}

void push_ctx(struct run *r, struct drr_stepstate *s)
{
	lua_State *L = r->L;
	lua_createtable(L, 0, 15);
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
	lua_rawgeti(L, LUA_REGISTRYINDEX, r->tags_ref);
	lua_setfield(L, -2, "tags");
	if (r->trigger_ref != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, r->trigger_ref);
		lua_setfield(L, -2, "trigger");
	}
	/* a teardown step knows what the run came to; others are in it */
	lua_pushstring(L, r->phase == P_TEARDOWN && s->def->teardown ? run_outcome(r, NULL)
								    : "running");
	lua_setfield(L, -2, "result");
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
	lua_pushlightuserdata(L, s);
	lua_pushcclosure(L, l_ctx_recovery_point, 1);
	lua_setfield(L, -2, "recovery_point");
}
