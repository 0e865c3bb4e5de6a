/*
 * http/stream.c - bodies streamed from and to files for http.c, with their
 * SHA-256, every disk operation in libuv's thread pool (see stream.h).
 *
 * One job at a time per transfer (x->busy): while it runs the pool owns the
 * file, the hash and x->next; the loop owns x->cur.  A job's completion
 * (job_after, on the loop) swaps the roles back and unpauses curl if its
 * callback had to wait.  A transfer that is cancelled mid-job is released
 * by the job's completion, never under it.
 */
#include "http/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { J_OPEN, J_READ, J_WRITE, J_FINISH, J_ABORT };

static void job_after(uv_work_t *w, int status);

static void xfail(struct http_xfer *x, const char *token, const char *fmt, const char *a, int err)
{
	if (x->token)
		return;
	x->token = token;
	snprintf(x->msg, sizeof x->msg, fmt, a, err ? strerror(err) : "");
}

static void chunk_room(struct http_chunk *c, size_t n)
{
	if (c->cap >= n)
		return;
	c->data = drr_xrealloc(c->data, n);
	c->cap = n;
}

static void hex_of(const unsigned char md[32], char out[65])
{
	static const char d[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = d[md[i] >> 4];
		out[2 * i + 1] = d[md[i] & 15];
	}
	out[64] = 0;
}

static void b64_of(const unsigned char *p, size_t n, char *out)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
			     (i + 2 < n ? p[i + 2] : 0);
		out[o++] = t[v >> 18 & 63];
		out[o++] = t[v >> 12 & 63];
		out[o++] = i + 1 < n ? t[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? t[v & 63] : '=';
	}
	out[o] = 0;
}

/* ---- the pool's side ----------------------------------------------------------- */

