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

/* The field names sign{} reads and writes, interned once as the upvalues
 * of l_sign: a lookup by a C string hashes and compares it every time. */
#define SIGN_KEYS(X)                                                                     \
	X(METHOD, "method") X(PATH, "path") X(QUERY, "query") X(PAYLOAD, "payload_hash")   \
	X(HEADERS, "headers") X(REGION, "region") X(SERVICE, "service")                   \
	X(ACCESS, "access_key") X(SECRET, "secret_key") X(TOKEN, "token")                 \
	X(NORMALIZE, "normalize") X(DOUBLE, "double_encode") X(SIGN_BODY, "sign_body")    \
	X(TIME, "time") X(PRESIGN, "presign") X(SIGNATURE, "signature")                   \
	X(AMZ_DATE, "amz_date") X(AUTHORIZATION, "authorization")                         \
	X(H_DATE, "X-Amz-Date") X(H_SHA, "X-Amz-Content-Sha256")                          \
	X(H_TOKEN, "X-Amz-Security-Token") X(LAST_SECRET, "") X(LAST_MD, "")
enum {
#define SIGN_ENUM(id, name) K_##id,
	SIGN_KEYS(SIGN_ENUM)
#undef SIGN_ENUM
		K_COUNT
};
static const char *const sign_keys[] = {
#define SIGN_NAME(id, name) name,
	SIGN_KEYS(SIGN_NAME)
#undef SIGN_NAME
};

/* Push field k of the argument table.  [-0, +1, e] */
static int field(lua_State *L, int k)
{
	lua_pushvalue(L, lua_upvalueindex(k + 1));
	return lua_gettable(L, 1);
}

/* Set field k of the table on top to the string s.  [-0, +0, m] */
static void set_str(lua_State *L, int k, const char *s, size_t n)
{
	lua_pushvalue(L, lua_upvalueindex(k + 1));
	lua_pushlstring(L, s, n);
	lua_rawset(L, -3);
}

static const char *opt_str(lua_State *L, int k, int required)
{
	int t = field(L, k);
	if (t != LUA_TNIL && t != LUA_TSTRING)
		luaL_error(L, "aws.sign: field '%s' must be a string", sign_keys[k]);
	const char *s = lua_tostring(L, -1);
	if (!s && required)
		luaL_error(L, "aws.sign: field '%s' is required (a string)", sign_keys[k]);
	/* left on the stack, so the string lives until the call returns */
	return s;
}

static int opt_bool(lua_State *L, int k, int dflt)
{
	int v = field(L, k) == LUA_TNIL ? dflt : lua_toboolean(L, -1);
	lua_pop(L, 1);
	return v;
}

