/*
 * lua/task.h - steps as Lua coroutines over the libuv loop: the task and
 * the engine context behind drrun/plugin.h, and the built-in module table.
 */
#ifndef DRR_TASK_H
#define DRR_TASK_H

#include "core/core.h"

/* ---- loop.c: tasks (coroutines) over the libuv loop ------------------- */

typedef void (*drr_task_done_fn)(struct drr_task *t, int status, void *ud);

enum {
	DRR_TASK_OK = 0,
	DRR_TASK_ERROR,
	DRR_TASK_ABORT,
	DRR_TASK_CANCELLED
};

struct drr_task {
	lua_State *co;
	int co_ref;
	struct drr_op *op; /* what the task waits for, or NULL */
	struct drr_task *parent;
	struct drr_task *next_ready;
	int ready, nargs, finished;
	double resumed_at, deadline; /* monotonic; deadline 0 = none */
	double cpu_budget;
	char *error;	/* message when status is ERROR/ABORT */
	int result_ref; /* first return value when OK */
	drr_task_done_fn done;
	void *ud;
	void *owner; /* the scheduler's per-task data (struct drr_stepstate *) */
	int cancelling;
	char *cancel_why; /* cancelled while Lua ran: unwound at the top of the loop */
	char *doom;	  /* set by the CPU hook: raised on every hook call */
	int parked;	  /* yielded by the CPU hook for a signal */
	int sig_doom;	  /* ended by a signal it could not yield for */
	struct drr_task *next_parked;
};

/* Global engine context the loop-level code needs. */
struct drr_engine {
	uv_loop_t *loop;
	lua_State *L;
	uv_idle_t idle;
	uv_check_t check; /* re-queues tasks parked for a signal */
	struct drr_task *ready_head, *ready_tail;
	int lua_depth;		      /* > 0 while a task (or the scheduler's `when`) runs Lua */
	void (*after_pass)(void *ud); /* the scheduler's pass, after resumes */
	void *after_ud;
	int dry_run;
	const char *run_id; /* the run's id (owned by the scheduler), or NULL */
	void (*log)(struct drr_task *t, const char *msg); /* step_log sink */
	int string_format_ref;				  /* string.format, for ctx.log */
	/* The value of a secret the runbook declared, or NULL (not declared or
	 * not set): for modules that take tokens from conventional names. */
	const char *(*secret)(const char *name);
	/* The registry ref of the exec.env the task's step adds (runbook and
	 * step), or LUA_NOREF; t is the root task. */
	int (*exec_env)(struct drr_task *t);
};
extern struct drr_engine drr_eng;

void drr_engine_init(lua_State *L, uv_loop_t *loop);
/* Start fn (at the top of L's stack, popped) as a new task with nargs
 * arguments below it... see loop.c.  Arguments: the function is at
 * stack[-nargs-1].  Pops function and arguments.  Returns the task. */
struct drr_task *drr_task_spawn(lua_State *L, int nargs, drr_task_done_fn done, void *ud);
/* The task running on coroutine L, or NULL (top-level runbook code). */
struct drr_task *drr_task_current(lua_State *L);
/* Cancel: children first, then the pending op; closes the coroutine (its
 * <close> variables run) and calls done with DRR_TASK_CANCELLED.  Called
 * while Lua runs (from a primitive, a log sink, a `when`), it only marks the
 * task: a task is never freed under its own feet, nor under a running
 * child's.  The loop unwinds a marked task at its top, once its coroutine
 * has yielded or returned; meanwhile the count hook raises in it. */
void drr_task_cancel(struct drr_task *t, const char *why);
/* Release a finished task's coroutine and result. */
void drr_task_free(struct drr_task *t);
void drr_engine_shutdown(void);
/* Schedule a scheduler pass on the next loop iteration. */
void drr_engine_kick(void);
/* Wrap the signal handlers libuv installed for SIGINT and SIGTERM, so a
 * step computing without yielding notices them (call after
 * uv_signal_start).  drr_engine_shutdown() puts them back. */
void drr_engine_watch_signals(void);
/* SIGINT/SIGTERM received since the engine watches them. */
int drr_signal_count(void);
/* lua_pcall with a CPU hook: after `budget` seconds (of process CPU when
 * cpu is set, else wall) or a signal, it raises msg with file:line on every
 * hook call, so pcall cannot swallow it.  A failure leaves a string on the
 * stack (error objects are converted, protected).  [-(nargs+1), +nres|1, -] */
int drr_lua_pcall_bounded(lua_State *L, int nargs, int nres, int msgh, double budget, int cpu,
			  const char *msg);
/* Push the value at idx as text; never raises: a __tostring runs protected
 * and bounded.  [-0, +1, m] */
const char *drr_lua_safe_tostring(lua_State *L, int idx);
/* Abort marker: ctx.abort raises this. */
int drr_is_abort(lua_State *L, int idx);
void drr_push_abort(lua_State *L, const char *reason);
/* ---- vclock.c: virtual time (drrun test) ------------------------------- */

/* Turn virtual time on for the rest of the process: once the engine is
 * attached to a loop, whenever only timers are pending the clocks jump to
 * the next deadline. */
void drr_vclock_enable(void);
int drr_vclock_enabled(void);
/* drr_engine_init and drr_engine_shutdown call these. */
void drr_vclock_attach(uv_loop_t *loop);
void drr_vclock_detach(void);

/* ---- modules ---------------------------------------------------------- */

/* Register built-in plugins and the stdlib in package.preload. */
void drr_modules_preload(lua_State *L);
int luaopen_drrun_core(lua_State *L);
int luaopen_drrun_exec(lua_State *L);
int luaopen_drrun_json(lua_State *L);
int luaopen_drrun_re(lua_State *L);
int luaopen_drrun_http(lua_State *L);
int luaopen_drrun_ssh(lua_State *L);
int luaopen_drrun_crypto(lua_State *L);
int luaopen_drrun_aws_core(lua_State *L);
int luaopen_drrun_fs(lua_State *L);
int luaopen_drrun_dns(lua_State *L);

/* Embedded stdlib (generated): NULL-terminated. */
struct drr_embedded {
	const char *name;
	const char *src;
	size_t len;
};
extern const struct drr_embedded drr_stdlib[];

#endif
