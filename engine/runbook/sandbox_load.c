/*
 * sandbox_load.c - other files written in the runbook language (serve's
 * rules file): the same sandbox, the same CPU bound, their own
 * declarations instead of runbook{} and step{}.
 */
#include "runbook/runbook.h"
#include "lua/task.h"
#include "runbook/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lualib.h>

#define SANDBOX_CPU 5.0

int drr_sandbox_pcall(lua_State *L, int nargs, int nres)
{
	int base = lua_gettop(L) - nargs;
	lua_pushcfunction(L, drr_rb_traceback);
	lua_insert(L, base);
	int rc = drr_lua_pcall_bounded(L, nargs, nres, base, SANDBOX_CPU, 1,
				       "took more than 5s of CPU (a loop that never ends?)");
	lua_remove(L, base);
	return rc;
}

static int l_not_here(lua_State *L)
{
	luaL_where(L, 1);
	lua_pushfstring(L, "%s is not declared in this file (it is not a runbook)",
			lua_tostring(L, lua_upvalueindex(1)));
	lua_concat(L, 2);
	return lua_error(L);
}

lua_State *drr_sandbox_load(const char *path, const luaL_Reg *decls, void *ud,
			    struct drr_diag *d)
{
	char err[512];
	size_t len;
	char *text = drr_slurp(path, RUNBOOK_MAX, &len, err, sizeof err);
	if (!text) {
		drr_diag_add(d, path, 0, "cannot read: %s", strerror(errno));
		return NULL;
	}
	const char *slash = strrchr(path, '/');
	char *dir = slash ? drr_xasprintf("%.*s", (int)(slash == path ? 1 : slash - path), path)
			  : drr_xstrdup(".");
	lua_State *L = luaL_newstate();
	*(void **)lua_getextraspace(L) = NULL;
	luaL_openlibs(L);
	drr_modules_preload(L);
	lua_pushcfunction(L, drr_rb_build_sandbox);
	lua_pushstring(L, dir);
	int rc = drr_sandbox_pcall(L, 1, 0);
	free(dir);
	if (rc == LUA_OK) {
		lua_getfield(L, LUA_REGISTRYINDEX, K_ENV);
		int env = lua_gettop(L);
		static const char *const gone[] = { "runbook", "step", NULL };
		for (int i = 0; gone[i]; i++) { /* raw: _ENV's __newindex refuses */
			lua_pushstring(L, gone[i]);
			lua_pushstring(L, gone[i]);
			lua_pushcclosure(L, l_not_here, 1);
			lua_rawset(L, env);
		}
		for (const luaL_Reg *r = decls; r->name; r++) {
			lua_pushstring(L, r->name);
			lua_pushlightuserdata(L, ud);
			lua_pushcclosure(L, r->func, 1);
			lua_rawset(L, env);
		}
		lua_settop(L, env - 1);
	}
	if (rc == LUA_OK) {
		char *chunk = drr_xasprintf("@%s", path);
		rc = luaL_loadbufferx(L, text, len, chunk, "t");
		free(chunk);
		if (rc == LUA_OK) {
			lua_getfield(L, LUA_REGISTRYINDEX, K_ENV);
			lua_setupvalue(L, -2, 1);
			rc = drr_sandbox_pcall(L, 0, 0);
		}
	}
	free(text);
	if (rc != LUA_OK) {
		drr_rb_diag_lua_error(L, d, path, "");
		lua_close(L);
		return NULL;
	}
	return L;
}
