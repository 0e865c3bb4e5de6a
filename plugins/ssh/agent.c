/*
 * agent.c - public key authentication through the ssh-agent without
 * blocking the loop.
 *
 * libssh2's agent functions talk to the agent on a blocking socket, so an
 * agent that takes its time (`ssh-add -c` asks the user before each
 * signature) froze every step.  This speaks the agent protocol itself
 * (draft-miller-ssh-agent: REQUEST_IDENTITIES, SIGN_REQUEST) on a uv_pipe,
 * and gives libssh2 the signatures through libssh2_userauth_publickey's
 * sign callback: the callback sends the request and says "would block"
 * until the answer is in; libssh2 then asks again with the same data (or,
 * where it gave up on the attempt, starts it again, and gets the same
 * data to sign), and the callback hands the signature over.  The agent's
 * wait is bounded by the connect timeout, like every other part of it.
 */
#include "ssh.h"

#include <stdlib.h>
#include <string.h>

#define AGENT_MAX (256u << 10) /* no answer is bigger */

enum {
	AG_FAILURE = 5,
	AG_REQUEST_IDENTITIES = 11,
	AG_IDENTITIES_ANSWER = 12,
	AG_SIGN_REQUEST = 13,
	AG_SIGN_RESPONSE = 14
};

struct agent_key {
	unsigned char *blob;
	size_t len;
};

struct ssh_agent {
	uv_pipe_t *pipe; /* NULL once closed */
	struct sshop *o;
	int connected, listed, pending, failed;
	char err[256];
	struct drr_buf in;
	struct agent_key *keys;
	size_t nkeys, cur;
	/* the signature asked for, and its answer */
	unsigned char *data;
	size_t data_len;
	unsigned char *sig;
	size_t sig_len;
	int sig_state; /* 0 none, 1 ready, -1 refused */
};

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(struct drr_buf *b, uint32_t v)
{
	unsigned char p[4] = { v >> 24, v >> 16, v >> 8, v };
	drr_buf_add(b, p, 4);
}

/* A string at *p of the n bytes left: 0 and advance, or -1. */
static int get_str(const unsigned char **p, size_t *n, const unsigned char **s, size_t *len)
{
	if (*n < 4)
		return -1;
	uint32_t l = get32(*p);
	if (l > *n - 4)
		return -1;
	*s = *p + 4;
	*len = l;
	*p += 4 + l;
	*n -= 4 + l;
	return 0;
}

static void agent_fail(struct ssh_agent *ag, const char *msg)
{
	if (!ag->failed)
		snprintf(ag->err, sizeof ag->err, "%s", msg);
	ag->failed = 1;
	ag->pending = 0;
}

static void pipe_closed(uv_handle_t *h)
{
	free(h);
}

static void write_done(uv_write_t *w, int status)
{
	(void)status; /* a failure shows as the read's EOF */
	free(w->data);
	free(w);
}

/* Send one message (its length is prefixed here). */
static void agent_send(struct ssh_agent *ag, struct drr_buf *msg)
{
	struct drr_buf b = { 0 };
	put32(&b, (uint32_t)msg->len);
	drr_buf_add(&b, msg->data, msg->len);
	drr_buf_free(msg);
	uv_write_t *w = drr_xcalloc(1, sizeof *w);
	w->data = b.data; /* freed with the request, which outlives a closed pipe */
	uv_buf_t ub = uv_buf_init(b.data, (unsigned)b.len);
	if (uv_write(w, (uv_stream_t *)ag->pipe, &ub, 1, write_done) < 0) {
		free(b.data);
		free(w);
		agent_fail(ag, "cannot write to the ssh-agent");
		return;
	}
	ag->pending = 1;
}

