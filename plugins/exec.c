/*
 * exec.c - drrun.exec: run a program without blocking the loop.
 *
 *   exec.run{ "argv0", "arg1", ..., env = {}, clear_env = false, cwd = "",
 *             stdin = "", timeout = "10m", max_output = 16777216 }
 *     -> { status, signal, stdout, stderr, duration, truncated }
 *     -> nil, "spawn: ...", "spawn"     the program could not be started
 *     -> nil, "timeout: ...", "timeout" it ran past its timeout (killed)
 *
 * A non-zero exit status is a result, not an error.  Each child runs in a
 * process group of its own (setsid), so a timeout or a cancelled step kills
 * the whole group, grandchildren included.  Output beyond max_output per
 * stream is counted but dropped, with a marker.  In dry-run mode nothing is
 * spawned: the command is journalled as "would run: ..." and the one
 * dry-run placeholder (drr_push_dry_run) comes back.
 */
#include "drrun/plugin.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT 600.0
#define DEFAULT_MAX_OUTPUT (16u << 20)

extern char **environ;

struct exec_op {
	struct drr_op op;
	uv_process_t proc;
	uv_pipe_t pin, pout, perr;
	uv_timer_t timer;
	uv_write_t wreq;
	int open; /* handles initialised and not yet closed */
	int exited, out_eof, err_eof, timed_out, finished, consumed, cancelled;
	int64_t status;
	int term_signal;
	struct drr_capture out, err;
	char *in_data;
	size_t in_len;
	double t0, duration, timeout;
	char *argv0;
	char *what; /* the command as the journal tells it (describe) */
	int safe;   /* marked safe = true: a read that runs under --dry-run too */
};

static void op_free(struct exec_op *e)
{
	drr_capture_free(&e->out);
	drr_capture_free(&e->err);
	free(e->in_data);
	free(e->argv0);
	free(e->what);
	free(e);
}

static void on_closed(uv_handle_t *h)
{
	struct exec_op *e = h->data;
	if (--e->open == 0 && (e->consumed || e->cancelled))
		op_free(e);
}

static void close_handle(struct exec_op *e, void *h)
{
	uv_handle_t *hh = h;
	if (hh->data && !uv_is_closing(hh))
		uv_close(hh, on_closed);
}

static void close_io(struct exec_op *e)
{
	close_handle(e, &e->timer);
	close_handle(e, &e->pin);
	close_handle(e, &e->pout);
	close_handle(e, &e->perr);
}

