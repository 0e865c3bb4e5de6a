/*
 * execenv.c - `exec = { env = { NAME = "value" } }` in runbook{} and in a
 * step: the process environment every exec.run of the step adds, under the
 * call's own env (call over step over runbook).  Checked at load, so that
 * a bad name or a value that is not a string is a file:line error before
 * anything runs; kept as one merged table per step, which the engine hands
 * to exec.run (drr_task_env).
 */
#include "runbook/runbook.h"
#include "runbook/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char *const EXEC_FIELDS[] = { "env", NULL };

/* A POSIX name: a letter or '_', then letters, digits, '_'. */
static int env_name_ok(const char *s, size_t n)
{
	if (n == 0 || strlen(s) != n || !(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return 0;
	return 1;
}

/* The line of key k, written `k =` or `["k"] =`, from line on. */
static int key_line(int line, int limit, const char *k)
{
	int at = drr_rb_find_field(drr_rb_src, line, limit, k);
	for (int q = 0; q < 2 && at == line; q++) {
		char b[160];
		snprintf(b, sizeof b, "%.150s%s", k, q ? "']" : "\"]");
		at = drr_rb_find_field(drr_rb_src, line, limit, b);
	}
	return at;
}

/* Copy the valid entries of the env table at idx into the table at dst,
 * reporting the others.  [-0, +0, e] */
static void copy_env(struct ld *ld, int idx, int dst, int line, int limit, const char *what)
{
	lua_State *L = ld->L;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		size_t kn = 0, vn = 0;
		int kt = lua_type(L, -2), vt = lua_type(L, -1);
		const char *k = kt == LUA_TSTRING ? lua_tolstring(L, -2, &kn) : NULL;
		int at = k ? key_line(line, limit, k) : line;
		if (!k || !env_name_ok(k, kn)) {
			drr_diag_add(ld->d, ld->file, at,
				     "%s: exec.env: '%s' is not a variable name (letters, digits "
				     "and '_', not starting with a digit)",
				     what, k && strlen(k) == kn ? k : lua_typename(L, kt));
		} else if (vt != LUA_TSTRING) {
			drr_diag_add(ld->d, ld->file, at,
				     "%s: exec.env: %s must be a string, not a %s%s", what, k,
				     lua_typename(L, vt),
				     vt == LUA_TNUMBER ? " (quote it: \"5\")" : "");
		} else if (strlen(lua_tolstring(L, -1, &vn)) != vn) {
			drr_diag_add(ld->d, ld->file, at, "%s: exec.env: %s contains a NUL byte",
				     what, k);
		} else {
			lua_pushvalue(L, -2);
			lua_pushvalue(L, -2);
			lua_rawset(L, dst);
		}
		lua_pop(L, 1);
	}
}

int drr_rb_parse_exec(struct ld *ld, int idx, int line, int limit, const char *what, int base)
{
	lua_State *L = ld->L;
	int t = lua_getfield(L, idx, "exec");
	int at = drr_rb_find_field(drr_rb_src, line, limit, "exec");
	if (t == LUA_TNIL) {
		lua_pop(L, 1);
		return base;
	}
	if (t != LUA_TTABLE) {
		drr_diag_add(ld->d, ld->file, at,
			     "%s: exec must be a table, like exec = { env = { NAME = \"value\" } }",
			     what);
		lua_pop(L, 1);
		return base;
	}
	int ex = lua_gettop(L);
	char w[200];
	snprintf(w, sizeof w, "%s: exec", what);
	drr_rb_check_fields(ld, ex, EXEC_FIELDS, at, limit, w);
	int et = lua_getfield(L, ex, "env");
	if (et == LUA_TNIL) {
		lua_pop(L, 2);
		return base;
	}
	if (et != LUA_TTABLE) {
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, at, limit, "env"),
			     "%s: exec.env must map names to strings, like { PGCONNECT_TIMEOUT = "
			     "\"5\" }",
			     what);
		lua_pop(L, 2);
		return base;
	}
	lua_newtable(L); /* the merged env: the base's, then this one's over it */
	int dst = lua_gettop(L);
	if (base != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, base);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, dst);
		}
		lua_pop(L, 1);
	}
	copy_env(ld, dst - 1, dst, at, limit, what);
	int ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 2);
	return ref;
}
