/*
 * http.c - "drrun.http.core": HTTP(S) requests on the event loop.
 *
 * libcurl's multi-socket interface, driven by libuv: curl tells us which
 * sockets to watch (one uv_poll handle each) and when to wake it (one
 * uv_timer); the loop tells curl what happened.  A request is an easy handle
 * in the one multi handle of the run, so connections are reused across
 * requests and steps, and a step can have a thousand requests in flight
 * without a thread.  The public module is stdlib/drrun/http.lua (retries,
 * shorthands); this file is the mechanism:
 *
 *   core.request{ method, url, headers = {}, body = "", timeout = "30s",
 *                 connect_timeout = "10s", follow = false, max_body = 16 MiB,
 *                 tls = { verify = true, ca, cert, key } }
 *     -> { status, headers = { lowercased name = value }, body,
 *          time = { connect, tls, first_byte, total } }
 *     -> nil, "token: detail", token   token: dns, refused, timeout, tls,
 *                                      closed, too_large, http
 *   core.connect(host, port, timeout) -> true | nil, "token: detail", token
 *
 * An HTTP 500 is a result.  Exports luaopen_drrun_http.
 */
#include "drrun/plugin.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http/libcurl.h" /* libcurl is opened when this module is required */
#include "http/stream.h"  /* bodies from and to files */

#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_MAX_BODY (16 << 20)

struct http_ctx {
	CURLM *multi;
	uv_timer_t timer;
	uv_loop_t *loop;
};

static struct http_ctx *H;

struct sock {
	uv_poll_t poll;
	curl_socket_t fd;
};

struct req {
	struct drr_op op;
	CURL *easy;
	struct curl_slist *headers;
	struct drr_buf body, hdrs;
	char *post; /* request body, owned */
	size_t max_body;
	int too_large, connect_only, done;
	CURLcode result;
	char errbuf[CURL_ERROR_SIZE];
	double timeout;
	struct http_xfer x; /* body_file = or output = (stream.c) */
	int detached;	    /* nobody waits for the answer (see l_request) */
	struct req *next_detached;
};

static struct req *detached; /* in flight, freed when done or at shutdown */

/* ---- the multi handle on the loop ------------------------------------------ */

static void check_done(void);
static void http_cleanup(void);
static uv_timer_t *grace;

static void sock_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct sock *s = h->data;
	int flags = 0, running;
	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	curl_multi_socket_action(H->multi, s->fd, flags, &running);
	check_done();
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	(void)e, (void)userp;
	struct sock *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, sock_closed);
			curl_multi_assign(H->multi, fd, NULL);
		}
		return 0;
	}
	if (!s) {
		s = drr_xcalloc(1, sizeof *s);
		s->fd = fd;
		if (uv_poll_init_socket(H->loop, &s->poll, fd) < 0) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		curl_multi_assign(H->multi, fd, s);
	}
	int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
	uv_poll_start(&s->poll, ev, on_poll);
	return 0;
}

