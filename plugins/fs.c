/*
 * fs.c - `require "drrun.fs"`: local files without blocking the loop.
 *   fs.read(path [, { max = bytes }])        -> string
 *   fs.write(path, data [, { mode = "0644" }]) -> true   (atomic)
 *   fs.append(path, data [, { mode }])       -> true
 *   fs.stat(path)                            -> { type, size, mode, mtime, uid, gid }
 *   fs.exists(path)                          -> boolean
 *   fs.glob(pattern)                         -> { paths... } (sorted)
 *   fs.remove(path [, { recursive, missing_ok }]) -> true
 *   fs.mkdir(path [, { mode = "0755" }])     -> true     (with its parents)
 * Failures: nil, "token: fs.CALL: detail", token.  Every call runs in
 * libuv's thread pool; the step waits.  Under --dry-run, write, append,
 * remove and mkdir are described in the step's log and not done.
 * Tokens: not_found, io, too_large, invalid (not a regular file, not a
 * directory), conflict (exists and is something else), cancelled.
 */
#include "drrun/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OP_MT "drrun.fs.Op"
#define READ_MAX_DEFAULT (16 * 1024 * 1024)

enum kind { K_READ, K_WRITE, K_APPEND, K_STAT, K_EXISTS, K_GLOB, K_REMOVE, K_MKDIR };
static const char *const names[] = { "read", "write", "append", "stat",
				     "exists", "glob", "remove", "mkdir" };

struct fsop {
	struct drr_op op;
	uv_work_t req;
	atomic_int cancelled;
	int ref;
	enum kind kind;
	const char *path; /* kept alive as the userdata's user value 1 */
	const char *in;	  /* write/append data: user value 2 */
	size_t in_len;
	size_t max;
	int mode, mode_set, recursive, missing_ok;
	/* results, freed by __gc */
	char *data;
	size_t len;
	struct stat st;
	int exists;
	glob_t gl;
	int gl_set;
	const char *token;
	char msg[600];
};

/* the failure of o: token and message (a function, so that a long path is
 * cut to the message's size without a format-truncation warning) */
static void fail_msg(struct fsop *o, const char *tok, const char *fmt, ...) DRR_PRINTF(3, 4);
static void fail_msg(struct fsop *o, const char *tok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	o->token = tok;
	vsnprintf(o->msg, sizeof o->msg, fmt, ap);
	va_end(ap);
}
#define FAIL fail_msg

static const char *errno_token(int e)
{
	return e == ENOENT || e == ENOTDIR ? "not_found" : "io";
}

static void do_read(struct fsop *r)
{
	int fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		FAIL(r, errno_token(errno), "cannot open '%s': %s", r->path, strerror(errno));
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		FAIL(r, "invalid", "'%s' is not a regular file", r->path);
		close(fd);
		return;
	}
	if ((size_t)st.st_size > r->max) {
		FAIL(r, "too_large", "'%s' is %lld bytes, over the limit of %zu", r->path,
		     (long long)st.st_size, r->max);
		close(fd);
		return;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = malloc(cap);
	while (buf && !atomic_load(&r->cancelled)) {
		if (len == cap) {
			if (cap > r->max) {
				FAIL(r, "too_large", "'%s' grew past the limit of %zu", r->path,
				     r->max);
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			FAIL(r, "io", "cannot read '%s': %s", r->path, strerror(errno));
			break;
		}
		if (n == 0) {
			r->data = buf;
			r->len = len;
			buf = NULL;
			break;
		}
		len += (size_t)n;
	}
	if (!r->data && !r->token) {
		int c = atomic_load(&r->cancelled);
		FAIL(r, c ? "cancelled" : "io", "cannot read '%s': %s", r->path,
		     c ? "cancelled" : "out of memory");
	}
	free(buf);
	close(fd);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* the directory part of path, in buf */
static const char *dir_of(const char *path, char *buf, size_t n)
{
	snprintf(buf, n, "%s", path);
	return dirname(buf);
}

/* temp file in the same directory, written, fsync'd, given its mode and
 * renamed over path; then the directory is fsync'd so the rename lasts */
static void do_write(struct fsop *o)
{
	char dbuf[4096], tmp[4200];
	const char *dir = dir_of(o->path, dbuf, sizeof dbuf);
	char bbuf[4096];
	snprintf(bbuf, sizeof bbuf, "%s", o->path);
	snprintf(tmp, sizeof tmp, "%s/.%s.drrun-XXXXXX", dir, basename(bbuf));
	struct stat old;
	int mode = o->mode_set ? o->mode : (stat(o->path, &old) == 0 ? (int)(old.st_mode & 07777) : 0644);
	if (stat(o->path, &old) == 0 && S_ISDIR(old.st_mode)) {
		FAIL(o, "conflict", "'%s' is a directory", o->path);
		return;
	}
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		FAIL(o, errno_token(errno), "cannot create a temporary file in '%s': %s", dir,
		     strerror(errno));
		return;
	}
	const char *step = "write";
	if (write_all(fd, o->in, o->in_len) < 0)
		goto fail;
	step = "chmod";
	if (fchmod(fd, (mode_t)mode) < 0)
		goto fail;
	step = "fsync";
	if (fsync(fd) < 0)
		goto fail;
	step = "close";
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	step = "rename";
	if (atomic_load(&o->cancelled)) {
		errno = ECANCELED;
		goto fail;
	}
	if (rename(tmp, o->path) < 0)
		goto fail;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		if (fsync(dfd) < 0 && errno != EINVAL) {
			FAIL(o, "io", "cannot sync the directory '%s': %s", dir, strerror(errno));
			close(dfd);
			return;
		}
		close(dfd);
	}
	return;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	if (e == ECANCELED)
		FAIL(o, "cancelled", "'%s' was not written: cancelled", o->path);
	else
		FAIL(o, "io", "cannot write '%s' (%s): %s", o->path, step, strerror(e));
}

