/*
 * params.c - a runbook's params: their declarations in runbook{} (type,
 * default, required, doc), and their values for one run, from the defaults
 * and --param name=value, checked and converted to the param's type.  They
 * are bound when runbook{} is called, so that the rest of the top-level
 * code can read them as the global `params` (read-only).
 */
#include "runbook/runbook.h"
#include "runbook/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K_PARAMS "drrun.params" /* the bound params, once runbook{} ran */

static const char *const PARAM_FIELDS[] = { "type", "default", "required", "doc", NULL };
static const char *const TYPES[] = { "string",	 "number", "integer", "boolean",
				     "duration", "url",	   NULL };

/* What the load is for: the opts with the --param values, where errors go. */
static struct {
	struct drr_runbook *rb;
	const struct drr_opts *o;
	struct drr_diag *d;
} P;

/* ---- values of a type ---------------------------------------------------------- */

/* scheme://host..., no space or control character anywhere. */
static int url_ok(const char *s)
{
	if (!isalpha((unsigned char)*s))
		return 0;
	const char *p = s;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	if (strncmp(p, "://", 3) != 0)
		return 0;
	p += 3;
	if (!*p || *p == '/' || *p == '?' || *p == '#')
		return 0; /* no host */
	for (const char *q = s; *q; q++)
		if ((unsigned char)*q <= ' ' || *q == 0x7f)
			return 0;
	return 1;
}

static int duration_ok(const char *s)
{
	double v;
	const char *why;
	return drr_duration_parse(s, &v) == 0 && drr_duration_check(v, 1, &why) == 0;
}

static const char *type_phrase(int type)
{
	static const char *const ph[] = {
		"a string",
		"a number",
		"an integer",
		"true or false",
		"a duration like \"30s\" or \"5m\"",
		"a URL like \"https://host/path\"",
	};
	return ph[type];
}

/* Check the value at idx against type; push it converted (an integer for
 * integer).  Returns 0, or -1 having pushed nothing.  [-0, +(0|1), -] */
static int typed_value(lua_State *L, int idx, int type)
{
	int t = lua_type(L, idx);
	switch (type) {
	case DRR_PT_NUMBER:
		if (t != LUA_TNUMBER)
			return -1;
		lua_pushvalue(L, idx);
		return 0;
	case DRR_PT_INTEGER: {
		int isint = 0;
		lua_Integer n = t == LUA_TNUMBER ? lua_tointegerx(L, idx, &isint) : 0;
		if (!isint)
			return -1;
		lua_pushinteger(L, n);
		return 0;
	}
	case DRR_PT_BOOLEAN:
		if (t != LUA_TBOOLEAN)
			return -1;
		lua_pushvalue(L, idx);
		return 0;
	default:
		if (t != LUA_TSTRING ||
		    (type == DRR_PT_DURATION && !duration_ok(lua_tostring(L, idx))) ||
		    (type == DRR_PT_URL && !url_ok(lua_tostring(L, idx))))
			return -1;
		lua_pushvalue(L, idx);
		return 0;
	}
}

/* A default that is not of the declared type. */
static void bad_default(struct ld *ld, struct drr_param *p, int idx, int line)
{
	lua_State *L = ld->L;
	const char *shown = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
	drr_diag_add(ld->d, ld->file, line, "param '%s': default %s%s%s is not %s (type %s)",
		     p->name, shown ? "'" : "a ", shown ? shown : luaL_typename(L, idx),
		     shown ? "'" : "", type_phrase(p->type), TYPES[p->type]);
}

/* type = "...": the declared type, or -1 when absent (reported if wrong). */
static int declared_type(struct ld *ld, int v, int line, const char *what)
{
	lua_State *L = ld->L;
	int t = lua_getfield(L, v, "type"), type = -1;
	const char *s = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
	for (int i = 0; s && TYPES[i]; i++)
		if (!strcmp(TYPES[i], s))
			type = i;
	if (t != LUA_TNIL && type < 0)
		drr_diag_add(ld->d, ld->file,
			     drr_rb_find_field(drr_rb_src, line, drr_rb_limit, "type"),
			     "%s: type must be one of string, number, integer, boolean, duration, "
			     "url, not %s%s%s",
			     what, s ? "'" : "a ", s ? s : lua_typename(L, t), s ? "'" : "");
	lua_pop(L, 1);
	return type;
}

/* ---- declarations ------------------------------------------------------------- */

static int cmp_param(const void *a, const void *b)
{
	return strcmp(((const struct drr_param *)a)->name, ((const struct drr_param *)b)->name);
}

