/*
 * loop.c - tasks: Lua coroutines driven by the libuv loop.
 *
 * The model is Nmap's NSE: a C primitive starts its I/O, records a
 * struct drr_op on the task and yields (lua_yieldk).  A completion callback
 * only records the result and calls drr_task_wake(); the engine's idle
 * handle then resumes every ready task at the top of the loop, and the
 * primitive's continuation pushes the result.  Every task can be cancelled:
 * its op is told to release its handles, and the coroutine is closed so its
 * <close> variables run.  A count hook bounds the CPU a task may spend
 * between yields, so a busy loop cannot freeze the run past its deadline.
 */
#include "lua/task.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOOK_COUNT 10000

struct drr_engine drr_eng;

uv_loop_t *drr_loop(void)
{
	return drr_eng.loop;
}

lua_State *drr_lua_main(void)
{
	return drr_eng.L;
}

int drr_dry_run(void)
{
	return drr_eng.dry_run;
}

void drr_task_env(lua_State *L)
{
	struct drr_task *t = drr_task_current(L);
	while (t && t->parent)
		t = t->parent;
	int ref = t && drr_eng.exec_env ? drr_eng.exec_env(t) : LUA_NOREF;
	if (ref == LUA_NOREF)
		lua_pushnil(L);
	else
		lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
}

static void on_idle(uv_idle_t *h);
static void finish(struct drr_task *t, int status);
static void unwatch_signals(void);

void drr_engine_init(lua_State *L, uv_loop_t *loop)
{
	memset(&drr_eng, 0, sizeof drr_eng);
	drr_eng.L = L;
	drr_eng.loop = loop;
	drr_eng.string_format_ref = LUA_NOREF;
	uv_idle_init(loop, &drr_eng.idle);
	uv_check_init(loop, &drr_eng.check);
	uv_unref((uv_handle_t *)&drr_eng.check);
	drr_vclock_attach(loop);
}

struct hook {
	void (*fn)(void *);
	void *ud;
	struct hook *next;
};
static struct hook *hooks;

void drr_engine_at_shutdown(void (*fn)(void *ud), void *ud)
{
	struct hook *h = drr_xmalloc(sizeof *h);
	h->fn = fn;
	h->ud = ud;
	h->next = hooks;
	hooks = h;
}

void drr_engine_shutdown(void)
{
	while (hooks) {
		struct hook *h = hooks;
		hooks = h->next;
		h->fn(h->ud);
		free(h);
	}
	unwatch_signals();
	if (drr_eng.loop && !uv_is_closing((uv_handle_t *)&drr_eng.check))
		uv_close((uv_handle_t *)&drr_eng.check, NULL);
	drr_vclock_detach();
}

void drr_engine_kick(void)
{
	if (!uv_is_active((uv_handle_t *)&drr_eng.idle))
		uv_idle_start(&drr_eng.idle, on_idle);
}

static void **slot(lua_State *L)
{
	return (void **)lua_getextraspace(L);
}

struct drr_task *drr_task_current(lua_State *L)
{
	return *slot(L);
}

struct drr_task *drr_task_check(lua_State *L, const char *what)
{
	struct drr_task *t = drr_task_current(L);
	if (!t)
		luaL_error(L, "%s can only be called inside a step's run or rollback function",
			   what);
	if (!lua_isyieldable(L))
		luaL_error(L,
			   "%s cannot be called here (inside a metamethod, iterator or "
			   "<close> handler)",
			   what);
	/* cancelled while it ran (the journal died, a sibling failed): no new
	 * work may start, whatever the step does with the error */
	if (t->cancel_why)
		luaL_error(L, "%s: %s", what, t->cancel_why);
	return t;
}

/* ---- signals: noticed even while Lua computes ----------------------------- */

