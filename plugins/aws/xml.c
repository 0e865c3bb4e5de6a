/*
 * xml.c - an AWS XML answer as Lua tables, built by expat's callbacks as
 * the bytes stream in: no DOM is ever held.
 *
 * The shape follows what AWS's documentation shows, so field names read
 * straight across:
 *   - a leaf element is its text;
 *   - an element whose children are list members is an array of them: the
 *     members are `item` (EC2), `member` (query protocol), or the singular
 *     of the parent's name (DBInstances/DBInstance, ResourceRecordSets/
 *     ResourceRecordSet, TagList/Tag), or two or more children of one name;
 *   - any other element is a table by child name, where a name that repeats,
 *     or is one of S3's flattened lists (Contents, CommonPrefixes, Part,
 *     Upload, Deleted, Version, DeleteMarker), is an array.
 * Attributes are ignored.  A DOCTYPE is refused (no entity expansion).
 */
#include "aws/aws.h"

#include <stdlib.h>
#include <string.h>

#include <expat.h>

#define XML_MAX_DEPTH 128

static const char *const flat_lists[] = { "Contents", "CommonPrefixes", "Part",		"Upload",
					  "Deleted",  "Version",	"DeleteMarker", NULL };

struct frame {
	char *name;
	struct drr_buf text;
	int kids_ref; /* registry ref of an array of { name, value } pairs */
	int nkids;
};

/* Full userdata: owns the parser and the frames, so an error raised in a
 * callback (out of memory) leaves nothing behind once __gc runs. */
struct xmlp {
	XML_Parser p;
	lua_State *L;
	struct frame stack[XML_MAX_DEPTH + 1];
	int depth;
	int root_ref; /* value of the root element */
	char *root_name;
	char err[160];
};

static void frame_free(lua_State *L, struct frame *f)
{
	free(f->name);
	f->name = NULL;
	drr_buf_free(&f->text);
	if (L && f->kids_ref != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, f->kids_ref);
	f->kids_ref = LUA_NOREF;
}

static int xmlp_gc(lua_State *L)
{
	struct xmlp *x = lua_touserdata(L, 1);
	if (x->p)
		XML_ParserFree(x->p);
	x->p = NULL;
	for (int i = 0; i < x->depth; i++)
		frame_free(L, &x->stack[i]);
	x->depth = 0;
	if (x->root_ref != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, x->root_ref);
	x->root_ref = LUA_NOREF;
	free(x->root_name);
	x->root_name = NULL;
	return 0;
}

static void stop(struct xmlp *x, const char *why)
{
	if (!x->err[0])
		snprintf(x->err, sizeof x->err, "%s", why);
	XML_StopParser(x->p, XML_FALSE);
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	struct xmlp *x = ud;
	if (x->depth >= XML_MAX_DEPTH) {
		stop(x, "nested too deeply");
		return;
	}
	struct frame *f = &x->stack[x->depth++];
	memset(f, 0, sizeof *f);
	f->name = drr_xstrdup(name);
	f->kids_ref = LUA_NOREF;
}

static void on_text(void *ud, const XML_Char *s, int len)
{
	struct xmlp *x = ud;
	if (x->depth > 0 && len > 0)
		drr_buf_add(&x->stack[x->depth - 1].text, s, (size_t)len);
}

static int is_flat(const char *name)
{
	for (int i = 0; flat_lists[i]; i++)
		if (!strcmp(flat_lists[i], name))
			return 1;
	return 0;
}

/* Is `kid` the member name of a list called `parent`? */
static int is_member(const char *parent, const char *kid)
{
	if (!strcmp(kid, "item") || !strcmp(kid, "member"))
		return 1;
	size_t p = strlen(parent), k = strlen(kid);
	if (p == k + 1 && parent[p - 1] == 's' && !strncmp(parent, kid, k))
		return 1; /* DBInstances / DBInstance */
	if (p == k + 4 && !strcmp(parent + k, "List") && !strncmp(parent, kid, k))
		return 1; /* TagList / Tag */
	return 0;
}

