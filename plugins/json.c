/*
 * json.c - drrun.json: JSON text to Lua values and back, over jansson and
 * the engine's converter (engine/ljson.c, strict mode).
 *
 *   json.encode(value [, { sort_keys = false, indent = 0 }]) -> text
 *   json.decode(text) -> value
 *                     -> nil, "json: <message> at line L column C", "invalid"
 *   json.null         null (a light userdata NULL; test with v == json.null)
 *   json.empty_array  encodes as []
 *   json.array_mt     metatable of decoded arrays; marks a table as an array
 *
 * Encoding something JSON cannot say (a function, NaN, a non-string key, a
 * cycle, invalid UTF-8) is a bug in the caller and raises; text that does
 * not parse comes from the world and is returned as nil, err, "invalid".
 * Integers stay integers both ways; an integer literal outside int64 decodes
 * as a float.  Reals are written with the fewest significant digits (at most
 * 17) that read every real of the value back exactly.
 */
#include "drrun/plugin.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BOX_MT "drrun.json.Box"
#define MAX_INDENT 31 /* JSON_MAX_INDENT */

/* What jansson allocated while Lua code that may raise runs: the tree and
 * the dumped text.  Owned by a userdata so an error cannot leak them. */
struct box {
	json_t *j;
	char *text;
};

static int box_close(lua_State *L)
{
	struct box *b = luaL_checkudata(L, 1, BOX_MT);
	json_decref(b->j);
	b->j = NULL;
	free(b->text);
	b->text = NULL;
	return 0;
}

/* [-0, +1, m] */
static struct box *box_new(lua_State *L)
{
	struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
	b->j = NULL;
	b->text = NULL;
	luaL_setmetatable(L, BOX_MT);
	return b;
}

static void box_release(struct box *b)
{
	json_decref(b->j);
	b->j = NULL;
	free(b->text);
	b->text = NULL;
}

/* ---- encode ------------------------------------------------------------ */

/* Significant digits %.*g needs for d to read back exactly, and to be
 * written without an exponent when it is below 1e17. */
static int digits_for(double d)
{
	char tmp[40];
	int p = 1;
	for (; p < 17; p++) {
		snprintf(tmp, sizeof tmp, "%.*g", p, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	double a = fabs(d);
	if (a >= 1 && a < 1e17) {
		int whole = (int)floor(log10(a)) + 1;
		if (whole > p)
			p = whole > 17 ? 17 : whole;
	}
	return p;
}

/* The precision that writes every real in j exactly: the largest needed. */
static int real_precision(json_t *j, int p)
{
	size_t i;
	const char *k;
	json_t *v;
	switch (json_typeof(j)) {
	case JSON_REAL: {
		int need = digits_for(json_real_value(j));
		return need > p ? need : p;
	}
	case JSON_ARRAY:
		json_array_foreach(j, i, v) {
			if (p >= 17)
				break;
			p = real_precision(v, p);
		}
		return p;
	case JSON_OBJECT:
		json_object_foreach(j, k, v) {
			if (p >= 17)
				break;
			p = real_precision(v, p);
		}
		return p;
	default:
		return p;
	}
}

/* Read encode's options table at idx into jansson flags; raises on misuse.
 * [-0, +0, v] */
static size_t encode_flags(lua_State *L, int idx)
{
	size_t flags = JSON_ENCODE_ANY;
	int indent = 0;
	if (lua_isnoneornil(L, idx))
		return flags | JSON_COMPACT;
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
		if (strcmp(k, "sort_keys") == 0) {
			luaL_argcheck(L, lua_isboolean(L, -1), idx, "sort_keys must be a boolean");
			if (lua_toboolean(L, -1))
				flags |= JSON_SORT_KEYS;
		} else if (strcmp(k, "indent") == 0) {
			int isint = 0;
			lua_Integer n =
				lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &isint) : 0;
			luaL_argcheck(L, isint && n >= 0 && n <= MAX_INDENT, idx,
				      "indent must be an integer from 0 to 31");
			indent = (int)n;
		} else {
			lua_pushvalue(L, -2);
			return luaL_argerror(
				L, idx,
				lua_pushfstring(L, "unknown option '%s'; use sort_keys or indent",
						luaL_tolstring(L, -1, NULL)));
		}
		lua_pop(L, 1);
	}
	return flags | (indent ? JSON_INDENT(indent) : JSON_COMPACT);
}