static void maybe_finish(struct exec_op *e)
{
	if (e->finished || e->cancelled)
		return;
	if (!(e->exited && e->out_eof && e->err_eof) && !e->timed_out)
		return;
	if (e->timed_out && !e->exited)
		return; /* wait for the killed child to be reaped */
	e->finished = 1;
	e->duration = drr_mono() - e->t0;
	close_io(e);
	close_handle(e, &e->proc);
	drr_task_wake(e->op.task);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
	struct exec_op *e = p->data;
	e->exited = 1;
	e->status = status;
	e->term_signal = sig;
	if (e->cancelled) {
		close_handle(e, &e->proc);
		return;
	}
	maybe_finish(e);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	static char slab[65536];
	(void)hint;
	buf->base = slab;
	buf->len = sizeof slab;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct exec_op *e = s->data;
	int is_out = s == (uv_stream_t *)&e->pout;
	if (n > 0) {
		drr_capture_add(is_out ? &e->out : &e->err, buf->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	/* EOF or error: this stream is done */
	uv_read_stop(s);
	close_handle(e, s);
	if (is_out)
		e->out_eof = 1;
	else
		e->err_eof = 1;
	maybe_finish(e);
}

static void on_written(uv_write_t *w, int status)
{
	(void)status; /* EPIPE when the child does not read stdin: fine */
	struct exec_op *e = w->data;
	close_handle(e, &e->pin);
}

static void kill_group(struct exec_op *e)
{
	if (!e->exited && e->proc.pid > 0)
		kill(-e->proc.pid, SIGKILL);
}

static void on_timeout(uv_timer_t *t)
{
	struct exec_op *e = t->data;
	e->timed_out = 1;
	kill_group(e);
	/* don't wait for pipes a grandchild outside the group may hold open */
	close_io(e);
	e->out_eof = e->err_eof = 1;
	maybe_finish(e);
}

static void exec_cancel(struct drr_op *op)
{
	struct exec_op *e = (struct exec_op *)op;
	e->cancelled = 1;
	kill_group(e);
	close_io(e);
	if (e->exited)
		close_handle(e, &e->proc);
	if (e->open == 0)
		op_free(e);
}

static int exec_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct exec_op *e = (struct exec_op *)ctx;
	int nret;
	char ms[32];
	snprintf(ms, sizeof ms, "%.0fms", e->duration * 1000);
	if (e->timed_out)
		drr_task_log(L, "ran: %s: timed out after %s, killed", e->what, ms);
	else if (e->term_signal)
		drr_task_log(L, "ran: %s: killed by signal %d after %s", e->what, e->term_signal,
			     ms);
	else
		drr_task_log(L, "ran: %s: exit %lld in %s%s", e->what, (long long)e->status, ms,
			     e->safe && drr_dry_run() ? " (safe: runs under --dry-run)" : "");
	if (e->timed_out) {
		char d[32];
		nret = drr_push_fail(L, "timeout", "'%s' still running after %s (killed)", e->argv0,
				     drr_duration_fmt(e->timeout, d, sizeof d));
	} else {
		lua_createtable(L, 0, 6);
		if (e->term_signal) {
			lua_pushinteger(L, e->term_signal);
			lua_setfield(L, -2, "signal");
		} else {
			lua_pushinteger(L, (lua_Integer)e->status);
			lua_setfield(L, -2, "status");
		}
		drr_capture_push(L, &e->out);
		lua_setfield(L, -2, "stdout");
		drr_capture_push(L, &e->err);
		lua_setfield(L, -2, "stderr");
		lua_pushnumber(L, e->duration);
		lua_setfield(L, -2, "duration");
		lua_pushboolean(L,
				drr_capture_truncated(&e->out) || drr_capture_truncated(&e->err));
		lua_setfield(L, -2, "truncated");
		nret = 1;
	}
	e->consumed = 1;
	if (e->open == 0)
		op_free(e);
	return nret;
}

/* Free a NULL-terminated vector of strings and the vector. */
static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* A NULL-terminated string vector owned by a userdata, so that an error
 * raised while it is being built (lua_pushlstring can fail for memory)
 * leaves it to the collector instead of leaking it.  [-0, +1, m] */
struct strv {
	char **v;
	size_t n, cap;
};

static int strv_gc(lua_State *L)
{
	struct strv *s = lua_touserdata(L, 1);
	free_strv(s->v);
	s->v = NULL;
	return 0;
}

static struct strv *strv_new(lua_State *L)
{
	struct strv *s = lua_newuserdatauv(L, sizeof *s, 0);
	memset(s, 0, sizeof *s);
	if (luaL_newmetatable(L, "drrun.exec.strv")) {
		lua_pushcfunction(L, strv_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_setmetatable(L, -2);
	s->cap = 16;
	s->v = drr_xcalloc(s->cap, sizeof *s->v);
	return s;
}

/* Append str (taken over); the vector stays NULL-terminated. */
static void strv_add(struct strv *s, char *str)
{
	if (s->n + 2 > s->cap) {
		s->v = drr_xrealloc(s->v, (s->cap *= 2) * sizeof *s->v);
		memset(s->v + s->n, 0, (s->cap - s->n) * sizeof *s->v);
	}
	s->v[s->n++] = str;
}

/* Take the vector from its userdata (which then frees nothing). */
static char **strv_take(struct strv *s)
{
	char **v = s->v;
	s->v = NULL;
	return v;
}

/* Fill env (a strv) with the child's environment: ours (unless clear) with
 * the names of the table at idx overridden, then that table's entries. */
static void build_env(lua_State *L, int idx, int clear, struct strv *env)
{
	if (!clear)
		for (char **p = environ; *p; p++) {
			/* overridden names are skipped here and added below */
			const char *eq = strchr(*p, '=');
			if (!eq)
				continue;
			lua_pushlstring(L, *p, (size_t)(eq - *p));
			lua_rawget(L, idx);
			int overridden = !lua_isnil(L, -1);
			lua_pop(L, 1);
			if (overridden)
				continue;
			strv_add(env, drr_xstrdup(*p));
		}
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) == LUA_TSTRING &&
		    (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER))
			strv_add(env,
				 drr_xasprintf("%s=%s", lua_tostring(L, -2), lua_tostring(L, -1)));
		lua_pop(L, 1);
	}
}

