/*
 * drrun.h - the engine's internal interfaces.
 *
 * Data flows one way: CLI -> runbook loader -> scheduler -> steps (Lua
 * coroutines) -> plugins -> event loop; events flow back into the journal and
 * the terminal.  This header is shared by every engine unit and by the
 * built-in plugins, which only use the "task" section (yield, wake, cancel).
 */
#ifndef DRRUN_H
#define DRRUN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <lua.h>
#include <lauxlib.h>
#include <uv.h>

#define DRRUN_VERSION "0.1.0"

/* Exit codes, documented in README.md. */
enum {
	DRR_EXIT_OK = 0,         /* completed */
	DRR_EXIT_FAILED = 1,     /* failed, fully rolled back */
	DRR_EXIT_ROLLBACK = 2,   /* failed and a rollback failed too */
	DRR_EXIT_STOPPED = 3,    /* abort, approval declined, interrupted */
	DRR_EXIT_USAGE = 64,     /* bad command line */
	DRR_EXIT_INVALID = 65,   /* invalid runbook or params; nothing ran */
	DRR_EXIT_CANTSTART = 75, /* state dir unwritable, lock held */
};

#if defined(__GNUC__)
#define DRR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DRR_PRINTF(a, b)
#endif

/* ---- util.c: memory, strings, time ------------------------------------ */

void *drr_xmalloc(size_t n);
void *drr_xcalloc(size_t n, size_t sz);
void *drr_xrealloc(void *p, size_t n);
char *drr_xstrdup(const char *s);
char *drr_xasprintf(const char *fmt, ...) DRR_PRINTF(1, 2);
char *drr_xvasprintf(const char *fmt, va_list ap);

/* Growable byte buffer; always NUL-terminated. */
struct drr_buf {
	char *data;
	size_t len, cap;
};
void drr_buf_add(struct drr_buf *b, const void *p, size_t n);
void drr_buf_adds(struct drr_buf *b, const char *s);
void drr_buf_addf(struct drr_buf *b, const char *fmt, ...) DRR_PRINTF(2, 3);
void drr_buf_free(struct drr_buf *b);

/* Parse "250ms", "5s", "10m", "1h", "1h30m" into seconds.  Returns 0 and sets
 * *out, or -1 for anything else (empty, no unit, unknown unit, overflow). */
int drr_duration_parse(const char *s, double *out);
/* Format seconds compactly ("1.2s", "3m05s", "250ms") into buf. */
char *drr_duration_fmt(double secs, char *buf, size_t n);

/* Wall clock, microseconds since the epoch. */
int64_t drr_now_us(void);
/* RFC 3339 UTC with microseconds: 2026-11-22T05:10:22.123456Z (buf >= 32). */
char *drr_rfc3339(int64_t us, char *buf, size_t n);
/* Monotonic seconds. */
double drr_mono(void);

/* SHA-256 helpers (OpenSSL EVP); hex output is 64 chars + NUL. */
void drr_sha256_hex(const void *p, size_t n, char hex[65]);
int drr_sha256_file_hex(const char *path, char hex[65]);
void drr_hmac_sha256_hex(const void *key, size_t klen, const void *p, size_t n,
			 char hex[65]);

/* mkdir -p; 0 or -1 with errno. */
int drr_mkdir_p(const char *path, unsigned mode);

/* Levenshtein distance, for "did you mean" suggestions. */
int drr_edit_distance(const char *a, const char *b);

/* ---- diag: collected validation errors, "file:line: message" ----------- */

struct drr_diag {
	char **msgs;
	int n, cap;
};
void drr_diag_add(struct drr_diag *d, const char *file, int line, const char *fmt,
		  ...) DRR_PRINTF(4, 5);
void drr_diag_free(struct drr_diag *d);

/* ---- redact.c: the secret registry ------------------------------------ */

/* Register a secret value; every string that leaves the process passes
 * through drr_redact.  Values are copied. */
void drr_redact_add(const char *value);
void drr_redact_clear(void);
int drr_redact_count(void);
/* Returns a newly allocated copy of s with every registered secret replaced
 * by "***".  Caller frees. */
char *drr_redact(const char *s);
/* Redact every string (values and keys) of a JSON tree in place. */
void drr_redact_json(json_t *j);

/* ---- graph.c: the step dependency graph -------------------------------- */

struct drr_gnode {
	const char *name;
	const char **after; /* names this node waits for */
	int nafter;
	int line;
	int *deps; /* resolved indices, filled by drr_graph_resolve */
	int ndeps;
};
/* Resolve names to indices; report duplicate names, unknown dependencies and
 * every cycle ("a -> b -> a") into d.  Returns the number of errors. */
