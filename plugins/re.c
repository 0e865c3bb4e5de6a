/*
 * re.c - drrun.re: Perl-compatible regular expressions, over PCRE2 (8-bit,
 * JIT-compiled when the library can).  Arguments follow Lua's string
 * library: subject first, positions 1-based, negative from the end.
 *
 *   re.match(s, pattern [, init [, flags]])   -> captures... | nil
 *   re.find(s, pattern [, init [, flags]])    -> start, end, caps | nil
 *   re.gmatch(s, pattern [, flags])           -> iterator of captures...
 *   re.gsub(s, pattern, repl [, n [, flags]]) -> text, count
 *   re.stats()                                -> { size, hits, misses, jit }
 *
 * flags: i caseless, m multiline, s dotall, x extended, u UTF-8 + Unicode
 * properties.  Captures are strings, or false for a group that did not
 * take part; with no groups the whole match is the one capture.  caps has
 * the groups at [1..n] and named groups under their names too.
 *
 * Failures: nil, "re: <message> at offset N", "invalid" (a pattern that
 * does not compile; N: 0-based byte offset in the pattern); nil, "re: match
 * limit exceeded", "limit" (also depth, heap, JIT stack); nil, "re: <message>
 * at offset N", "invalid" (a subject that is not UTF-8)
 * (invalid UTF-8 with "u").  gmatch raises them instead, as a for loop
 * cannot see a second return value.  Bad arguments raise.
 *
 * Compiled patterns live in an LRU cache of CACHE_MAX entries keyed by
 * pattern and flags.  Every match runs with match, depth and heap limits and
 * a bounded JIT stack, so no pattern can hang the event loop.
 */
#include "drrun/plugin.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string.h>

#define CACHE_MAX 256
#define MATCH_LIMIT 1000000
#define DEPTH_LIMIT 10000
#define HEAP_LIMIT_KIB 65536
#define JIT_STACK_START (32 * 1024)
#define JIT_STACK_MAX (1024 * 1024)

#define CACHE_MT "drrun.re.Cache"
#define PAT_MT "drrun.re.Pattern"
#define MD_MT "drrun.re.Match"

/* Flag letters, their compile options and their bits in a cache key. */
static const struct {
	char c;
	uint32_t opts;
} FLAGS[] = {
	{ 'i', PCRE2_CASELESS }, { 'm', PCRE2_MULTILINE },	 { 's', PCRE2_DOTALL },
	{ 'x', PCRE2_EXTENDED }, { 'u', PCRE2_UTF | PCRE2_UCP },
};

/* A compiled pattern (userdata).  Cached ones are also on the LRU list and
 * in the cache table; an evicted one lives on while a call still holds it. */
struct re_pat {
	pcre2_code *code; /* NULL until compiled */
	struct re_pat *prev, *next;
	uint32_t ncap, namecount, nameentry;
	PCRE2_SPTR names;
	size_t keylen;
	char key[]; /* pattern, NUL, flag bits: the cache table's key */
};

/* The module's state, upvalue 1 of every function; user value 1 is the
 * cache table (key -> pattern userdata). */
struct re_cache {
	pcre2_compile_context *cctx;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit;
	struct re_pat *head, *tail; /* most recently used first */
	int count;
	lua_Integer hits, misses;
};

/* Match data, owned by a userdata so no error can leak it; gmatch keeps its
 * position here too. */
struct re_md {
	pcre2_match_data *md;
	size_t pos;
	uint32_t mopts;
	int done;
};

/* ---- resources ------------------------------------------------------------ */

static int cache_gc(lua_State *L)
{
	struct re_cache *c = luaL_checkudata(L, 1, CACHE_MT);
	pcre2_match_context_free(c->mctx);
	pcre2_compile_context_free(c->cctx);
	pcre2_jit_stack_free(c->jit);
	c->mctx = NULL;
	c->cctx = NULL;
	c->jit = NULL;
	return 0;
}

static int pat_gc(lua_State *L)
{
	struct re_pat *p = luaL_checkudata(L, 1, PAT_MT);
	pcre2_code_free(p->code);
	p->code = NULL;
	return 0;
}

static void md_release(struct re_md *m)
{
	pcre2_match_data_free(m->md);
	m->md = NULL;
}

