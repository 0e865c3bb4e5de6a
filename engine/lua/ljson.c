/*
 * ljson.c - conversion between Lua values and jansson trees, used by the
 * journal (step outputs, params), by resume and by the drrun.json plugin.
 * Tables that are sequences 1..n become arrays; other tables become objects
 * with string keys.  json.null (a light userdata NULL) is null; the
 * json.empty_array sentinel and tables whose metatable is the registry's
 * DRR_JSON_ARRAY_MT ("drrun.json.array", what json.decode gives arrays) are
 * arrays even when empty.
 *
 * One converter, two modes.  The journal's lenient mode never fails:
 * strings that are not valid UTF-8 (binary command output) keep their bytes,
 * each invalid byte written as the four characters \xNN, numeric keys are written as strings, other
 * keys are dropped, NaN and infinities become null, functions and userdata
 * become "<function>"-style strings, and nesting deeper than 64 (cycles
 * included) becomes "<too deep>".  The strict mode of json.encode turns each
 * of those into an error that names the offending value's path.
 */
#include "lua/task.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 64			       /* lenient */
#define MAX_STRICT_DEPTH JSON_PARSER_MAX_DEPTH /* what json.decode accepts */

char drr_json_empty_array;

struct conv {
	lua_State *L;
	int strict;
	int array_mt; /* stack index of the array metatable, or 0 */
	char *err;    /* strict: what went wrong, then where */
	size_t errlen;
	char path[256]; /* strict: built from the failing value outwards */
};

/* An ancestor table, for cycle detection in strict mode. */
struct frame {
	const void *t;
	const struct frame *up;
};

/* Lenient mode: a string that is not UTF-8 keeps its bytes, the invalid
 * ones written as the text \xNN (core.h's one rule for the journal). */
static json_t *lstring(const char *s, size_t n)
{
	return drr_json_text(s, n);
}

/* Strict mode: record what failed; returns NULL for the caller to pass on. */
static json_t *fail(struct conv *c, const char *fmt, const char *arg)
{
	snprintf(c->err, c->errlen, fmt, arg);
	c->path[0] = '\0';
	return NULL;
}

/* Strict mode, on the way out of a failed conversion: put the key or index
 * of the failed child in front of the path.  Keys that are identifiers are
 * written .key, others ["key"]; long paths keep their innermost part. */
static void path_prepend(struct conv *c, const char *key, size_t klen, lua_Integer index)
{
	char seg[96];
	int ident = key && klen > 0 && klen < 64 && !(key[0] >= '0' && key[0] <= '9');
	for (size_t i = 0; ident && i < klen; i++)
		ident = key[i] == '_' || (key[i] >= 'a' && key[i] <= 'z') ||
			(key[i] >= 'A' && key[i] <= 'Z') || (key[i] >= '0' && key[i] <= '9');
	if (!key)
		snprintf(seg, sizeof seg, "[%lld]", (long long)index);
	else if (ident)
		snprintf(seg, sizeof seg, ".%.*s", (int)klen, key);
	else
		snprintf(seg, sizeof seg, "[\"%.*s%s\"]", klen > 40 ? 40 : (int)klen, key,
			 klen > 40 ? "..." : "");
	size_t sl = strlen(seg), pl = strlen(c->path);
	if (sl + pl >= sizeof c->path)
		return;
	memmove(c->path + sl, c->path, pl + 1);
	memcpy(c->path, seg, sl);
}

static int is_sequence(lua_State *L, int idx, lua_Integer *n)
{
	lua_Integer count = 0, max = 0;
	*n = -1; /* not a sequence, count unknown */
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1)) {
			lua_pop(L, 1);
			return 0;
		}
		lua_Integer k = lua_tointeger(L, -1);
		if (k < 1) {
			lua_pop(L, 1);
			return 0;
		}
		if (k > max)
			max = k;
		count++;
	}
	*n = count;
	return count > 0 && count == max;
}

/* Does the table at idx carry the array metatable? */
static int marked_array(struct conv *c, int idx)
{
	if (!c->array_mt || !lua_getmetatable(c->L, idx))
		return 0;
	int r = lua_rawequal(c->L, -1, c->array_mt);
	lua_pop(c->L, 1);
	return r;
}

static json_t *conv(struct conv *c, int idx, int depth, const struct frame *up);

static json_t *conv_number(struct conv *c, int idx)
{
	lua_State *L = c->L;
	if (lua_isinteger(L, idx))
		return json_integer((json_int_t)lua_tointeger(L, idx));
	double d = lua_tonumber(L, idx);
	if (isfinite(d))
		return json_real(d);
	if (c->strict)
		return fail(c, "cannot encode %s", isnan(d) ? "NaN" : d > 0 ? "inf" : "-inf");
	return json_null();
}

static json_t *conv_array(struct conv *c, int idx, lua_Integer n, int depth, const struct frame *fr)
{
	json_t *a = json_array();
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(c->L, idx, i);
		json_t *v = conv(c, -1, depth + 1, fr);
		lua_pop(c->L, 1);
		if (!v) {
			path_prepend(c, NULL, 0, i);
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, v);
	}
	return a;
}