/* The scheduler's libuv signal watchers only run when the loop gets
 * control back.  So that a step that computes without yielding still
 * notices Ctrl-C and SIGTERM, drr_engine_watch_signals() wraps libuv's
 * handler: ours counts the signal, then forwards it.  The CPU hook parks
 * the computing task (a yield with no op) when the count moved; the loop
 * then delivers the signal to the scheduler, which cancels what it stops,
 * and a check handle re-queues the parked tasks it did not. */
static volatile sig_atomic_t sig_caught;
static sig_atomic_t sig_seen; /* caught signals the loop has delivered */
static const int watched[] = { SIGINT, SIGTERM };
static struct sigaction sig_prev[2];
static int sig_wrapped;

static void sig_wrapper(int sig, siginfo_t *info, void *uctx)
{
	sig_caught++;
	for (int i = 0; i < 2; i++) {
		if (watched[i] != sig)
			continue;
		if (sig_prev[i].sa_flags & SA_SIGINFO)
			sig_prev[i].sa_sigaction(sig, info, uctx);
		else if (sig_prev[i].sa_handler != SIG_DFL && sig_prev[i].sa_handler != SIG_IGN)
			sig_prev[i].sa_handler(sig);
	}
}

void drr_engine_watch_signals(void)
{
	for (int i = 0; i < 2; i++) {
		struct sigaction cur;
		if (sigaction(watched[i], NULL, &cur) < 0 || cur.sa_sigaction == sig_wrapper)
			continue;
		if (!(cur.sa_flags & SA_SIGINFO) &&
		    (cur.sa_handler == SIG_DFL || cur.sa_handler == SIG_IGN))
			continue; /* nobody handles it: the default action is the stop */
		struct sigaction sa = cur;
		sa.sa_sigaction = sig_wrapper;
		sa.sa_flags |= SA_SIGINFO;
		sig_prev[i] = cur;
		sigaction(watched[i], &sa, NULL);
		sig_wrapped = 1;
	}
}

/* Put libuv's own handlers back (the loop that owns them is ending). */
static void unwatch_signals(void)
{
	if (!sig_wrapped)
		return;
	for (int i = 0; i < 2; i++) {
		struct sigaction cur;
		if (sigaction(watched[i], NULL, &cur) == 0 && cur.sa_sigaction == sig_wrapper)
			sigaction(watched[i], &sig_prev[i], NULL);
	}
	sig_wrapped = 0;
}

int drr_signal_count(void)
{
	return (int)sig_caught;
}

static struct drr_task *parked_head;
static sig_atomic_t park_snapshot;

/* After the loop's poll, every signal counted before a task parked has
 * been delivered: resume the parked tasks the scheduler did not cancel. */
static void on_check(uv_check_t *h)
{
	uv_check_stop(h);
	if (sig_seen < park_snapshot)
		sig_seen = park_snapshot;
	while (parked_head) {
		struct drr_task *t = parked_head;
		parked_head = t->next_parked;
		t->next_parked = NULL;
		t->parked = 0;
		if (t->finished)
			continue;
		if (t->sig_doom) { /* it ended; the scheduler did not cancel it */
			t->error = drr_xstrdup(t->doom);
			finish(t, DRR_TASK_ERROR);
		} else {
			drr_task_wake(t);
		}
	}
}

static void park(struct drr_task *t)
{
	t->parked = 1;
	t->next_parked = parked_head;
	parked_head = t;
	if (park_snapshot < sig_caught)
		park_snapshot = sig_caught;
	uv_check_start(&drr_eng.check, on_check);
}

static void unpark(struct drr_task *t)
{
	for (struct drr_task **pp = &parked_head; *pp; pp = &(*pp)->next_parked)
		if (*pp == t) {
			*pp = t->next_parked;
			break;
		}
	t->next_parked = NULL;
	t->parked = 0;
}

/* ---- the CPU hook -------------------------------------------------------------- */

/* Raise msg (with the running line) from a hook, and make the hook fire on
 * every line and instruction from now on, so that pcall cannot swallow it:
 * each handler that catches it raises again at its next instruction (as
 * Redis's script kill does). */