static void on_timer(uv_timer_t *t)
{
	(void)t;
	int running;
	curl_multi_socket_action(H->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done();
}

static int on_curl_timer(CURLM *m, long ms, void *userp)
{
	(void)m, (void)userp;
	if (ms < 0)
		uv_timer_stop(&H->timer);
	else /* 0 means "soon": never call back into curl from here */
		uv_timer_start(&H->timer, on_timer, (uint64_t)ms, 0);
	return 0;
}

static void req_free(struct req *q)
{
	if (q->easy)
		curl_easy_cleanup(q->easy);
	curl_slist_free_all(q->headers);
	drr_buf_free(&q->body);
	drr_buf_free(&q->hdrs);
	free(q->post);
	http_xfer_free(&q->x);
	free(q);
}

/* The value of header name in the last block of q->hdrs into out (at most
 * n - 1 bytes), or "" when absent. */
static void find_header(const struct req *q, const char *name, char *out, size_t n)
{
	size_t nl = strlen(name);
	out[0] = 0;
	const char *p = q->hdrs.data, *end = p ? p + q->hdrs.len : NULL;
	while (p && p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		const char *le = e ? e : end;
		if ((size_t)(le - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
			const char *v = p + nl + 1;
			while (v < le && (*v == ' ' || *v == '\t'))
				v++;
			while (le > v && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
				le--;
			size_t k = (size_t)(le - v) < n - 1 ? (size_t)(le - v) : n - 1;
			memcpy(out, v, k);
			out[k] = 0;
		}
		p = e ? e + 1 : end;
	}
}

static void req_finished(struct http_xfer *x)
{
	struct req *q = (struct req *)((char *)x - offsetof(struct req, x));
	drr_task_wake(q->op.task);
}

static void req_aborted(struct http_xfer *x)
{
	req_free((struct req *)((char *)x - offsetof(struct req, x)));
}

static int is_2xx(CURL *e)
{
	long code = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	return code >= 200 && code < 300;
}

static void check_done(void)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(H->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct req *q = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		q->result = m->data.result;
		q->done = 1;
		curl_multi_remove_handle(H->multi, q->easy);
		if (q->detached) {
			for (struct req **p = &detached; *p; p = &(*p)->next_detached)
				if (*p == q) {
					*p = q->next_detached;
					break;
				}
			req_free(q);
			if (grace && !detached) { /* the run was waiting for it */
				http_cleanup();
				return;
			}
		} else if (q->x.mode) {
			int ok = q->result == CURLE_OK && is_2xx(q->easy);
			if (ok && q->x.want_header[0])
				find_header(q, q->x.want_header, q->x.got_b64, sizeof q->x.got_b64);
			q->x.on_finish = req_finished;
			http_xfer_finish(&q->x, ok);
		} else {
			drr_task_wake(q->op.task);
		}
	}
}

static void timer_closed(uv_handle_t *h)
{
	free(h->data);
}

/* grace: the run is over, detached requests are not (http_shutdown) */

static void grace_closed(uv_handle_t *h)
{
	free(h);
}

static void http_cleanup(void)
{
	if (grace) {
		uv_timer_stop(grace);
		uv_close((uv_handle_t *)grace, grace_closed);
		grace = NULL;
	}
	while (detached) { /* too late: nobody will read their answers */
		struct req *q = detached;
		detached = q->next_detached;
		curl_multi_remove_handle(H->multi, q->easy);
		req_free(q);
	}
	curl_multi_cleanup(H->multi); /* closes cached connections (POLL_REMOVE) */
	uv_timer_stop(&H->timer);
	H->timer.data = H;
	uv_close((uv_handle_t *)&H->timer, timer_closed);
	H = NULL;
	curl_global_cleanup();
}

static void on_grace(uv_timer_t *t)
{
	(void)t;
	http_cleanup();
}

/* The run ends.  Detached requests (an upload's abort as its step was
 * cancelled) get up to 5 s more: the loop runs on until they are done. */
static void http_shutdown(void *ud)
{
	(void)ud;
	if (!H)
		return;
	if (detached) {
		grace = drr_xmalloc(sizeof *grace);
		uv_timer_init(H->loop, grace);
		uv_timer_start(grace, on_grace, 5000, 0);
		return;
	}
	http_cleanup();
}

static void ensure_ctx(void)
{
	if (H)
		return;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	H = drr_xcalloc(1, sizeof *H);
	H->loop = drr_loop();
	H->multi = curl_multi_init();
	uv_timer_init(H->loop, &H->timer);
	curl_multi_setopt(H->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(H->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(H->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
	drr_engine_at_shutdown(http_shutdown, NULL);
}

/* ---- a request ----------------------------------------------------------------- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct req *q = ud;
	size_t len = sz * n;
	if (q->x.mode == XFER_DOWN && is_2xx(q->easy))
		return http_xfer_write(&q->x, p, len);
	if (q->body.len + len > q->max_body) {
		q->too_large = 1;
		return 0; /* abort the transfer */
	}
	drr_buf_add(&q->body, p, len);
	return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
	struct req *q = ud;
	size_t len = sz * n;
	/* a new status line (redirect, 100 Continue): keep only the last block */
	if (len > 5 && !strncmp(p, "HTTP/", 5))
		q->hdrs.len = 0;
	if (q->hdrs.len + len < (1u << 20))
		drr_buf_add(&q->hdrs, p, len);
	return len;
}

static void req_cancel(struct drr_op *op)
{
	struct req *q = (struct req *)op;
	if (!q->done)
		curl_multi_remove_handle(H->multi, q->easy);
	if (q->x.mode && (q->x.fd >= 0 || q->x.tmp || q->x.busy)) {
		/* the pool may hold q: stream.c frees it once nothing does */
		q->x.on_abort = req_aborted;
		http_xfer_abort(&q->x);
		return;
	}
	req_free(q);
}

static const char *token_of(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return "dns";
	case CURLE_COULDNT_CONNECT:
		return "refused";
	case CURLE_OPERATION_TIMEDOUT:
		return "timeout";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		return "tls";
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		return "closed";
	case CURLE_FILESIZE_EXCEEDED:
		return "too_large";
	default:
		return "http";
	}
}

/* Push the headers as a table of lowercased names.  [-0, +1, m] */
static void push_headers(lua_State *L, const struct drr_buf *h)
{
	lua_newtable(L);
	const char *p = h->data, *end = h->data ? h->data + h->len : NULL;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *colon = memchr(p, ':', (size_t)(le - p));
		if (colon && strncmp(p, "HTTP/", 5)) {
			luaL_Buffer b;
			luaL_buffinit(L, &b);
			for (const char *c = p; c < colon; c++)
				luaL_addchar(&b, (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c));
			luaL_pushresult(&b);
			const char *v = colon + 1, *ve = le;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			lua_pushvalue(L, -1);
			if (lua_rawget(L, -3) == LUA_TSTRING) { /* repeated: join with ", " */
				lua_pushliteral(L, ", ");
				lua_pushlstring(L, v, (size_t)(ve - v));
				lua_concat(L, 3);
			} else {
				lua_pop(L, 1);
				lua_pushlstring(L, v, (size_t)(ve - v));
			}
			lua_rawset(L, -3);
		}
		p = nl ? nl + 1 : end;
	}
}

static double info_secs(CURL *e, CURLINFO what)
{
	curl_off_t us = 0;
	curl_easy_getinfo(e, what, &us);
	return (double)us / 1e6;
}

/* The fields of a streamed body in the result at -1.  [-0, +0, m] */
static void push_stream(lua_State *L, struct req *q)
{
	const char *pre = q->x.mode == XFER_UP ? "sent_" : "";
	if (q->x.mode == XFER_DOWN && !is_2xx(q->easy))
		return; /* an error's body: in memory, as body */
	lua_pushinteger(L, (lua_Integer)q->x.bytes);
	lua_setfield(L, -2, q->x.mode == XFER_UP ? "sent_bytes" : "bytes");
	lua_pushstring(L, q->x.sha256);
	lua_setfield(L, -2, pre[0] ? "sent_sha256" : "sha256");
	if (q->x.mode == XFER_DOWN) {
		if (q->x.dry) {
			lua_pushboolean(L, 1);
			lua_setfield(L, -2, "dry_run");
		} else {
			lua_pushstring(L, q->x.path);
			lua_setfield(L, -2, "file");
		}
	}
}

static int request_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct req *q = (struct req *)ctx;
	int n;
	if (q->x.token) {
		n = drr_push_fail(L, q->x.token, "%s", q->x.msg);
	} else if (q->result != CURLE_OK) {
		const char *tok = q->too_large ? "too_large" : token_of(q->result);
		if (q->too_large)
			n = drr_push_fail(L, tok, "response body larger than %zu bytes",
					  q->max_body);
		else
			n = drr_push_fail(L, tok, "%s",
					  q->errbuf[0] ? q->errbuf : curl_easy_strerror(q->result));
	} else if (q->connect_only) {
		lua_pushboolean(L, 1);
		n = 1;
	} else {
		long code = 0;
		curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
		lua_createtable(L, 0, 5);
		lua_pushinteger(L, code);
		lua_setfield(L, -2, "status");
		push_headers(L, &q->hdrs);
		lua_setfield(L, -2, "headers");
		lua_pushlstring(L, q->body.data ? q->body.data : "", q->body.len);
		lua_setfield(L, -2, "body");
		if (q->x.mode)
			push_stream(L, q);
		lua_createtable(L, 0, 4);
		lua_pushnumber(L, info_secs(q->easy, CURLINFO_CONNECT_TIME_T));
		lua_setfield(L, -2, "connect");
		lua_pushnumber(L, info_secs(q->easy, CURLINFO_APPCONNECT_TIME_T));
		lua_setfield(L, -2, "tls");
		lua_pushnumber(L, info_secs(q->easy, CURLINFO_STARTTRANSFER_TIME_T));
		lua_setfield(L, -2, "first_byte");
		lua_pushnumber(L, info_secs(q->easy, CURLINFO_TOTAL_TIME_T));
		lua_setfield(L, -2, "total");
		lua_setfield(L, -2, "time");
		char *eff = NULL;
		curl_easy_getinfo(q->easy, CURLINFO_EFFECTIVE_URL, &eff);
		if (eff) {
			lua_pushstring(L, eff);
			lua_setfield(L, -2, "url");
		}
		n = 1;
	}
	req_free(q);
	return n;
}

