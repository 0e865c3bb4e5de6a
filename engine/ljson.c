/*
 * ljson.c - conversion between Lua values and jansson trees, used by the
 * journal (step outputs, params) and by resume.  Tables that are sequences
 * 1..n become arrays; other tables become objects with string keys.
 * Strings that are not valid UTF-8 (binary command output) are kept with the
 * bad bytes replaced by U+FFFD so the journal stays valid JSON.
 */
#include "drrun.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 64

static json_t *lstring(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	if (j)
		return j;
	/* invalid UTF-8: rebuild with replacement characters */
	struct drr_buf b = { 0 };
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		int ok = len > 0 && i + len <= n;
		for (size_t k = 1; ok && k < len; k++)
			ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
		if (ok && len > 1) {
			json_t *t = json_stringn(s + i, len);
			ok = t != NULL;
			json_decref(t);
		}
		if (ok) {
			drr_buf_add(&b, s + i, len);
			i += len;
		} else {
			drr_buf_adds(&b, "\xEF\xBF\xBD");
			i++;
		}
	}
	j = json_stringn(b.data ? b.data : "", b.len);
	drr_buf_free(&b);
	return j ? j : json_string("<unencodable>");
}

static int is_sequence(lua_State *L, int idx, lua_Integer *n)
{
	lua_Integer count = 0, max = 0;
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

static json_t *conv(lua_State *L, int idx, int depth)
{
	char tmp[64];
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		else {
			double d = lua_tonumber(L, idx);
			return isfinite(d) ? json_real(d) : json_null();
		}
	case LUA_TSTRING: {
		size_t n;
		const char *s = lua_tolstring(L, idx, &n);
		return lstring(s, n);
	}
	case LUA_TTABLE:
		break;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == NULL)
			return json_null(); /* json.null sentinel */
		/* fallthrough */
	default:
		snprintf(tmp, sizeof tmp, "<%s>", luaL_typename(L, idx));
		return json_string(tmp);
	}
	if (depth >= MAX_DEPTH || !lua_checkstack(L, 4))
		return json_string("<too deep>");
	idx = lua_absindex(L, idx);
	lua_Integer n;
	if (is_sequence(L, idx, &n)) {
		json_t *a = json_array();
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, idx, i);
			json_array_append_new(a, conv(L, -1, depth + 1));
			lua_pop(L, 1);
		}
		return a;
	}
	json_t *o = json_object();
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *key;
		size_t klen;
		if (lua_type(L, -2) == LUA_TSTRING) {
			key = lua_tolstring(L, -2, &klen);
		} else if (lua_type(L, -2) == LUA_TNUMBER) {
			lua_pushvalue(L, -2);
			snprintf(tmp, sizeof tmp, "%s", lua_tostring(L, -1));
			lua_pop(L, 1); /* the number is still the key below */
			key = tmp;
			klen = strlen(tmp);
		} else {
			lua_pop(L, 1);
			continue;
		}
		json_t *kj = lstring(key, klen);
		json_object_set_new(o, json_string_value(kj), conv(L, -1, depth + 1));
		json_decref(kj);
		lua_pop(L, 1);
	}
	return o;
}

json_t *drr_lua_to_json(lua_State *L, int idx)
{
	return conv(L, idx, 0);
}

void drr_json_to_lua(lua_State *L, const json_t *j)
{
	luaL_checkstack(L, 3, "json nesting");
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;
		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_foreach((json_t *)j, k, v) {
			drr_json_to_lua(L, v);
			lua_setfield(L, -2, k);
		}
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		lua_createtable(L, (int)json_array_size(j), 0);
		json_array_foreach((json_t *)j, i, v) {
			drr_json_to_lua(L, v);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
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
		lua_pushnil(L);
	}
}
