/*
 * sandbox.c - the environment a runbook's code runs in: strict globals,
 * print, a local require bounded like loading, and read-only library and
 * module tables (after Redis).  runbook.c loads the runbook into it.
 */
#include "runbook/runbook.h"
#include "lua/task.h"
#include "runbook/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lualib.h>

/* ---- the sandbox ------------------------------------------------------------ */

static int where_error(lua_State *L, const char *fmt, const char *name)
{
	luaL_where(L, 1);
	lua_pushfstring(L, fmt, name);
	lua_concat(L, 2);
	return lua_error(L);
}

static int l_env_index(lua_State *L)
{
	lua_pushvalue(L, 2);
	lua_rawget(L, lua_upvalueindex(1));
	if (!lua_isnil(L, -1))
		return 1;
	const char *k = lua_tostring(L, 2);
	return where_error(L, "unknown global '%s'", k ? k : "?");
}

static int l_env_newindex(lua_State *L)
{
	const char *k = lua_tostring(L, 2);
	return where_error(L, "assignment to undeclared global '%s' (declare it with 'local')",
			   k ? k : "?");
}

static int l_print(lua_State *L)
{
	int n = lua_gettop(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, '\t');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	const char *msg = lua_tostring(L, -1);
	if (drr_task_current(L)) {
		drr_task_log(L, "%s", msg);
	} else {
		char *r = drr_redact(msg);
		drr_term_line(stderr, "%s", r);
		free(r);
	}
	return 0;
}

static void push_readonly(lua_State *L, const char *name);

/* A malloc'd buffer owned by a userdata: __gc frees it if a raise comes
 * while it is held. */
struct textbox {
	char *p;
};

static int textbox_gc(lua_State *L)
{
	struct textbox *b = lua_touserdata(L, 1);
	free(b->p);
	b->p = NULL;
	return 0;
}

/* Push the content of the file at path as a string: 1; or push nothing and
 * return 0 if there is no such file, -1 (reason in err) if it cannot be
 * read.  The slurped text belongs to a userdata until Lua has its copy.
 * [-0, +(0|1), m] */
static int push_file(lua_State *L, const char *path, char *err, size_t errlen)
{
	struct textbox *b = lua_newuserdatauv(L, sizeof *b, 0);
	b->p = NULL;
	if (luaL_newmetatable(L, "drrun.runbook.text")) {
		lua_pushcfunction(L, textbox_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	size_t len;
	b->p = drr_slurp(path, RUNBOOK_MAX, &len, err, errlen);
	if (!b->p) {
		int e = errno;
		lua_pop(L, 1);
		return e == ENOENT ? 0 : -1;
	}
	lua_pushlstring(L, b->p, len);
	free(b->p);
	b->p = NULL;
	lua_remove(L, -2);
	return 1;
}

/* require: built-in modules, then <runbook dir>/<name>.lua in the sandbox. */
static int l_require(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	lua_getfield(L, -1, name);
	int builtin = !lua_isnil(L, -1);
	lua_pop(L, 2);
	if (builtin) {
		lua_pushvalue(L, lua_upvalueindex(1)); /* the real require */
		lua_pushvalue(L, 1);
		lua_call(L, 1, 1);
		if (lua_istable(L, -1)) /* shared with the stdlib: the runbook only reads it */
			push_readonly(L, name);
		return 1;
	}
	lua_getfield(L, LUA_REGISTRYINDEX, K_LOADED);
	int loaded = lua_gettop(L);
	lua_getfield(L, -1, name);
	if (!lua_isnil(L, -1))
		return 1;
	lua_pop(L, 1);
	for (const char *p = name; *p; p++)
		if (!drr_rb_is_ident((unsigned char)*p) && *p != '.' && *p != '-')
			return luaL_error(L, "module name '%s' is not valid", name);
	/* the path and the text live in Lua strings: everything here may raise */
	lua_getfield(L, LUA_REGISTRYINDEX, K_DIR);
	const char *dir = lua_tostring(L, -1);
	luaL_Buffer pb;
	luaL_buffinit(L, &pb);
	luaL_addstring(&pb, dir ? dir : ".");
	luaL_addchar(&pb, '/');
	for (const char *p = name; *p; p++)
		luaL_addchar(&pb, *p == '.' ? '/' : *p);
	luaL_addstring(&pb, ".lua");
	luaL_pushresult(&pb);
	const char *path = lua_tostring(L, -1);
	char err[512];
	int got = push_file(L, path, err, sizeof err);
	if (got == 0)
		return luaL_error(L, "module '%s' not found: not built in, and no file %s", name,
				  path);
	if (got < 0)
		return luaL_error(L, "module '%s': %s", name, err);
	size_t len;
	const char *text = lua_tolstring(L, -1, &len);
	lua_pushfstring(L, "@%s", path);
	if (luaL_loadbufferx(L, text, len, lua_tostring(L, -1), "t") != LUA_OK)
		return lua_error(L);
	lua_getfield(L, LUA_REGISTRYINDEX, K_ENV);
	lua_setupvalue(L, -2, 1);
	lua_pushstring(L, name);
	lua_call(L, 1, 1);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_pushboolean(L, 1);
	}
	lua_pushvalue(L, -1);
	lua_setfield(L, loaded, name); /* local_loaded[name] */
	return 1;
}

/* ---- read-only library tables (after Redis) ----------------------------------- */

/* What a runbook reaches of the libraries and of drrun's modules is
 * read-only: an empty proxy whose __index is the real table.  Writing to
 * one raises "attempt to modify read-only table 'string' (field 'x')" with
 * file and line; so does rawset.  The string metatable, shared with the
 * stdlib, is hidden behind one as well.  Proxies of the same table are
 * cached, so require "drrun.exec" twice gives the same table. */
static const char K_RO_CACHE[] = "drrun.readonly_cache";
static const char RO_MARK[] = "__drrun_readonly";

static int ro_error(lua_State *L, const char *table)
{
	const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
	luaL_where(L, 1);
	lua_pushfstring(L, "attempt to modify read-only table '%s' (field '%s')", table, k);
	lua_concat(L, 2);
	return lua_error(L);
}

static int l_ro_newindex(lua_State *L)
{
	return ro_error(L, lua_tostring(L, lua_upvalueindex(1)));
}

static int l_ro_pairs(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1)); /* next */
	lua_pushvalue(L, lua_upvalueindex(2)); /* the real table */
	lua_pushnil(L);
	return 3;
}

