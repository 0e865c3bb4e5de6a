/*
 * params.c - a runbook's params: their declarations in runbook{} (default,
 * required, doc), and their values for one run, from the defaults and
 * --param name=value.
 */
#include "runbook/runbook.h"
#include "runbook/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const PARAM_FIELDS[] = { "default", "required", "doc", NULL };

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
		p->type = LUA_TSTRING;
		char what[160];
		snprintf(what, sizeof what, "param '%s'", name);
		if (lua_istable(L, -1)) {
			int v = lua_gettop(L);
			drr_rb_check_fields(ld, v, PARAM_FIELDS, pline, drr_rb_limit, what);
			p->doc = drr_rb_get_string(ld, v, "doc", pline, 0, what);
			lua_getfield(L, v, "required");
			p->required = lua_toboolean(L, -1);
			lua_pop(L, 1);
			int t = lua_getfield(L, v, "default");
			if (t != LUA_TNIL) {
				p->has_default = 1;
				if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN)
					p->type = t;
				else
					drr_diag_add(
						ld->d, ld->file, pline,
						"%s: default must be a string, number or boolean",
						what);
			}
			lua_pop(L, 1);
		} else {
			int t = lua_type(L, -1);
			p->has_default = 1;
			if (t == LUA_TSTRING || t == LUA_TNUMBER || t == LUA_TBOOLEAN)
				p->type = t;
			else
				drr_diag_add(
					ld->d, ld->file, pline,
					"%s: expected { default = ..., required = ..., doc = ... }",
					what);
		}
		lua_pop(L, 1);
	}
	if (rb->nparams > 1)
		qsort(rb->params, (size_t)rb->nparams, sizeof *rb->params, cmp_param);
}

static int param_value(lua_State *L, const struct drr_param *p, const char *v, char *err,
		       size_t errlen)
{
	if (p->type == LUA_TNUMBER) {
		if (!lua_stringtonumber(L, v)) {
			snprintf(err, errlen, "param '%s' must be a number, got '%s'", p->name, v);
			return -1;
		}
	} else if (p->type == LUA_TBOOLEAN) {
		if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1"))
			lua_pushboolean(L, 1);
		else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0"))
			lua_pushboolean(L, 0);
		else {
			snprintf(err, errlen, "param '%s' must be true or false, got '%s'", p->name,
				 v);
			return -1;
		}
	} else {
		lua_pushstring(L, v);
	}
	return 0;
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
		lua_setfield(L, pt, p->name);
		lua_pop(L, 1);
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
	rb->params_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pop(L, 2);
	return 0;
}