static int hook_raise(lua_State *L, lua_Hook hook, const char *msg, int where_first)
{
	lua_sethook(L, hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
	lua_Debug ar;
	if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
		if (where_first) /* diagnostics: "file:line: message" */
			lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
		else /* a step's error starts with its token ("timeout: ...") */
			lua_pushfstring(L, "%s (at %s:%d)", msg, ar.short_src, ar.currentline);
	} else {
		lua_pushstring(L, msg);
	}
	return lua_error(L);
}

static void cpu_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	struct drr_task *t = drr_task_current(L);
	if (!t)
		return;
	if (t->cancel_why) /* cancelled while it computes: unwound when it gives back */
		hook_raise(L, cpu_hook, t->cancel_why, 0);
	if (!t->doom) {
		double now = drr_mono();
		if (t->deadline > 0 && now > t->deadline)
			t->doom = drr_xstrdup(
				"timeout: deadline passed while the step was computing");
		else if (t->cpu_budget > 0 && now - t->resumed_at > t->cpu_budget)
			t->doom =
				drr_xasprintf("step computed for %ds without yielding (busy loop?)",
					      (int)t->cpu_budget);
	}
	if (t->doom)
		hook_raise(L, cpu_hook, t->doom, 0);
	if (sig_caught != sig_seen && !t->cancelling) {
		if (lua_isyieldable(L)) {
			t->parked = 1;
			lua_yield(L, 0);
			return;
		}
		/* inside a C boundary (a sort comparator, a gsub callback): it
		 * cannot yield, so it ends; resume() parks what is left of it */
		t->doom = drr_xstrdup("interrupted");
		t->sig_doom = 1;
		hook_raise(L, cpu_hook, t->doom, 0);
	}
}

/* ---- bounded calls on the main thread -------------------------------------------- */

static struct {
	int active, doomed, sig0, cpu;
	double limit; /* deadline: monotonic or process CPU seconds */
	const char *msg;
} mb;

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void main_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	if (!mb.doomed) {
		if ((mb.cpu ? cpu_now() : drr_mono()) > mb.limit)
			mb.doomed = 1;
		else if (drr_signal_count() != mb.sig0)
			mb.doomed = 1, mb.msg = "interrupted by a signal";
		else
			return;
	}
	hook_raise(L, main_hook, mb.msg, 1);
}

static int bounded_raw(lua_State *L, int nargs, int nres, int msgh, double budget, int cpu,
		       const char *msg)
{
	if (mb.active) /* nested: the outer bound holds */
		return lua_pcall(L, nargs, nres, msgh);
	mb.active = 1;
	mb.doomed = 0;
	mb.cpu = cpu;
	mb.limit = (cpu ? cpu_now() : drr_mono()) + budget;
	mb.msg = msg;
	mb.sig0 = drr_signal_count();
	lua_sethook(L, main_hook, LUA_MASKCOUNT, HOOK_COUNT);
	int rc = lua_pcall(L, nargs, nres, msgh);
	lua_sethook(L, NULL, 0, 0);
	mb.active = 0;
	return rc;
}

static int tostring_k(lua_State *L)
{
	luaL_tolstring(L, 1, NULL);
	return 1;
}

const char *drr_lua_safe_tostring(lua_State *L, int idx)
{
	idx = lua_absindex(L, idx);
	int t = lua_type(L, idx);
	if (t == LUA_TSTRING || t == LUA_TNUMBER) {
		lua_pushvalue(L, idx);
		return lua_tostring(L, -1);
	}
	if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL) {
		lua_pop(L, 1);
		lua_pushcfunction(L, tostring_k);
		lua_pushvalue(L, idx);
		if (bounded_raw(L, 1, 1, 0, 1.0, 0, "__tostring ran for more than 1s") == LUA_OK &&
		    lua_type(L, -1) == LUA_TSTRING)
			return lua_tostring(L, -1);
		lua_pop(L, 1);
		lua_pushfstring(L, "(error object is a %s value; its __tostring failed)",
				luaL_typename(L, idx));
		return lua_tostring(L, -1);
	}
	lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
	return lua_tostring(L, -1);
}