static int md_gc(lua_State *L)
{
	md_release(luaL_checkudata(L, 1, MD_MT));
	return 0;
}

/* Match data sized for p, owned by the userdata pushed.  [-0, +1, m] */
static struct re_md *md_new(lua_State *L, struct re_pat *p)
{
	struct re_md *m = lua_newuserdatauv(L, sizeof *m, 0);
	memset(m, 0, sizeof *m);
	luaL_setmetatable(L, MD_MT);
	m->md = pcre2_match_data_create_from_pattern(p->code, NULL);
	if (!m->md)
		luaL_error(L, "re: out of memory");
	return m;
}

static struct re_cache *get_cache(lua_State *L)
{
	return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- the pattern cache ------------------------------------------------------ */

static void lru_unlink(struct re_cache *c, struct re_pat *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		c->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		c->tail = p->prev;
	p->prev = p->next = NULL;
}

static void lru_push(struct re_cache *c, struct re_pat *p)
{
	p->prev = NULL;
	p->next = c->head;
	if (c->head)
		c->head->prev = p;
	c->head = p;
	if (!c->tail)
		c->tail = p;
}

/* The flags string at arg as compile options; *bits for the cache key.
 * Raises on an unknown letter.  [-0, +0, v] */
static uint32_t check_flags(lua_State *L, int arg, unsigned *bits)
{
	const char *f = luaL_optstring(L, arg, "");
	uint32_t opts = 0;
	*bits = 0;
	for (; *f; f++) {
		size_t i = 0;
		while (i < sizeof FLAGS / sizeof FLAGS[0] && FLAGS[i].c != *f)
			i++;
		if (i == sizeof FLAGS / sizeof FLAGS[0])
			luaL_argerror(
				L, arg,
				lua_pushfstring(L, "unknown flag '%c'; use i, m, s, x or u", *f));
		opts |= FLAGS[i].opts;
		*bits |= 1u << i;
	}
	return opts;
}

/* Compile pattern (a string at pidx) into p, which owns the code from then
 * on.  Returns 0, or pushes nil, err, "invalid" and returns -1.
 * [-0, +(0|3), m] */
static int compile(lua_State *L, struct re_cache *c, struct re_pat *p, int pidx, uint32_t opts)
{
	size_t plen;
	const char *pat = lua_tolstring(L, pidx, &plen);
	int code;
	PCRE2_SIZE off;
	p->code = pcre2_compile((PCRE2_SPTR)pat, plen, opts, &code, &off, c->cctx);
	if (!p->code) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(code, msg, sizeof msg);
		lua_pushnil(L);
		lua_pushfstring(L, "re: %s at offset %I", (const char *)msg, (lua_Integer)off);
		lua_pushliteral(L, "invalid");
		return -1;
	}
	(void)pcre2_jit_compile(p->code, PCRE2_JIT_COMPLETE); /* else interpreted */
	pcre2_pattern_info(p->code, PCRE2_INFO_CAPTURECOUNT, &p->ncap);
	pcre2_pattern_info(p->code, PCRE2_INFO_NAMECOUNT, &p->namecount);
	pcre2_pattern_info(p->code, PCRE2_INFO_NAMEENTRYSIZE, &p->nameentry);
	pcre2_pattern_info(p->code, PCRE2_INFO_NAMETABLE, &p->names);
	return 0;
}

/* The compiled pattern for the string at pidx and the flags at fidx, from
 * the cache or compiled now.  Pushes it and returns it (valid while it is on
 * the stack, even if evicted); or pushes nil, err, "invalid" and returns
 * NULL.  Raises on bad arguments.  [-0, +(1|6), v] */
static struct re_pat *get_pattern(lua_State *L, int pidx, int fidx)
{
	struct re_cache *c = get_cache(L);
	unsigned bits;
	uint32_t opts = check_flags(L, fidx, &bits);
	size_t plen;
	const char *pat = luaL_checklstring(L, pidx, &plen);
	pidx = lua_absindex(L, pidx);

