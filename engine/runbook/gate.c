/*
 * runbook/gate.c - a step's `approve`: a question, a function of ctx that
 * returns it, or a table that makes it a gate answered from anywhere (a
 * quorum of named approvers, a timeout and its default, what a deny does).
 * The gate itself waits in run/gate.c.
 */
#include "runbook/internal.h"

#include <ctype.h>
#include <string.h>

/* An approver's name: a letter or digit, then letters, digits, '-', '_',
 * '.'; at most 64 bytes (drrun approve --as checks the same). */
static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64 || !isalnum((unsigned char)*s))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

static const char *const GATE_FIELDS[] = { "question", "quorum",  "approvers", "timeout",
					   "default",  "on_deny", "notify",    NULL };

/* approve = { question (or [1]), quorum, approvers, timeout, default, on_deny } */
static void parse_gate_table(struct ld *ld, int t, struct drr_step *s, int limit, const char *what)
{
	lua_State *L = ld->L;
	struct drr_gate *g = &s->gate;
	int at = drr_rb_find_field(drr_rb_src, s->line, limit, "approve");
	char w[200];
	snprintf(w, sizeof w, "%s: approve", what);
	g->table = 1;
	lua_rawgeti(L, t, 1);
	if (lua_type(L, -1) != LUA_TNIL) {
		lua_setfield(L, t, "question"); /* the positional question is `question` */
		lua_pushnil(L);
		lua_rawseti(L, t, 1);
	} else {
		lua_pop(L, 1);
	}
	drr_rb_check_fields(ld, t, GATE_FIELDS, at, limit, w);
	if (lua_getfield(L, t, "question") == LUA_TFUNCTION) {
		g->question_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		s->approve = drr_xstrdup("(asked by a function of ctx)");
	} else {
		lua_pop(L, 1);
		s->approve = drr_rb_get_string(ld, t, "question", at, limit, w);
		if (!s->approve || !*s->approve) {
			drr_diag_add(
				ld->d, ld->file, at,
				"%s: the question to ask is missing (approve = { \"Promote?\", "
				"quorum = 2, ... })",
				w);
			free(s->approve);
			s->approve = drr_xstrdup("?");
		}
	}
	int ty = lua_getfield(L, t, "quorum");
	g->quorum = 1;
	if (ty == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
	    lua_tointeger(L, -1) <= 64)
		g->quorum = (int)lua_tointeger(L, -1);
	else if (ty != LUA_TNIL)
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, at, limit, "quorum"),
			     "%s: quorum must be a whole number from 1 to 64", w);
	lua_pop(L, 1);
	ty = lua_getfield(L, t, "approvers");
	if (ty == LUA_TTABLE) {
		int n = (int)luaL_len(L, -1);
		g->approvers = drr_xcalloc((size_t)(n ? n : 1), sizeof(char *));
		for (int i = 1; i <= n && n <= 256; i++) {
			lua_rawgeti(L, -1, i);
			size_t len = 0;
			const char *v =
				lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
			if (!v || strlen(v) != len || !name_ok(v)) {
				drr_diag_add(
					ld->d, ld->file,
					drr_rb_find_field(drr_rb_src, at, limit, "approvers"),
					"%s: approvers[%d] must be a name (letters, digits, '-', "
					"'_', '.'; at most 64)",
					w, i);
			} else {
				int dup = 0;
				for (int k = 0; k < g->napprovers; k++)
					dup |= !strcmp(g->approvers[k], v);
				if (dup)
					drr_diag_add(ld->d, ld->file,
						     drr_rb_find_field(drr_rb_src, at, limit,
								       "approvers"),
						     "%s: approvers names '%s' twice", w, v);
				else
					g->approvers[g->napprovers++] = drr_xstrdup(v);
			}
			lua_pop(L, 1);
		}
		if (n > 256)
			drr_diag_add(ld->d, ld->file, at, "%s: more than 256 approvers", w);
	} else if (ty != LUA_TNIL) {
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, at, limit, "approvers"),
			     "%s: approvers must be a list of names", w);
	}
	lua_pop(L, 1);
	if (g->napprovers && g->quorum > g->napprovers)
		drr_diag_add(ld->d, ld->file, at,
			     "%s: quorum %d cannot be reached by %d approver%s", w, g->quorum,
			     g->napprovers, g->napprovers == 1 ? "" : "s");
	g->timeout = drr_rb_get_duration(ld, t, "timeout", at, limit, w, 0, 0);
	char *dflt = drr_rb_get_string(ld, t, "default", at, limit, w);
	g->on_timeout = dflt && !strcmp(dflt, "approve");
	if (dflt && strcmp(dflt, "approve") && strcmp(dflt, "deny"))
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, at, limit, "default"),
			     "%s: default must be \"deny\" or \"approve\", not '%s'", w, dflt);
	else if (dflt && !g->timeout)
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, at, limit, "default"),
			     "%s: default is what a timeout decides: give a timeout too", w);
	free(dflt);
	ty = lua_getfield(L, t, "notify");
	if (ty == LUA_TFUNCTION)
		g->notify_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	else {
		if (ty != LUA_TNIL)
			drr_diag_add(ld->d, ld->file,
				     drr_rb_find_field(drr_rb_src, at, limit, "notify"),
				     "%s: notify must be a function(ctx, request)", w);
		lua_pop(L, 1);
	}
	char *od = drr_rb_get_string(ld, t, "on_deny", at, limit, w);
	g->on_deny = od && !strcmp(od, "rollback") ? DRR_DENY_ROLLBACK : DRR_DENY_STOP;
	if (od && strcmp(od, "rollback") && strcmp(od, "stop"))
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, at, limit, "on_deny"),
			     "%s: on_deny must be \"stop\" or \"rollback\", not '%s'", w, od);
	free(od);
}

/* approve = "question" | function(ctx) return question end | { ... } */
void drr_rb_parse_gate(struct ld *ld, int idx, struct drr_step *s, int limit, const char *what)
{
	lua_State *L = ld->L;
	s->gate.question_ref = s->gate.notify_ref = LUA_NOREF;
	s->gate.quorum = 1;
	int t = lua_getfield(L, idx, "approve");
	if (t == LUA_TFUNCTION) {
		s->gate.question_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		s->approve = drr_xstrdup("(asked by a function of ctx)");
		return;
	}
	if (t == LUA_TTABLE) {
		parse_gate_table(ld, lua_absindex(L, -1), s, limit, what);
		lua_pop(L, 1);
		return;
	}
	lua_pop(L, 1);
	s->approve = drr_rb_get_string(ld, idx, "approve", s->line, limit, what);
	if (s->approve && !*s->approve)
		drr_diag_add(
			ld->d, ld->file, drr_rb_find_field(drr_rb_src, s->line, limit, "approve"),
			"%s: approve must be the question to ask, a function(ctx) returning it, "
			"or a table { question, quorum = ..., ... }",
			what);
}
