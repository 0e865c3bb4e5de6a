/*
 * query.c - one DNS exchange on the loop (dns/dns.h): UDP from a random
 * source port with a random ID, the answer matched on the server's address
 * (a connected socket), the ID and the question; retries on timeout; TCP
 * (two-byte length prefix) when the answer is truncated, the request does
 * not fit 512 bytes, or the caller asks.  Never the system resolver: the
 * server is an address.  The op owns its buffers and handles; it is freed
 * once its handles are closed and its result consumed (or it was
 * cancelled).
 */
#include "dns/dns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void random_bytes(void *p, size_t n)
{
	uint8_t *b = p;
	while (n) {
		ssize_t r = getrandom(b, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* no entropy source at all: still vary, never block */
			uint64_t x = (uint64_t)drr_mono() * 1000003u ^ (uintptr_t)p;
			memcpy(b, &x, n < sizeof x ? n : sizeof x);
			r = (ssize_t)(n < sizeof x ? n : sizeof x);
		}
		b += r;
		n -= (size_t)r;
	}
}

uint16_t drr_dns_random16(void)
{
	uint16_t v;
	random_bytes(&v, sizeof v);
	return v;
}

/* ---- lifetime -------------------------------------------------------------------- */

static void dq_free(struct drr_dns_query *q)
{
	free(q->resp);
	free(q->tbuf);
	free(q->req);
	free(q);
}

static void on_closed(uv_handle_t *h)
{
	struct drr_dns_query *q = h->data;
	if (--q->open == 0 && (q->consumed || q->cancelled))
		dq_free(q);
}

static void close_one(struct drr_dns_query *q, uv_handle_t *h, int *inited)
{
	if (*inited) {
		*inited = 0;
		uv_close(h, on_closed);
	}
}

static void close_all(struct drr_dns_query *q)
{
	close_one(q, (uv_handle_t *)&q->timer, &q->timer_on);
	close_one(q, (uv_handle_t *)&q->udp, &q->udp_on);
	close_one(q, (uv_handle_t *)&q->tcp, &q->tcp_on);
}

static void finish(struct drr_dns_query *q, const char *token, const char *fmt, ...)
	DRR_PRINTF(3, 4);
static void finish(struct drr_dns_query *q, const char *token, const char *fmt, ...)
{
	if (q->done)
		return;
	q->done = 1;
	q->token = token;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(q->msg, sizeof q->msg, fmt, ap);
		va_end(ap);
	}
	q->rtt = drr_mono() - q->t0;
	close_all(q);
	drr_task_wake(q->op.task);
}

void drr_dns_query_consumed(struct drr_dns_query *q)
{
	q->consumed = 1;
	if (q->open == 0)
		dq_free(q);
}

static void dq_cancel(struct drr_op *op)
{
	struct drr_dns_query *q = (struct drr_dns_query *)op;
	q->cancelled = 1;
	q->done = 1;
	close_all(q);
	if (q->open == 0)
		dq_free(q);
}

/* ---- matching an answer ---------------------------------------------------------- */

/* Whether the bytes are the answer to our request: ID, QR, opcode and the
 * question echoed (case-insensitive).  An answer from elsewhere, or to
 * another question, is dropped: it may be spoofed or late. */
static int matches(struct drr_dns_query *q, const uint8_t *p, size_t n)
{
	if (n < 12)
		return 0;
	uint16_t id = (uint16_t)(p[0] << 8 | p[1]), flags = (uint16_t)(p[2] << 8 | p[3]);
	if (id != q->id || !(flags & 0x8000) || ((flags >> 11) & 0xf) != q->opcode)
		return 0;
	uint16_t qd = (uint16_t)(p[4] << 8 | p[5]);
	if (qd == 0) /* FORMERR/NOTIMP answers may echo nothing */
		return (flags & 0xf) != 0;
	if (qd != 1)
		return 0;
	uint8_t wire[DRR_DNS_NAME_MAX];
	size_t wlen, next;
	if (drr_dns_name_read(p, n, 12, wire, &wlen, &next, NULL, 0) < 0 || next + 4 > n)
		return 0;
	return drr_dns_name_equal(wire, wlen, q->qname, q->qlen) &&
	       (uint16_t)(p[next] << 8 | p[next + 1]) == q->qtype &&
	       (uint16_t)(p[next + 2] << 8 | p[next + 3]) == q->qclass;
}

