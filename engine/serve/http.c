/*
 * http.c - libmicrohttpd driven by the libuv loop.
 *
 * The choice: MHD runs with no thread of its own (no
 * MHD_USE_INTERNAL_POLLING_THREAD, no thread per connection) in its epoll
 * mode, so all of its sockets sit in one epoll descriptor of its own
 * (MHD_DAEMON_INFO_EPOLL_FD).  The loop watches that one descriptor with a
 * uv_poll handle and calls MHD_run() when it is readable, which does the
 * non-blocking work that is ready and returns; a uv_timer set from
 * MHD_get_timeout() after every MHD_run() covers MHD's own deadlines (idle
 * clients, and the 0 it returns while it still has buffered work).  Every
 * MHD call and every callback therefore happens on the loop's thread,
 * between other loop callbacks: nothing races and nothing needs a lock,
 * which MHD allows when it has no internal thread.  MHD never blocks: its
 * sockets are non-blocking and MHD_run() waits for nothing.
 *
 * A request that must wait for the loop (an accepted alert, answered only
 * once its record is fdatasync'd on the thread pool) is suspended
 * (MHD_ALLOW_SUSPEND_RESUME) and resumed from the loop when its answer is
 * ready; MHD then calls the access handler again and the answer is queued.
 *
 * Limits: MHD_OPTION_CONNECTION_MEMORY_LIMIT bounds a connection's buffer,
 * so headers larger than HEADER_MEM get 431 from MHD itself; bodies larger
 * than BODY_MAX get 413 (from Content-Length at once, or when the bytes
 * pass the limit); connections are capped in all and per client address;
 * a client silent for conn_timeout seconds is dropped (slow loris), and a
 * request that takes longer than REQUEST_MAX in all is answered 408.
 */
#include "serve/serve.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#define HEADER_MEM (32 * 1024) /* per connection: request line, headers, buffers */
#define PER_IP_CONNS 64
#define REQUEST_MAX 30.0 /* seconds from the first byte to the whole body */

struct serve_http {
	uv_loop_t *loop;
	struct MHD_Daemon *d;
	uv_poll_t poll;
	uv_timer_t timer;
	int closing;
	int open; /* connections */
	int port;
	serve_handler fn;
	void *ud;
	char *cert, *key;
};

static void drive(struct serve_http *h);

static void on_poll(uv_poll_t *p, int status, int events)
{
	drive(p->data);
}

static void on_timer(uv_timer_t *t)
{
	drive(t->data);
}

/* One MHD_run, then the timer from MHD_get_timeout. */
static void drive(struct serve_http *h)
{
	if (!h->d)
		return;
	MHD_run(h->d);
	MHD_UNSIGNED_LONG_LONG to;
	if (MHD_get_timeout(h->d, &to) == MHD_YES)
		uv_timer_start(&h->timer, on_timer, to > 60000 ? 60000 : (uint64_t)to, 0);
	else
		uv_timer_start(&h->timer, on_timer, 1000, 0);
}

static void queue(struct serve_req *r)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(r->resplen, r->resp, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(resp, "Content-Type", r->ctype);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_queue_response(r->conn, (unsigned)r->code, resp);
	MHD_destroy_response(resp);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
				 const char *method, const char *version, const char *data,
				 size_t *size, void **con_cls)
{
	struct serve_http *h = cls;
	struct serve_req *r = *con_cls;
	if (!r) {
		r = drr_xcalloc(1, sizeof *r);
		r->h = h;
		r->conn = c;
		r->method = method;
		r->url = url;
		r->t0 = drr_mono();
		*con_cls = r;
		const char *cl =
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl && strtoull(cl, NULL, 10) > BODY_MAX) {
			r->too_big = 1;
			h->fn(h->ud, r); /* the handler answers 413 and counts it */
			if (r->replied)
				queue(r);
			return r->replied ? MHD_YES : MHD_NO;
		}
		return MHD_YES; /* the body, if any, comes in the next calls */
	}
	if (r->replied) {
		if (*size) { /* answered early (413): drop what is still coming */
			*size = 0;
			return MHD_YES;
		}
		if (r->deferred) { /* resumed with the answer */
			r->deferred = 0;
			queue(r);
		}
		return MHD_YES;
	}
	if (*size) {
		if (r->body.len + *size > BODY_MAX)
			r->too_big = 1;
		else
			drr_buf_add(&r->body, data, *size);
		*size = 0;
		if (drr_mono() - r->t0 > REQUEST_MAX) {
			r->code = 408;
			r->ctype = "application/json";
			r->resp = drr_xstrdup("{\"error\":\"request took too long\"}\n");
			r->resplen = strlen(r->resp);
			r->replied = 1;
			queue(r);
		}
		return MHD_YES;
	}
	if (r->deferred) /* resumed spuriously: still waiting */
		return MHD_YES;
	r->started = 1;
	h->fn(h->ud, r);
	if (r->replied && !r->deferred)
		queue(r);
	return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct serve_req *r = *con_cls;
	if (!r)
		return;
	drr_buf_free(&r->body);
	free(r->resp);
	free(r);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	struct serve_http *h = cls;
	h->open += toe == MHD_CONNECTION_NOTIFY_STARTED ? 1 : -1;
}