static const char *opt_str(lua_State *L, int idx, const char *field)
{
	lua_getfield(L, idx, field);
	const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
	lua_pop(L, 1); /* the table still holds the string */
	return s;
}

static void set_common(struct req *q, const char *url, double timeout, double ctimeout)
{
	CURL *e = q->easy;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, q);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout * 1000));
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "drrun/" DRRUN_VERSION);
}

static int start(lua_State *L, struct req *q)
{
	CURLMcode mc = curl_multi_add_handle(H->multi, q->easy);
	if (mc != CURLM_OK) {
		req_free(q);
		return drr_push_fail(L, "http", "%s", curl_multi_strerror(mc));
	}
	return drr_task_yield(L, &q->op, (lua_KContext)q, request_k);
}

/* The file is open (or could not be): send the request, or report why not. */
static void req_opened(struct http_xfer *x)
{
	struct req *q = (struct req *)((char *)x - offsetof(struct req, x));
	if (!x->token && x->mode == XFER_UP)
		curl_easy_setopt(q->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->length);
	if (!x->token) {
		CURLMcode mc = curl_multi_add_handle(H->multi, q->easy);
		if (mc == CURLM_OK)
			return;
		x->token = "http";
		snprintf(x->msg, sizeof x->msg, "%s", curl_multi_strerror(mc));
	}
	q->done = 1;
	/* nothing was sent: release the file, then wake the task */
	x->on_finish = req_finished;
	http_xfer_finish(x, 0);
}