int drr_graph_resolve(struct drr_gnode *nodes, int n, const char *file,
		      struct drr_diag *d);
/* Topological levels (wave numbers) for plan output; level[i] >= 0. */
void drr_graph_levels(const struct drr_gnode *nodes, int n, int *level);

/* ---- runbook.c: loading and validation -------------------------------- */

struct drr_param {
	char *name;
	char *doc;
	int required;
	int has_default;
	int type; /* LUA_TSTRING, LUA_TNUMBER or LUA_TBOOLEAN */
};

struct drr_retry {
	int attempts;     /* total attempts, >= 1 */
	double delay;     /* seconds before attempt 2 */
	double backoff;   /* multiplier per further attempt */
	double max_delay; /* cap; 0 = none */
};

enum drr_step_state {
	DRR_PENDING,
	DRR_WAIT_APPROVAL,
	DRR_RUNNING,
	DRR_RETRY_WAIT,
	DRR_COMPLETED,
	DRR_FAILED,
	DRR_SKIPPED,
	DRR_NOT_RUN,
	DRR_ROLLING_BACK,
	DRR_ROLLED_BACK,
	DRR_ROLLBACK_FAILED,
};

struct drr_step {
	char *name;
	char *phase;
	char *doc;
	char *approve; /* question, or NULL */
	int once;
	double timeout; /* seconds; 0 = none */
	struct drr_retry retry;
	int line;
	int run_ref, rollback_ref, when_ref; /* LUA_NOREF when absent */
	struct drr_gnode *g;                 /* this step's graph node */

	/* runtime, owned by the scheduler */
	enum drr_step_state state;
	int attempt;
	int waiting; /* dependencies not yet done */
	double t_start, t_end; /* monotonic */
	int64_t ts_start_us;
	int output_ref;
	char *error;
	char *last_log;
	int done_order; /* completion order, for rollback */
	int approved;
	double t_attempt;
	double prior; /* seconds spent in earlier sessions (resume) */
	int attempt_base; /* attempts made in earlier sessions */
	int rerun;        /* was in flight when an earlier session stopped */
	int cancelled;    /* stopped by an interrupt or a dead journal */
	char fp[65];  /* SHA-256 of the step's source text */
	struct drr_task *task;
	uv_timer_t *timer; /* retry delay or attempt timeout */
};

struct drr_runbook {
	lua_State *L;
	char *path; /* as given on the command line */
	char *dir;  /* directory of the runbook, for local require */
	char *name, *description;
	int line; /* of runbook{} */
	double rto, rpo; /* seconds; 0 = not declared */
	char sha256[65];
	struct drr_param *params;
	int nparams;
	char **secrets;
	int nsecrets;
	char **envs; /* declared environment names */
	int nenvs;
	struct drr_step *steps;
	int nsteps;
	struct drr_gnode *graph;
	int env_ref;    /* runbook.env table */
	int params_ref; /* resolved params table, after drr_runbook_bind */
	int ctxenv_ref; /* selected env table */
};

/* Options that shape loading and running. */
struct drr_opts {
	const char **param_kv; /* "k=v" strings from --param */
	int nparam_kv;
	const char *env_name;
	int yes, dry_run, json, max_parallel, color, drill, no_rollback, force;
	const char *state_dir;
	const char *key_file;
	char *key; /* audit key: DRRUN_AUDIT_KEY or the contents of --key-file */
	size_t klen;
};

/* Load and validate a runbook, adding every error found to d.  Returns NULL
 * only when the file could not be read or its top-level code failed; else
 * the runbook, which is usable only if d gained no errors.  Nothing has run
 * except the runbook's top-level code. */
struct drr_runbook *drr_runbook_load(const char *path, struct drr_diag *d);
/* Resolve params, env and secrets against opts/environment; errors to d.
 * Returns the number of errors. */
int drr_runbook_bind(struct drr_runbook *rb, const struct drr_opts *o,
		     struct drr_diag *d);
void drr_runbook_free(struct drr_runbook *rb);
/* The line, at or after `from`, where field `name = ` is written, or `from`. */
int drr_runbook_field_line(const struct drr_runbook *rb, int from, const char *name);

/* ---- journal.c: the append-only, hash-chained journal ----------------- */

struct drr_journal;
/* Create <state_dir>/runs/<run_id>/journal.jsonl (directories included).
 * Returns NULL with a message in err on failure. */
struct drr_journal *drr_journal_create(const char *state_dir, const char *run_id,
				       char *err, size_t errlen);