static void take(struct drr_dns_query *q, const uint8_t *p, size_t n)
{
	q->resp = drr_xmalloc(n ? n : 1);
	memcpy(q->resp, p, n);
	q->resplen = n;
}

/* ---- TCP ------------------------------------------------------------------------------ */

static void start_tcp(struct drr_dns_query *q);
static void on_tcp_timeout(uv_timer_t *t);

static void tcp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct drr_dns_query *q = h->data;
	(void)hint;
	size_t want = 2 + DRR_DNS_MSG_MAX;
	if (!q->tbuf)
		q->tbuf = drr_xmalloc(want);
	buf->base = (char *)q->tbuf + q->tlen;
	buf->len = want - q->tlen;
}

static void tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct drr_dns_query *q = s->data;
	(void)buf;
	if (q->done)
		return;
	if (n < 0) {
		if (n == UV_EOF)
			finish(q, "closed", "%s closed the TCP connection before answering",
			       q->server);
		else
			finish(q, "closed", "%s: TCP read failed: %s", q->server,
			       uv_strerror((int)n));
		return;
	}
	q->tlen += (size_t)n;
	if (q->tlen < 2)
		return;
	size_t need = (size_t)(q->tbuf[0] << 8 | q->tbuf[1]);
	if (q->tlen < 2 + need)
		return;
	if (!matches(q, q->tbuf + 2, need)) {
		finish(q, "invalid", "%s answered over TCP with a message that is not the answer "
				     "to the request",
		       q->server);
		return;
	}
	take(q, q->tbuf + 2, need);
	q->used_tcp = 1;
	finish(q, NULL, NULL);
}

static void tcp_written(uv_write_t *w, int status)
{
	struct drr_dns_query *q = w->data;
	if (status < 0 && !q->done && status != UV_ECANCELED)
		finish(q, "closed", "%s: TCP write failed: %s", q->server, uv_strerror(status));
}

static void tcp_connected(uv_connect_t *c, int status)
{
	struct drr_dns_query *q = c->data;
	if (q->done || status == UV_ECANCELED)
		return;
	if (status < 0) {
		finish(q, status == UV_ECONNREFUSED ? "refused" : "closed",
		       "%s: TCP connect failed: %s", q->server, uv_strerror(status));
		return;
	}
	q->lenpfx[0] = (uint8_t)(q->reqlen >> 8);
	q->lenpfx[1] = (uint8_t)q->reqlen;
	uv_buf_t bufs[2] = { uv_buf_init((char *)q->lenpfx, 2),
			     uv_buf_init((char *)q->req, (unsigned)q->reqlen) };
	q->wr.data = q;
	int rc = uv_write(&q->wr, (uv_stream_t *)&q->tcp, bufs, 2, tcp_written);
	if (rc == 0)
		rc = uv_read_start((uv_stream_t *)&q->tcp, tcp_alloc, tcp_read);
	if (rc < 0)
		finish(q, "io", "%s: TCP: %s", q->server, uv_strerror(rc));
}

static void on_tcp_timeout(uv_timer_t *t)
{
	struct drr_dns_query *q = t->data;
	if (q->done)
		return;
	char d[32];
	finish(q, "timeout", "no answer from %s over TCP within %s", q->server,
	       drr_duration_fmt(q->per_try * q->attempts, d, sizeof d));
}