/* Collect headers = { name = value } into h (up to max).  Returns count. */
static int get_headers(lua_State *L, struct drr_sigv4_header *h, int max)
{
	int n = 0;
	if (field(L, K_HEADERS) == LUA_TTABLE) {
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

/* The signatures' work buffer, reused: a signature then allocates nothing
 * but its Lua results.  Signing runs on the loop thread only. */
static struct drr_buf scratch;
static int scratch_busy;

static void push_result(lua_State *L, const struct drr_sigv4_out *o)
{
	lua_createtable(L, 0, 5);
	set_str(L, K_SIGNATURE, o->signature, 64);
	set_str(L, K_AMZ_DATE, o->amz_date, 16);
	if (o->authorization)
		set_str(L, K_AUTHORIZATION, o->authorization, strlen(o->authorization));
	if (o->query)
		set_str(L, K_QUERY, o->query, strlen(o->query));
	lua_pushvalue(L, lua_upvalueindex(K_HEADERS + 1));
	lua_createtable(L, 0, o->nadd);
	for (int i = 0; i < o->nadd; i++) {
		int k = !strcmp(o->add_names[i], "X-Amz-Date")		 ? K_H_DATE
			: !strcmp(o->add_names[i], "X-Amz-Content-Sha256") ? K_H_SHA
									   : K_H_TOKEN;
		set_str(L, k, o->add_values[i], strlen(o->add_values[i]));
	}
	lua_rawset(L, -3);
}

/* The SHA-256 of the secret at idx (what the signing key's cache is found
 * by), remembered for the same secret next time: the last secret and its
 * hash are the last two upvalues.  The string is compared by content, so
 * kept for the comparison (the credentials' cache holds it anyway). */
static const unsigned char *secret_md(lua_State *L, int idx, const char *secret)
{
	if (lua_rawequal(L, idx, lua_upvalueindex(K_LAST_SECRET + 1)))
		return (const unsigned char *)lua_tostring(L, lua_upvalueindex(K_LAST_MD + 1));
	unsigned char md[32];
	drr_sigv4_secret_md(secret, md);
	lua_pushvalue(L, idx);
	lua_replace(L, lua_upvalueindex(K_LAST_SECRET + 1));
	lua_pushlstring(L, (const char *)md, 32);
	lua_replace(L, lua_upvalueindex(K_LAST_MD + 1));
	return (const unsigned char *)lua_tostring(L, lua_upvalueindex(K_LAST_MD + 1));
}

/* aws.core.sign{ method, path, query, headers, payload_hash, region,
 * service, access_key, secret_key, token, time, presign, sign_body,
 * normalize, double_encode }
 *   -> { authorization, headers = { name = value }, query, signature } */
static int l_sign(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checkstack(L, 24, "aws.sign"); /* the fields, kept on the stack */
	struct drr_sigv4_header h[64];
	struct drr_sigv4_req r = { 0 };
	struct drr_sigv4_cfg c = { 0 };
	r.method = opt_str(L, K_METHOD, 1);
	r.path = opt_str(L, K_PATH, 0);
	r.query = opt_str(L, K_QUERY, 0);
	r.payload_hash = opt_str(L, K_PAYLOAD, 1);
	r.nheaders = get_headers(L, h, 64);
	r.headers = h;
	c.region = opt_str(L, K_REGION, 1);
	c.service = opt_str(L, K_SERVICE, 1);
	c.access_key = opt_str(L, K_ACCESS, 1);
	c.secret_key = opt_str(L, K_SECRET, 1);
	c.secret_md = secret_md(L, lua_gettop(L), c.secret_key);
	c.token = opt_str(L, K_TOKEN, 0);
	int s3 = !strcmp(c.service, "s3");
	c.normalize_path = opt_bool(L, K_NORMALIZE, !s3);
	c.double_encode = opt_bool(L, K_DOUBLE, !s3);
	c.sign_body = opt_bool(L, K_SIGN_BODY, 0);
	c.when = field(L, K_TIME) == LUA_TNIL ? time(NULL) : (time_t)luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	int query = field(L, K_PRESIGN) != LUA_TNIL;
	if (query)
		c.expires = (long)luaL_checkinteger(L, -1);
	lua_pop(L, 1);

	char err[256];
	struct drr_sigv4_out o;
	struct drr_buf *mem = &scratch;
	if (scratch_busy) {
		/* a finalizer run while the result below is pushed signs too:
		 * a buffer of its own, freed with the userdata */
		mem = lua_newuserdatauv(L, sizeof *mem, 0);
		memset(mem, 0, sizeof *mem);
		luaL_setmetatable(L, SIGN_MT);
	}
	if (drr_sigv4_sign_in(&c, &r, query, &o, mem, err, sizeof err) < 0)
		return luaL_error(L, "aws.sign: %s", err + (strncmp(err, "sigv4: ", 7) ? 0 : 7));
	int outer = mem == &scratch;
	scratch_busy |= outer;
	push_result(L, &o);
	scratch_busy &= !outer;
	return 1;
}

static int sign_gc(lua_State *L)
{
	drr_buf_free(lua_touserdata(L, 1));
	return 0;
}

int luaopen_drrun_aws_core(lua_State *L)
{
	static const luaL_Reg fns[] = {
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
	luaL_checkstack(L, K_COUNT, "aws.core");
	for (int k = 0; k < K_LAST_SECRET; k++)
		lua_pushstring(L, sign_keys[k]);
	lua_pushboolean(L, 0); /* no secret yet, and no hash */
	lua_pushboolean(L, 0);
	lua_pushcclosure(L, l_sign, K_COUNT);
	lua_setfield(L, -2, "sign");
	return 1;
}