/* A request with a streamed body starts with the file's open in the pool. */
static int start_stream(lua_State *L, struct req *q)
{
	q->x.easy = q->easy;
	q->x.on_open = req_opened;
	if (http_xfer_open(&q->x) < 0) {
		int n = drr_push_fail(L, q->x.token, "%s", q->x.msg);
		req_free(q);
		return n;
	}
	return drr_task_yield(L, &q->op, (lua_KContext)q, request_k);
}

static int is_safe_method(const char *m)
{
	return !strcasecmp(m, "GET") || !strcasecmp(m, "HEAD") || !strcasecmp(m, "OPTIONS");
}

/* In dry-run, a request that could change something is only described. */
static int dry_run_request(lua_State *L, const char *method, const char *url, int hidx,
			   size_t body_len)
{
	struct drr_buf b = { 0 };
	drr_buf_addf(&b, "would send: %s %s", method, url);
	if (hidx) {
		lua_pushnil(L);
		while (lua_next(L, hidx)) {
			/* the headers a real request would send (see l_request);
			 * nothing here may raise while b holds memory */
			if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1)) {
				lua_pop(L, 1);
				continue;
			}
			const char *k = lua_tostring(L, -2);
			int secret = !strcasecmp(k, "authorization") ||
				     !strcasecmp(k, "proxy-authorization") ||
				     !strcasecmp(k, "cookie") || strcasestr(k, "token") ||
				     strcasestr(k, "key");
			drr_buf_addf(&b, " | %s: %s", k, secret ? "***" : lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	}
	if (body_len)
		drr_buf_addf(&b, " | body: %zu bytes", body_len);
	lua_getfield(L, 1, "body_file");
	if (lua_type(L, -1) == LUA_TSTRING)
		drr_buf_addf(&b, " | body: the file %s", lua_tostring(L, -1));
	lua_pop(L, 1);
	lua_pushlstring(L, b.data, b.len);
	drr_buf_free(&b);
	return drr_push_dry_run(L, "%s", lua_tostring(L, -1));
}