static void parse_identities(struct ssh_agent *ag, const unsigned char *p, size_t n)
{
	if (n < 4)
		return agent_fail(ag, "the ssh-agent's list of keys is cut short");
	uint32_t count = get32(p);
	p += 4, n -= 4;
	if (count > n / 8)
		return agent_fail(ag, "the ssh-agent's list of keys is cut short");
	ag->keys = drr_xcalloc(count ? count : 1, sizeof *ag->keys);
	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *blob, *comment;
		size_t blen, clen;
		if (get_str(&p, &n, &blob, &blen) || get_str(&p, &n, &comment, &clen))
			return agent_fail(ag, "the ssh-agent's list of keys is cut short");
		ag->keys[i].blob = drr_xmalloc(blen ? blen : 1);
		memcpy(ag->keys[i].blob, blob, blen);
		ag->keys[i].len = blen;
		ag->nkeys = i + 1;
	}
	ag->listed = 1;
}

/* SIGN_RESPONSE: string signature = string algorithm, string bytes; libssh2
 * wants the bytes. */
static void parse_signature(struct ssh_agent *ag, const unsigned char *p, size_t n)
{
	const unsigned char *blob, *algo, *raw;
	size_t blen, alen, rlen;
	if (get_str(&p, &n, &blob, &blen) || get_str(&blob, &blen, &algo, &alen) ||
	    get_str(&blob, &blen, &raw, &rlen)) {
		ag->sig_state = -1;
		return;
	}
	ag->sig = drr_xmalloc(rlen ? rlen : 1);
	memcpy(ag->sig, raw, rlen);
	ag->sig_len = rlen;
	ag->sig_state = 1;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h, (void)hint;
	static char slab[16384];
	buf->base = slab;
	buf->len = sizeof slab;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct ssh_agent *ag = s->data;
	if (nread < 0) {
		agent_fail(ag, nread == UV_EOF ? "the ssh-agent closed the connection"
					       : "cannot read from the ssh-agent");
	} else if (nread > 0) {
		drr_buf_add(&ag->in, buf->base, (size_t)nread);
	}
	while (!ag->failed && ag->in.len >= 4) {
		uint32_t len = get32((unsigned char *)ag->in.data);
		if (len > AGENT_MAX || len == 0) {
			agent_fail(ag, "the ssh-agent sent a message drrun cannot read");
			break;
		}
		if (ag->in.len < 4 + (size_t)len)
			break;
		const unsigned char *m = (unsigned char *)ag->in.data + 4;
		ag->pending = 0;
		if (!ag->listed) {
			if (m[0] != AG_IDENTITIES_ANSWER)
				agent_fail(ag, "the ssh-agent refused to list its keys");
			else
				parse_identities(ag, m + 1, len - 1);
		} else if (m[0] == AG_SIGN_RESPONSE) {
			parse_signature(ag, m + 1, len - 1);
		} else {
			ag->sig_state = -1; /* AG_FAILURE: refused (or not confirmed) */
		}
		memmove(ag->in.data, ag->in.data + 4 + len, ag->in.len - 4 - len);
		ag->in.len -= 4 + len;
	}
	if (ag->o->se)
		ssh_drive(ag->o->se);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct ssh_agent *ag = req->data;
	free(req);
	if (status == UV_ECANCELED)
		return; /* closed: ag is gone */
	if (status < 0) {
		char m[200];
		snprintf(m, sizeof m, "cannot reach the ssh-agent: %s", uv_strerror(status));
		agent_fail(ag, m);
	} else {
		ag->connected = 1;
		uv_read_start((uv_stream_t *)ag->pipe, on_alloc, on_read);
		struct drr_buf msg = { 0 };
		unsigned char t = AG_REQUEST_IDENTITIES;
		drr_buf_add(&msg, &t, 1);
		agent_send(ag, &msg);
	}
	if (ag->o->se)
		ssh_drive(ag->o->se);
}

static void forget_request(struct ssh_agent *ag)
{
	free(ag->data);
	ag->data = NULL;
	free(ag->sig);
	ag->sig = NULL;
	ag->sig_state = 0;
}

