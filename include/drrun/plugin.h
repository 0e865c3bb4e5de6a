/*
 * drrun/plugin.h - the only engine header a plugin includes.
 *
 * A plugin is mechanism in C behind `require "drrun.<name>"`: it starts I/O
 * on the engine's libuv loop, yields the calling step's coroutine, and is
 * woken by its completion callback.  The scheduler alone resumes
 * coroutines (NSE's rule): a callback only records its result and calls
 * drr_task_wake().
 *
 * Everything here is stable for plugins; the rest of the engine is private.
 */
#ifndef DRRUN_PLUGIN_H
#define DRRUN_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <uv.h>

#define DRRUN_VERSION "0.1.0"

#if defined(__GNUC__)
#define DRR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DRR_PRINTF(a, b)
#endif

/* ---- error tokens -------------------------------------------------------
 * A failure to reach the world returns `nil, "token: detail", token`.  The
 * tokens a runbook may compare are these, and only these (RUNBOOKS.md,
 * "Error tokens", lists them with their meaning):
 *
 *   timeout    the operation's deadline passed
 *   refused    the peer refused the connection
 *   dns        a name did not resolve
 *   tls        TLS handshake or certificate failure
 *   auth       credentials rejected
 *   hostkey    the host's key is not on record, or differs from it (SSH:
 *              nothing was sent; the fix is in known_hosts, not the key)
 *   closed     the peer closed the connection mid-operation
 *   spawn      a program could not be started
 *   io         a local read, write or sync failed, or a local resource (a
 *              handle, a library's session) could not be had
 *   invalid    the peer rejected the request as malformed (4xx), or its
 *              answer could not be parsed, or the text given is malformed
 *              (JSON that does not parse, a pattern that does not compile,
 *              a subject that is not UTF-8)
 *   not_found  the thing asked for does not exist
 *   conflict   it exists already, or a precondition failed
 *   throttled  rate limited (429, SlowDown...)
 *   unavailable the service answered 5xx or is down
 *   cancelled  the step was cancelled while the call was in flight
 *   too_large  an answer or output went past its cap
 *   format     bytes that are not in the expected format (a sealed blob)
 *   crypto     the crypto library failed
 *   failed     the service ran the job and reports it failed (a restore)
 *   sftp       the SFTP server refused a request (no such file, no
 *              permission); the session is still usable
 *   http       an HTTP transfer failed in a way no token above names
 *              (libcurl's message says how), or, from drrun.api, an HTTP
 *              status no token above names
 *   limit      a computation ran into its own bound (a regular expression's
 *              match, depth, heap or JIT stack limit)
 *   clock      the peer and this host disagree on the time by more than the
 *              protocol allows (DNS TSIG's BADTIME): fix a clock, not a key
 */
#define DRR_ERROR_TOKENS                                                                           \
	"timeout", "refused", "dns", "tls", "auth", "hostkey", "closed", "spawn", "io", "invalid", \
		"not_found", "conflict", "throttled", "unavailable", "cancelled", "too_large",     \
		"format", "crypto", "failed", "sftp", "http", "limit", "clock"

/* ---- memory and buffers: abort on out-of-memory ------------------------- */

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

/* A program's output kept up to a cap (exec, ssh): the first `cap` bytes,
 * and the count of all that came.  Zero-initialise, set cap. */
struct drr_capture {
	struct drr_buf buf;
	size_t total, cap;
};
void drr_capture_add(struct drr_capture *c, const void *p, size_t n);
/* True when more than cap bytes came. */
int drr_capture_truncated(const struct drr_capture *c);
/* Push what was kept as a string, ended by "\n[drrun: output truncated:
 * K of N bytes kept]\n" when more came.  [-0, +1, m] */
void drr_capture_push(lua_State *L, const struct drr_capture *c);
void drr_capture_free(struct drr_capture *c);

/* ---- durations and clocks ----------------------------------------------- */

/* Parse "250ms", "5s", "10m", "1h", "1h30m" into seconds.  Returns 0 and sets
 * *out, or -1 for anything else (empty, no unit, unknown unit, overflow). */
int drr_duration_parse(const char *s, double *out);
/* The longest duration drrun accepts, in seconds (about 317,000 years): more
 * than any duration string can say, and small enough that every timer can
 * hold it in milliseconds. */
#define DRR_DURATION_MAX 1e13
/* Whether secs is a usable duration: finite, not negative, at most
 * DRR_DURATION_MAX, and more than 0 unless allow_zero.  Returns 0, or -1
 * with *why set to a phrase such as "must be more than 0". */