	luaL_Buffer kb;
	luaL_buffinit(L, &kb);
	luaL_addlstring(&kb, pat, plen);
	luaL_addchar(&kb, '\0');
	luaL_addchar(&kb, (char)('@' + bits));
	luaL_pushresult(&kb);			      /* key */
	lua_getiuservalue(L, lua_upvalueindex(1), 1); /* key, table */
	lua_pushvalue(L, -2);
	if (lua_rawget(L, -2) == LUA_TUSERDATA) { /* key, table, pat */
		struct re_pat *p = lua_touserdata(L, -1);
		lua_replace(L, -3);
		lua_pop(L, 1);
		lru_unlink(c, p);
		lru_push(c, p);
		c->hits++;
		return p;
	}
	lua_pop(L, 1);
	size_t klen = lua_rawlen(L, -2);
	struct re_pat *p = lua_newuserdatauv(L, sizeof *p + klen, 0);
	memset(p, 0, sizeof *p);
	luaL_setmetatable(L, PAT_MT);
	memcpy(p->key, lua_tostring(L, -3), klen);
	p->keylen = klen;
	c->misses++;
	if (compile(L, c, p, pidx, opts) < 0)
		return NULL;
	lua_pushvalue(L, -3);
	lua_pushvalue(L, -2);
	lua_rawset(L, -4); /* key, table, pat */
	lru_push(c, p);
	if (++c->count > CACHE_MAX) {
		struct re_pat *old = c->tail;
		lru_unlink(c, old);
		lua_pushlstring(L, old->key, old->keylen);
		lua_pushnil(L);
		lua_rawset(L, -4);
		c->count--;
	}
	lua_replace(L, -3);
	lua_pop(L, 1);
	return p;
}

/* ---- matching --------------------------------------------------------------- */

/* Run p on s from byte offset off.  Returns > 0 on a match, 0 for none; or
 * pushes nil, err, token and returns -1.  Raises when out of memory.
 * [-0, +(0|3), m] */
static int exec(lua_State *L, struct re_pat *p, const char *s, size_t len, size_t off,
		uint32_t mopts, pcre2_match_data *md)
{
	struct re_cache *c = get_cache(L);
	int rc = pcre2_match(p->code, (PCRE2_SPTR)s, len, off, mopts, md, c->mctx);
	if (rc > 0)
		return rc;
	if (rc == 0)
		return (int)p->ncap + 1; /* ovector too small: cannot happen */
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc == PCRE2_ERROR_NOMEMORY)
		return luaL_error(L, "re: out of memory");
	const char *limit = rc == PCRE2_ERROR_MATCHLIMIT       ? "match"
			    : rc == PCRE2_ERROR_DEPTHLIMIT     ? "depth"
			    : rc == PCRE2_ERROR_HEAPLIMIT      ? "heap"
			    : rc == PCRE2_ERROR_JIT_STACKLIMIT ? "JIT stack"
							       : NULL;
	lua_pushnil(L);
	if (limit) {
		lua_pushfstring(L, "re: %s limit exceeded", limit);
		lua_pushliteral(L, "limit");
		return -1;
	}
	PCRE2_UCHAR msg[256];
	pcre2_get_error_message(rc, msg, sizeof msg);
	if ((rc <= PCRE2_ERROR_UTF8_ERR1 && rc >= PCRE2_ERROR_UTF8_ERR21) ||
	    rc == PCRE2_ERROR_BADUTFOFFSET) {
		size_t at = rc == PCRE2_ERROR_BADUTFOFFSET ? off : pcre2_get_startchar(md);
		lua_pushfstring(L, "re: %s at offset %I", (const char *)msg, (lua_Integer)at);
		lua_pushliteral(L, "invalid");
		return -1;
	}
	lua_pushfstring(L, "re: %s", (const char *)msg);
	lua_pushliteral(L, "invalid");
	return -1;
}

/* Push group i of the last match: its text, or false when unset.  [-0, +1, m] */
static void push_group(lua_State *L, const char *s, const PCRE2_SIZE *ov, uint32_t i)
{
	PCRE2_SIZE a = ov[2 * i], b = ov[2 * i + 1];
	if (a == PCRE2_UNSET)
		lua_pushboolean(L, 0);
	else
		lua_pushlstring(L, s + a, b > a ? b - a : 0);
}