static json_t *conv_object(struct conv *c, int idx, int depth, const struct frame *fr)
{
	lua_State *L = c->L;
	char tmp[64];
	json_t *o = json_object();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *key;
		size_t klen;
		if (lua_type(L, -2) == LUA_TSTRING) {
			key = lua_tolstring(L, -2, &klen);
		} else if (lua_type(L, -2) == LUA_TNUMBER && !c->strict) {
			lua_pushvalue(L, -2);
			snprintf(tmp, sizeof tmp, "%s", lua_tostring(L, -1));
			lua_pop(L, 1); /* the number is still the key below */
			key = tmp;
			klen = strlen(tmp);
		} else if (c->strict) {
			fail(c,
			     "table key of type %s (object keys must be strings, arrays "
			     "sequences 1..n)",
			     luaL_typename(L, -2));
			lua_pop(L, 2);
			json_decref(o);
			return NULL;
		} else {
			lua_pop(L, 1);
			continue;
		}
		json_t *kj = json_stringn(key, klen);
		if (!kj && c->strict) {
			fail(c, "%s", "object key is not valid UTF-8");
			lua_pop(L, 2);
			json_decref(o);
			return NULL;
		}
		if (!kj)
			kj = lstring(key, klen);
		json_t *v = conv(c, -1, depth + 1, fr);
		if (!v) {
			path_prepend(c, key, klen, 0);
			json_decref(kj);
			lua_pop(L, 2);
			json_decref(o);
			return NULL;
		}
		json_object_setn_new(o, json_string_value(kj), json_string_length(kj), v);
		json_decref(kj);
		lua_pop(L, 1);
	}
	return o;
}

static json_t *conv(struct conv *c, int idx, int depth, const struct frame *up)
{
	lua_State *L = c->L;
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		return conv_number(c, idx);
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		json_t *j = json_stringn(s, n);
		if (j)
			return j;
		return c->strict ? fail(c, "%s", "string is not valid UTF-8") : lstring(s, n);
	}
	case LUA_TTABLE:
		break;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == DRR_JSON_NULL)
			return json_null(); /* json.null sentinel */
		if (lua_touserdata(L, idx) == DRR_JSON_EMPTY_ARRAY)
			return json_array();
		/* fallthrough */
	default:
		if (c->strict)
			return fail(c, "cannot encode a %s", luaL_typename(L, idx));
		char tmp[64];
		snprintf(tmp, sizeof tmp, "<%s>", luaL_typename(L, idx));
		return json_string(tmp);
	}
	idx = lua_absindex(L, idx);
	struct frame fr = { lua_topointer(L, idx), up };
	if (!c->strict && (depth >= MAX_DEPTH || !lua_checkstack(L, 4)))
		return json_string("<too deep>");
	if (c->strict) {
		for (const struct frame *f = up; f; f = f->up)
			if (f->t == fr.t)
				return fail(c, "%s", "cycle: a table contains itself");
		if (depth >= MAX_STRICT_DEPTH)
			return fail(c, "%s", "nesting too deep");
		if (!lua_checkstack(L, 4))
			return fail(c, "%s", "out of Lua stack space");
	}
	lua_Integer n;
	if (is_sequence(L, idx, &n))
		return conv_array(c, idx, n, depth, &fr);
	if (n == 0 && marked_array(c, idx))
		return json_array();
	return conv_object(c, idx, depth, &fr);
}

/* Push the array metatable (or nil) and note where it is. */
static void conv_init(struct conv *c, lua_State *L)
{
	c->L = L;
	luaL_getmetatable(L, DRR_JSON_ARRAY_MT);
	c->array_mt = lua_istable(L, -1) ? lua_gettop(L) : 0;
}

json_t *drr_lua_to_json(lua_State *L, int idx)
{
	struct conv c = { 0 };
	idx = lua_absindex(L, idx);
	if (!lua_checkstack(L, 2))
		return json_string("<too deep>");
	conv_init(&c, L);
	json_t *j = conv(&c, idx, 0, NULL);
	lua_pop(L, 1);
	return j;
}

json_t *drr_lua_to_json_strict(lua_State *L, int idx, char *err, size_t errlen)
{
	struct conv c = { 0 };
	c.strict = 1;
	c.err = err;
	c.errlen = errlen;
	idx = lua_absindex(L, idx);
	if (!lua_checkstack(L, 2)) {
		snprintf(err, errlen, "out of Lua stack space");
		return NULL;
	}
	conv_init(&c, L);
	json_t *j = conv(&c, idx, 0, NULL);
	lua_pop(L, 1);
	if (!j && c.path[0]) {
		size_t n = strlen(err);
		snprintf(err + n, errlen - n, " (at %s)", c.path);
	}
	return j;
}

static void to_lua(lua_State *L, const json_t *j, int flags, int mt)
{
	luaL_checkstack(L, 3, "json nesting");
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		size_t klen;
		json_t *v;
		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_keylen_foreach((json_t *)j, k, klen, v)
		{
			lua_pushlstring(L, k, klen);
			to_lua(L, v, flags, mt);
			lua_rawset(L, -3);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		lua_createtable(L, (int)json_array_size(j), 0);
		json_array_foreach((json_t *)j, i, v) {
			to_lua(L, v, flags, mt);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		if (mt) {
			lua_pushvalue(L, mt);
			lua_setmetatable(L, -2);
		}
		break;
	}
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(j));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(j));
		break;
	case JSON_TRUE:
		lua_pushboolean(L, 1);
		break;
	case JSON_FALSE:
		lua_pushboolean(L, 0);
		break;
	default:
		if (flags & DRR_JSON_NULL_SENTINEL)
			lua_pushlightuserdata(L, DRR_JSON_NULL);
		else
			lua_pushnil(L);
	}
}

void drr_json_to_lua_ex(lua_State *L, const json_t *j, int flags)
{
	int mt = 0;
	if (flags & DRR_JSON_ARRAY_META) {
		luaL_getmetatable(L, DRR_JSON_ARRAY_MT);
		mt = lua_istable(L, -1) ? lua_gettop(L) : 0;
	}
	to_lua(L, j, flags, mt);
	if (flags & DRR_JSON_ARRAY_META)
		lua_remove(L, -2);
}

void drr_json_to_lua(lua_State *L, const json_t *j)
{
	drr_json_to_lua_ex(L, j, 0);
}