static int l_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	size_t flags = encode_flags(L, 2);
	lua_settop(L, 2);
	struct box *b = box_new(L);
	char err[320];
	b->j = drr_lua_to_json_strict(L, 1, err, sizeof err);
	if (!b->j)
		return luaL_error(L, "json.encode: %s", err);
	flags |= JSON_REAL_PRECISION(real_precision(b->j, 1));
	b->text = json_dumps(b->j, flags);
	if (!b->text)
		return luaL_error(L, "json.encode: out of memory");
	lua_pushstring(L, b->text);
	box_release(b);
	return 1;
}

/* ---- decode ------------------------------------------------------------ */

/* Does the integer literal s[0..n) (optional '-', digits) fit in int64? */
static int fits_int64(const char *s, size_t n)
{
	char tmp[32];
	if (n >= sizeof tmp)
		return 0;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	errno = 0;
	(void)strtoll(tmp, NULL, 10);
	return errno != ERANGE;
}

/* jansson refuses integer literals beyond int64.  Push a copy of the text
 * with ".0" after each of them, so that they parse as reals, and return how
 * many there were (0: nothing pushed).  Only strings need care: the rest of
 * the text is tokens that a number can only follow, never contain.
 * [-0, +(0|1), m] */
static int push_big_as_real(lua_State *L, const char *s, size_t len)
{
	luaL_Buffer b;
	size_t i = 0, copied = 0;
	int changed = 0;
	while (i < len) {
		if (s[i] == '"') {
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (s[i] != '-' && !isdigit((unsigned char)s[i])) {
			i++;
			continue;
		}
		size_t start = i++;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i < len && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) {
			while (i < len &&
			       (isdigit((unsigned char)s[i]) || (s[i] && strchr(".eE+-", s[i]))))
				i++;
			continue; /* a real already */
		}
		if (fits_int64(s + start, i - start))
			continue;
		if (!changed++)
			luaL_buffinit(L, &b);
		luaL_addlstring(&b, s + copied, i - copied);
		luaL_addstring(&b, ".0");
		copied = i;
	}
	if (changed) {
		luaL_addlstring(&b, s + copied, len - copied);
		luaL_pushresult(&b);
	}
	return changed;
}

static int l_decode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	lua_settop(L, 1);
	struct box *b = box_new(L);
	json_error_t e;
	const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
	b->j = json_loadb(s, len, flags, &e);
	if (!b->j && json_error_code(&e) == json_error_numeric_overflow &&
	    push_big_as_real(L, s, len)) {
		/* positions of later errors on the same line shift by 2 per number */
		s = lua_tolstring(L, -1, &len);
		b->j = json_loadb(s, len, flags, &e);
	}
	if (!b->j) {
		lua_pushnil(L);
		lua_pushfstring(L, "json: %s at line %d column %d", e.text, e.line, e.column);
		lua_pushliteral(L, "invalid");
		return 3;
	}
	drr_json_to_lua_ex(L, b->j, DRR_JSON_NULL_SENTINEL | DRR_JSON_ARRAY_META);
	box_release(b);
	return 1;
}

int luaopen_drrun_json(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "encode", l_encode },	 { "decode", l_decode }, { "null", NULL },
		{ "empty_array", NULL }, { "array_mt", NULL },	 { NULL, NULL },
	};
	static const luaL_Reg box_meta[] = {
		{ "__gc", box_close },
		{ "__close", box_close },
		{ NULL, NULL },
	};
	luaL_newmetatable(L, BOX_MT);
	luaL_setfuncs(L, box_meta, 0);
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	lua_pushlightuserdata(L, DRR_JSON_NULL);
	lua_setfield(L, -2, "null");
	lua_pushlightuserdata(L, DRR_JSON_EMPTY_ARRAY);
	lua_setfield(L, -2, "empty_array");
	luaL_newmetatable(L, DRR_JSON_ARRAY_MT);
	lua_setfield(L, -2, "array_mt");
	return 1;
}