static int l_ro_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
	return 1;
}

/* Replace the table on top with its read-only proxy.  [-1, +1, m] */
static void push_readonly(lua_State *L, const char *name)
{
	int real = lua_gettop(L);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, K_RO_CACHE);
	if (lua_getmetatable(L, -1) == 0) { /* weak keys: the cache holds no table */
		lua_createtable(L, 0, 1);
		lua_pushliteral(L, "k");
		lua_setfield(L, -2, "__mode");
		lua_setmetatable(L, -2);
	} else {
		lua_pop(L, 1);
	}
	int cache = lua_gettop(L);
	lua_pushvalue(L, real);
	if (lua_rawget(L, cache) == LUA_TTABLE) {
		lua_replace(L, real);
		lua_settop(L, real);
		return;
	}
	lua_pop(L, 1);
	lua_newtable(L); /* the proxy */
	lua_createtable(L, 0, 6);
	lua_pushvalue(L, real);
	lua_setfield(L, -2, "__index");
	lua_pushstring(L, name);
	lua_pushcclosure(L, l_ro_newindex, 1);
	lua_setfield(L, -2, "__newindex");
	lua_getglobal(L, "next");
	lua_pushvalue(L, real);
	lua_pushcclosure(L, l_ro_pairs, 2);
	lua_setfield(L, -2, "__pairs");
	lua_pushvalue(L, real);
	lua_pushcclosure(L, l_ro_len, 1);
	lua_setfield(L, -2, "__len");
	lua_pushfstring(L, "read-only table '%s'", name);
	lua_setfield(L, -2, "__metatable");
	lua_pushstring(L, name);
	lua_setfield(L, -2, RO_MARK);
	lua_setmetatable(L, -2);
	lua_pushvalue(L, real);
	lua_pushvalue(L, -2);
	lua_rawset(L, cache);
	lua_replace(L, real);
	lua_settop(L, real);
}