/* The call's env (the table or nil at idx) over the step's and runbook's
 * exec.env: a new table replaces it at idx.  Returns its type. */
static int merge_step_env(lua_State *L, int idx, int tenv)
{
	drr_task_env(L);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return tenv;
	}
	int base = lua_gettop(L);
	lua_newtable(L);
	for (int src = 0; src < 2; src++) {
		int from = src ? idx : base;
		if (!lua_istable(L, from))
			continue;
		lua_pushnil(L);
		while (lua_next(L, from)) {
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, base + 1);
		}
	}
	lua_replace(L, idx);
	lua_pop(L, 1);
	return LUA_TTABLE;
}

static void quote_arg(struct drr_buf *b, const char *s)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789-_./=:,@%+") == strlen(s)) {
		drr_buf_adds(b, s);
		return;
	}
	drr_buf_adds(b, "'");
	for (; *s; s++) {
		if (*s == '\'')
			drr_buf_adds(b, "'\\''");
		else
			drr_buf_add(b, s, 1);
	}
	drr_buf_adds(b, "'");
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Up to max bytes of s, redacted before the cut, as a quoted string with
 * what is not printable escaped, and the full size when it was cut. */
static void add_excerpt(struct drr_buf *b, const char *s, size_t n, size_t max)
{
	size_t rn = 0;
	char *r = drr_redactn(s, n, &rn);
	drr_buf_adds(b, "\"");
	for (size_t i = 0; i < rn && i < max; i++) {
		unsigned char c = (unsigned char)r[i];
		if (c == '\n')
			drr_buf_adds(b, "\\n");
		else if (c == '"' || c == '\\')
			drr_buf_addf(b, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			drr_buf_addf(b, "\\x%02x", c);
		else
			drr_buf_add(b, &r[i], 1);
	}
	drr_buf_adds(b, "\"");
	if (rn > max)
		drr_buf_addf(b, " (first %zu of %zu bytes)", max, n);
	free(r);
}

/* The command as the journal tells it: the quoted argv, " in CWD", and the
 * environment it adds.  For a dry run's "would run" (full), the variables'
 * values and the first 200 bytes of stdin too, so the reader sees what the
 * command would have been given; for the audit line of a command that ran,
 * the variables' names and stdin's size only: stdin and env carry passwords
 * and keys that are not always declared secrets.  The journal redacts the
 * whole line; stdin is redacted here, before it is cut.  Stack: 1 spec,
 * 2 env.  Pushes the description.
 * Everything that may raise (conversions, tables) happens first, in Lua;
 * the C part after it only reads strings already on the stack. */
static void push_description(lua_State *L, lua_Integer argc, const char *cwd, int clear_env,
			     const char *in, size_t in_len, int full)
{
	lua_createtable(L, (int)argc, 0); /* argv, every item a string */
	int av = lua_gettop(L);
	for (lua_Integer i = 1; i <= argc; i++) {
		lua_rawgeti(L, 1, i);
		lua_tostring(L, -1);
		lua_rawseti(L, av, i);
	}
	lua_newtable(L); /* "NAME=value" of env, quoted */
	int ev = lua_gettop(L);
	lua_Integer nev = 0;
	if (lua_istable(L, 2)) {
		lua_pushnil(L);
		while (lua_next(L, 2)) {
			if (lua_type(L, -2) == LUA_TSTRING &&
			    (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)) {
				lua_pushvalue(L, -1);
				lua_pushfstring(L, "%s=%s", lua_tostring(L, -3), lua_tostring(L, -1));
				lua_rawseti(L, ev, ++nev);
				lua_pop(L, 1);
			}
			lua_pop(L, 1);
		}
	}
	struct drr_buf b = { 0 };
	for (lua_Integer i = 1; i <= argc; i++) {
		lua_rawgeti(L, av, i);
		if (i > 1)
			drr_buf_adds(&b, " ");
		quote_arg(&b, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	if (cwd)
		drr_buf_addf(&b, " in %s", cwd);
	if (nev || clear_env) {
		const char **kv = drr_xcalloc((size_t)nev + 1, sizeof *kv);
		for (lua_Integer i = 1; i <= nev; i++) {
			lua_rawgeti(L, ev, i);
			kv[i - 1] = lua_tostring(L, -1); /* anchored in ev */
			lua_pop(L, 1);
		}
		qsort(kv, (size_t)nev, sizeof *kv, cmp_cstr);
		drr_buf_adds(&b, clear_env ? " with only env" : " with env");
		for (lua_Integer i = 0; i < nev; i++) {
			const char *eq = strchr(kv[i], '=');
			drr_buf_addf(&b, " %.*s%s", (int)(eq - kv[i]), kv[i], full ? "=" : "");
			if (full)
				quote_arg(&b, eq + 1);
		}
		if (!nev)
			drr_buf_adds(&b, " (empty)");
		free(kv);
	}
	if (in && full) {
		drr_buf_adds(&b, ", stdin ");
		add_excerpt(&b, in, in_len, 200);
	} else if (in) {
		drr_buf_addf(&b, ", stdin of %zu bytes", in_len);
	}
	lua_pop(L, 2);
	/* the one call that may raise with C memory held: out of memory only */
	lua_pushlstring(L, b.data ? b.data : "", b.len);
	drr_buf_free(&b);
}

static int l_run(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer argc = luaL_len(L, 1);
	luaL_argcheck(L, argc >= 1, 1, "expected { \"program\", args... }");
	for (lua_Integer i = 1; i <= argc; i++) {
		int t = lua_rawgeti(L, 1, i);
		if (t != LUA_TSTRING && t != LUA_TNUMBER)
			luaL_error(L, "exec.run: argument %d must be a string", (int)i);
		lua_pop(L, 1);
	}
	double timeout = drr_opt_duration(L, 1, "timeout", DEFAULT_TIMEOUT, "exec.run");
	lua_getfield(L, 1, "max_output");
	lua_Integer max_output = luaL_optinteger(L, -1, DEFAULT_MAX_OUTPUT);
	lua_pop(L, 1);
	luaL_argcheck(L, max_output > 0, 1, "max_output must be positive");
	int tenv = lua_getfield(L, 1, "env");
	luaL_argcheck(L, tenv == LUA_TNIL || tenv == LUA_TTABLE, 1, "env must be a table");
	tenv = merge_step_env(L, 2, tenv);
	lua_getfield(L, 1, "clear_env");
	int clear_env = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "cwd");
	const char *cwd = luaL_optstring(L, -1, NULL);
	lua_getfield(L, 1, "stdin");
	size_t in_len = 0;
	const char *in = luaL_optlstring(L, -1, NULL, &in_len);
	lua_getfield(L, 1, "safe");
	int safe = lua_toboolean(L, -1);
	lua_pop(L, 1);
	/* stack: 1 spec, 2 env, 3 cwd, 4 stdin */
	drr_task_check(L, "exec.run");

	int dry = lua_toboolean(L, lua_upvalueindex(1)) || (drr_dry_run() && !safe);
	push_description(L, argc, cwd, clear_env, in, in_len, dry); /* stack: 5 */
	if (dry)
		return drr_push_dry_run(L, "would run: %s (not run: the result is a "
					   "placeholder; a read-only probe may say safe = true)",
					lua_tostring(L, 5));

	/* argv and envp belong to userdata until the spawn: building them may raise */
	struct strv *av = strv_new(L);
	for (lua_Integer i = 1; i <= argc; i++) {
		lua_rawgeti(L, 1, i);
		strv_add(av, drr_xstrdup(lua_tostring(L, -1)));
		lua_pop(L, 1);
	}
	struct strv *ev = NULL;
	if (tenv == LUA_TTABLE || clear_env)
		ev = strv_new(L);
	if (tenv == LUA_TTABLE)
		build_env(L, 2, clear_env, ev);
	char **argv = strv_take(av);
	char **envp = ev ? strv_take(ev) : NULL;
	/* from here to the spawn nothing raises */

	struct exec_op *e = drr_xcalloc(1, sizeof *e);
	e->op.cancel = exec_cancel;
	e->out.cap = e->err.cap = (size_t)max_output;
	e->timeout = timeout;
	e->argv0 = drr_xstrdup(argv[0]);
	e->what = drr_xstrdup(lua_tostring(L, 5));
	e->safe = safe;
	uv_loop_t *loop = drr_loop();
	uv_pipe_init(loop, &e->pout, 0);
	uv_pipe_init(loop, &e->perr, 0);
	e->pout.data = e->perr.data = e;
	e->open = 2;
	if (in) {
		uv_pipe_init(loop, &e->pin, 0);
		e->pin.data = e;
		e->open++;
	}

	uv_stdio_container_t stdio[3];
	stdio[0].flags = in ? (UV_CREATE_PIPE | UV_READABLE_PIPE) : UV_IGNORE;
	stdio[0].data.stream = (uv_stream_t *)&e->pin;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&e->pout;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&e->perr;

	uv_process_options_t po;
	memset(&po, 0, sizeof po);
	po.file = argv[0];
	po.args = argv;
	po.env = envp;
	po.cwd = cwd;
	po.flags = UV_PROCESS_DETACHED;
	po.exit_cb = on_exit_cb;
	po.stdio = stdio;
	po.stdio_count = 3;
	e->proc.data = e;
	e->t0 = drr_mono();
	int rc = uv_spawn(loop, &e->proc, &po);
	free_strv(argv);
	free_strv(envp);
	if (rc < 0) {
		/* the process handle must still be closed after a failed spawn */
		e->open++;
		e->cancelled = 1;
		close_io(e);
		close_handle(e, &e->proc);
		const char *prog = e->argv0;
		lua_pushnil(L);
		lua_pushfstring(L, "spawn: cannot run '%s'%s%s: %s", prog, cwd ? " in " : "",
				cwd ? cwd : "", uv_strerror(rc));
		lua_pushliteral(L, "spawn");
		return 3;
	}
	e->open++; /* the process handle */
	uv_read_start((uv_stream_t *)&e->pout, on_alloc, on_read);
	uv_read_start((uv_stream_t *)&e->perr, on_alloc, on_read);
	if (in) {
		e->in_data = drr_xmalloc(in_len ? in_len : 1);
		memcpy(e->in_data, in, in_len);
		e->in_len = in_len;
		uv_buf_t b = uv_buf_init(e->in_data, (unsigned)in_len);
		e->wreq.data = e;
		if (uv_write(&e->wreq, (uv_stream_t *)&e->pin, &b, 1, on_written) < 0)
			close_handle(e, &e->pin);
	}
	if (timeout > 0) {
		uv_timer_init(loop, &e->timer);
		e->timer.data = e;
		e->open++;
		uv_timer_start(&e->timer, on_timeout, (uint64_t)(timeout * 1000 + 0.5), 0);
	}
	return drr_task_yield(L, &e->op, (lua_KContext)e, exec_k);
}

int luaopen_drrun_exec(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "run", l_run },
		{ NULL, NULL },
	};
	luaL_newlibtable(L, fns);
	lua_pushboolean(L, 0); /* upvalue: force dry-run (for tests of the module) */
	luaL_setfuncs(L, fns, 1);
	return 1;
}