int drr_lua_pcall_bounded(lua_State *L, int nargs, int nres, int msgh, double budget, int cpu,
			  const char *msg)
{
	int rc = bounded_raw(L, nargs, nres, msgh, budget, cpu, msg);
	if (rc != LUA_OK && lua_type(L, -1) != LUA_TSTRING) {
		drr_lua_safe_tostring(L, -1);
		lua_remove(L, -2);
	}
	return rc;
}

static void enqueue(struct drr_task *t)
{
	if (t->ready || t->finished)
		return;
	t->ready = 1;
	t->next_ready = NULL;
	if (drr_eng.ready_tail)
		drr_eng.ready_tail->next_ready = t;
	else
		drr_eng.ready_head = t;
	drr_eng.ready_tail = t;
	drr_engine_kick();
}

static void dequeue(struct drr_task *t)
{
	if (!t->ready)
		return;
	struct drr_task **pp = &drr_eng.ready_head, *prev = NULL;
	while (*pp && *pp != t) {
		prev = *pp;
		pp = &(*pp)->next_ready;
	}
	if (*pp) {
		*pp = t->next_ready;
		if (drr_eng.ready_tail == t)
			drr_eng.ready_tail = prev;
	}
	t->ready = 0;
	t->next_ready = NULL;
}

struct drr_task *drr_task_spawn(lua_State *L, int nargs, drr_task_done_fn done, void *ud)
{
	struct drr_task *t = drr_xcalloc(1, sizeof *t);
	t->co = lua_newthread(L);
	t->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	t->result_ref = LUA_NOREF;
	t->done = done;
	t->ud = ud;
	t->nargs = nargs;
	t->cpu_budget = 30;
	*slot(t->co) = t;
	lua_xmove(L, t->co, nargs + 1);
	lua_sethook(t->co, cpu_hook, LUA_MASKCOUNT, HOOK_COUNT);
	enqueue(t);
	return t;
}

int drr_task_yield(lua_State *L, struct drr_op *op, lua_KContext ctx, lua_KFunction k)
{
	struct drr_task *t = drr_task_current(L);
	t->op = op;
	op->task = t;
	return lua_yieldk(L, 0, ctx, k);
}

/* The op stays attached until the task runs: if the task is cancelled
 * before its continuation could consume the result, the op's cancel still
 * runs and releases it. */
void drr_task_wake(struct drr_task *t)
{
	if (!t)
		return;
	enqueue(t);
}

static void finish(struct drr_task *t, int status)
{
	t->finished = 1;
	dequeue(t);
	if (t->parked)
		unpark(t);
	/* close pending to-be-closed variables (error or cancel paths), under
	 * the CPU hook's budget but past the deadline that may have ended it;
	 * a task out of budget (doom) runs none of them */
	if (lua_status(t->co) != LUA_OK || status != DRR_TASK_OK) {
		t->deadline = 0;
		t->resumed_at = drr_mono();
		t->cancelling = 1;
		lua_resetthread(t->co);
	}
	lua_sethook(t->co, NULL, 0, 0);
	t->done(t, status, t->ud);
}

/* "file:line:" of the innermost Lua function on co's (dead) stack, or "". */
static void push_where(lua_State *co, lua_State *L)
{
	lua_Debug ar;
	for (int level = 0; lua_getstack(co, level, &ar); level++) {
		if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
			lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
			return;
		}
	}
	lua_pushliteral(L, "");
}

/* The error on top of co, as text.  A non-string error object is turned
 * into text on the main thread, protected and bounded, with the line that
 * raised it: its __tostring may raise or loop. */
