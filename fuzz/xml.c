/*
 * fuzz/xml.c - libFuzzer harness: AWS XML answers to Lua tables
 * (drrun.aws.core.xml).  Any input must give a value or nil, err, "invalid";
 * never a crash, a leak or a Lua panic.
 */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int luaopen_drrun_aws_core(lua_State *L);

static int run(lua_State *L)
{
	size_t n;
	const char *s = lua_tolstring(L, 1, &n);
	lua_getfield(L, 2, "xml");
	lua_pushlstring(L, s, n);
	lua_call(L, 1, 3);
	if (lua_isnil(L, -3) && strcmp(lua_tostring(L, -1), "invalid") != 0)
		abort(); /* a failure that is not "invalid" */
	return 0;
}

/* One state for the whole run (a new one per input would cost more than
 * the parse); a full collection every 1024 inputs keeps it small, and
 * LeakSanitizer checks what C allocated at exit. */
static lua_State *L;
static int core_ref;

static void cleanup(void)
{
	lua_close(L);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned n;
	if (!L) {
		L = luaL_newstate();
		luaL_openlibs(L);
		luaL_requiref(L, "drrun.aws.core", luaopen_drrun_aws_core, 0);
		core_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		atexit(cleanup);
	}
	lua_pushcfunction(L, run);
	lua_pushlstring(L, (const char *)data, size);
	lua_rawgeti(L, LUA_REGISTRYINDEX, core_ref);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		const char *e = lua_tostring(L, -1);
		/* only memory errors may raise */
		if (!e || !strstr(e, "not enough memory"))
			abort();
		lua_pop(L, 1);
	}
	if (++n % 1024 == 0)
		lua_gc(L, LUA_GCCOLLECT);
	return 0;
}
