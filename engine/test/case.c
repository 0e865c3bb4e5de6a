/*
 * case.c - one case of a test file, in the child `drrun test --case N`
 * (see test.h).  Before the runbook loads, its fresh Lua state reads the
 * test file and installs the case (fakes and guards, by drrun.test's
 * _install); then the runbook is bound to the case's params, secrets and
 * env, the steps named by faults are wrapped, and the real scheduler runs
 * it under virtual time, with the approvals the case answers.
 */
#include "test/test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char K_CASE[] = "drrun.test.case";

static const char *case_file;
static int case_index;

int drr_test_load_file(lua_State *L, const char *test_file)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "drrun");
	int rc = lua_pcall(L, 1, 1, 0);
	if (rc != LUA_OK)
		return rc;
	lua_setglobal(L, "drrun");
	rc = luaL_loadfilex(L, test_file, "t");
	if (rc == LUA_OK)
		rc = lua_pcall(L, 0, 0, 0);
	return rc;
}

/* drr_runbook_preload: read the test file into the runbook's state and
 * install the case.  [-0, +0, e] */
static void case_params(lua_State *L, struct drr_opts *o);
static struct drr_opts *case_opts; /* the case's run: install_case fills its params */

static int install_case(lua_State *L)
{
	if (drr_test_load_file(L, case_file) != LUA_OK)
		return lua_error(L);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "drrun.test");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "_install");
	lua_pushinteger(L, case_index);
	lua_call(L, 1, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, K_CASE);
	lua_pop(L, 1);
	/* before the runbook's code: runbook{} binds them */
	case_params(L, case_opts);
	return 0;
}

/* Push case.spec[field].  [-0, +1, -] */
static int spec_field(lua_State *L, const char *field)
{
	lua_getfield(L, LUA_REGISTRYINDEX, K_CASE);
	lua_getfield(L, -1, "spec");
	lua_remove(L, -2);
	lua_getfield(L, -1, field);
	lua_remove(L, -2);
	return lua_type(L, -1);
}

/* params = { k = v }: "k=v" strings (malloc'd) for the binder. */
static void case_params(lua_State *L, struct drr_opts *o)
{
	if (spec_field(L, "params") == LUA_TTABLE) {
		size_t n = 0;
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			n++;
			lua_pop(L, 1);
		}
		free(o->param_kv);
		o->param_kv = drr_xcalloc(n + 1, sizeof *o->param_kv);
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
			const char *v = luaL_tolstring(L, -1, NULL);
			if (k)
				o->param_kv[o->nparam_kv++] = drr_xasprintf("%s=%s", k, v);
			lua_pop(L, 2);
		}
	}
	lua_pop(L, 1);
}

/* The declared secrets: the case's values, and nothing from the
 * environment the tests happen to run in. */
static void case_secrets(lua_State *L, const struct drr_runbook *rb)
{
	spec_field(L, "secrets");
	for (int i = 0; i < rb->nsecrets; i++) {
		const char *v = NULL;
		if (lua_istable(L, -1)) {
			lua_getfield(L, -1, rb->secrets[i]);
			v = lua_tostring(L, -1);
			if (v)
				setenv(rb->secrets[i], v, 1);
			lua_pop(L, 1);
		}
		if (!v)
			unsetenv(rb->secrets[i]);
	}
	lua_pop(L, 1);
}

static void case_options(lua_State *L, struct drr_opts *o)
{
	static char env_name[256];
	if (spec_field(L, "env") == LUA_TSTRING) {
		snprintf(env_name, sizeof env_name, "%s", lua_tostring(L, -1));
		o->env_name = env_name;
	}
	lua_pop(L, 1);
	spec_field(L, "yes");
	o->yes = lua_toboolean(L, -1);
	lua_pop(L, 1);
	spec_field(L, "dry_run");
	o->dry_run = lua_toboolean(L, -1);
	lua_pop(L, 1);
	spec_field(L, "drill");
	o->drill = lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (spec_field(L, "answers") == LUA_TTABLE)
		o->answers = drr_lua_to_json(L, -1);
	lua_pop(L, 1);
	if (spec_field(L, "trigger") == LUA_TTABLE)
		o->trigger = drr_lua_to_json(L, -1);
	lua_pop(L, 1);
}