static void read_next(struct http_xfer *x)
{
	size_t want = (size_t)(x->length - x->read_pos < (int64_t)HTTP_CHUNK
				       ? x->length - x->read_pos
				       : (int64_t)HTTP_CHUNK);
	chunk_room(&x->next, HTTP_CHUNK);
	size_t got = 0;
	while (got < want) {
		ssize_t n = pread(x->fd, x->next.data + got, want - got,
				  (off_t)(x->offset + x->read_pos + (int64_t)got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			xfail(x, "io", "cannot read '%s': %s", x->path, errno);
			return;
		}
		if (n == 0) {
			xfail(x, "io", "'%s' became shorter while it was sent%s", x->path, 0);
			return;
		}
		got += (size_t)n;
	}
	SHA256_Update(&x->sha, x->next.data, got);
	x->bytes += got;
	x->read_pos += (int64_t)got;
	x->next.len = got;
}

static void open_up(struct http_xfer *x)
{
	x->fd = open(x->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (x->fd < 0) {
		xfail(x, errno == ENOENT || errno == ENOTDIR ? "not_found" : "io",
		      "cannot open '%s': %s", x->path, errno);
		return;
	}
	struct stat st;
	if (fstat(x->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		xfail(x, "invalid", "'%s' is not a regular file%s", x->path, 0);
		return;
	}
	int64_t size = (int64_t)st.st_size;
	x->size = size;
	if (x->length < 0)
		x->length = size - x->offset;
	if (x->offset > size || x->length < 0 || x->offset + x->length > size) {
		x->token = "invalid";
		snprintf(x->msg, sizeof x->msg, "'%s' is %lld bytes: it has no bytes %lld to %lld",
			 x->path, (long long)size, (long long)x->offset,
			 (long long)(x->offset + x->length));
		return;
	}
	SHA256_Init(&x->sha);
	if (x->length > 0)
		read_next(x);
}

static void open_down(struct http_xfer *x)
{
	SHA256_Init(&x->sha);
	if (x->dry)
		return;
	x->tmp = drr_xasprintf("%s.drrun-XXXXXX", x->path);
	x->fd = mkostemp(x->tmp, O_CLOEXEC);
	if (x->fd < 0) {
		int e = errno;
		free(x->tmp);
		x->tmp = NULL;
		xfail(x, "io", "cannot create a file beside '%s': %s", x->path, e);
	}
}

static int write_all(struct http_xfer *x, const char *p, size_t n)
{
	SHA256_Update(&x->sha, p, n);
	x->bytes += n;
	while (n && x->fd >= 0) {
		ssize_t w = write(x->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			xfail(x, "io", "cannot write '%s': %s", x->path, errno);
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void close_fd(struct http_xfer *x)
{
	if (x->fd >= 0)
		close(x->fd);
	x->fd = -1;
}

static void remove_tmp(struct http_xfer *x)
{
	if (x->tmp) {
		unlink(x->tmp);
		free(x->tmp);
		x->tmp = NULL;
	}
}

static void sync_dir(const char *path)
{
	char *copy = drr_xstrdup(path);
	int d = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d >= 0) {
		fsync(d);
		close(d);
	}
	free(copy);
}

static void finish(struct http_xfer *x, int ok)
{
	unsigned char md[32];
	if (x->mode == XFER_UP || !ok || x->token) {
		SHA256_Final(md, &x->sha);
		hex_of(md, x->sha256);
		close_fd(x);
		remove_tmp(x);
		return;
	}
	if (x->cur.len && write_all(x, x->cur.data, x->cur.len) == 0)
		x->cur.len = 0;
	SHA256_Final(md, &x->sha);
	hex_of(md, x->sha256);
	char b64[48];
	b64_of(md, 32, b64);
	if (!x->token && x->want_hex[0] && strcmp(x->want_hex, x->sha256)) {
		x->token = "invalid";
		snprintf(x->msg, sizeof x->msg,
			 "sha256 mismatch: the SHA-256 of what was read (%s) is not the one "
			 "expected (%s)",
			 x->sha256, x->want_hex);
	} else if (!x->token && x->got_b64[0] && strcmp(x->got_b64, b64)) {
		x->token = "invalid";
		snprintf(x->msg, sizeof x->msg,
			 "sha256 mismatch: the SHA-256 of what was read (%s) is not the "
			 "server's %s (%s)",
			 x->sha256, x->want_header, x->got_b64);
	}
	if (!x->token && x->fd >= 0 && fsync(x->fd) < 0)
		xfail(x, "io", "cannot sync '%s': %s", x->path, errno);
	close_fd(x);
	if (!x->token && x->tmp) {
		if (rename(x->tmp, x->path) < 0) {
			xfail(x, "io", "cannot rename onto '%s': %s", x->path, errno);
		} else {
			free(x->tmp);
			x->tmp = NULL;
			sync_dir(x->path);
		}
	}
	remove_tmp(x);
}

static void job_run(uv_work_t *w)
{
	struct http_xfer *x = w->data;
	switch (x->job) {
	case J_OPEN:
		if (x->mode == XFER_UP)
			open_up(x);
		else
			open_down(x);
		break;
	case J_READ:
		read_next(x);
		break;
	case J_WRITE:
		if (write_all(x, x->next.data, x->next.len) == 0)
			x->next.len = 0;
		break;
	case J_FINISH:
		finish(x, x->finished);
		break;
	case J_ABORT:
		close_fd(x);
		remove_tmp(x);
		break;
	}
}

/* ---- the loop's side --------------------------------------------------------- */

static void start_job(struct http_xfer *x, int job)
{
	x->job = job;
	x->busy = 1;
	x->work.data = x;
	if (uv_queue_work(drr_loop(), &x->work, job_run, job_after) < 0) {
		/* only for bad arguments: do the job here rather than lose it */
		job_run(&x->work);
		job_after(&x->work, 0);
	}
}

static void unpause(struct http_xfer *x)
{
	if (x->paused) {
		x->paused = 0;
		curl_easy_pause(x->easy, CURLPAUSE_CONT);
	}
}

/* Down: hand the loop's filled chunk to the pool to write (x not busy). */
static void write_cur(struct http_xfer *x)
{
	struct http_chunk t = x->next;
	x->next = x->cur;
	x->cur = t;
	x->cur.len = 0;
	start_job(x, J_WRITE);
}

static void job_after(uv_work_t *w, int status)
{
	(void)status;
	struct http_xfer *x = w->data;
	int job = x->job;
	x->busy = 0;
	if (job == J_ABORT) {
		x->on_abort(x);
		return;
	}
	if (x->cancelled) {
		start_job(x, J_ABORT);
		return;
	}
	if (x->finish_pending && job != J_FINISH) { /* curl ended while this job ran */
		x->finish_pending = 0;
		start_job(x, J_FINISH);
		return;
	}
	switch (job) {
	case J_OPEN:
		x->on_open(x);
		break;
	case J_READ:
		if (x->stale) { /* curl rewound meanwhile: read from the start again */
			x->stale = 0;
			x->next.len = 0;
			x->read_pos = 0;
			x->bytes = 0;
			SHA256_Init(&x->sha);
			start_job(x, J_READ);
			break;
		}
		unpause(x);
		break;
	case J_WRITE:
		if (!x->token && x->cur.len >= HTTP_CHUNK) /* filled past a chunk meanwhile */
			write_cur(x);
		unpause(x);
		break;
	case J_FINISH:
		x->on_finish(x);
		break;
	}
}

int http_xfer_open(struct http_xfer *x)
{
	char err[200];
	if (!drr_libcrypto_load(err, sizeof err)) {
		x->token = "crypto";
		snprintf(x->msg, sizeof x->msg, "%s", err);
		return -1;
	}
	x->fd = -1;
	start_job(x, J_OPEN);
	return 0;
}

size_t http_xfer_read(char *p, size_t sz, size_t n, void *ud)
{
	struct http_xfer *x = ud;
	size_t want = sz * n;
	if (x->token)
		return CURL_READFUNC_ABORT;
	if (x->cur_off == x->cur.len) {
		if (x->given >= x->length)
			return 0; /* all of it was sent */
		if (x->busy || !x->next.len) {
			x->paused = 1;
			return CURL_READFUNC_PAUSE;
		}
		struct http_chunk t = x->cur;
		x->cur = x->next;
		x->next = t;
		x->next.len = 0;
		x->cur_off = 0;
		if (x->read_pos < x->length)
			start_job(x, J_READ);
	}
	size_t k = x->cur.len - x->cur_off;
	if (k > want)
		k = want;
	memcpy(p, x->cur.data + x->cur_off, k);
	x->cur_off += k;
	x->given += (int64_t)k;
	return k;
}

int http_xfer_seek(void *ud, curl_off_t off, int origin)
{
	struct http_xfer *x = ud;
	if (off != 0 || origin != SEEK_SET)
		return CURL_SEEKFUNC_CANTSEEK;
	x->given = 0;
	x->cur.len = x->cur_off = 0;
	if (x->busy) {
		x->stale = 1;
	} else {
		x->next.len = 0;
		x->read_pos = 0;
		x->bytes = 0;
		SHA256_Init(&x->sha);
		if (x->length > 0)
			start_job(x, J_READ);
	}
	return CURL_SEEKFUNC_OK;
}

size_t http_xfer_write(struct http_xfer *x, const char *p, size_t len)
{
	if (x->token)
		return 0; /* a failed write: curl stops with CURLE_WRITE_ERROR */
	size_t n = x->cur.len + len;
	if (x->cur.len && n > HTTP_CHUNK) {
		if (!x->busy) {
			write_cur(x);
			n = len;
		} else if (n > HTTP_SPILL) {
			/* the pool is a whole spill behind: only now stop curl,
			 * which then holds what it has read until job_after */
			x->paused = 1;
			return CURL_WRITEFUNC_PAUSE;
		}
		/* else the write in the pool is still running: keep filling
		 * past the chunk rather than pause curl mid-read */
	}
	chunk_room(&x->cur, n <= HTTP_CHUNK ? HTTP_CHUNK : n <= HTTP_SPILL ? HTTP_SPILL : n);
	memcpy(x->cur.data + x->cur.len, p, len);
	x->cur.len += len;
	return len;
}

void http_xfer_finish(struct http_xfer *x, int ok)
{
	x->finished = ok ? 1 : 0;
	if (x->busy) /* the last write (or a read ahead) is still in the pool */
		x->finish_pending = 1;
	else
		start_job(x, J_FINISH);
}

void http_xfer_abort(struct http_xfer *x)
{
	x->cancelled = 1;
	if (!x->busy)
		start_job(x, J_ABORT);
}

void http_xfer_free(struct http_xfer *x)
{
	free(x->cur.data);
	free(x->next.data);
	free(x->path);
	free(x->tmp);
	memset(x, 0, sizeof *x);
	x->fd = -1;
}

/* ---- core.file_sha256 ------------------------------------------------------------ */

struct hjob {
	struct drr_op op;
	uv_work_t work;
	char *path;
	int64_t offset, length;
	atomic_int stop;
	int cancelled, done;
	const char *token;
	char msg[300];
	char hex[65];
	uint64_t bytes;
	int64_t size;
	int64_t small; /* return a range this short as body; leave a longer one unread */
	char *body;    /* the range, when small */
	int unread;    /* longer than small: only the size is known */
};

/* With small: the range's length first, then its one chunk read, or
 * nothing read when it is longer (1: then only j->size is known). */
static int open_small(struct hjob *j, struct http_xfer *x)
{
	x->length = 0;
	open_up(x);
	x->length = j->length < 0 ? x->size - x->offset : j->length;
	if (!x->token && x->offset + x->length > x->size) {
		x->token = "invalid";
		snprintf(x->msg, sizeof x->msg, "'%s' is %lld bytes: it has no bytes %lld to %lld",
			 x->path, (long long)x->size, (long long)x->offset,
			 (long long)(x->offset + x->length));
	}
	if (!x->token && x->length > j->small) {
		j->unread = 1;
		j->size = x->size;
		close_fd(x);
		return 1;
	}
	if (!x->token && x->length > 0)
		read_next(x);
	return 0;
}

static void hjob_run(uv_work_t *w)
{
	struct hjob *j = w->data;
	struct http_xfer x = { 0 };
	x.mode = XFER_UP;
	x.path = j->path;
	x.offset = j->offset;
	x.length = j->length;
	if (j->small >= 0) {
		if (open_small(j, &x))
			return;
	} else {
		open_up(&x); /* reads the first chunk too */
	}
	while (!x.token && x.read_pos < x.length && !atomic_load(&j->stop))
		read_next(&x);
	if (atomic_load(&j->stop))
		xfail(&x, "cancelled", "hashing '%s' was cancelled%s", j->path, 0);
	unsigned char md[32];
	if (!x.token)
		SHA256_Final(md, &x.sha);
	close_fd(&x);
	if (!x.token && j->small >= 0) {
		j->body = x.next.data; /* the one chunk read (small <= HTTP_CHUNK) */
		x.next.data = NULL;
	}
	free(x.next.data);
	if (x.token) {
		j->token = x.token;
		memcpy(j->msg, x.msg, sizeof j->msg);
		return;
	}
	hex_of(md, j->hex);
	j->bytes = x.bytes;
	j->size = x.size;
}

static void hjob_free(struct hjob *j)
{
	free(j->body);
	free(j->path);
	free(j);
}

static void hjob_after(uv_work_t *w, int status)
{
	(void)status;
	struct hjob *j = w->data;
	j->done = 1;
	if (j->cancelled)
		hjob_free(j);
	else
		drr_task_wake(j->op.task);
}

static void hjob_cancel(struct drr_op *op)
{
	struct hjob *j = (struct hjob *)op;
	if (j->done) {
		hjob_free(j);
		return;
	}
	j->cancelled = 1;
	atomic_store(&j->stop, 1);
}

static int hjob_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct hjob *j = (struct hjob *)ctx;
	if (j->token) {
		int n = drr_push_fail(L, j->token, "%s", j->msg);
		hjob_free(j);
		return n;
	}
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, (lua_Integer)j->size);
	lua_setfield(L, -2, "size");
	if (j->unread) {
		hjob_free(j);
		return 1;
	}
	if (j->small >= 0) {
		lua_pushlstring(L, j->body ? j->body : "", (size_t)j->bytes);
		lua_setfield(L, -2, "body");
	}
	lua_pushstring(L, j->hex);
	lua_setfield(L, -2, "sha256");
	lua_pushinteger(L, (lua_Integer)j->bytes);
	lua_setfield(L, -2, "bytes");
	hjob_free(j);
	return 1;
}

int http_l_file_sha256(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	luaL_argcheck(L, *path, 1, "empty path");
	lua_Integer off = luaL_optinteger(L, 2, 0), len = luaL_optinteger(L, 3, -1);
	luaL_argcheck(L, off >= 0, 2, "offset must be >= 0");
	luaL_argcheck(L, len >= -1, 3, "length must be >= 0");
	lua_Integer small = -1;
	if (!lua_isnoneornil(L, 4)) {
		luaL_checktype(L, 4, LUA_TTABLE);
		lua_getfield(L, 4, "small");
		small = luaL_checkinteger(L, -1);
		lua_pop(L, 1);
		luaL_argcheck(L, small >= 0 && small <= (lua_Integer)HTTP_CHUNK, 4,
			      "small must be 0 to 262144 bytes");
	}
	drr_task_check(L, "http.file_sha256");
	char err[200];
	if (!drr_libcrypto_load(err, sizeof err))
		return drr_push_fail(L, "crypto", "%s", err);
	struct hjob *j = drr_xcalloc(1, sizeof *j);
	j->op.cancel = hjob_cancel;
	j->path = drr_xstrdup(path);
	j->offset = off;
	j->length = len;
	j->small = small;
	atomic_init(&j->stop, 0);
	j->work.data = j;
	int rc = uv_queue_work(drr_loop(), &j->work, hjob_run, hjob_after);
	if (rc < 0) {
		hjob_free(j);
		return drr_push_fail(L, "io", "cannot queue work: %s", uv_strerror(rc));
	}
	return drr_task_yield(L, &j->op, (lua_KContext)j, hjob_k);
}