/* Push the captures as string.match does; returns how many.  [-0, +n, m] */
static int push_captures(lua_State *L, const struct re_pat *p, const char *s, const PCRE2_SIZE *ov)
{
	if (p->ncap == 0) {
		push_group(L, s, ov, 0);
		return 1;
	}
	luaL_checkstack(L, (int)p->ncap, "too many captures");
	for (uint32_t i = 1; i <= p->ncap; i++)
		push_group(L, s, ov, i);
	return (int)p->ncap;
}

/* The group called name[0..n): the first of that name that took part in
 * the match (ov may be NULL: the first of that name), or -1. */
static int group_by_name(const struct re_pat *p, const char *name, size_t n, const PCRE2_SIZE *ov)
{
	int found = -1;
	for (uint32_t e = 0; e < p->namecount; e++) {
		PCRE2_SPTR ent = p->names + (size_t)e * p->nameentry;
		const char *ename = (const char *)ent + 2;
		if (strlen(ename) != n || memcmp(ename, name, n) != 0)
			continue;
		int g = (ent[0] << 8) | ent[1];
		if (!ov || ov[2 * g] != PCRE2_UNSET)
			return g;
		if (found < 0)
			found = g;
	}
	return found;
}

/* init (arg) as a 0-based offset, Lua's way; len + 1 when beyond the end. */
static size_t check_init(lua_State *L, int arg, size_t len)
{
	lua_Integer pos = luaL_optinteger(L, arg, 1);
	if (pos > 0)
		return (size_t)pos - 1 > len ? len + 1 : (size_t)pos - 1;
	if (pos == 0 || pos < -(lua_Integer)len)
		return 0;
	return len + (size_t)pos;
}

/* match and find: the same search, two ways of returning it. */
static int search(lua_State *L, int find)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	luaL_checkstring(L, 2);
	size_t init = check_init(L, 3, len);
	lua_settop(L, 4);
	struct re_pat *p = get_pattern(L, 2, 4);
	if (!p)
		return 3;
	if (init > len) {
		luaL_pushfail(L);
		return 1;
	}
	struct re_md *m = md_new(L, p);
	int rc = exec(L, p, s, len, init, 0, m->md);
	if (rc <= 0) {
		if (rc == 0)
			luaL_pushfail(L);
		return rc < 0 ? 3 : 1;
	}
	const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
	int n;
	if (!find) {
		n = push_captures(L, p, s, ov);
	} else {
		lua_pushinteger(L, (lua_Integer)ov[0] + 1);
		lua_pushinteger(L, (lua_Integer)ov[1]);
		lua_createtable(L, (int)p->ncap, (int)p->namecount);
		for (uint32_t i = 1; i <= p->ncap; i++) {
			push_group(L, s, ov, i);
			lua_rawseti(L, -2, i);
		}
		for (uint32_t e = 0; e < p->namecount; e++) {
			const char *name = (const char *)p->names + (size_t)e * p->nameentry + 2;
			push_group(L, s, ov, (uint32_t)group_by_name(p, name, strlen(name), ov));
			lua_setfield(L, -2, name);
		}
		n = 3;
	}
	md_release(m);
	return n;
}

static int l_match(lua_State *L)
{
	return search(L, 0);
}

static int l_find(lua_State *L)
{
	return search(L, 1);
}

/* ---- gmatch ----------------------------------------------------------------- */

/* A match may not end where the previous one ended (Lua 5.4's rule for
 * empty matches): after each match, search on with NOTEMPTY_ATSTART.  The
 * first search checked the subject's UTF-8; later ones start at the end of
 * a match, a character boundary, and skip the check. */
static int gmatch_next(lua_State *L)
{
	size_t len;
	const char *s = lua_tolstring(L, lua_upvalueindex(2), &len);
	struct re_pat *p = lua_touserdata(L, lua_upvalueindex(3));
	struct re_md *m = lua_touserdata(L, lua_upvalueindex(4));
	if (m->done || !m->md)
		return 0;
	int rc = exec(L, p, s, len, m->pos, m->mopts, m->md);
	if (rc < 0)
		return luaL_error(L, "%s", lua_tostring(L, -2));
	if (rc == 0) {
		m->done = 1;
		md_release(m);
		return 0;
	}
	const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
	m->pos = ov[1] > ov[0] ? ov[1] : ov[0];
	m->mopts = PCRE2_NOTEMPTY_ATSTART | PCRE2_NO_UTF_CHECK; /* checked once */
	return push_captures(L, p, s, ov);
}