static void do_append(struct fsop *o)
{
	int fd = open(o->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY,
		      (mode_t)(o->mode_set ? o->mode : 0644));
	if (fd < 0) {
		FAIL(o, errno_token(errno), "cannot open '%s': %s", o->path, strerror(errno));
		return;
	}
	if (write_all(fd, o->in, o->in_len) < 0 || fsync(fd) < 0) {
		FAIL(o, "io", "cannot append to '%s': %s", o->path, strerror(errno));
		close(fd);
		return;
	}
	if (close(fd) < 0)
		FAIL(o, "io", "cannot append to '%s': %s", o->path, strerror(errno));
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p) < 0 ? -1 : 0;
}

static void do_remove(struct fsop *o)
{
	struct stat st;
	if (lstat(o->path, &st) < 0) {
		if ((errno == ENOENT || errno == ENOTDIR) && o->missing_ok)
			return;
		FAIL(o, errno_token(errno), "cannot remove '%s': %s", o->path, strerror(errno));
		return;
	}
	int rc;
	if (S_ISDIR(st.st_mode) && o->recursive)
		rc = nftw(o->path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	else
		rc = remove(o->path);
	if (rc < 0) {
		int e = errno;
		FAIL(o, e == ENOTEMPTY || e == EEXIST ? "conflict" : "io", "cannot remove '%s': %s%s",
		     o->path, strerror(e),
		     e == ENOTEMPTY || e == EEXIST ? " (recursive = true removes its contents)" : "");
	}
}

static void do_mkdir(struct fsop *o)
{
	char p[4096];
	size_t n = strlen(o->path);
	if (n >= sizeof p) {
		FAIL(o, "invalid", "path too long");
		return;
	}
	memcpy(p, o->path, n + 1);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	mode_t mode = (mode_t)(o->mode_set ? o->mode : 0755);
	for (char *s = p + 1;; s++) {
		int end = *s == '\0';
		if (*s != '/' && !end)
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			FAIL(o, errno_token(errno), "cannot create '%s': %s", p, strerror(errno));
			return;
		}
		struct stat st;
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode)) {
			FAIL(o, "conflict", "'%s' exists and is not a directory", p);
			return;
		}
		if (end)
			break;
		*s = '/';
	}
}

static int glob_err(const char *p, int e)
{
	(void)p;
	return e == EACCES || e == ENOENT || e == ENOTDIR ? 0 : 1; /* unreadable dirs: skipped */
}

static void op_run(uv_work_t *req)
{
	struct fsop *o = req->data;
	switch (o->kind) {
	case K_READ:
		do_read(o);
		break;
	case K_WRITE:
		do_write(o);
		break;
	case K_APPEND:
		do_append(o);
		break;
	case K_STAT:
		if (stat(o->path, &o->st) < 0)
			FAIL(o, errno_token(errno), "cannot stat '%s': %s", o->path, strerror(errno));
		break;
	case K_EXISTS:
		if (stat(o->path, &o->st) == 0)
			o->exists = 1;
		else if (errno != ENOENT && errno != ENOTDIR)
			FAIL(o, "io", "cannot stat '%s': %s", o->path, strerror(errno));
		break;
	case K_GLOB: {
		int rc = glob(o->path, 0, glob_err, &o->gl);
		o->gl_set = 1;
		if (rc != 0 && rc != GLOB_NOMATCH)
			FAIL(o, "io", "cannot expand '%s': %s", o->path,
			     rc == GLOB_NOSPACE ? "out of memory" : "read error");
		break;
	}
	case K_REMOVE:
		do_remove(o);
		break;
	case K_MKDIR:
		do_mkdir(o);
		break;
	}
}