/* rawset, except on a read-only table. */
static int l_rawset(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_getmetatable(L, 1)) {
		lua_pushstring(L, RO_MARK);
		if (lua_rawget(L, -2) == LUA_TSTRING)
			return ro_error(L, lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	luaL_checkany(L, 2);
	luaL_checkany(L, 3);
	lua_settop(L, 3);
	lua_rawset(L, 1);
	return 1;
}

/* setmetatable, except that a runbook may not install a __gc finalizer: it
 * would run whenever the collector decides, outside any step's budget (one
 * that loops hung drrun at exit).  Without __gc at setmetatable, Lua never
 * finalizes the table, even if the field is added later. */
static int l_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		if (lua_rawget(L, 2) != LUA_TNIL)
			return luaL_error(L,
					  "setmetatable: a __gc finalizer is not allowed in a "
					  "runbook (it would run outside any step's time budget; "
					  "use <close> or a rollback)");
		lua_pop(L, 1);
	}
	/* the rest is lbaselib's setmetatable */
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	lua_settop(L, 2);
	lua_setmetatable(L, 1);
	return 1;
}

static void copy_lib(lua_State *L, int base, const char *lib, const char *const *only)
{
	lua_getglobal(L, lib);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, -3)) {
		int keep = 1;
		if (only) {
			keep = 0;
			for (const char *const *o = only; *o; o++)
				keep |= lua_type(L, -2) == LUA_TSTRING &&
					strcmp(lua_tostring(L, -2), *o) == 0;
		}
		if (keep) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -4);
		} else {
			lua_pop(L, 1);
		}
	}
	push_readonly(L, lib);
	lua_setfield(L, base, lib);
	lua_pop(L, 1);
}

/* [-0, +0, e]: called protected, with the runbook's directory as arg 1 */
int drr_rb_build_sandbox(lua_State *L)
{
	const char *dir = lua_tostring(L, 1);
	static const char *const base_names[] = {
		"assert", "error",	  "ipairs",	  "next",     "pairs",
		"pcall",  "rawequal",	  "rawget",	  "rawlen",   "rawset",
		"select", "setmetatable", "getmetatable", "tonumber", "tostring",
		"type",	  "xpcall",	  "_VERSION",	  NULL
	};
	static const char *const os_names[] = {
		"time", "date", "clock", "difftime", "getenv", NULL
	};
	lua_newtable(L); /* base */
	int base = lua_gettop(L);
	for (const char *const *n = base_names; *n; n++) {
		lua_getglobal(L, *n);
		lua_setfield(L, base, *n);
	}
	copy_lib(L, base, "string", NULL);
	copy_lib(L, base, "table", NULL);
	copy_lib(L, base, "math", NULL);
	copy_lib(L, base, "utf8", NULL);
	copy_lib(L, base, "os", os_names);
	lua_pushcfunction(L, l_print);
	lua_setfield(L, base, "print");
	lua_pushcfunction(L, drr_rb_l_runbook);
	lua_setfield(L, base, "runbook");
	lua_pushcfunction(L, drr_rb_l_step);
	lua_setfield(L, base, "step");
	drr_rb_push_params(L);
	lua_setfield(L, base, "params");
	lua_getglobal(L, "require");
	lua_pushcclosure(L, l_require, 1);
	lua_setfield(L, base, "require");
	lua_getglobal(L, "require");
	lua_pushliteral(L, "drrun");
	lua_call(L, 1, 1);
	push_readonly(L, "drrun");
	lua_setfield(L, base, "drrun");
	lua_pushcfunction(L, l_rawset);
	lua_setfield(L, base, "rawset");
	lua_pushcfunction(L, l_setmetatable);
	lua_setfield(L, base, "setmetatable");
	/* getmetatable("") gives a read-only view: the real one is the stdlib's too */
	lua_pushliteral(L, "");
	lua_getmetatable(L, -1);
	lua_createtable(L, 0, 1);
	lua_getfield(L, base, "string");
	lua_setfield(L, -2, "__index");
	push_readonly(L, "string metatable");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 2);

	lua_newtable(L); /* the runbook's _ENV */
	lua_newtable(L); /* its metatable */
	lua_pushvalue(L, base);
	lua_pushcclosure(L, l_env_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_env_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushliteral(L, "the runbook environment is locked");
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
	lua_setfield(L, LUA_REGISTRYINDEX, K_ENV);
	lua_pop(L, 1); /* base */

	lua_pushstring(L, dir);
	lua_setfield(L, LUA_REGISTRYINDEX, K_DIR);
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, K_LOADED);
	lua_newtable(L);
	lua_setfield(L, LUA_REGISTRYINDEX, K_STEPS);
	return 0;
}