static void on_panic(void *cls, const char *file, unsigned int line, const char *reason)
{
	fprintf(stderr, "drrun serve: internal error in libmicrohttpd (%s:%u): %s\n", file, line,
		reason ? reason : "?");
	abort();
}

struct serve_http *serve_http_start(uv_loop_t *loop, const struct serve_http_opts *o,
				    serve_handler fn, void *ud, char *err, size_t errlen)
{
	if (serve_mhd_load(err, errlen) < 0)
		return NULL;
	MHD_set_panic_func(on_panic, NULL);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)o->port);
	if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1) {
		snprintf(err, errlen, "--listen: '%s' is not an IPv4 address", o->host);
		return NULL;
	}
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (o->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(err, errlen, "this libmicrohttpd was built without TLS");
			return NULL;
		}
		flags |= MHD_USE_TLS;
	}
	struct serve_http *h = drr_xcalloc(1, sizeof *h);
	h->loop = loop;
	h->fn = fn;
	h->ud = ud;
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)o->tls_cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)o->tls_key },
		{ MHD_OPTION_END, 0, NULL },
	};
	h->d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_access, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_MEM, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)o->max_conns, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_IP_CONNS,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->conn_timeout,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION,
		on_connection, h, MHD_OPTION_LISTEN_BACKLOG_SIZE, 512u, MHD_OPTION_ARRAY,
		o->tls_cert ? tls : tls + 2, MHD_OPTION_END);
	if (!h->d) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", o->host, o->port,
			 o->tls_cert ? "address in use, or the TLS key or certificate is invalid"
				     : "address in use or not permitted");
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : o->port;
	di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	uv_poll_init(loop, &h->poll, di->epoll_fd);
	h->poll.data = h;
	uv_poll_start(&h->poll, UV_READABLE, on_poll);
	uv_timer_init(loop, &h->timer);
	h->timer.data = h;
	drive(h);
	return h;
}

int serve_http_port(struct serve_http *h)
{
	return h->port;
}

const char *serve_req_header(struct serve_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void serve_req_peer(struct serve_req *r, char *buf, size_t n)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(buf, n, "?");
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
		snprintf(buf, n, "%s:%u", a, ntohs(in->sin_port));
	}
}

void serve_req_defer(struct serve_req *r)
{
	r->deferred = 1;
	MHD_suspend_connection(r->conn);
}

void serve_req_reply(struct serve_req *r, int code, const char *ctype, const char *body,
		     size_t n)
{
	r->code = code;
	r->ctype = ctype;
	r->resp = drr_xmalloc(n + 1);
	memcpy(r->resp, body, n);
	r->resp[n] = '\0';
	r->resplen = n;
	r->replied = 1;
	if (r->deferred) { /* answered later, from the loop: resume it */
		struct serve_http *h = r->h;
		MHD_resume_connection(r->conn);
		drive(h);
	}
}

void serve_http_quiesce(struct serve_http *h)
{
	if (!h->d)
		return;
	MHD_socket s = MHD_quiesce_daemon(h->d);
	if (s != MHD_INVALID_SOCKET)
		close(s);
}

int serve_http_open(struct serve_http *h)
{
	return h->open;
}

static void on_closed(uv_handle_t *x)
{
	struct serve_http *h = x->data;
	if (--h->closing == 0)
		free(h);
}

void serve_http_stop(struct serve_http *h)
{
	if (!h)
		return;
	uv_poll_stop(&h->poll);
	uv_timer_stop(&h->timer);
	h->closing = 2;
	uv_close((uv_handle_t *)&h->poll, on_closed);
	MHD_stop_daemon(h->d); /* after the poll handle let go of its descriptor */
	h->d = NULL;
	uv_close((uv_handle_t *)&h->timer, on_closed);
}