static int l_request(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	const char *url = opt_str(L, 1, "url");
	luaL_argcheck(L, url != NULL, 1, "url is required");
	const char *method = opt_str(L, 1, "method");
	if (!method)
		method = "GET";
	double timeout = drr_opt_duration(L, 1, "timeout", DEFAULT_TIMEOUT, "http");
	double ctimeout =
		drr_opt_duration(L, 1, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, "http");
	lua_getfield(L, 1, "max_body");
	lua_Integer max_body = luaL_optinteger(L, -1, DEFAULT_MAX_BODY);
	lua_pop(L, 1);
	lua_getfield(L, 1, "follow");
	int follow = lua_toboolean(L, -1);
	lua_pop(L, 1);
	size_t blen = 0;
	lua_getfield(L, 1, "body");
	const char *body = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &blen);
	/* streamed bodies: body_file (+ body_offset, body_length) and output */
	const char *body_file = opt_str(L, 1, "body_file");
	const char *output = opt_str(L, 1, "output");
	luaL_argcheck(L, !(body && body_file), 1, "body and body_file exclude each other");
	luaL_argcheck(L, !(body_file && output), 1, "body_file and output exclude each other");
	luaL_argcheck(L, !body_file || *body_file, 1, "body_file is empty");
	luaL_argcheck(L, !output || *output, 1, "output is empty");
	lua_getfield(L, 1, "body_offset");
	lua_Integer body_offset = luaL_optinteger(L, -1, 0);
	lua_getfield(L, 1, "body_length");
	lua_Integer body_length = luaL_optinteger(L, -1, -1);
	lua_pop(L, 2);
	luaL_argcheck(L, body_offset >= 0 && body_length >= -1, 1,
		      "body_offset and body_length must be >= 0");
	const char *want_sha = opt_str(L, 1, "sha256");
	const char *want_header = opt_str(L, 1, "sha256_header");
	luaL_argcheck(L, !want_sha || strlen(want_sha) == 64, 1, "sha256 must be 64 hex digits");
	luaL_argcheck(L, !want_header || strlen(want_header) < 60, 1, "sha256_header is too long");
	luaL_argcheck(L, output || !(want_sha || want_header), 1, "sha256 = needs output =");
	int hidx = 0;
	if (lua_getfield(L, 1, "headers") == LUA_TTABLE)
		hidx = lua_gettop(L);
	else
		luaL_argcheck(L, lua_isnil(L, -1), 1, "headers must be a table");
	int tidx = 0;
	if (lua_getfield(L, 1, "tls") == LUA_TTABLE)
		tidx = lua_gettop(L);
	/* safe = true: the caller vouches that this request changes nothing
	 * (a POST that only reads), so a dry run sends it too */
	lua_getfield(L, 1, "safe");
	int safe = lua_toboolean(L, -1);
	lua_pop(L, 1);
	/* detached = true: send it and return at once, never waiting for the
	 * answer (nor yielding): for a last word from a step being cancelled,
	 * such as aborting an S3 multipart upload from a __close handler */
	lua_getfield(L, 1, "detached");
	int detach = lua_toboolean(L, -1);
	lua_pop(L, 1);
	luaL_argcheck(L, !detach || !(body_file || output), 1,
		      "a detached request cannot stream a file");
	if (!detach)
		drr_task_check(L, "http.request");
	if (drr_dry_run() && !safe && !is_safe_method(method)) {
		if (detach) {
			lua_pushboolean(L, 1);
			return 1;
		}
		return dry_run_request(L, method, url, hidx, blen);
	}

	/* everything that can raise is done: from here on, C owns the request */
	ensure_ctx();
	CURL *easy = curl_easy_init();
	if (!easy)
		return drr_push_fail(L, "io", "cannot create a request (libcurl)");
	struct req *q = drr_xcalloc(1, sizeof *q);
	q->op.cancel = req_cancel;
	q->max_body = (size_t)(max_body > 0 ? max_body : DEFAULT_MAX_BODY);
	q->timeout = timeout;
	q->easy = easy;
	set_common(q, url, timeout, ctimeout);
	CURL *e = q->easy;
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	if (follow) {
		curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
		curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	}
	if (!strcasecmp(method, "HEAD")) /* no body: its Content-Length is no reason to fail */
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	else if (output) /* to a file: no cap but the disk (an error's body is capped in on_body) */
		;
	else /* a Content-Length over max_body fails before the body comes */
		curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)q->max_body);
	if (strcasecmp(method, "GET") && strcasecmp(method, "HEAD"))
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		q->post = drr_xmalloc(blen ? blen : 1);
		memcpy(q->post, body, blen);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->post);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
		if (!strcasecmp(method, "GET"))
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
	}
	if (body_file) {
		q->x.mode = XFER_UP;
		q->x.path = drr_xstrdup(body_file);
		q->x.offset = body_offset;
		q->x.length = body_length;
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, http_xfer_read);
		curl_easy_setopt(e, CURLOPT_READDATA, &q->x);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, http_xfer_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, &q->x);
		/* a chunk a callback: 16 times fewer calls and sends than curl's 64 KiB */
		curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, (long)HTTP_CHUNK);
	} else if (output) {
		q->x.mode = XFER_DOWN;
		q->x.path = drr_xstrdup(output);
		q->x.dry = drr_dry_run();
		for (size_t i = 0; want_sha && i < 64; i++)
			q->x.want_hex[i] = (char)(want_sha[i] >= 'A' && want_sha[i] <= 'F'
							 ? want_sha[i] + 32
							 : want_sha[i]);
		if (want_header)
			snprintf(q->x.want_header, sizeof q->x.want_header, "%s", want_header);
		/* large reads from the socket: curl's 16 KiB means a recv, a poll
		 * and a callback for every 16 KiB of a file that may be gigabytes */
		curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)HTTP_CHUNK);
	}
	q->headers = curl_slist_append(q->headers, "Expect:");
	if (hidx) {
		lua_pushnil(L);
		while (lua_next(L, hidx)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1)) {
				const char *hk = lua_tostring(L, -2), *hv = lua_tostring(L, -1);
				if (strpbrk(hk, "\r\n:") || strpbrk(hv, "\r\n")) {
					/* no header injection: C owns q, so free it first */
					req_free(q);
					return luaL_error(L,
							  "http: header '%s' has a line break or "
							  "a bad name",
							  hk);
				}
				char *line = drr_xasprintf("%s: %s", hk, hv);
				q->headers = curl_slist_append(q->headers, line);
				free(line);
			}
			lua_pop(L, 1);
		}
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->headers);
	if (tidx) {
		lua_getfield(L, tidx, "verify");
		int verify = lua_isnil(L, -1) || lua_toboolean(L, -1);
		lua_pop(L, 1);
		if (!verify) {
			curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
			drr_task_log(L,
				     "WARNING: TLS verification is OFF for %s: the peer is not "
				     "authenticated",
				     url);
		}
		static const struct {
			const char *field;
			CURLoption opt;
		} files[] = { { "ca", CURLOPT_CAINFO },
			      { "cert", CURLOPT_SSLCERT },
			      { "key", CURLOPT_SSLKEY } };
		for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
			lua_getfield(L, tidx, files[i].field);
			if (lua_type(L, -1) == LUA_TSTRING)
				curl_easy_setopt(e, files[i].opt, lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	}
	if (q->x.mode)
		return start_stream(L, q);
	if (detach) {
		q->detached = 1;
		if (curl_multi_add_handle(H->multi, q->easy) != CURLM_OK) {
			req_free(q);
			return drr_push_fail(L, "http", "cannot start a request (libcurl)");
		}
		q->next_detached = detached;
		detached = q;
		lua_pushboolean(L, 1);
		return 1;
	}
	return start(L, q);
}