/* Append one record.  Adds seq, ts, run, prev and hash; redacts every string;
 * steals the reference to rec.  With sync, the record is on disk when this
 * returns 0.  Returns -1 on a write error (journal is then dead). */
int drr_journal_append(struct drr_journal *j, json_t *rec, int sync);
int drr_journal_sync(struct drr_journal *j);
const char *drr_journal_path(const struct drr_journal *j);
const char *drr_journal_error(const struct drr_journal *j);
void drr_journal_close(struct drr_journal *j);
/* Called with every appended line (without newline), for --json. */
void drr_journal_set_tee(struct drr_journal *j, void (*fn)(const char *line, void *),
			 void *ud);
/* Compute the hash of a line: the line with its trailing ,"hash":"..." field
 * removed.  Returns 0 and fills hex, or -1 if the line has no hash field. */
int drr_journal_line_hash(const char *line, size_t len, char hex[65],
			  char found[65]);

/* Optional audit key: every record then carries an HMAC-SHA256 "mac". */
void drr_journal_set_key(struct drr_journal *j, const void *key, size_t klen);

struct drr_jline {
	char hash[65];       /* computed over the body */
	char found_hash[65]; /* as written in the line */
	char mac[65];        /* as written, when has_mac */
	char want_mac[65];   /* computed with the key given */
	int has_mac;
	size_t body_len;
};
/* Parse a journal line's trailer and hash its body (and HMAC it, with a key). */
int drr_journal_parse_line(const char *line, size_t len, const void *key, size_t klen,
			   struct drr_jline *out);
/* Every whole record of a journal, as a JSON array (new reference).  A torn
 * last line is left out: *torn_bytes says how long it is. */
json_t *drr_journal_load(const char *path, size_t *good_bytes, size_t *torn_bytes, char *err,
			 size_t errlen);
/* Reopen a journal for appending; a torn tail is truncated (*repaired bytes). */
struct drr_journal *drr_journal_open(const char *path, size_t *repaired, char *err,
				     size_t errlen);

struct drr_verify {
	long records;
	long bad_seq;       /* 0 when intact */
	char reason[256];
	char run[160];
	long macs;          /* records that carry a mac */
	int ended;          /* the last run_start/run_resume was closed by run_end */
};
/* 0: intact; 1: bad (v->bad_seq, v->reason); -1: unreadable (v->reason). */
int drr_journal_verify(const char *path, const void *key, size_t klen, struct drr_verify *v);

/* ---- ljson.c: Lua <-> JSON -------------------------------------------- */

/* json.null is a light userdata NULL; json.empty_array is a light userdata
 * with the address of drr_json_empty_array.  Tables whose metatable is the
 * registry's DRR_JSON_ARRAY_MT are arrays even when empty. */
#define DRR_JSON_NULL NULL
extern char drr_json_empty_array;
#define DRR_JSON_EMPTY_ARRAY ((void *)&drr_json_empty_array)
#define DRR_JSON_ARRAY_MT "drrun.json.array"

/* Convert the Lua value at idx to JSON (new reference), for the journal.
 * json.null is null; NaN and infinities are null; functions and userdata
 * become "<function>"-style strings; depth > 64 (cycles included) becomes
 * "<too deep>"; invalid UTF-8 gets U+FFFD.  Never raises. */
json_t *drr_lua_to_json(lua_State *L, int idx);
/* The same for json.encode, strictly: returns NULL and a message in err
 * ("cannot encode a function (at .a[2])") for anything the lenient variant
 * would paper over: functions, userdata, NaN/inf, non-string keys of
 * objects, sparse arrays, invalid UTF-8, cycles, depth > 2048.  The new
 * reference belongs to the caller.  Never raises. */
json_t *drr_lua_to_json_strict(lua_State *L, int idx, char *err, size_t errlen);
/* Push a Lua value for j: null is nil.  [-0, +1, e] */
void drr_json_to_lua(lua_State *L, const json_t *j);
/* The same with options: null as json.null, arrays with DRR_JSON_ARRAY_MT
 * as their metatable (json.decode).  [-0, +1, e] */
enum { DRR_JSON_NULL_SENTINEL = 1, DRR_JSON_ARRAY_META = 2 };
void drr_json_to_lua_ex(lua_State *L, const json_t *j, int flags);

/* ---- loop.c: tasks (coroutines) over the libuv loop ------------------- */

struct drr_task;

/* A pending operation a task is waiting for.  The plugin embeds this at the
 * start of its own struct.  cancel() must stop the work, release or schedule
 * release of its handles, and never wake the task; after cancel the plugin
 * owns the memory and frees it when its handles are closed.  cancel() is
 * also called for an op that already completed and woke its task, when the
 * task is cancelled before its continuation ran: it must free the result. */