static void start_tcp(struct drr_dns_query *q)
{
	q->tlen = 0;
	int rc = uv_tcp_init(drr_loop(), &q->tcp);
	if (rc < 0) {
		finish(q, "io", "cannot open a TCP socket: %s", uv_strerror(rc));
		return;
	}
	q->tcp.data = q;
	q->tcp_on = 1;
	q->open++;
	q->conn.data = q;
	rc = uv_tcp_connect(&q->conn, &q->tcp, (const struct sockaddr *)&q->addr, tcp_connected);
	if (rc < 0) {
		finish(q, rc == UV_ECONNREFUSED ? "refused" : "io", "%s: TCP connect: %s",
		       q->server, uv_strerror(rc));
		return;
	}
	/* one connection, given the time of every attempt UDP would have had */
	uv_timer_start(&q->timer, on_tcp_timeout, (uint64_t)(q->per_try * q->attempts * 1000), 0);
}

/* ---- UDP ----------------------------------------------------------------------------- */

static void udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h, (void)hint;
	static char slab[DRR_DNS_MSG_MAX]; /* the loop's thread only; copied out */
	buf->base = slab;
	buf->len = sizeof slab;
}

static void switch_to_tcp(struct drr_dns_query *q)
{
	uv_udp_recv_stop(&q->udp);
	close_one(q, (uv_handle_t *)&q->udp, &q->udp_on);
	uv_timer_stop(&q->timer);
	q->truncated = 1;
	start_tcp(q);
}

static void udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
		     unsigned flags)
{
	struct drr_dns_query *q = u->data;
	(void)from;
	if (q->done)
		return;
	if (n < 0) {
		if (n == UV_ECONNREFUSED)
			finish(q, "refused", "%s refused the query (ICMP port unreachable)",
			       q->server);
		else
			finish(q, "closed", "%s: UDP receive failed: %s", q->server,
			       uv_strerror((int)n));
		return;
	}
	if (n == 0 && !from)
		return; /* nothing more to read */
	/* the socket is connected, so the kernel drops other senders; the
	 * rest of the match is ours */
	if ((flags & UV_UDP_PARTIAL) || !matches(q, (const uint8_t *)buf->base, (size_t)n)) {
		q->dropped++;
		return;
	}
	const uint8_t *p = (const uint8_t *)buf->base;
	if (p[2] & 0x02) { /* TC */
		switch_to_tcp(q);
		return;
	}
	take(q, p, (size_t)n);
	finish(q, NULL, NULL);
}

static void udp_sent(uv_udp_send_t *s, int status)
{
	struct drr_dns_query *q = s->data;
	q->sending = 0;
	if (status < 0 && !q->done && status != UV_ECANCELED)
		finish(q, status == UV_ECONNREFUSED ? "refused" : "io", "%s: UDP send: %s",
		       q->server, uv_strerror(status));
}

static void udp_send(struct drr_dns_query *q);

static void on_udp_timeout(uv_timer_t *t)
{
	struct drr_dns_query *q = t->data;
	if (q->done)
		return;
	if (q->attempt < q->attempts) {
		udp_send(q);
		return;
	}
	char d[32];
	finish(q, "timeout", "no answer from %s within %s (%d attempts over UDP)", q->server,
	       drr_duration_fmt(q->per_try, d, sizeof d), q->attempts);
}

static void udp_send(struct drr_dns_query *q)
{
	q->attempt++;
	if (!q->sending) { /* a send still queued is the same bytes */
		uv_buf_t b = uv_buf_init((char *)q->req, (unsigned)q->reqlen);
		q->sreq.data = q;
		int rc = uv_udp_send(&q->sreq, &q->udp, &b, 1, NULL, udp_sent);
		if (rc < 0) {
			finish(q, rc == UV_ECONNREFUSED ? "refused" : "io", "%s: UDP send: %s",
			       q->server, uv_strerror(rc));
			return;
		}
		q->sending = 1;
	}
	uv_timer_start(&q->timer, on_udp_timeout, (uint64_t)(q->per_try * 1000), 0);
}