int drr_duration_check(double secs, int allow_zero, const char **why);
/* Format seconds compactly ("1.2s", "3m05s", "250ms") into buf. */
char *drr_duration_fmt(double secs, char *buf, size_t n);
/* Monotonic seconds. */
double drr_mono(void);

/* ---- the loop and the calling task -------------------------------------- */

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

/* The engine's loop, for uv_*_init. */
uv_loop_t *drr_loop(void);
/* The main Lua state, for registry references that outlive a coroutine. */
lua_State *drr_lua_main(void);
/* True when the run is a --dry-run: side effects are described, not made. */
int drr_dry_run(void);
/* Push the environment the calling task's step adds to every process it
 * starts (`exec = { env = ... }` of the runbook and the step, merged), a
 * table not to be modified, or nil.  [-0, +1, -] */
void drr_task_env(lua_State *L);

/* A copy of n bytes (NULs allowed) with every registered secret replaced by
 * "***"; *outlen (if not NULL) gets its length; NUL-terminated.  For text
 * a plugin cuts or reshapes before it is journalled: redact first, then cut,
 * so that no part of a secret survives a cut.  Caller frees. */
char *drr_redactn(const char *s, size_t n, size_t *outlen);

/* Raise a Lua error unless L is a task that may yield. */
struct drr_task *drr_task_check(lua_State *L, const char *what);
/* Suspend the running task until drr_task_wake(); on resume k is called. */
int drr_task_yield(lua_State *L, struct drr_op *op, lua_KContext ctx, lua_KFunction k);
/* Mark the task runnable (called from completion callbacks). */
void drr_task_wake(struct drr_task *t);
/* Journal a line (a "would ..." in dry-run, or a plugin's note) for the
 * calling task.  Never raises, even when the journal cannot be written:
 * the scheduler stops the run at its next pass. */
void drr_task_log(lua_State *L, const char *fmt, ...) DRR_PRINTF(2, 3);
/* Under --dry-run, instead of a side effect: journal the line (printf-like,
 * "would run: ...") for the calling task, as drr_task_log does, and push
 * the placeholder result, which is the same for every plugin (RUNBOOKS.md,
 * "Dry runs"):
 *   { dry_run = true, status = 0, stdout = "", stderr = "", headers = {},
 *     body = "", bytes = 0, sha256 = "", duration = 0 }
 * Returns 1 (the values pushed).  [-0, +1, m] */
int drr_push_dry_run(lua_State *L, const char *fmt, ...) DRR_PRINTF(2, 3);
/* Register fn to run once when the run ends, before the loop's handles are
 * closed: for plugins that keep loop-wide state (connection caches). */
void drr_engine_at_shutdown(void (*fn)(void *ud), void *ud);

/* ---- results and options ------------------------------------------------ */

/* Standard "nil, 'token: detail', token" return; token is one of
 * DRR_ERROR_TOKENS.  [-0, +3, m] */
int drr_push_fail(lua_State *L, const char *token, const char *fmt, ...) DRR_PRINTF(3, 4);
/* The duration option `field` of the table at idx ("5s", or seconds as a
 * number), or dflt when absent (or idx is 0); raises naming who on a bad
 * value (NaN, infinite, negative or zero).  [-0, +0, e] */
double drr_opt_duration(lua_State *L, int idx, const char *field, double dflt, const char *who);

/* ---- Lua <-> JSON ------------------------------------------------------- */

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
enum {
	DRR_JSON_NULL_SENTINEL = 1,
	DRR_JSON_ARRAY_META = 2
};
void drr_json_to_lua_ex(lua_State *L, const json_t *j, int flags);

/* ---- shared libraries loaded on first use ------------------------------- */

/* A plugin whose library is big (libcurl and its tree, libssh2) does not
 * link it: it opens it when its module is first required, so `--version`,
 * `check`, `plan` and runs that never use it do not pay for mapping it.
 * One symbol to resolve: its name, and the function pointer to set. */
struct drr_dl_sym {
	const char *name;
	void **slot;
};
/* dlopen the first of the NULL-terminated sonames that loads (RTLD_NOW,
 * RTLD_LOCAL) and resolve every symbol of the table (ended by a NULL name)
 * into its slot.  All or nothing: on failure no slot is set and err reads
 * "cannot load libcurl.so.4: ..." or "libcurl.so.4 has no curl_foo".
 * Returns 0 or -1.  Not thread-safe: call from the loop's thread. */
int drr_dl_load(const char *const *sonames, const struct drr_dl_sym *syms, char *err,
		size_t errlen);

#endif