struct drr_op {
	void (*cancel)(struct drr_op *op);
	struct drr_task *task; /* NULL once cancelled */
};

typedef void (*drr_task_done_fn)(struct drr_task *t, int status, void *ud);

enum { DRR_TASK_OK = 0, DRR_TASK_ERROR, DRR_TASK_ABORT, DRR_TASK_CANCELLED };

struct drr_task {
	lua_State *co;
	int co_ref;
	struct drr_op *op; /* what the task waits for, or NULL */
	struct drr_task *parent;
	struct drr_task *next_ready;
	int ready, nargs, finished;
	double resumed_at, deadline; /* monotonic; deadline 0 = none */
	double cpu_budget;
	char *error;   /* message when status is ERROR/ABORT */
	int result_ref; /* first return value when OK */
	drr_task_done_fn done;
	void *ud;
	void *owner; /* the scheduler's per-task data (struct drr_step *) */
	int cancelling;
};

/* Global engine context the loop-level code needs. */
struct drr_engine {
	uv_loop_t *loop;
	lua_State *L;
	uv_idle_t idle;
	struct drr_task *ready_head, *ready_tail;
	void (*after_pass)(void *ud); /* the scheduler's pass, after resumes */
	void *after_ud;
	int dry_run;
	void (*log)(struct drr_task *t, const char *msg); /* step_log sink */
	int string_format_ref; /* string.format, for ctx.log */
	/* The value of a secret the runbook declared, or NULL (not declared or
	 * not set): for modules that take tokens from conventional names. */
	const char *(*secret)(const char *name);
};
extern struct drr_engine drr_eng;

void drr_engine_init(lua_State *L, uv_loop_t *loop);
/* Start fn (at the top of L's stack, popped) as a new task with nargs
 * arguments below it... see loop.c.  Arguments: the function is at
 * stack[-nargs-1].  Pops function and arguments.  Returns the task. */
struct drr_task *drr_task_spawn(lua_State *L, int nargs, drr_task_done_fn done, void *ud);
/* The task running on coroutine L, or NULL (top-level runbook code). */
struct drr_task *drr_task_current(lua_State *L);
/* Raise a Lua error unless L is a task that may yield. */
struct drr_task *drr_task_check(lua_State *L, const char *what);
/* Suspend the running task until drr_task_wake(); on resume k is called. */
int drr_task_yield(lua_State *L, struct drr_op *op, lua_KContext ctx, lua_KFunction k);
/* Mark the task runnable (called from completion callbacks). */
void drr_task_wake(struct drr_task *t);
/* Cancel: children first, then the pending op; closes the coroutine (its
 * <close> variables run) and calls done with DRR_TASK_CANCELLED. */
void drr_task_cancel(struct drr_task *t, const char *why);
/* Release a finished task's coroutine and result. */
void drr_task_free(struct drr_task *t);
/* Register fn to run once when the run ends, before the loop's handles are
 * closed: for plugins that keep loop-wide state (connection caches). */
void drr_engine_at_shutdown(void (*fn)(void *ud), void *ud);
void drr_engine_shutdown(void);
/* Schedule a scheduler pass on the next loop iteration. */
void drr_engine_kick(void);
/* Abort marker: ctx.abort raises this. */
int drr_is_abort(lua_State *L, int idx);
void drr_push_abort(lua_State *L, const char *reason);
/* The duration option `field` of the table at idx ("5s", or seconds as a
 * number), or dflt when absent (or idx is 0); raises naming who on a bad
 * value.  [-0, +0, e] */
double drr_opt_duration(lua_State *L, int idx, const char *field, double dflt, const char *who);
/* Standard "nil, 'token: detail', token" return for plugins. [-0,+3] */
int drr_push_fail(lua_State *L, const char *token, const char *fmt, ...) DRR_PRINTF(3, 4);
/* Journal a "would ..." line in dry-run mode for the calling task. */
void drr_task_log(lua_State *L, const char *fmt, ...) DRR_PRINTF(2, 3);

/* ---- lock.c: one active run per runbook name ----------------------------- */

/* Returns the lock's fd, or -1 with err naming the holder's run and pid. */
int drr_lock_take(const char *state_dir, const char *name, const char *run_id, char *err,
		  size_t errlen);
/* 1 if a live process holds the runbook's lock (fills run_id and pid). */
int drr_lock_holder(const char *state_dir, const char *name, char *run_id, size_t n, long *pid);
void drr_lock_release(int fd);

