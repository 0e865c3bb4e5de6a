/*
 * aws.c - `require "drrun.aws.core"`: the C mechanism under drrun.aws.
 *   sign{ ... }  SigV4 headers (or a presigned query) for one request
 *   xml(s)       an XML answer as Lua tables (xml.c)
 * Requests themselves ride drrun.http's curl multi on the loop, from the
 * Lua half (stdlib/drrun/aws.lua), which holds credentials, endpoints,
 * protocols, errors and retries.
 */
#include "aws/aws.h"

#include <string.h>
#include <time.h>

#define SIGN_MT "drrun.aws.Signature"

static const char *opt_str(lua_State *L, const char *field, int required)
{
	luaL_checkstack(L, 2, "aws.sign");
	lua_getfield(L, 1, field);
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "aws.sign: field '%s' must be a string", field);
	const char *s = lua_tostring(L, -1);
	if (!s && required)
		luaL_error(L, "aws.sign: field '%s' is required (a string)", field);
	/* left on the stack, so the string lives until the call returns */
	return s;
}

static int opt_bool(lua_State *L, const char *field, int dflt)
{
	lua_getfield(L, 1, field);
	int v = lua_isnil(L, -1) ? dflt : lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

/* Collect headers = { name = value } into h (up to max).  Returns count. */
static int get_headers(lua_State *L, struct drr_sigv4_header *h, int max)
{
	int n = 0;
	lua_getfield(L, 1, "headers");
	if (lua_istable(L, -1)) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "aws.sign: headers must map strings to strings");
			if (n == max)
				luaL_error(L, "aws.sign: more than %d headers", max);
			h[n].name = lua_tostring(L, -2);
			h[n].value = lua_tostring(L, -1);
			n++;
			lua_pop(L, 1);
		}
	}
	/* the table stays on the stack: it keeps the strings alive */
	return n;
}

/* aws.core.sign{ method, path, query, headers, payload_hash, region,
 * service, access_key, secret_key, token, time, presign, sign_body,
 * normalize, double_encode }
 *   -> { authorization, headers = { name = value }, query, signature } */
static int l_sign(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	struct drr_sigv4_header h[64];
	struct drr_sigv4_req r = { 0 };
	struct drr_sigv4_cfg c = { 0 };
	r.method = opt_str(L, "method", 1);
	r.path = opt_str(L, "path", 0);
	r.query = opt_str(L, "query", 0);
	r.payload_hash = opt_str(L, "payload_hash", 1);
	r.nheaders = get_headers(L, h, 64);
	r.headers = h;
	c.region = opt_str(L, "region", 1);
	c.service = opt_str(L, "service", 1);
	c.access_key = opt_str(L, "access_key", 1);
	c.secret_key = opt_str(L, "secret_key", 1);
	c.token = opt_str(L, "token", 0);
	int s3 = !strcmp(c.service, "s3");
	c.normalize_path = opt_bool(L, "normalize", !s3);
	c.double_encode = opt_bool(L, "double_encode", !s3);
	c.sign_body = opt_bool(L, "sign_body", 0);
	lua_getfield(L, 1, "time");
	c.when = lua_isnil(L, -1) ? time(NULL) : (time_t)luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "presign");
	int query = !lua_isnil(L, -1);
	if (query)
		c.expires = (long)luaL_checkinteger(L, -1);
	lua_pop(L, 1);

	/* the result lives in a userdata, so a memory error while the Lua
	 * table is built leaves nothing behind */
	struct drr_sigv4_out *po = lua_newuserdatauv(L, sizeof *po, 0);
	memset(po, 0, sizeof *po);
	luaL_setmetatable(L, SIGN_MT);
	char err[256];
	int rc = query ? drr_sigv4_sign_query(&c, &r, po, err, sizeof err)
		       : drr_sigv4_sign_header(&c, &r, po, err, sizeof err);
	if (rc < 0)
		return luaL_error(L, "aws.sign: %s", err + (strncmp(err, "sigv4: ", 7) ? 0 : 7));
	struct drr_sigv4_out o = *po;
	lua_createtable(L, 0, 4);
	lua_pushstring(L, o.signature);
	lua_setfield(L, -2, "signature");
	lua_pushstring(L, o.amz_date);
	lua_setfield(L, -2, "amz_date");
	if (o.authorization) {
		lua_pushstring(L, o.authorization);
		lua_setfield(L, -2, "authorization");
	}
	if (o.query) {
		lua_pushstring(L, o.query);
		lua_setfield(L, -2, "query");
	}
	lua_createtable(L, 0, o.nadd);
	for (int i = 0; i < o.nadd; i++) {
		lua_pushstring(L, o.add_values[i]);
		lua_setfield(L, -2, o.add_names[i]);
	}
	lua_setfield(L, -2, "headers");
	drr_sigv4_out_free(po);
	return 1;
}

static int sign_gc(lua_State *L)
{
	drr_sigv4_out_free(lua_touserdata(L, 1));
	return 0;
}

int luaopen_drrun_aws_core(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "sign", l_sign },
		{ "xml", drr_aws_l_xml },
		{ NULL, NULL },
	};
	drr_aws_xml_register(L);
	if (luaL_newmetatable(L, SIGN_MT)) {
		lua_pushcfunction(L, sign_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	return 1;
}