/* libssh2's sign callback: the signature of data by the current key. */
static LIBSSH2_USERAUTH_PUBLICKEY_SIGN_FUNC(agent_sign)
{
	(void)session;
	struct sshop *o = *abstract;
	struct ssh_agent *ag = o->ag;
	int same = ag->data && ag->data_len == data_len && !memcmp(ag->data, data, data_len);
	if (same && ag->sig_state == 1) {
		*sig = ag->sig; /* libssh2 frees it (its default allocator: free) */
		*sig_len = ag->sig_len;
		ag->sig = NULL;
		forget_request(ag);
		return 0;
	}
	if (same && ag->sig_state == -1) {
		forget_request(ag);
		return -1;
	}
	if (ag->pending || ag->failed)
		return ag->failed ? -1 : LIBSSH2_ERROR_EAGAIN;
	forget_request(ag);
	ag->data = drr_xmalloc(data_len ? data_len : 1);
	memcpy(ag->data, data, data_len);
	ag->data_len = data_len;
	struct agent_key *k = &ag->keys[ag->cur];
	struct drr_buf msg = { 0 };
	unsigned char t = AG_SIGN_REQUEST;
	drr_buf_add(&msg, &t, 1);
	put32(&msg, (uint32_t)k->len);
	drr_buf_add(&msg, k->blob, k->len);
	put32(&msg, (uint32_t)data_len);
	drr_buf_add(&msg, data, data_len);
	put32(&msg, 0); /* flags */
	agent_send(ag, &msg);
	return LIBSSH2_ERROR_EAGAIN;
}

int ssh_agent_step(struct sshop *o)
{
	struct sess *se = o->se;
	struct ssh_agent *ag = o->ag;
	if (!ag) {
		const char *sock = getenv("SSH_AUTH_SOCK");
		ag = o->ag = drr_xcalloc(1, sizeof *ag);
		ag->o = o;
		ag->pipe = drr_xcalloc(1, sizeof *ag->pipe);
		uv_pipe_init(drr_loop(), ag->pipe, 0);
		ag->pipe->data = ag;
		uv_connect_t *req = drr_xcalloc(1, sizeof *req);
		req->data = ag;
		uv_pipe_connect(req, ag->pipe, sock ? sock : "", on_connect);
		return 0;
	}
	if (ag->failed)
		return ssh_fail(o, "auth", "no key given and no usable ssh-agent for %s@%s:%d (%s)",
				se->user, se->host, se->port, ag->err);
	if (!ag->listed)
		return 0;
	for (;;) {
		if (ag->cur >= ag->nkeys)
			return ssh_fail(o, "auth",
					ag->nkeys
						? "no key in the ssh-agent is accepted by %s@%s:%d"
						: "the ssh-agent holds no key (for %s@%s:%d)",
					se->user, se->host, se->port);
		struct agent_key *k = &ag->keys[ag->cur];
		o->ag_abstract = o;
		int rc = libssh2_userauth_publickey(se->s, se->user, k->blob, k->len, agent_sign,
						    &o->ag_abstract);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (rc == 0)
			return 1;
		if (ag->failed)
			return ssh_fail(o, "auth", "the ssh-agent failed for %s@%s:%d (%s)",
					se->user, se->host, se->port, ag->err);
		if (ag->pending || ag->sig_state == 1)
			return 0; /* libssh2 gave up the attempt while the agent signs:
				   * it starts again, with the same data, when the
				   * answer is in */
		ag->cur++;	  /* this key is refused: the next one */
		forget_request(ag);
	}
}

void ssh_agent_free(struct sshop *o)
{
	struct ssh_agent *ag = o->ag;
	if (!ag)
		return;
	o->ag = NULL;
	if (ag->pipe) /* a pending connect or write is cancelled, and frees itself */
		uv_close((uv_handle_t *)ag->pipe, pipe_closed);
	for (size_t i = 0; i < ag->nkeys; i++)
		free(ag->keys[i].blob);
	free(ag->keys);
	forget_request(ag);
	drr_buf_free(&ag->in);
	free(ag);
}