/* ---- past.c: a run as its journal tells it ------------------------------- */

struct drr_past_step {
	const char *name;
	int started, ended, skipped, approved;
	const char *status; /* of step_end: completed, failed, aborted, cancelled */
	int attempts;
	double duration;
	json_t *output;     /* borrowed from the records */
	const char *error;
	int done_order;     /* 1-based completion order; 0 if not completed */
	int rb_started, rb_ended;
	const char *rb_status;
	const char *rb_error;
};

struct drr_past {
	json_t *recs;
	json_t *start, *end; /* run_start; the run_end of the last session, or NULL */
	const char *run_id, *runbook, *file, *path, *sha256, *env;
	json_t *params, *plan;
	struct drr_past_step *steps;
	int nsteps;
	int in_rollback, failed, sessions;
	size_t torn;
	char dir[4096];
};
/* Find a run directory under state_dir by id or unique id prefix. */
int drr_run_find(const char *state_dir, const char *id, char *dir, size_t n, char *err,
		 size_t errlen);
int drr_past_load(const char *run_dir, struct drr_past *p, char *err, size_t errlen);
struct drr_past_step *drr_past_step(struct drr_past *p, const char *name);
/* running, completed, failed, rolled-back, interrupted, aborted */
const char *drr_past_state(const struct drr_past *p, const char *state_dir);
void drr_past_free(struct drr_past *p);

/* ---- sched.c: running a runbook ------------------------------------------ */

enum { DRR_MODE_RUN, DRR_MODE_RESUME, DRR_MODE_ROLLBACK };

/* Where a resumed or rolled-back run stands. */
struct drr_resume {
	int mode;
	struct drr_past *past;
	struct drr_journal *j; /* reopened for appending (after taking the lock) */
	int lock_fd;           /* the runbook's lock, already held */
	size_t repaired;       /* bytes of torn tail cut off */
};

/* Run a loaded, bound runbook; returns the exit code.  A fresh run (res
 * NULL) creates its journal under o->state_dir; either way the runbook's
 * lock is taken first (exit 75 when held or when nothing can be written). */
int drr_sched_run(struct drr_runbook *rb, const struct drr_opts *o,
		  const struct drr_resume *res);
/* A new run id: 20261122T051022.123Z-<name>-<4 hex>. */
void drr_run_id(const char *name, char *buf, size_t n);

/* ---- view.c: what the terminal shows ----------------------------------- */

struct drr_view;
/* live: redraw one line per step in place (a terminal); else plain lines. */
struct drr_view *drr_view_new(struct drr_runbook *rb, FILE *out, int live, int color);
/* Something happened to step s (NULL for run-level messages). */
void drr_view_event(struct drr_view *v, const struct drr_step *s, const char *what,
		    const char *detail);
void drr_view_redraw(struct drr_view *v);
/* Stop drawing in place (before a prompt or the summary). */
void drr_view_suspend(struct drr_view *v);
void drr_view_resume(struct drr_view *v);
void drr_view_free(struct drr_view *v);

/* ---- report.c: the end-of-run summary ---------------------------------- */

struct drr_summary {
	const char *run_id, *status, *journal, *reason;
	int exit_code, color;
	double total;
};
void drr_report_summary(FILE *out, const struct drr_runbook *rb, const struct drr_summary *s);

/* ---- cli.c: what the verbs share ------------------------------------------ */

/* Parse the run-family flags after the verb; the runbook path goes to *file.
 * Returns 0, or an exit code (64 usage, 0 for --help) to return at once. */
enum { DRR_CLI_ARG_OPTIONAL = 1 };
int drr_cli_parse(int argc, char **argv, const char *verb, struct drr_opts *o,
		  const char **file, int flags);
/* Load, validate and bind; prints every error and returns NULL with *rc set
 * to 65 (or 66 when the file is missing). */
struct drr_runbook *drr_cli_load(const char *file, const struct drr_opts *o, int *rc);
void drr_cli_free_opts(struct drr_opts *o);
/* Print the help text of a verb (NULL: overview) to out. */
void drr_cli_help(FILE *out, const char *verb);

int cmd_run(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_rollback(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_audit(int argc, char **argv);
/* Load the runbook a past run used, bound to that run's params and env. */
struct drr_runbook *drr_cli_load_past(struct drr_past *p, struct drr_opts *o, int *rc);

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

/* Embedded stdlib (generated): NULL-terminated. */
struct drr_embedded {
	const char *name;
	const char *src;
	size_t len;
};
extern const struct drr_embedded drr_stdlib[];

#endif