void drr_rb_parse_params(struct ld *ld, int idx, int line)
{
	lua_State *L = ld->L;
	struct drr_runbook *rb = ld->rb;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int val = lua_gettop(L);
		if (lua_type(L, -2) != LUA_TSTRING) {
			drr_diag_add(ld->d, ld->file, line, "runbook: params keys must be names");
			lua_pop(L, 1);
			continue;
		}
		const char *name = lua_tostring(L, -2);
		int pline = drr_rb_find_field(drr_rb_src, line, drr_rb_limit, name);
		rb->params =
			drr_xrealloc(rb->params, (size_t)(rb->nparams + 1) * sizeof *rb->params);
		struct drr_param *p = &rb->params[rb->nparams++];
		memset(p, 0, sizeof *p);
		p->name = drr_xstrdup(name);
		p->type = DRR_PT_STRING;
		char what[160];
		snprintf(what, sizeof what, "param '%s'", name);
		int dflt = 0, type = -1; /* the default's stack index; the declared type */
		if (lua_istable(L, val)) {
			drr_rb_check_fields(ld, val, PARAM_FIELDS, pline, drr_rb_limit, what);
			p->doc = drr_rb_get_string(ld, val, "doc", pline, 0, what);
			lua_getfield(L, val, "required");
			p->required = lua_toboolean(L, -1);
			lua_pop(L, 1);
			type = declared_type(ld, val, pline, what);
			if (lua_getfield(L, val, "default") != LUA_TNIL)
				dflt = lua_gettop(L);
		} else {
			dflt = val; /* the shorthand: name = default */
		}
		int t = dflt ? lua_type(L, dflt) : LUA_TNIL;
		p->has_default = dflt != 0;
		if (type >= 0)
			p->type = type;
		else if (t == LUA_TNUMBER)
			p->type = DRR_PT_NUMBER;
		else if (t == LUA_TBOOLEAN)
			p->type = DRR_PT_BOOLEAN;
		if (dflt && t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
			drr_diag_add(ld->d, ld->file, pline,
				     dflt != val
					     ? "%s: default must be a string, number or boolean"
					     : "%s: expected { type = ..., default = ..., required "
					       "= ..., doc = ... }",
				     what);
		else if (dflt && typed_value(L, dflt, p->type) < 0)
			bad_default(ld, p, dflt,
				    dflt == val ? pline
						: drr_rb_find_field(drr_rb_src, pline, drr_rb_limit,
								    "default"));
		lua_settop(L, val - 1); /* the key, for lua_next */
	}
	if (rb->nparams > 1)
		qsort(rb->params, (size_t)rb->nparams, sizeof *rb->params, cmp_param);
}

/* ---- values for a run ----------------------------------------------------------- */

/* A --param value as the param's type, pushed; -1 (nothing pushed) with
 * err set when it is not one. */
static int param_value(lua_State *L, const struct drr_param *p, const char *v, char *err,
		       size_t errlen)
{
	int ok = 1;
	if (p->type == DRR_PT_NUMBER || p->type == DRR_PT_INTEGER) {
		ok = lua_stringtonumber(L, v) != 0;
		if (ok && p->type == DRR_PT_INTEGER) {
			int isint = 0;
			lua_Integer n = lua_tointegerx(L, -1, &isint);
			lua_pop(L, 1);
			if ((ok = isint))
				lua_pushinteger(L, n);
		}
	} else if (p->type == DRR_PT_BOOLEAN) {
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
			lua_pushboolean(L, 1);
		else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
			lua_pushboolean(L, 0);
		else
			ok = 0;
	} else if ((p->type == DRR_PT_DURATION && !duration_ok(v)) ||
		   (p->type == DRR_PT_URL && !url_ok(v))) {
		ok = 0;
	} else {
		lua_pushstring(L, v);
	}
	if (!ok)
		snprintf(err, errlen, "param '%s' must be %s, got '%s'", p->name,
			 type_phrase(p->type), v);
	return ok ? 0 : -1;
}