static void op_after(uv_work_t *req, int status)
{
	struct fsop *o = req->data;
	if (status == UV_ECANCELED && !o->token)
		FAIL(o, "cancelled", "cancelled");
	int ref = o->ref;
	o->ref = LUA_NOREF;
	if (o->op.task)
		drr_task_wake(o->op.task);
	luaL_unref(drr_lua_main(), LUA_REGISTRYINDEX, ref); /* o may be collected now */
}

static void op_cancel(struct drr_op *op)
{
	struct fsop *o = (struct fsop *)op;
	atomic_store(&o->cancelled, 1);
	uv_cancel((uv_req_t *)&o->req);
}

static int op_gc(lua_State *L)
{
	struct fsop *o = luaL_checkudata(L, 1, OP_MT);
	free(o->data);
	o->data = NULL;
	if (o->gl_set) {
		globfree(&o->gl);
		o->gl_set = 0;
	}
	return 0;
}

static const char *type_of(mode_t m)
{
	if (S_ISREG(m))
		return "file";
	if (S_ISDIR(m))
		return "directory";
	if (S_ISLNK(m))
		return "link";
	return "other";
}

static int op_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct fsop *o = (struct fsop *)ctx;
	if (o->token)
		return drr_push_fail(L, o->token, "fs.%s: %s", names[o->kind], o->msg);
	switch (o->kind) {
	case K_READ:
		lua_pushlstring(L, o->data, o->len);
		free(o->data);
		o->data = NULL;
		return 1;
	case K_STAT:
		lua_createtable(L, 0, 6);
		lua_pushstring(L, type_of(o->st.st_mode));
		lua_setfield(L, -2, "type");
		lua_pushinteger(L, (lua_Integer)o->st.st_size);
		lua_setfield(L, -2, "size");
		lua_pushinteger(L, (lua_Integer)(o->st.st_mode & 07777));
		lua_setfield(L, -2, "mode");
		lua_pushnumber(L, (double)o->st.st_mtim.tv_sec + o->st.st_mtim.tv_nsec / 1e9);
		lua_setfield(L, -2, "mtime");
		lua_pushinteger(L, (lua_Integer)o->st.st_uid);
		lua_setfield(L, -2, "uid");
		lua_pushinteger(L, (lua_Integer)o->st.st_gid);
		lua_setfield(L, -2, "gid");
		return 1;
	case K_EXISTS:
		lua_pushboolean(L, o->exists);
		return 1;
	case K_GLOB: {
		size_t n = o->gl_set ? o->gl.gl_pathc : 0;
		lua_createtable(L, (int)n, 0);
		for (size_t i = 0; i < n; i++) {
			lua_pushstring(L, o->gl.gl_pathv[i]);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		return 1;
	}
	default:
		lua_pushboolean(L, 1);
		return 1;
	}
}

/* mode = "0644" (octal text) or 420 (a number) */
static int opt_mode(lua_State *L, int idx, const char *who, int *mode)
{
	if (lua_isnoneornil(L, idx))
		return 0;
	lua_getfield(L, idx, "mode");
	int set = 1;
	if (lua_isnil(L, -1)) {
		set = 0;
	} else if (lua_type(L, -1) == LUA_TNUMBER && lua_isinteger(L, -1)) {
		lua_Integer m = lua_tointeger(L, -1);
		if (m < 0 || m > 07777)
			luaL_error(L, "%s: mode must be within 0 and 07777", who);
		*mode = (int)m;
	} else if (lua_type(L, -1) == LUA_TSTRING) {
		const char *s = lua_tostring(L, -1);
		char *end;
		long m = strtol(s, &end, 8);
		if (!*s || *end || m < 0 || m > 07777)
			luaL_error(L, "%s: mode must be octal text such as \"0644\", not '%s'", who, s);
		*mode = (int)m;
	} else {
		luaL_error(L, "%s: mode must be octal text (\"0644\") or an integer", who);
	}
	lua_pop(L, 1);
	return set;
}

static int opt_bool(lua_State *L, int idx, const char *field)
{
	if (lua_isnoneornil(L, idx))
		return 0;
	lua_getfield(L, idx, field);
	int b = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return b;
}