static char *error_text(lua_State *co)
{
	if (drr_is_abort(co, -1)) {
		lua_getfield(co, -1, "reason");
		char *s = drr_xstrdup(lua_isstring(co, -1) ? lua_tostring(co, -1) : "aborted");
		lua_pop(co, 1);
		return s;
	}
	if (lua_type(co, -1) == LUA_TSTRING)
		return drr_xstrdup(lua_tostring(co, -1));
	lua_State *L = drr_eng.L;
	int top = lua_gettop(L);
	push_where(co, L);
	lua_pushvalue(co, -1);
	lua_xmove(co, L, 1);
	drr_lua_safe_tostring(L, -1);
	lua_remove(L, -2);
	lua_concat(L, 2);
	char *s = drr_xstrdup(lua_tostring(L, -1));
	lua_settop(L, top);
	return s;
}

static void unwind(struct drr_task *t);

static void resume(struct drr_task *t)
{
	int nres = 0;
	t->resumed_at = drr_mono();
	int nargs = t->nargs;
	t->nargs = 0;
	t->op = NULL; /* the continuation consumes the op's result now */
	drr_eng.lua_depth++;
	int st = lua_resume(t->co, drr_eng.L, nargs, &nres);
	drr_eng.lua_depth--;
	if (t->cancel_why) { /* cancelled while it ran: whatever it did next */
		if (st == LUA_YIELD)
			lua_pop(t->co, nres);
		unwind(t);
		return;
	}
	if (st == LUA_YIELD) {
		lua_pop(t->co, nres);
		if (t->parked) { /* the CPU hook saw a signal: wait for the loop */
			park(t);
			return;
		}
		if (!t->op) {
			t->error = drr_xstrdup("coroutine yielded outside a drrun primitive");
			finish(t, DRR_TASK_ERROR);
		}
		return;
	}
	if (st == LUA_OK) {
		if (nres > 0) {
			lua_settop(t->co, lua_gettop(t->co) - nres + 1);
			t->result_ref = luaL_ref(t->co, LUA_REGISTRYINDEX);
		}
		finish(t, DRR_TASK_OK);
		return;
	}
	if (t->sig_doom) { /* ended by a signal: the scheduler decides */
		park(t);
		return;
	}
	int abort = drr_is_abort(t->co, -1);
	t->error = error_text(t->co);
	finish(t, abort ? DRR_TASK_ABORT : DRR_TASK_ERROR);
}

static void on_idle(uv_idle_t *h)
{
	uv_idle_stop(h);
	while (drr_eng.ready_head) {
		struct drr_task *t = drr_eng.ready_head;
		drr_eng.ready_head = t->next_ready;
		if (!drr_eng.ready_head)
			drr_eng.ready_tail = NULL;
		t->ready = 0;
		t->next_ready = NULL;
		if (t->finished)
			continue;
		if (t->cancel_why)
			unwind(t);
		else
			resume(t);
	}
	if (drr_eng.after_pass)
		drr_eng.after_pass(drr_eng.after_ud);
}

/* Release the task's op, close its coroutine and report it cancelled.
 * Only where no Lua runs: the top of the loop or a libuv callback. */
static void unwind(struct drr_task *t)
{
	t->cancelling = 1;
	if (t->op) {
		struct drr_op *op = t->op;
		t->op = NULL;
		op->task = NULL;
		op->cancel(op);
	}
	free(t->error);
	t->error = t->cancel_why ? t->cancel_why : drr_xstrdup("cancelled");
	t->cancel_why = NULL;
	finish(t, DRR_TASK_CANCELLED);
}

void drr_task_cancel(struct drr_task *t, const char *why)
{
	if (t->finished || t->cancelling || t->cancel_why)
		return;
	t->cancel_why = drr_xstrdup(why);
	if (drr_eng.lua_depth > 0) {
		enqueue(t); /* unwound once the running Lua has given control back */
		return;
	}
	unwind(t);
}