static int l_connect(lua_State *L)
{
	const char *host = luaL_checkstring(L, 1);
	lua_Integer port = luaL_checkinteger(L, 2);
	luaL_argcheck(L, port > 0 && port < 65536, 2, "port out of range");
	double timeout = DEFAULT_CONNECT_TIMEOUT;
	const char *why;
	if (lua_type(L, 3) == LUA_TSTRING) {
		if (drr_duration_parse(lua_tostring(L, 3), &timeout) < 0)
			luaL_argerror(L, 3, "invalid duration");
	} else if (lua_type(L, 3) == LUA_TNUMBER) {
		timeout = lua_tonumber(L, 3);
	}
	/* 0 would be curl's "no timeout" */
	if (!lua_isnoneornil(L, 3) && drr_duration_check(timeout, 0, &why) < 0)
		luaL_argerror(L, 3, lua_pushfstring(L, "the timeout %s", why));
	drr_task_check(L, "health.tcp");
	ensure_ctx();
	CURL *easy = curl_easy_init();
	if (!easy)
		return drr_push_fail(L, "io", "cannot create a request (libcurl)");
	struct req *q = drr_xcalloc(1, sizeof *q);
	q->op.cancel = req_cancel;
	q->connect_only = 1;
	q->easy = easy;
	int v6 = strchr(host, ':') != NULL;
	char *url = drr_xasprintf("http://%s%s%s:%lld/", v6 ? "[" : "", host, v6 ? "]" : "",
				  (long long)port);
	set_common(q, url, timeout, timeout);
	free(url);
	curl_easy_setopt(q->easy, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(q->easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(q->easy, CURLOPT_FORBID_REUSE, 1L);
	return start(L, q);
}

int luaopen_drrun_http(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "request", l_request },
		{ "connect", l_connect },
		{ "file_sha256", http_l_file_sha256 },
		{ NULL, NULL },
	};
	char err[300];
	if (http_libcurl_load(err, sizeof err) < 0)
		return luaL_error(L,
				  "drrun.http: %s (drrun needs libcurl 7.x or later: "
				  "install libcurl4)",
				  err);
	luaL_newlib(L, fns);
	curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	lua_pushstring(L, v->version);
	lua_setfield(L, -2, "curl_version");
	return 1;
}
