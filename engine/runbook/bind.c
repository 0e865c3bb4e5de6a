/*
 * bind.c - binding a loaded runbook to one run: params (params.c), the
 * chosen env, and the declared secrets' values.
 */
#include "runbook/runbook.h"
#include "lua/task.h"
#include "runbook/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lualib.h>

/* ---- binding params, env and secrets ------------------------------------------ */

struct bind {
	struct drr_runbook *rb;
	const struct drr_opts *o;
	struct drr_diag *d;
};

/* An unset secret stops a run; plan and check (optional) only say so, so
 * a runbook can be reviewed where its credentials are not. */
static void bind_secrets(struct drr_runbook *rb, int optional, struct drr_diag *d)
{
	int sline = drr_rb_find_field(drr_rb_src, rb->line, drr_rb_limit, "secrets");
	for (int i = 0; i < rb->nsecrets; i++) {
		const char *v = getenv(rb->secrets[i]);
		if ((!v || !*v) && optional)
			drr_term_line(stderr,
				      "%s:%d: warning: secret '%s' is declared but not set in the "
				      "environment: a run would refuse to start",
				      rb->path, sline, rb->secrets[i]);
		else if (!v || !*v)
			drr_diag_add(d, rb->path, sline,
				     "secret '%s' is declared but not set in the environment",
				     rb->secrets[i]);
		else
			drr_redact_add(v);
		if (v && *v && strlen(v) < 4) /* the name only, never the value */
			fprintf(stderr,
				"drrun: warning: secret %s is shorter than 4 bytes: every "
				"occurrence of it in logs, outputs and reports becomes ***\n",
				rb->secrets[i]);
	}
}

/* [-0, +0, e]: called protected; the runbook's tables may have metamethods */
static int bind_body(lua_State *L)
{
	struct bind *bi = lua_touserdata(L, 1);
	struct drr_runbook *rb = bi->rb;
	const struct drr_opts *o = bi->o;
	struct drr_diag *d = bi->d;
	const char *file = rb->path;
	/* params were bound at load, when runbook{} was called (params.c) */
	if (lua_getfield(L, LUA_REGISTRYINDEX, K_RB) != LUA_TTABLE)
		return 0; /* no runbook{}: already reported */
	lua_pop(L, 1);

	/* environment */
	int eline = drr_rb_find_field(drr_rb_src, rb->line, drr_rb_limit, "env");
	struct drr_buf names = { 0 };
	for (int i = 0; i < rb->nenvs; i++)
		drr_buf_addf(&names, "%s%s", i ? ", " : "", rb->envs[i]);
	if (o->env_name) {
		int found = 0;
		for (int i = 0; i < rb->nenvs; i++)
			found |= !strcmp(rb->envs[i], o->env_name);
		if (!found)
			drr_diag_add(d, file, rb->nenvs ? eline : 0,
				     "unknown env '%s' (the runbook declares: %s)", o->env_name,
				     names.data ? names.data : "none");
	} else if (rb->nenvs) {
		int has_default = 0;
		for (int i = 0; i < rb->nenvs; i++)
			has_default |= !strcmp(rb->envs[i], "default");
		if (!has_default)
			drr_diag_add(
				d, file, eline,
				"the runbook declares environments (%s): choose one with --env "
				"NAME",
				names.data);
	}
	drr_buf_free(&names);
	const char *sel = o->env_name ? o->env_name : "default";
	if (rb->env_ref != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, rb->env_ref);
		lua_getfield(L, -1, sel);
		lua_remove(L, -2);
	} else {
		lua_pushnil(L);
	}
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
	}
	rb->ctxenv_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	return 0;
}

int drr_runbook_bind(struct drr_runbook *rb, const struct drr_opts *o, struct drr_diag *d)
{
	lua_State *L = rb->L;
	int before = d->n;
	bind_secrets(rb, o->secrets_optional, d); /* first: nothing below may print one */
	struct bind bi = { rb, o, d };
	lua_pushcfunction(L, drr_rb_traceback);
	lua_pushcfunction(L, bind_body);
	lua_pushlightuserdata(L, &bi);
	if (drr_rb_bounded(L, 1, 0, lua_gettop(L) - 2) != LUA_OK)
		drr_rb_diag_lua_error(L, d, rb->path, "while binding params and env: ");
	lua_pop(L, 1);
	drr_runbook_bind_drill(rb, o, d);
	return d->n - before;
}
