/*
 * lib_drrun.c - "drrun.core": the engine primitives the stdlib's `drrun`
 * table is built on: sleep (a timer op), parallel (child tasks with a
 * concurrency limit, results in order), duration parsing and the version.
 */
#include "lua/task.h"

#include <stdlib.h>
#include <string.h>

/* ---- drrun.sleep(duration) --------------------------------------------- */

struct sleep_op {
	struct drr_op op;
	uv_timer_t timer;
};

static void sleep_closed(uv_handle_t *h)
{
	free(h->data);
}

static void sleep_fired(uv_timer_t *h)
{
	struct sleep_op *s = h->data;
	drr_task_wake(s->op.task); /* the continuation (or a cancel) closes it */
}

static void sleep_cancel(struct drr_op *op)
{
	struct sleep_op *s = (struct sleep_op *)op;
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, sleep_closed);
}

static int sleep_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)L, (void)status;
	struct sleep_op *s = (struct sleep_op *)ctx;
	uv_close((uv_handle_t *)&s->timer, sleep_closed);
	return 0;
}

/* Durations are strings ("5s"); seconds as a number are accepted too. */
static double check_duration(lua_State *L, int arg)
{
	const char *why;
	if (lua_type(L, arg) == LUA_TNUMBER) {
		double d = lua_tonumber(L, arg);
		if (drr_duration_check(d, 1, &why) < 0)
			luaL_argerror(L, arg, lua_pushfstring(L, "the duration %s", why));
		return d;
	}
	const char *s = luaL_checkstring(L, arg);
	double d;
	if (drr_duration_parse(s, &d) < 0)
		luaL_argerror(L, arg,
			      lua_pushfstring(L,
					      "invalid duration '%s' (use e.g. "
					      "\"250ms\", \"5s\", \"1h30m\")",
					      s));
	return d;
}

static int l_sleep(lua_State *L)
{
	double d = check_duration(L, 1);
	drr_task_check(L, "drrun.sleep");
	struct sleep_op *s = drr_xcalloc(1, sizeof *s);
	s->op.cancel = sleep_cancel;
	uv_timer_init(drr_eng.loop, &s->timer);
	s->timer.data = s;
	uv_timer_start(&s->timer, sleep_fired, (uint64_t)(d * 1000 + 0.5), 0);
	return drr_task_yield(L, &s->op, (lua_KContext)s, sleep_k);
}

/* ---- drrun.parallel(list, fn, { limit = n }) ------------------------------ */

struct par_op {
	struct drr_op op;
	struct drr_task *parent;
	int list_ref, fn_ref, results_ref;
	int n, next, running, limit, aborted;
	char *error;
	struct drr_task **kids; /* running children, indexed by item - 1 */
};

static void par_free(struct par_op *p)
{
	lua_State *L = drr_eng.L;
	luaL_unref(L, LUA_REGISTRYINDEX, p->list_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, p->fn_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, p->results_ref);
	free(p->kids);
	free(p->error);
	free(p);
}

static void par_child_done(struct drr_task *t, int status, void *ud);

static void par_fill(struct par_op *p)
{
	lua_State *L = drr_eng.L;
	while (!p->error && p->next < p->n && p->running < p->limit) {
		int i = ++p->next;
		lua_rawgeti(L, LUA_REGISTRYINDEX, p->fn_ref);
		lua_rawgeti(L, LUA_REGISTRYINDEX, p->list_ref);
		lua_rawgeti(L, -1, i);
		lua_remove(L, -2);
		lua_pushinteger(L, i);
		struct drr_task *t = drr_task_spawn(L, 2, par_child_done, p);
		t->parent = p->parent;
		t->deadline = p->parent->deadline;
		t->owner = (void *)(intptr_t)i;
		p->kids[i - 1] = t;
		p->running++;
	}
}

static void par_child_done(struct drr_task *t, int status, void *ud)
{
	struct par_op *p = ud;
	int i = (int)(intptr_t)t->owner;
	lua_State *L = drr_eng.L;
	p->kids[i - 1] = NULL;
	p->running--;
	if (status == DRR_TASK_OK) {
		if (t->result_ref != LUA_NOREF) {
			lua_rawgeti(L, LUA_REGISTRYINDEX, p->results_ref);
			lua_rawgeti(L, LUA_REGISTRYINDEX, t->result_ref);
			lua_rawseti(L, -2, i);
			lua_pop(L, 1);
		}
	} else if (status != DRR_TASK_CANCELLED && !p->error) {
		p->aborted = status == DRR_TASK_ABORT;
		p->error = p->aborted ? drr_xstrdup(t->error ? t->error : "aborted")
				      : drr_xasprintf("parallel item %d: %s", i,
						      t->error ? t->error : "failed");
		/* fail fast: stop the siblings */
		for (int k = 0; k < p->n; k++)
			if (p->kids[k])
				drr_task_cancel(p->kids[k], "cancelled: a sibling failed");
	}
	drr_task_free(t);
	if (!p->op.task)
		return; /* the parent was cancelled; it frees p */
	par_fill(p);
	if (p->running == 0 && (p->error || p->next >= p->n))
		drr_task_wake(p->op.task);
}