/* Bind the UDP socket to a random port of the ephemeral range, so the
 * port is as unguessable as the ID (RFC 5452); the kernel's choice after
 * a few ports in use. */
static int udp_bind(struct drr_dns_query *q)
{
	struct sockaddr_storage local;
	memset(&local, 0, sizeof local);
	local.ss_family = q->addr.ss_family;
	for (int i = 0; i < 16; i++) {
		uint16_t port = (uint16_t)(1024 + drr_dns_random16() % (65536 - 1024));
		if (i == 15)
			port = 0;
		if (local.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&local)->sin6_port = htons(port);
		else
			((struct sockaddr_in *)&local)->sin_port = htons(port);
		int rc = uv_udp_bind(&q->udp, (const struct sockaddr *)&local, 0);
		if (rc == 0)
			return 0;
		if (rc != UV_EADDRINUSE && rc != UV_EACCES)
			return rc;
	}
	return UV_EADDRINUSE;
}

static void start_udp(struct drr_dns_query *q)
{
	int rc = uv_udp_init(drr_loop(), &q->udp);
	if (rc < 0) {
		finish(q, "io", "cannot open a UDP socket: %s", uv_strerror(rc));
		return;
	}
	q->udp.data = q;
	q->udp_on = 1;
	q->open++;
	if ((rc = udp_bind(q)) < 0 ||
	    (rc = uv_udp_connect(&q->udp, (const struct sockaddr *)&q->addr)) < 0 ||
	    (rc = uv_udp_recv_start(&q->udp, udp_alloc, udp_recv)) < 0) {
		finish(q, "io", "%s: UDP socket: %s", q->server, uv_strerror(rc));
		return;
	}
	struct sockaddr_storage me;
	int len = sizeof me;
	if (uv_udp_getsockname(&q->udp, (struct sockaddr *)&me, &len) == 0)
		q->src_port = ntohs(me.ss_family == AF_INET6
					    ? ((struct sockaddr_in6 *)&me)->sin6_port
					    : ((struct sockaddr_in *)&me)->sin_port);
	udp_send(q);
}

/* ---- start ----------------------------------------------------------------------- */

void drr_dns_query_start(struct drr_dns_query *q)
{
	q->op.cancel = dq_cancel;
	q->t0 = drr_mono();
	int rc = uv_timer_init(drr_loop(), &q->timer);
	if (rc < 0) {
		q->done = 1;
		q->token = "io";
		snprintf(q->msg, sizeof q->msg, "cannot create a timer: %s", uv_strerror(rc));
		return;
	}
	q->timer.data = q;
	q->timer_on = 1;
	q->open++;
	if (q->tcp_only || q->reqlen > 512)
		start_tcp(q);
	else
		start_udp(q);
}

int drr_dns_parse_server(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[64];
	const char *port = NULL;
	size_t hl;
	memset(ss, 0, sizeof *ss);
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close)
			goto bad;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof host)
			goto bad;
		memcpy(host, s + 1, hl);
		host[hl] = 0;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			goto bad;
	} else {
		const char *colon = strchr(s, ':');
		if (colon && strchr(colon + 1, ':'))
			colon = NULL; /* a bare IPv6 address */
		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl >= sizeof host)
			goto bad;
		memcpy(host, s, hl);
		host[hl] = 0;
		if (colon)
			port = colon + 1;
	}
	long p = 53;
	if (port) {
		char *end;
		p = strtol(port, &end, 10);
		if (!*port || *end || p < 1 || p > 65535)
			goto bad;
	}
	if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) == 0)
		return 0;
bad:
	snprintf(err, errlen,
		 "'%.80s' is not an IP address with an optional port (127.0.0.1:5353, "
		 "[::1]:53): drrun never asks the system resolver",
		 s);
	return -1;
}