static int l_gmatch(lua_State *L)
{
	luaL_checkstring(L, 1);
	luaL_checkstring(L, 2);
	lua_settop(L, 3);
	struct re_pat *p = get_pattern(L, 2, 3); /* 4 */
	if (!p)
		return luaL_error(L, "%s", lua_tostring(L, -2));
	md_new(L, p); /* 5 */
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_pushvalue(L, 1);
	lua_pushvalue(L, 4);
	lua_pushvalue(L, 5);
	lua_pushcclosure(L, gmatch_next, 4);
	return 1;
}

/* ---- gsub ------------------------------------------------------------------- */

/* Check a replacement string once, before any match: %0-%9, %%, %{name}. */
static void check_repl(lua_State *L, const struct re_pat *p, const char *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (r[i] != '%')
			continue;
		if (++i == n)
			luaL_error(L, "invalid use of '%%' in replacement string");
		if (r[i] >= '0' && r[i] <= '9') {
			uint32_t d = (uint32_t)(r[i] - '0');
			if (d > p->ncap && !(d == 1 && p->ncap == 0))
				luaL_error(L, "invalid capture index %%%d in replacement string",
					   (int)d);
		} else if (r[i] == '{') {
			const char *end = memchr(r + i, '}', n - i);
			if (!end)
				luaL_error(L, "unterminated %%{ in replacement string");
			size_t nl = (size_t)(end - (r + i + 1));
			if (group_by_name(p, r + i + 1, nl, NULL) < 0)
				luaL_error(L, "no group named '%s' in the pattern",
					   lua_pushlstring(L, r + i + 1, nl));
			i = (size_t)(end - r);
		} else if (r[i] != '%') {
			luaL_error(L, "invalid use of '%%' in replacement string");
		}
	}
}