/* Push the value of frame f (its kids or its text).  [-0, +1, m] */
static void push_value(lua_State *L, struct frame *f)
{
	if (!f->nkids) {
		lua_pushlstring(L, f->text.data ? f->text.data : "", f->text.len);
		return;
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, f->kids_ref);
	int kids = lua_gettop(L);
	/* one name throughout, and a list member or repeated: an array */
	int same = 1;
	lua_rawgeti(L, kids, 1);
	lua_rawgeti(L, -1, 1);
	const char *first = lua_tostring(L, -1);
	for (int i = 2; same && i <= f->nkids; i++) {
		lua_rawgeti(L, kids, i);
		lua_rawgeti(L, -1, 1);
		same = !strcmp(first, lua_tostring(L, -1));
		lua_pop(L, 2);
	}
	int array = same && (f->nkids >= 2 || is_member(f->name, first));
	lua_pop(L, 2);
	lua_createtable(L, array ? f->nkids : 0, array ? 0 : f->nkids);
	int out = lua_gettop(L);
	for (int i = 1; i <= f->nkids; i++) {
		lua_rawgeti(L, kids, i);
		int pair = lua_gettop(L);
		if (array) {
			lua_rawgeti(L, pair, 2);
			lua_rawseti(L, out, i);
		} else {
			lua_rawgeti(L, pair, 1);
			const char *k = lua_tostring(L, -1);
			int many = is_flat(k);
			for (int j = 1; !many && j <= f->nkids; j++) {
				if (j == i)
					continue;
				lua_rawgeti(L, kids, j);
				lua_rawgeti(L, -1, 1);
				many = !strcmp(k, lua_tostring(L, -1));
				lua_pop(L, 2);
			}
			if (many) {
				lua_pushvalue(L, -1);
				if (lua_rawget(L, out) != LUA_TTABLE) {
					lua_pop(L, 1);
					lua_newtable(L);
					lua_pushvalue(L, -2);
					lua_pushvalue(L, -2);
					lua_rawset(L, out);
				}
				lua_rawgeti(L, pair, 2);
				lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
				lua_pop(L, 1);
			} else {
				lua_rawgeti(L, pair, 2);
				lua_rawset(L, out);
				lua_pushnil(L); /* balance the key popped by rawset */
			}
			lua_pop(L, 1);
		}
		lua_settop(L, out);
	}
	lua_remove(L, kids);
}

static void on_end(void *ud, const XML_Char *name)
{
	(void)name;
	struct xmlp *x = ud;
	lua_State *L = x->L;
	struct frame *f = &x->stack[x->depth - 1];
	push_value(L, f);
	if (x->depth == 1) {
		x->root_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		x->root_name = f->name;
		f->name = NULL;
		frame_free(L, f);
		x->depth--;
		return;
	}
	struct frame *parent = &x->stack[x->depth - 2];
	if (parent->kids_ref == LUA_NOREF) {
		lua_newtable(L);
		parent->kids_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, parent->kids_ref);
	lua_createtable(L, 2, 0);
	lua_pushstring(L, f->name);
	lua_rawseti(L, -2, 1);
	lua_pushvalue(L, -3);
	lua_rawseti(L, -2, 2);
	lua_rawseti(L, -2, ++parent->nkids);
	lua_pop(L, 2);
	frame_free(L, f);
	x->depth--;
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
		       int has_internal)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal;
	stop(ud, "a DOCTYPE is not allowed");
}

/* Quote at most 40 bytes of s for an error message, printable only. */
static void first_bytes(char *out, size_t n, const char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && i < 40 && o + 5 < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, n - o, "\\x%02x", c);
	}
	out[o] = 0;
}

/* aws.core.xml(s) -> value, root_name | nil, "invalid: ...", "invalid" */
int drr_aws_l_xml(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	struct xmlp *x = lua_newuserdatauv(L, sizeof *x, 0);
	memset(x, 0, sizeof *x);
	x->root_ref = LUA_NOREF;
	x->L = L;
	luaL_setmetatable(L, DRR_AWS_XML_MT);
	x->p = XML_ParserCreate("UTF-8");
	if (!x->p)
		return luaL_error(L, "aws: out of memory");
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	enum XML_Status st = XML_Parse(x->p, s, (int)(len > 0x7fffffff ? 0x7fffffff : len), 1);
	if (len > 0x7fffffff && !x->err[0])
		snprintf(x->err, sizeof x->err, "answer too large");
	if (st != XML_STATUS_OK || x->err[0] || x->root_ref == LUA_NOREF) {
		char fb[200];
		first_bytes(fb, sizeof fb, s, len);
		const char *why = x->err[0]		? x->err
				  : st != XML_STATUS_OK ? XML_ErrorString(XML_GetErrorCode(x->p))
							: "no element";
		return drr_push_fail(L, "invalid", "not XML: line %lu: %s (first bytes: \"%s\")",
				     (unsigned long)XML_GetCurrentLineNumber(x->p), why, fb);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, x->root_ref);
	lua_pushstring(L, x->root_name);
	return 2;
}

void drr_aws_xml_register(lua_State *L)
{
	if (luaL_newmetatable(L, DRR_AWS_XML_MT)) {
		lua_pushcfunction(L, xmlp_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
}
