/*
 * fs.c - `require "drrun.fs"`: local files without blocking the loop.
 *   fs.read(path [, { max = bytes }]) -> string | nil, err, token
 * The open, read and close run in libuv's thread pool; the step waits.
 * Tokens: not_found, io, too_large, invalid (not a regular file).
 */
#include "drrun/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_MT "drrun.fs.Read"
#define READ_MAX_DEFAULT (16 * 1024 * 1024)

struct rd {
	struct drr_op op;
	uv_work_t req;
	atomic_int cancelled;
	int ref;
	const char *path; /* kept alive as the userdata's user value */
	size_t max;
	char *data; /* result, freed by __gc */
	size_t len;
	const char *token;
	char msg[512];
};

static void rd_run(uv_work_t *req)
{
	struct rd *r = req->data;
	int fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r->token = errno == ENOENT || errno == ENOTDIR ? "not_found" : "io";
		snprintf(r->msg, sizeof r->msg, "cannot open '%s': %s", r->path, strerror(errno));
		return;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		r->token = "invalid";
		snprintf(r->msg, sizeof r->msg, "'%s' is not a regular file", r->path);
		close(fd);
		return;
	}
	if ((size_t)st.st_size > r->max) {
		r->token = "too_large";
		snprintf(r->msg, sizeof r->msg, "'%s' is %lld bytes, over the limit of %zu",
			 r->path, (long long)st.st_size, r->max);
		close(fd);
		return;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *buf = malloc(cap);
	while (buf && !atomic_load(&r->cancelled)) {
		if (len == cap) {
			if (cap > r->max) {
				r->token = "too_large";
				snprintf(r->msg, sizeof r->msg, "'%s' grew past the limit of %zu",
					 r->path, r->max);
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
			r->token = "io";
			snprintf(r->msg, sizeof r->msg, "cannot read '%s': %s", r->path,
				 strerror(errno));
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
		r->token = atomic_load(&r->cancelled) ? "cancelled" : "io";
		snprintf(r->msg, sizeof r->msg, "cannot read '%s': %s", r->path,
			 r->token[0] == 'c' ? "cancelled" : "out of memory");
	}
	free(buf);
	close(fd);
}

static void rd_after(uv_work_t *req, int status)
{
	struct rd *r = req->data;
	if (status == UV_ECANCELED && !r->token) {
		r->token = "cancelled";
		snprintf(r->msg, sizeof r->msg, "cancelled");
	}
	int ref = r->ref;
	r->ref = LUA_NOREF;
	if (r->op.task)
		drr_task_wake(r->op.task);
	luaL_unref(drr_lua_main(), LUA_REGISTRYINDEX, ref); /* r may be collected now */
}

static void rd_cancel(struct drr_op *op)
{
	struct rd *r = (struct rd *)op;
	atomic_store(&r->cancelled, 1);
	uv_cancel((uv_req_t *)&r->req);
}

static int rd_gc(lua_State *L)
{
	struct rd *r = luaL_checkudata(L, 1, READ_MT);
	free(r->data);
	r->data = NULL;
	return 0;
}

static int rd_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct rd *r = (struct rd *)ctx;
	if (r->token)
		return drr_push_fail(L, r->token, "fs.read: %s", r->msg);
	lua_pushlstring(L, r->data, r->len);
	free(r->data);
	r->data = NULL;
	return 1;
}

/* fs.read(path [, { max = bytes }]) */
static int l_read(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	luaL_argcheck(L, *path, 1, "empty path");
	lua_Integer max = READ_MAX_DEFAULT;
	if (!lua_isnoneornil(L, 2)) {
		luaL_checktype(L, 2, LUA_TTABLE);
		lua_getfield(L, 2, "max");
		max = luaL_optinteger(L, -1, READ_MAX_DEFAULT);
		lua_pop(L, 1);
		luaL_argcheck(L, max >= 0, 2, "max must be >= 0");
	}
	drr_task_check(L, "fs.read");
	struct rd *r = lua_newuserdatauv(L, sizeof *r, 1);
	memset(r, 0, sizeof *r);
	atomic_init(&r->cancelled, 0);
	r->ref = LUA_NOREF;
	r->req.data = r;
	r->op.cancel = rd_cancel;
	r->path = path;
	r->max = (size_t)max;
	luaL_setmetatable(L, READ_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, -1);
	r->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	int rc = uv_queue_work(drr_loop(), &r->req, rd_run, rd_after);
	if (rc < 0) {
		luaL_unref(L, LUA_REGISTRYINDEX, r->ref);
		r->ref = LUA_NOREF;
		return drr_push_fail(L, "io", "fs.read: cannot queue work: %s", uv_strerror(rc));
	}
	return drr_task_yield(L, &r->op, (lua_KContext)r, rd_k);
}

int luaopen_drrun_fs(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "read", l_read },
		{ NULL, NULL },
	};
	if (luaL_newmetatable(L, READ_MT)) {
		lua_pushcfunction(L, rd_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	return 1;
}