void drr_task_free(struct drr_task *t)
{
	if (!t)
		return;
	lua_State *L = drr_eng.L;
	if (t->result_ref != LUA_NOREF)
		luaL_unref(L, LUA_REGISTRYINDEX, t->result_ref);
	*slot(t->co) = NULL;
	luaL_unref(L, LUA_REGISTRYINDEX, t->co_ref);
	free(t->error);
	free(t->cancel_why);
	free(t->doom);
	free(t);
}

/* ---- errors and logging helpers for plugins ---------------------------- */

static const char ABORT_KEY[] = "drrun.abort";

void drr_push_abort(lua_State *L, const char *reason)
{
	lua_createtable(L, 0, 1);
	lua_pushstring(L, reason);
	lua_setfield(L, -2, "reason");
	if (luaL_newmetatable(L, ABORT_KEY)) {
		lua_pushliteral(L, "drrun abort");
		lua_setfield(L, -2, "__name");
	}
	lua_setmetatable(L, -2);
}

int drr_is_abort(lua_State *L, int idx)
{
	if (!lua_istable(L, idx) || !lua_getmetatable(L, idx))
		return 0;
	luaL_getmetatable(L, ABORT_KEY);
	int r = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return r;
}

double drr_opt_duration(lua_State *L, int idx, const char *field, double dflt, const char *who)
{
	double d = dflt;
	if (idx == 0)
		return d;
	int t = lua_getfield(L, idx, field);
	const char *why;
	if (t == LUA_TSTRING) {
		if (drr_duration_parse(lua_tostring(L, -1), &d) < 0)
			luaL_error(L,
				   "%s: invalid %s '%s' (use e.g. \"250ms\", \"30s\", \"1h30m\")",
				   who, field, lua_tostring(L, -1));
	} else if (t == LUA_TNUMBER) {
		d = lua_tonumber(L, -1);
	} else if (t != LUA_TNIL) {
		luaL_error(L, "%s: %s must be a duration like \"30s\"", who, field);
	}
	/* a timeout of 0 used to mean none: there is no way to switch one off */
	if (t != LUA_TNIL && drr_duration_check(d, 0, &why) < 0)
		luaL_error(
			L,
			"%s: %s %s (it cannot be switched off: give a long one, such as \"24h\")",
			who, field, why);
	lua_pop(L, 1);
	return d;
}

int drr_push_fail(lua_State *L, const char *token, const char *fmt, ...)
{
	/* the detail is formatted into Lua-owned memory: pushing can raise */
	va_list ap, aq;
	va_start(ap, fmt);
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		n = 0;
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, (size_t)n + 1);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	luaL_pushresultsize(&b, (size_t)n);
	int detail = lua_gettop(L);
	lua_pushnil(L);
	lua_pushfstring(L, "%s: %s", token, lua_tostring(L, detail));
	lua_pushstring(L, token);
	lua_remove(L, detail);
	return 3;
}

/* Journal a line for the step L belongs to; never raises. */
static void task_vlog(lua_State *L, const char *fmt, va_list ap)
{
	char *msg = drr_xvasprintf(fmt, ap);
	struct drr_task *t = drr_task_current(L);
	while (t && t->parent)
		t = t->parent;
	if (drr_eng.log)
		drr_eng.log(t, msg);
	free(msg);
}

void drr_task_log(lua_State *L, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	task_vlog(L, fmt, ap);
	va_end(ap);
}

int drr_push_dry_run(lua_State *L, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	task_vlog(L, fmt, ap); /* nothing is held across what follows */
	va_end(ap);
	lua_createtable(L, 0, 9);
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "dry_run");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "status");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stdout");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stderr");
	lua_newtable(L);
	lua_setfield(L, -2, "headers");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "body");
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "bytes");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "sha256");
	lua_pushnumber(L, 0);
	lua_setfield(L, -2, "duration");
	return 1;
}
