/*
 * modules.c - the one table of built-in modules.  C plugins and the
 * embedded Lua stdlib are registered in package.preload, so a runbook's
 * `require "drrun.exec"` finds them without touching the file system.
 */
#include "lua/task.h"

#include <string.h>

static const luaL_Reg builtin[] = {
	{ "drrun.core", luaopen_drrun_core },	   { "drrun.exec", luaopen_drrun_exec },
	{ "drrun.json", luaopen_drrun_json },	   { "drrun.re", luaopen_drrun_re },
	{ "drrun.http.core", luaopen_drrun_http }, { "drrun.ssh.core", luaopen_drrun_ssh },
	{ "drrun.crypto", luaopen_drrun_crypto },  { "drrun.aws.core", luaopen_drrun_aws_core },
	{ "drrun.fs", luaopen_drrun_fs },	   { "drrun.dns.core", luaopen_drrun_dns },
	{ NULL, NULL },
};

/* package.preload loader for an embedded stdlib module: upvalue 1 is the
 * index into drr_stdlib. */
static int load_embedded(lua_State *L)
{
	const struct drr_embedded *m = &drr_stdlib[lua_tointeger(L, lua_upvalueindex(1))];
	char chunk[160];
	snprintf(chunk, sizeof chunk, "=[stdlib %s]", m->name);
	if (luaL_loadbufferx(L, m->src, m->len, chunk, "t") != LUA_OK)
		return lua_error(L);
	lua_pushstring(L, m->name);
	lua_call(L, 1, 1);
	return 1;
}

void drr_modules_preload(lua_State *L)
{
	luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
	for (const luaL_Reg *b = builtin; b->name; b++) {
		lua_pushcfunction(L, b->func);
		lua_setfield(L, -2, b->name);
	}
	for (int i = 0; drr_stdlib[i].name; i++) {
		lua_pushinteger(L, i);
		lua_pushcclosure(L, load_embedded, 1);
		lua_setfield(L, -2, drr_stdlib[i].name);
	}
	lua_pop(L, 1);
}