/* Replace a step's run (or rollback) by drrun.test._wrap's fault injector
 * when the case names faults for it. */
static void wrap_ref(lua_State *L, const char *step, int ref, int rollback)
{
	if (ref == LUA_NOREF)
		return;
	lua_getglobal(L, "require");
	lua_pushliteral(L, "drrun.test");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "_wrap");
	lua_pushstring(L, step);
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	lua_pushboolean(L, rollback);
	lua_call(L, 3, 1);
	if (lua_isfunction(L, -1))
		lua_rawseti(L, LUA_REGISTRYINDEX, ref);
	else
		lua_pop(L, 1);
	lua_pop(L, 1);
}

static int wrap_faults(lua_State *L)
{
	struct drr_runbook *rb = lua_touserdata(L, 1);
	for (int i = 0; i < rb->nsteps; i++) {
		wrap_ref(L, rb->steps[i].name, rb->steps[i].run_ref, 0);
		wrap_ref(L, rb->steps[i].name, rb->steps[i].rollback_ref, 1);
	}
	return 0;
}

/* The guards' record, for the parent: <state_dir>/unfaked.txt. */
static void write_unfaked(lua_State *L, const char *state_dir)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "drrun.test");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		lua_pop(L, 1);
		return;
	}
	lua_getfield(L, -1, "_state");
	lua_getfield(L, -1, "unfaked");
	lua_Integer n = lua_istable(L, -1) ? luaL_len(L, -1) : 0;
	if (n > 0) {
		char *path = drr_xasprintf("%s/unfaked.txt", state_dir);
		FILE *f = fopen(path, "w");
		for (lua_Integer i = 1; f && i <= n; i++) {
			lua_rawgeti(L, -1, i);
			fprintf(f, "%s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
			lua_pop(L, 1);
		}
		if (f)
			fclose(f);
		free(path);
	}
	lua_pop(L, 3);
}

static void print_diag(struct drr_diag *d, const char *file)
{
	for (int i = 0; i < d->n; i++) {
		char *r = drr_redact(d->msgs[i]);
		drr_term_line(stderr, "%s", r);
		free(r);
	}
	drr_term_line(stderr, "drrun: %d error%s in %s; nothing was run", d->n,
		      d->n == 1 ? "" : "s", file);
}

int drr_test_case_run(const char *test_file, int index, const char *runbook,
		      const char *state_dir)
{
	case_file = test_file;
	case_index = index;
	drr_runbook_preload = install_case;
	drr_vclock_enable();

	struct drr_opts o;
	memset(&o, 0, sizeof o);
	o.state_dir = drr_xstrdup(state_dir);
	o.param_kv = drr_xcalloc(1, sizeof *o.param_kv);
	struct drr_diag d = { 0 };
	int rc = DRR_EXIT_INVALID;
	case_opts = &o;
	struct drr_runbook *rb = drr_runbook_load(runbook, &o, &d);
	if (rb && d.n == 0) {
		case_secrets(rb->L, rb);
		case_options(rb->L, &o);
		drr_runbook_bind(rb, &o, &d);
	}
	if (!rb || d.n > 0) {
		print_diag(&d, runbook);
		goto out;
	}
	drr_runbook_fingerprints(rb);
	lua_pushcfunction(rb->L, wrap_faults);
	lua_pushlightuserdata(rb->L, rb);
	if (lua_pcall(rb->L, 1, 0, 0) != LUA_OK) {
		drr_term_line(stderr, "drrun test: %s", lua_tostring(rb->L, -1));
		goto out;
	}
	rc = drr_sched_run(rb, &o, NULL);
	write_unfaked(rb->L, state_dir);
out:
	drr_runbook_free(rb);
	drr_diag_free(&d);
	for (int i = 0; i < o.nparam_kv; i++)
		free((char *)o.param_kv[i]);
	free(o.param_kv);
	json_decref(o.answers);
	json_decref(o.trigger);
	free((char *)o.state_dir);
	drr_redact_clear();
	return rc;
}