/* Append a checked replacement string for the current match. */
static void add_string(luaL_Buffer *b, const struct re_pat *p, const char *r, size_t n,
		       const char *s, const PCRE2_SIZE *ov)
{
	for (size_t i = 0; i < n; i++) {
		const char *pc = memchr(r + i, '%', n - i);
		size_t lit = pc ? (size_t)(pc - (r + i)) : n - i;
		luaL_addlstring(b, r + i, lit);
		i += lit;
		if (i >= n)
			break;
		char c = r[++i];
		int g;
		if (c == '%') {
			luaL_addchar(b, '%');
			continue;
		} else if (c == '{') {
			const char *end = memchr(r + i, '}', n - i);
			g = group_by_name(p, r + i + 1, (size_t)(end - (r + i + 1)), ov);
			i = (size_t)(end - r);
		} else {
			g = c - '0';
			if (g == 1 && p->ncap == 0)
				g = 0;
		}
		if (ov[2 * g] != PCRE2_UNSET && ov[2 * g + 1] > ov[2 * g])
			luaL_addlstring(b, s + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
	}
}

/* Append the replacement from a table (arg 3, keyed by the first capture)
 * or a function (arg 3, called with the captures); false or nil keeps the
 * match.  [-0, +0, e] */
static void add_value(lua_State *L, luaL_Buffer *b, const struct re_pat *p, const char *s,
		      const PCRE2_SIZE *ov, int tr)
{
	if (tr == LUA_TFUNCTION) {
		lua_pushvalue(L, 3);
		int n = push_captures(L, p, s, ov);
		lua_call(L, n, 1);
	} else {
		push_group(L, s, ov, p->ncap > 0 ? 1 : 0);
		lua_gettable(L, 3);
	}
	if (!lua_toboolean(L, -1)) {
		lua_pop(L, 1);
		luaL_addlstring(b, s + ov[0], ov[1] > ov[0] ? ov[1] - ov[0] : 0);
	} else if (!lua_isstring(L, -1)) {
		luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
	} else {
		luaL_addvalue(b);
	}
}

static int l_gsub(lua_State *L)
{
	size_t len, rlen = 0;
	const char *s = luaL_checklstring(L, 1, &len);
	luaL_checkstring(L, 2);
	int tr = lua_type(L, 3);
	luaL_argexpected(L,
			 tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION ||
				 tr == LUA_TTABLE,
			 3, "string/function/table");
	lua_Integer max = luaL_optinteger(L, 4, (lua_Integer)len + 1);
	lua_settop(L, 5);
	struct re_pat *p = get_pattern(L, 2, 5); /* 6 */
	if (!p)
		return 3;
	const char *r = NULL;
	if (tr == LUA_TNUMBER || tr == LUA_TSTRING) {
		r = lua_tolstring(L, 3, &rlen);
		check_repl(L, p, r, rlen);
	}
	struct re_md *m = md_new(L, p); /* 7 */
	const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	size_t pos = 0;
	uint32_t mopts = 0;
	lua_Integer n = 0;
	while (n < max) {
		int rc = exec(L, p, s, len, pos, mopts, m->md);
		if (rc < 0)
			return 3;
		if (rc == 0)
			break;
		n++;
		luaL_addlstring(&b, s + pos, ov[0] - pos);
		if (r)
			add_string(&b, p, r, rlen, s, ov);
		else
			add_value(L, &b, p, s, ov, tr);
		pos = ov[1] > ov[0] ? ov[1] : ov[0];
		mopts = PCRE2_NOTEMPTY_ATSTART | PCRE2_NO_UTF_CHECK; /* checked once */
	}
	luaL_addlstring(&b, s + pos, len - pos);
	luaL_pushresult(&b);
	lua_pushinteger(L, n);
	md_release(m);
	return 2;
}

/* ---- module ----------------------------------------------------------------- */

static int l_stats(lua_State *L)
{
	struct re_cache *c = get_cache(L);
	uint32_t jit = 0;
	pcre2_config(PCRE2_CONFIG_JIT, &jit);
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, c->count);
	lua_setfield(L, -2, "size");
	lua_pushinteger(L, c->hits);
	lua_setfield(L, -2, "hits");
	lua_pushinteger(L, c->misses);
	lua_setfield(L, -2, "misses");
	lua_pushboolean(L, jit != 0);
	lua_setfield(L, -2, "jit");
	return 1;
}

/* The shared state: contexts with every limit set, and the JIT stack. */
static void new_cache(lua_State *L)
{
	struct re_cache *c = lua_newuserdatauv(L, sizeof *c, 1);
	memset(c, 0, sizeof *c);
	luaL_setmetatable(L, CACHE_MT);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);
	c->cctx = pcre2_compile_context_create(NULL);
	c->mctx = pcre2_match_context_create(NULL);
	if (!c->cctx || !c->mctx)
		luaL_error(L, "re: out of memory");
	pcre2_set_match_limit(c->mctx, MATCH_LIMIT);
	pcre2_set_depth_limit(c->mctx, DEPTH_LIMIT);
	pcre2_set_heap_limit(c->mctx, HEAP_LIMIT_KIB);
	c->jit = pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX, NULL);
	if (c->jit)
		pcre2_jit_stack_assign(c->mctx, NULL, c->jit);
}

int luaopen_drrun_re(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "match", l_match }, { "find", l_find },   { "gmatch", l_gmatch },
		{ "gsub", l_gsub },   { "stats", l_stats }, { NULL, NULL },
	};
	static const luaL_Reg cache_meta[] = { { "__gc", cache_gc }, { NULL, NULL } };
	static const luaL_Reg pat_meta[] = { { "__gc", pat_gc }, { NULL, NULL } };
	static const luaL_Reg md_meta[] = { { "__gc", md_gc },
					    { "__close", md_gc },
					    { NULL, NULL } };
	luaL_newmetatable(L, CACHE_MT);
	luaL_setfuncs(L, cache_meta, 0);
	luaL_newmetatable(L, PAT_MT);
	luaL_setfuncs(L, pat_meta, 0);
	luaL_newmetatable(L, MD_MT);
	luaL_setfuncs(L, md_meta, 0);
	lua_pop(L, 3);
	luaL_newlibtable(L, fns);
	new_cache(L);
	luaL_setfuncs(L, fns, 1);
	return 1;
}