int drr_rb_bind_params(lua_State *L, struct drr_runbook *rb, const struct drr_opts *o,
		       struct drr_diag *d)
{
	const char *file = rb->path;
	int pline = drr_rb_find_field(drr_rb_src, rb->line, drr_rb_limit, "params");
	if (lua_getfield(L, LUA_REGISTRYINDEX, K_RB) != LUA_TTABLE)
		return -1; /* no runbook{}: already reported */
	int rbt = lua_gettop(L);
	lua_getfield(L, rbt, "params");
	int decl = lua_gettop(L);
	lua_newtable(L);
	int pt = lua_gettop(L);
	for (int i = 0; i < rb->nparams; i++) {
		struct drr_param *p = &rb->params[i];
		lua_getfield(L, decl, p->name);
		if (lua_istable(L, -1))
			lua_getfield(L, -1, "default");
		else
			lua_pushvalue(L, -1);
		/* converted (3.0 -> 3 for an integer); a wrong one was reported */
		if (typed_value(L, -1, p->type) == 0)
			lua_setfield(L, pt, p->name);
		lua_pop(L, 2);
	}
	for (int i = 0; i < o->nparam_kv; i++) {
		const char *kv = o->param_kv[i];
		const char *eq = strchr(kv, '=');
		if (!eq || eq == kv) {
			drr_diag_add(d, file, 0, "--param '%s' must look like name=value", kv);
			continue;
		}
		lua_pushlstring(L, kv,
				(size_t)(eq - kv)); /* Lua owns it: the calls below may raise */
		const char *k = lua_tostring(L, -1);
		int kidx = lua_gettop(L);
		struct drr_param *p = NULL;
		for (int j = 0; j < rb->nparams; j++)
			if (!strcmp(rb->params[j].name, k))
				p = &rb->params[j];
		if (!p) {
			struct drr_buf names = { 0 };
			for (int j = 0; j < rb->nparams; j++)
				drr_buf_addf(&names, "%s%s", j ? ", " : "", rb->params[j].name);
			drr_diag_add(d, file, pline, "unknown param '%s' (declared: %s)", k,
				     names.data ? names.data : "none");
			drr_buf_free(&names);
		} else {
			char err[256];
			if (param_value(L, p, eq + 1, err, sizeof err) < 0)
				drr_diag_add(
					d, file,
					drr_rb_find_field(drr_rb_src, pline, drr_rb_limit, p->name),
					"%s", err);
			else
				lua_setfield(L, pt, k);
		}
		lua_remove(L, kidx);
	}
	for (int i = 0; i < rb->nparams; i++) {
		struct drr_param *p = &rb->params[i];
		lua_getfield(L, pt, p->name);
		if (lua_isnil(L, -1) && (p->required || !p->has_default))
			drr_diag_add(d, file,
				     drr_rb_find_field(drr_rb_src, pline, drr_rb_limit, p->name),
				     "missing required param '%s' (pass --param %s=VALUE)", p->name,
				     p->name);
		lua_pop(L, 1);
	}
	lua_pushvalue(L, pt);
	lua_setfield(L, LUA_REGISTRYINDEX, K_PARAMS);
	rb->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 2);
	return 0;
}

void drr_rb_params_begin(struct drr_runbook *rb, const struct drr_opts *o, struct drr_diag *d)
{
	P.rb = rb;
	P.o = o;
	P.d = d;
}

int drr_rb_params_declared(lua_State *L, int line)
{
	static const struct drr_opts none;
	struct drr_runbook *rb = P.rb;
	if (!rb)
		return 0;
	struct ld ld = { .rb = rb, .d = P.d, .file = rb->path, .L = L };
	rb->line = line;
	drr_rb_limit = 0; /* the steps that end runbook{}'s fields are not declared yet */
	int top = lua_gettop(L);
	int ty = lua_getfield(L, LUA_REGISTRYINDEX, K_RB);
	if (ty == LUA_TTABLE)
		ty = lua_getfield(L, -1, "params");
	if (ty == LUA_TTABLE)
		drr_rb_parse_params(&ld, lua_gettop(L),
				    drr_rb_find_field(drr_rb_src, line, 0, "params"));
	else if (ty != LUA_TNIL)
		drr_diag_add(P.d, rb->path, line, "runbook: params must be a table");
	lua_settop(L, top);
	drr_rb_bind_params(L, rb, P.o ? P.o : &none, P.d);
	P.rb = NULL; /* once */
	return 0;
}

/* ---- the global `params`: read-only, readable once runbook{} ran ------------- */

static int l_params_index(lua_State *L)
{
	if (lua_getfield(L, LUA_REGISTRYINDEX, K_PARAMS) != LUA_TTABLE)
		return luaL_error(L, "params are known once runbook{} declares them: read "
				     "params after runbook { ... }");
	lua_pushvalue(L, 2);
	lua_rawget(L, -2);
	return 1;
}

static int l_params_newindex(lua_State *L)
{
	const char *k = luaL_tolstring(L, 2, NULL);
	return luaL_error(L, "params is read-only (params.%s): pass --param %s=VALUE", k, k);
}

static int l_params_next(lua_State *L)
{
	lua_settop(L, 2);
	return lua_next(L, 1) ? 2 : 0;
}

static int l_params_pairs(lua_State *L)
{
	lua_pushcfunction(L, l_params_next);
	if (lua_getfield(L, LUA_REGISTRYINDEX, K_PARAMS) != LUA_TTABLE)
		return luaL_error(L, "params are known once runbook{} declares them");
	lua_pushnil(L);
	return 3;
}

void drr_rb_push_params(lua_State *L)
{
	lua_newtable(L);
	lua_createtable(L, 0, 4);
	lua_pushcfunction(L, l_params_index);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, l_params_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_pushcfunction(L, l_params_pairs);
	lua_setfield(L, -2, "__pairs");
	lua_pushliteral(L, "params is read-only");
	lua_setfield(L, -2, "__metatable");
	lua_setmetatable(L, -2);
}