static void par_cancel(struct drr_op *op)
{
	struct par_op *p = (struct par_op *)op;
	for (int k = 0; k < p->n; k++)
		if (p->kids[k])
			drr_task_cancel(p->kids[k], "cancelled");
	par_free(p);
}

static int par_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct par_op *p = (struct par_op *)ctx;
	if (p->error) {
		if (p->aborted)
			drr_push_abort(L, p->error);
		else
			lua_pushstring(L, p->error);
		par_free(p);
		return lua_error(L);
	}
	lua_rawgeti(L, LUA_REGISTRYINDEX, p->results_ref);
	par_free(p);
	return 1;
}

static int l_parallel(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_Integer limit = 32;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_getfield(L, 3, "limit");
		if (!lua_isnil(L, -1))
			limit = luaL_checkinteger(L, -1);
		lua_pop(L, 1);
		luaL_argcheck(L, limit >= 1, 3, "limit must be at least 1");
	}
	struct drr_task *self = drr_task_check(L, "drrun.parallel");
	lua_Integer n = luaL_len(L, 1);
	lua_createtable(L, (int)n, 0);
	if (n == 0)
		return 1;
	struct par_op *p = drr_xcalloc(1, sizeof *p);
	p->op.cancel = par_cancel;
	p->parent = self;
	p->n = (int)n;
	p->limit = limit > 100000 ? 100000 : (int)limit;
	p->kids = drr_xcalloc((size_t)n, sizeof *p->kids);
	p->results_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, 2);
	p->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua_pushvalue(L, 1);
	p->list_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	par_fill(p);
	return drr_task_yield(L, &p->op, (lua_KContext)p, par_k);
}

/* ---- small helpers ------------------------------------------------------- */

static int l_duration(lua_State *L)
{
	const char *s = luaL_checkstring(L, 1);
	double d;
	if (drr_duration_parse(s, &d) < 0)
		return drr_push_fail(L, "invalid", "invalid duration '%s'", s);
	lua_pushnumber(L, d);
	return 1;
}

/* drrun.core.log(msg): a line in the calling step's log (stdlib helpers
 * use it; runbooks have ctx.log). */
static int l_log(lua_State *L)
{
	const char *msg = luaL_checkstring(L, 1);
	if (drr_task_current(L))
		drr_task_log(L, "%s", msg);
	return 0;
}

/* drrun.core.secret(name): a declared secret's value, or nil.  Lets modules
 * take tokens from conventional names (HEROKU_API_KEY, ...) only when the
 * runbook declared them, so they are redacted everywhere. */
static int l_secret(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	const char *v = drr_eng.secret ? drr_eng.secret(name) : NULL;
	if (v)
		lua_pushstring(L, v);
	else
		lua_pushnil(L);
	return 1;
}

/* drrun.core.dry_run(): whether this run only says what it would do. */
static int l_dry_run(lua_State *L)
{
	lua_pushboolean(L, drr_eng.dry_run);
	return 1;
}

/* drrun.core.run_id(): the id of the run in progress (nil outside one), for
 * modules that derive idempotency tokens from it. */
static int l_run_id(lua_State *L)
{
	if (drr_eng.run_id)
		lua_pushstring(L, drr_eng.run_id);
	else
		lua_pushnil(L);
	return 1;
}

/* drrun.core.redact(value): hide value everywhere from now on, like a
 * declared secret (for a token passed in as an option). */
static int l_redact(lua_State *L)
{
	size_t n;
	const char *v = luaL_checklstring(L, 1, &n);
	if (n >= 4) /* shorter strings would blank out ordinary text */
		drr_redact_add(v);
	return 0;
}

static int l_now(lua_State *L)
{
	lua_pushnumber(L, (double)drr_now_us() / 1e6);
	return 1;
}

int luaopen_drrun_core(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "sleep", l_sleep },	  { "parallel", l_parallel }, { "duration", l_duration },
		{ "now", l_now },	  { "log", l_log },	      { "secret", l_secret },
		{ "dry_run", l_dry_run }, { "run_id", l_run_id },     { "redact", l_redact },
		{ NULL, NULL },
	};
	luaL_newlib(L, fns);
	lua_pushliteral(L, DRRUN_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