static int start(lua_State *L, enum kind kind)
{
	char who[32];
	snprintf(who, sizeof who, "fs.%s", names[kind]);
	const char *path = luaL_checkstring(L, 1);
	luaL_argcheck(L, *path, 1, "empty path");
	luaL_argcheck(L, strlen(path) < 4000, 1, "path too long");
	int opts = kind == K_WRITE || kind == K_APPEND ? 3 : 2;
	if (!lua_isnoneornil(L, opts))
		luaL_checktype(L, opts, LUA_TTABLE);
	size_t in_len = 0;
	const char *in = NULL;
	if (kind == K_WRITE || kind == K_APPEND)
		in = luaL_checklstring(L, 2, &in_len);
	lua_Integer max = READ_MAX_DEFAULT;
	if (kind == K_READ && !lua_isnoneornil(L, 2)) {
		lua_getfield(L, 2, "max");
		max = luaL_optinteger(L, -1, READ_MAX_DEFAULT);
		lua_pop(L, 1);
		luaL_argcheck(L, max >= 0, 2, "max must be >= 0");
	}
	int mode = 0, mode_set = 0;
	if (kind == K_WRITE || kind == K_APPEND || kind == K_MKDIR)
		mode_set = opt_mode(L, opts, who, &mode);
	int recursive = kind == K_REMOVE && opt_bool(L, opts, "recursive");
	int missing_ok = kind == K_REMOVE && opt_bool(L, opts, "missing_ok");
	drr_task_check(L, who);

	if (drr_dry_run() && kind != K_READ && kind != K_STAT && kind != K_EXISTS &&
	    kind != K_GLOB) {
		char m[16] = "";
		if (mode_set)
			snprintf(m, sizeof m, ", mode %04o", mode);
		switch (kind) {
		case K_WRITE:
			return drr_push_dry_run(L, "would write %zu bytes to %s (atomically%s)", in_len,
						path, m);
		case K_APPEND:
			return drr_push_dry_run(L, "would append %zu bytes to %s%s", in_len, path, mode_set ? m + 1 : "");
		case K_REMOVE:
			return drr_push_dry_run(L, "would remove %s%s", path,
						recursive ? " and everything under it" : "");
		default:
			return drr_push_dry_run(L, "would create the directory %s%s", path, mode_set ? m + 1 : "");
		}
	}

	struct fsop *o = lua_newuserdatauv(L, sizeof *o, 2);
	memset(o, 0, sizeof *o);
	atomic_init(&o->cancelled, 0);
	o->ref = LUA_NOREF;
	o->req.data = o;
	o->op.cancel = op_cancel;
	o->kind = kind;
	o->path = path;
	o->in = in;
	o->in_len = in_len;
	o->max = (size_t)max;
	o->mode = mode;
	o->mode_set = mode_set;
	o->recursive = recursive;
	o->missing_ok = missing_ok;
	luaL_setmetatable(L, OP_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	if (in) {
		lua_pushvalue(L, 2);
		lua_setiuservalue(L, -2, 2);
	}
	lua_pushvalue(L, -1);
	o->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	int rc = uv_queue_work(drr_loop(), &o->req, op_run, op_after);
	if (rc < 0) {
		luaL_unref(L, LUA_REGISTRYINDEX, o->ref);
		o->ref = LUA_NOREF;
		return drr_push_fail(L, "io", "%s: cannot queue work: %s", who, uv_strerror(rc));
	}
	return drr_task_yield(L, &o->op, (lua_KContext)o, op_k);
}

static int l_read(lua_State *L) { return start(L, K_READ); }
static int l_write(lua_State *L) { return start(L, K_WRITE); }
static int l_append(lua_State *L) { return start(L, K_APPEND); }
static int l_stat(lua_State *L) { return start(L, K_STAT); }
static int l_exists(lua_State *L) { return start(L, K_EXISTS); }
static int l_glob(lua_State *L) { return start(L, K_GLOB); }
static int l_remove(lua_State *L) { return start(L, K_REMOVE); }
static int l_mkdir(lua_State *L) { return start(L, K_MKDIR); }

int luaopen_drrun_fs(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "read", l_read },	{ "write", l_write },	{ "append", l_append },
		{ "stat", l_stat },	{ "exists", l_exists }, { "glob", l_glob },
		{ "remove", l_remove }, { "mkdir", l_mkdir },	{ NULL, NULL },
	};
	if (luaL_newmetatable(L, OP_MT)) {
		lua_pushcfunction(L, op_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	return 1;
}
