/*
 * ssh.c - "drrun.ssh.core": SSH sessions, commands and SFTP transfers on
 * the event loop (libssh2 in non-blocking mode).
 *
 * A session is one TCP connection with one uv_poll handle.  Every operation
 * on it (connect, exec, put, get) is a small state machine: its step
 * function calls libssh2 until it would block (LIBSSH2_ERROR_EAGAIN), and
 * the session's poll handle, watching the directions libssh2 asks for,
 * calls every pending step again when the socket is ready.  The calling
 * coroutine sleeps meanwhile, so hundreds of hosts cost hundreds of sockets,
 * not threads.  Sessions are pooled for the run by (user, host, port, key).
 *
 * Host keys are checked against known_hosts before any credential is sent:
 * "strict" refuses unknown and changed keys; "accept-new" records unknown
 * ones.  A timed-out command is killed on the remote side: each command
 * reports its process group id first (on stderr, removed from the result)
 * and a second channel kills that group.  Exports luaopen_drrun_ssh.
 * The public module (ssh.run, OpenSSH config) is stdlib/drrun/ssh.lua.
 */
#include "drrun/plugin.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define SESSION_MT "drrun.ssh.Session"
#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_EXEC_TIMEOUT 600.0
#define DEFAULT_MAX_OUTPUT (16u << 20)
#define CHUNK (256 * 1024)
#define PID_TAG "drrun-pid:"

enum {
	S_CONNECTING,
	S_READY,
	S_DEAD
};

struct sshop;

/* Lifetime: refs counts the Lua handles, the pool and each pending op.  The
 * connection (socket, poll handle, libssh2 state) is released as soon as
 * nothing needs it, or at the end of the run; the struct itself lives until
 * the last reference goes, which may be a Lua handle collected after the
 * loop is gone, so releasing never touches the loop twice. */
struct sess {
	LIBSSH2_SESSION *s;
	LIBSSH2_SFTP *sftp;
	struct sshop *sftp_owner; /* the transfer whose turn it is */
	int fd;
	uv_poll_t *poll;
	int state, refs, pooled;
	uint64_t rx; /* bytes read from the socket, for drive() */
	int events;  /* what the poll handle watches */
	char *pool_key, *host, *user;
	int port;
	struct sshop *ops;
	struct sess *next; /* every live session */
};

enum {
	K_CONNECT,
	K_EXEC,
	K_PUT,
	K_GET
};

struct sshop {
	struct drr_op op;
	struct sess *se;
	int kind, phase, finished, timed_out, cancelled;
	int sync; /* inside the Lua call that started it: finishing must not wake */
	int (*step)(struct sshop *); /* 1: finished; 0: would block */
	struct sshop *next;
	uv_timer_t *timer;
	double t0, timeout;
	const char *tok;
	char err[768];
	/* connect */
	uv_getaddrinfo_t gai;
	struct addrinfo *ai, *ai_cur;
	char *key_path, *pub_path, *passphrase, *known_hosts, *host_key_mode;
	int try_agent, recorded;
	LIBSSH2_AGENT *agent;
	struct libssh2_agent_publickey *identity;
	/* exec */
	LIBSSH2_CHANNEL *ch, *kill_ch;
	char *cmd, *user_cmd, *in;
	size_t in_len, in_off, max_output, out_total, err_total;
	struct drr_buf out, errb;
	int pty, exit_status, has_exit;
	char signame[32];
	long remote_pgid; /* 0: not reported yet; -1: never will be */
	char tag[64];	  /* the start of the pid report */
	size_t tag_len;
	int tag_skip, tag_lines; /* inside, and count of, lines before it */
	char *kill_cmd;
	/* sftp */
	LIBSSH2_SFTP_HANDLE *fh;
	char *local, *remote, *tmp;
	int lfd;
	long mode;
	char *buf;
	size_t blen, boff;
	uint64_t bytes;
	SHA256_CTX sha;
};

static struct sess *sessions;
static int lib_ready;

/* ---- errors ------------------------------------------------------------------ */

static int fail(struct sshop *o, const char *tok, const char *fmt, ...) DRR_PRINTF(3, 4);
static int fail(struct sshop *o, const char *tok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->err, sizeof o->err, fmt, ap);
	va_end(ap);
	o->tok = tok;
	return 1;
}

static const char *last_error(struct sess *se)
{
	char *msg = NULL;
	libssh2_session_last_error(se->s, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

/* A libssh2 failure: the session is no longer usable. */
static int fail_ssh(struct sshop *o, const char *tok, const char *what)
{
	struct sess *se = o->se;
	fail(o, tok, "%s %s@%s:%d: %s", what, se->user, se->host, se->port, last_error(se));
	se->state = S_DEAD;
	return 1;
}

/* ---- sessions ------------------------------------------------------------------ */

static void drive(struct sess *se);

static void on_poll(uv_poll_t *h, int status, int events)
{
	(void)status, (void)events;
	drive(h->data);
}

static void poll_closed(uv_handle_t *h)
{
	free(h);
}

/* Watch fd (a new socket) with a fresh poll handle. */
static void watch(struct sess *se, int fd, int events)
{
	se->fd = fd;
	se->poll = drr_xcalloc(1, sizeof *se->poll);
	uv_poll_init_socket(drr_loop(), se->poll, fd);
	se->poll->data = se;
	se->events = events;
	uv_poll_start(se->poll, events, on_poll);
}

static void unwatch(struct sess *se)
{
	if (se->poll) {
		uv_poll_stop(se->poll);
		uv_close((uv_handle_t *)se->poll, poll_closed);
		se->poll = NULL;
	}
	if (se->fd >= 0)
		close(se->fd); /* after uv_close: nothing watches it any more */
	se->fd = -1;
}

/* Let go of the connection; the struct stays for its references. */
static void sess_release(struct sess *se)
{
	if (se->s) {
		if (se->state == S_READY)
			libssh2_session_disconnect(se->s, "drrun: done"); /* best effort */
		/* In non-blocking mode, freeing a channel that is still open
		 * returns EAGAIN while it waits for the server's close, and leaves
		 * the memory allocated.  With the socket shut down nothing can be
		 * waited for, so blocking mode frees everything at once. */
		if (se->fd >= 0)
			shutdown(se->fd, SHUT_RDWR);
		libssh2_session_set_blocking(se->s, 1);
		if (se->sftp)
			libssh2_sftp_shutdown(se->sftp);
		se->sftp = NULL;
		libssh2_session_free(se->s);
		se->s = NULL;
	}
	unwatch(se);
	se->state = S_DEAD;
}

static void pool_remove(struct sess *se)
{
	if (se->pooled) {
		se->pooled = 0;
		se->refs--;
	}
}

static void sess_unref(struct sess *se)
{
	if (--se->refs > 0 || se->ops)
		return;
	sess_release(se);
	for (struct sess **pp = &sessions; *pp; pp = &(*pp)->next)
		if (*pp == se) {
			*pp = se->next;
			break;
		}
	free(se->pool_key);
	free(se->host);
	free(se->user);
	free(se);
}

/* Watch what libssh2 waits for; the poll handle is touched only when that
 * changes (each change is an epoll_ctl). */
static void update_poll(struct sess *se)
{
	if (!se->poll)
		return;
	int ev = UV_READABLE;
	if (se->s && (libssh2_session_block_directions(se->s) & LIBSSH2_SESSION_BLOCK_OUTBOUND))
		ev |= UV_WRITABLE;
	if (!se->s)
		ev = UV_WRITABLE; /* a TCP connect in progress */
	if (!se->ops)
		ev = 0;
	if (ev == se->events)
		return;
	se->events = ev;
	if (ev)
		uv_poll_start(se->poll, ev, on_poll);
	else
		uv_poll_stop(se->poll);
}

static void op_free(struct sshop *o);

static void op_finish(struct sshop *o)
{
	struct sess *se = o->se;
	for (struct sshop **pp = &se->ops; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			break;
		}
	o->finished = 1;
	if (se->sftp_owner == o)
		se->sftp_owner = NULL;
	if (o->timer)
		uv_timer_stop(o->timer);
	if (o->sync)
		return; /* the starting call returns the result itself */
	if (o->op.task)
		drr_task_wake(o->op.task); /* the continuation reads and frees it */
	else
		op_free(o);
}

/* Run every pending operation until each would block or finishes.
 * libssh2 reads whatever the socket has, whichever call reads it, and
 * queues packets for the other channels (and for the other stream of the
 * same channel): once they are queued the socket is no longer readable.
 * So a pass that read anything from the socket is followed by another, in
 * which every op sees the queue; the socket is waited on only after a pass
 * that read nothing (or, after 64 passes, on the next loop iteration). */
static void drive(struct sess *se)
{
	se->refs++; /* an op finishing must not free the session under us */
	int again = 1;
	for (int pass = 0; again && pass < 64; pass++) {
		uint64_t rx = se->rx;
		again = 0;
		for (struct sshop *o = se->ops, *next; o; o = next) {
			next = o->next;
			if (o->step(o)) {
				op_finish(o);
				again = 1; /* the list changed */
				break;
			}
		}
		if (se->rx != rx)
			again = 1;
	}
	update_poll(se);
	if (again && se->poll && se->ops && !(se->events & UV_WRITABLE)) {
		/* data keeps coming: let the loop run, and come back at once (the
		 * socket is writable) rather than wait for data that may already
		 * be queued */
		se->events |= UV_WRITABLE;
		uv_poll_start(se->poll, se->events, on_poll);
	}
	if (se->state == S_DEAD) {
		if (se->pooled)
			pool_remove(se);
		if (!se->ops)
			sess_release(se);
	}
	sess_unref(se);
}

static void add_op(struct sess *se, struct sshop *o)
{
	o->se = se;
	o->next = se->ops;
	se->ops = o;
}

/* ---- timers ----------------------------------------------------------------------- */

static void timer_closed(uv_handle_t *h)
{
	free(h);
}

static void on_op_timeout(uv_timer_t *t)
{
	struct sshop *o = t->data;
	if (o->finished)
		return;
	o->timed_out = 1;
	drive(o->se);
}

static void start_timer(struct sshop *o, double secs)
{
	o->timeout = secs;
	if (secs <= 0)
		return;
	o->timer = drr_xcalloc(1, sizeof *o->timer);
	uv_timer_init(drr_loop(), o->timer);
	o->timer->data = o;
	uv_timer_start(o->timer, on_op_timeout, (uint64_t)(secs * 1000 + 0.5), 0);
}

static void op_free(struct sshop *o)
{
	struct sess *se = o->se;
	if (o->timer)
		uv_close((uv_handle_t *)o->timer, timer_closed);
	if (o->ai)
		freeaddrinfo(o->ai);
	if (o->lfd >= 0)
		close(o->lfd);
	if (o->tmp) {
		unlink(o->tmp);
		free(o->tmp);
	}
	free(o->key_path);
	free(o->pub_path);
	if (o->passphrase) {
		memset(o->passphrase, 0, strlen(o->passphrase));
		free(o->passphrase);
	}
	free(o->known_hosts);
	free(o->host_key_mode);
	free(o->cmd);
	free(o->user_cmd);
	free(o->in);
	free(o->kill_cmd);
	free(o->local);
	free(o->remote);
	free(o->buf);
	drr_buf_free(&o->out);
	drr_buf_free(&o->errb);
	if (o->agent) {
		libssh2_agent_disconnect(o->agent);
		libssh2_agent_free(o->agent);
	}
	free(o);
	if (se)
		sess_unref(se);
}

static struct sshop *op_new(int kind)
{
	struct sshop *o = drr_xcalloc(1, sizeof *o);
	o->kind = kind;
	o->lfd = -1;
	o->t0 = drr_mono();
	return o;
}

/* ---- connect ------------------------------------------------------------------------- */

enum {
	C_RESOLVE,
	C_TCP,
	C_HANDSHAKE,
	C_AUTH,
	C_DONE
};

/* Append a line (with its newline) to path, as ssh(1) does with a new
 * host: the rest of the file is left as it is.  0 or -1 (errno). */
static int append_line(const char *path, const char *line, size_t len)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	char last = '\n';
	off_t end = lseek(fd, 0, SEEK_END);
	if (end > 0 && pread(fd, &last, 1, end - 1) != 1)
		last = '\n';
	int rc = 0;
	if (last != '\n' && write(fd, "\n", 1) != 1)
		rc = -1;
	for (size_t off = 0; rc == 0 && off < len;) {
		ssize_t w = write(fd, line + off, len - off);
		if (w < 0)
			rc = -1;
		else
			off += (size_t)w;
	}
	if (close(fd) < 0)
		rc = -1;
	return rc;
}

static int hostkey_check(struct sshop *o)
{
	struct sess *se = o->se;
	size_t len;
	int type;
	const char *key = libssh2_session_hostkey(se->s, &len, &type);
	if (!key)
		return fail_ssh(o, "hostkey", "no host key from");
	int kt;
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		kt = LIBSSH2_KNOWNHOST_KEY_SSHRSA;
		break;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		kt = LIBSSH2_KNOWNHOST_KEY_SSHDSS;
		break;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		kt = LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
		break;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		kt = LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
		break;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		kt = LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
		break;
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		kt = LIBSSH2_KNOWNHOST_KEY_ED25519;
		break;
	default:
		return fail(o, "hostkey", "%s: unsupported host key type", se->host);
	}
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(se->s);
	struct stat st;
	if (stat(o->known_hosts, &st) == 0 &&
	    libssh2_knownhost_readfile(kh, o->known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		libssh2_knownhost_free(kh);
		return fail(o, "hostkey", "cannot read known_hosts %s", o->known_hosts);
	}
	struct libssh2_knownhost *found = NULL;
	int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kt;
	int rc = libssh2_knownhost_checkp(kh, se->host, se->port, key, len, mask, &found);
	int ret = 0;
	if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
		ret = 0;
	} else if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		ret = fail(o, "hostkey",
			   "host key for %s:%d does not match %s: refusing (possible "
			   "man-in-the-middle; remove the old key if the host was rebuilt)",
			   se->host, se->port, o->known_hosts);
	} else if (rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && o->host_key_mode &&
		   !strcmp(o->host_key_mode, "accept-new")) {
		char name[300];
		if (se->port == 22)
			snprintf(name, sizeof name, "%s", se->host);
		else
			snprintf(name, sizeof name, "[%s]:%d", se->host, se->port);
		struct libssh2_knownhost *added = NULL;
		char line[8192];
		size_t ll = 0;
		if (libssh2_knownhost_addc(kh, name, NULL, key, len, NULL, 0, mask, &added) < 0 ||
		    libssh2_knownhost_writeline(kh, added, line, sizeof line, &ll,
						LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0 ||
		    append_line(o->known_hosts, line, ll) < 0)
			ret = fail(o, "hostkey", "cannot record the host key of %s in %s", name,
				   o->known_hosts);
		else
			o->recorded = 1;
	} else if (rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
		ret = fail(o, "hostkey",
			   "host %s:%d is not in %s: refusing (host_key = \"accept-new\" records "
			   "unknown hosts)",
			   se->host, se->port, o->known_hosts);
	} else {
		ret = fail(o, "hostkey", "host key check of %s failed", se->host);
	}
	libssh2_knownhost_free(kh);
	if (ret)
		se->state = S_DEAD;
	return ret;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static int tcp_next(struct sshop *o)
{
	struct sess *se = o->se;
	while (o->ai_cur) {
		struct addrinfo *a = o->ai_cur;
		o->ai_cur = a->ai_next;
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			snprintf(o->err, sizeof o->err, "%s", strerror(errno));
			close(fd);
			continue;
		}
		watch(se, fd, UV_WRITABLE);
		return 0;
	}
	return fail(o, "refused", "cannot connect to %s:%d: %s", se->host, se->port,
		    o->err[0] ? o->err : "no address");
}

/* Whether the private key at path is RSA: its .pub, a PEM header, or the
 * public half at the start of an OpenSSH-format key. */
static int key_is_rsa(const char *path)
{
	char buf[4096], b64[260], raw[200];
	char *pub = drr_xasprintf("%s.pub", path);
	FILE *f = fopen(pub, "r");
	free(pub);
	if (f) {
		size_t n = fread(buf, 1, 8, f);
		fclose(f);
		if (n == 8 && !memcmp(buf, "ssh-rsa ", 8))
			return 1;
	}
	if (!(f = fopen(path, "r")))
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	if (strstr(buf, "BEGIN RSA PRIVATE KEY"))
		return 1;
	const char *p = strstr(buf, "BEGIN OPENSSH PRIVATE KEY-----");
	if (!p)
		return 0;
	size_t m = 0;
	for (p += 30; *p && *p != '-' && m < 256; p++)
		if (*p != '\n' && *p != '\r')
			b64[m++] = *p;
	m -= m % 4;
	int len = EVP_DecodeBlock((unsigned char *)raw, (unsigned char *)b64, (int)m);
	return len > 0 && memmem(raw, (size_t)len, "\0\0\0\7ssh-rsa", 11) != NULL;
}

/* Why an RSA key may be refused by a server that accepts the key itself. */
static const char *rsa_hint(const char *key_path)
{
	if (libssh2_version(0x010b00) || !key_is_rsa(key_path))
		return "";
	return " (this libssh2 is older than 1.11 and signs with RSA keys only as ssh-rsa, "
	       "SHA-1, which OpenSSH 8.8 and later refuse by default: use an ed25519 key, "
	       "or allow ssh-rsa in the server's PubkeyAcceptedAlgorithms)";
}

static int auth_step(struct sshop *o)
{
	struct sess *se = o->se;
	int rc;
	if (o->key_path) {
		rc = libssh2_userauth_publickey_fromfile_ex(se->s, se->user,
							    (unsigned)strlen(se->user), o->pub_path,
							    o->key_path, o->passphrase);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (rc == 0)
			return 1;
		if (!o->try_agent)
			return fail(o, "auth",
				    "public key authentication of %s@%s:%d with %s failed: %s%s",
				    se->user, se->host, se->port, o->key_path, last_error(se),
				    rsa_hint(o->key_path));
		free(o->key_path);
		o->key_path = NULL; /* fall back to the agent */
	}
	if (!o->try_agent)
		return fail(o, "auth", "no key for %s@%s:%d (give key = path, or run an agent)",
			    se->user, se->host, se->port);
	if (!o->agent) {
		o->agent = libssh2_agent_init(se->s);
		if (!o->agent || libssh2_agent_connect(o->agent) ||
		    libssh2_agent_list_identities(o->agent))
			return fail(o, "auth", "no key given and no usable ssh-agent for %s@%s:%d",
				    se->user, se->host, se->port);
		if (libssh2_agent_get_identity(o->agent, &o->identity, NULL))
			return fail(o, "auth", "the ssh-agent holds no key");
	}
	for (;;) {
		rc = libssh2_agent_userauth(o->agent, se->user, o->identity);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (rc == 0)
			return 1;
		struct libssh2_agent_publickey *prev = o->identity;
		if (libssh2_agent_get_identity(o->agent, &o->identity, prev))
			return fail(o, "auth", "no key in the ssh-agent is accepted by %s@%s:%d",
				    se->user, se->host, se->port);
	}
}

/* libssh2's socket reads, counted for drive(); errors as -errno. */
static LIBSSH2_RECV_FUNC(counting_recv)
{
	struct sess *se = *abstract;
	ssize_t n = recv(socket, buffer, length, flags);
	if (n < 0)
		return -errno;
	se->rx += (uint64_t)n;
	return n;
}

static int connect_step(struct sshop *o)
{
	struct sess *se = o->se;
	if (o->phase == C_RESOLVE)
		return 0; /* on_resolved moves on, even after a timeout */
	if (o->timed_out || o->cancelled) {
		char d[32];
		se->state = S_DEAD;
		return fail(o, "timeout", "connecting to %s:%d took longer than %s", se->host,
			    se->port, drr_duration_fmt(o->timeout, d, sizeof d));
	}
	int rc;
	switch (o->phase) {
	case C_TCP: {
		int err = 0;
		socklen_t l = sizeof err;
		if (getsockopt(se->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY)
			return 0;
		if (err) {
			snprintf(o->err, sizeof o->err, "%s", strerror(err));
			unwatch(se);
			if (tcp_next(o)) {
				se->state = S_DEAD;
				return fail(o, err == ECONNREFUSED ? "refused" : "closed",
					    "cannot connect to %s:%d: %s", se->host, se->port,
					    strerror(err));
			}
			return 0;
		}
		/* connected: is it writable yet?  SO_ERROR 0 before the connect
		 * finished is possible only once the poll said writable */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		if (getpeername(se->fd, (struct sockaddr *)&ss, &sl) < 0)
			return 0;
		se->s = libssh2_session_init_ex(NULL, NULL, NULL, se);
		libssh2_session_callback_set(se->s, LIBSSH2_CALLBACK_RECV, (void *)counting_recv);
		libssh2_session_set_blocking(se->s, 0);
		o->phase = C_HANDSHAKE;
	}
		/* fallthrough */
	case C_HANDSHAKE:
		rc = libssh2_session_handshake(se->s, se->fd);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (rc)
			return fail_ssh(o, "closed", "SSH handshake with");
		if (hostkey_check(o)) /* before any credential is sent */
			return 1;
		o->phase = C_AUTH;
		/* fallthrough */
	case C_AUTH:
		if (!auth_step(o))
			return 0;
		if (o->tok) {
			se->state = S_DEAD;
			return 1;
		}
		se->state = S_READY;
		o->phase = C_DONE;
		return 1;
	}
	return 1;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct sshop *o = req->data;
	struct sess *se = o->se;
	if (o->timed_out || o->cancelled) {
		if (res)
			uv_freeaddrinfo(res);
		char d[32];
		fail(o, "timeout", "resolving %s took longer than %s", se->host,
		     drr_duration_fmt(o->timeout, d, sizeof d));
		se->state = S_DEAD;
		op_finish(o);
		return;
	}
	if (status < 0) {
		fail(o, "dns", "cannot resolve %s: %s", se->host, uv_strerror(status));
		se->state = S_DEAD;
		op_finish(o);
		return;
	}
	o->ai = o->ai_cur = res;
	o->phase = C_TCP;
	if (tcp_next(o)) {
		se->state = S_DEAD;
		op_finish(o);
	}
}

/* ---- exec ----------------------------------------------------------------------------- */

enum {
	E_OPEN,
	E_PTY,
	E_EXEC,
	E_STDIN,
	E_EOF,
	E_READ,
	E_KILL_OPEN,
	E_KILL_EXEC,
	E_KILL_WAIT,
	E_CLOSE,
	E_WAIT,
	E_FREE
};

static void keep_out(struct sshop *o, int stream, const char *p, size_t n)
{
	struct drr_buf *b = stream ? &o->errb : &o->out;
	size_t *total = stream ? &o->err_total : &o->out_total;
	size_t room = *total < o->max_output ? o->max_output - *total : 0;
	drr_buf_add(b, p, n < room ? n : room);
	*total += n;
}

/* What the command wrote.  The pid report is the first line the command
 * itself writes to stderr (to stdout with a pty, which merges the two);
 * lines before it come from the remote side's start-up ("Could not chdir to
 * home directory", a shell's rc file) and are output.  The report is held
 * apart until it is whole, so neither max_output nor a chunk boundary can
 * cut it, and it never reaches the result.  No report within the first 8
 * lines: there will be none (remote_pgid -1). */
static void keep(struct sshop *o, int stream, const char *p, size_t n)
{
	const size_t taglen = strlen(PID_TAG);
	while (n && stream == (o->pty ? 0 : 1) && o->remote_pgid == 0) {
		const char *nl = memchr(p, '\n', n);
		size_t k = nl ? (size_t)(nl + 1 - p) : n;
		if (o->tag_skip) { /* the rest of a line that is not the report */
			keep_out(o, stream, p, k);
			p += k, n -= k;
			if (nl) {
				o->tag_skip = 0;
				if (++o->tag_lines >= 8)
					o->remote_pgid = -1;
			}
			continue;
		}
		size_t room = sizeof o->tag - 1 - o->tag_len;
		if (k > room)
			k = room;
		memcpy(o->tag + o->tag_len, p, k);
		o->tag_len += k;
		o->tag[o->tag_len] = 0;
		p += k, n -= k;
		int whole = o->tag[o->tag_len - 1] == '\n';
		size_t m = o->tag_len < taglen ? o->tag_len : taglen;
		int ours = !memcmp(o->tag, PID_TAG, m);
		if (ours && !whole && o->tag_len < sizeof o->tag - 1)
			continue; /* maybe the report: wait for the rest of it */
		long pgid = ours && whole ? strtol(o->tag + taglen, NULL, 10) : 0;
		if (pgid > 0) {
			o->remote_pgid = pgid;
		} else {
			keep_out(o, stream, o->tag, o->tag_len);
			o->tag_skip = !whole;
			if (whole && ++o->tag_lines >= 8)
				o->remote_pgid = -1;
		}
		o->tag_len = 0;
	}
	if (n)
		keep_out(o, stream, p, n);
}

/* The command is over: a report that never got its newline is output. */
static void keep_flush(struct sshop *o)
{
	if (o->tag_len)
		keep_out(o, o->pty ? 0 : 1, o->tag, o->tag_len);
	o->tag_len = 0;
}

static int exec_step(struct sshop *o)
{
	struct sess *se = o->se;
	LIBSSH2_SESSION *s = se->s;
	char buf[32768];
	ssize_t n;
	int rc;
	if ((o->timed_out || o->cancelled) && o->phase < E_KILL_OPEN) {
		if (o->remote_pgid > 0) {
			/* dash (Debian's /bin/sh) takes no "--" in kill */
			o->kill_cmd =
				drr_xasprintf("kill -KILL -%ld 2>/dev/null || "
					      "kill -KILL -- -%ld 2>/dev/null || kill -KILL %ld",
					      o->remote_pgid, o->remote_pgid, o->remote_pgid);
			o->phase = E_KILL_OPEN;
		} else if (o->ch && o->phase >= E_EXEC) {
			/* running, and no process group to kill: closing the channel
			 * would wait for the command to end by itself */
			se->state = S_DEAD;
			if (!o->timed_out)
				return 1;
			char d[32];
			return fail(o, "timeout",
				    "'%s' on %s ran past %s (not killed: it reported no process "
				    "id; the connection was closed)",
				    o->user_cmd, se->host,
				    drr_duration_fmt(o->timeout, d, sizeof d));
		} else {
			o->phase = o->ch ? E_CLOSE : E_FREE;
		}
	}
	for (;;) {
		switch (o->phase) {
		case E_OPEN:
			o->ch = libssh2_channel_open_session(s);
			if (!o->ch) {
				if (libssh2_session_last_errno(s) == LIBSSH2_ERROR_EAGAIN)
					return 0;
				return fail_ssh(o, "closed", "cannot open a channel to");
			}
			o->phase = o->pty ? E_PTY : E_EXEC;
			break;
		case E_PTY:
			rc = libssh2_channel_request_pty(o->ch, "xterm");
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			if (rc)
				return fail_ssh(o, "closed", "pty request refused by");
			o->phase = E_EXEC;
			break;
		case E_EXEC:
			rc = libssh2_channel_exec(o->ch, o->cmd);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			if (rc)
				return fail_ssh(o, "closed", "exec refused by");
			o->phase = o->in ? E_STDIN : E_EOF;
			break;
		case E_STDIN:
			while (o->in_off < o->in_len) {
				n = libssh2_channel_write(o->ch, o->in + o->in_off,
							  o->in_len - o->in_off);
				/* 0: the remote window is full; its adjustment comes
				 * in with the output */
				if (n == LIBSSH2_ERROR_EAGAIN || n == 0)
					goto read_some; /* keep draining output meanwhile */
				if (n < 0)
					return fail_ssh(o, "closed", "writing stdin to");
				o->in_off += (size_t)n;
			}
			o->phase = E_EOF;
			break;
		case E_EOF:
			rc = libssh2_channel_send_eof(o->ch);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			o->phase = E_READ;
			break;
		case E_READ:
		read_some:
			for (int stream = 0; stream < 2; stream++) {
				while ((n = libssh2_channel_read_ex(o->ch, stream, buf,
								    sizeof buf)) > 0)
					keep(o, stream, buf, (size_t)n);
				if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
					return fail_ssh(o, "closed", "reading from");
			}
			if (o->phase == E_STDIN)
				return 0;
			if (!libssh2_channel_eof(o->ch))
				return 0;
			o->phase = E_CLOSE;
			break;
		case E_KILL_OPEN:
			o->kill_ch = libssh2_channel_open_session(s);
			if (!o->kill_ch) {
				if (libssh2_session_last_errno(s) == LIBSSH2_ERROR_EAGAIN)
					return 0;
				o->phase = E_CLOSE;
				break;
			}
			o->phase = E_KILL_EXEC;
			break;
		case E_KILL_EXEC:
			rc = libssh2_channel_exec(o->kill_ch, o->kill_cmd);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			o->phase = E_KILL_WAIT;
			break;
		case E_KILL_WAIT:
			while ((n = libssh2_channel_read(o->kill_ch, buf, sizeof buf)) > 0)
				;
			if (n == LIBSSH2_ERROR_EAGAIN && !libssh2_channel_eof(o->kill_ch))
				return 0;
			rc = libssh2_channel_close(o->kill_ch);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			rc = libssh2_channel_wait_closed(o->kill_ch);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			libssh2_channel_free(o->kill_ch);
			o->kill_ch = NULL;
			o->phase = E_CLOSE;
			break;
		case E_CLOSE:
			/* drain what is left so the close is not held up by the window */
			for (int stream = 0; stream < 2; stream++)
				while ((n = libssh2_channel_read_ex(o->ch, stream, buf,
								    sizeof buf)) > 0)
					if (!o->timed_out && !o->cancelled)
						keep(o, stream, buf, (size_t)n);
			rc = libssh2_channel_close(o->ch);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			o->phase = E_WAIT;
			break;
		case E_WAIT:
			rc = libssh2_channel_wait_closed(o->ch);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			o->exit_status = libssh2_channel_get_exit_status(o->ch);
			char *sig = NULL;
			size_t slen = 0;
			libssh2_channel_get_exit_signal(o->ch, &sig, &slen, NULL, NULL, NULL, NULL);
			if (sig) {
				snprintf(o->signame, sizeof o->signame, "%.*s", (int)slen, sig);
				libssh2_free(s, sig);
			}
			o->has_exit = 1;
			keep_flush(o);
			o->phase = E_FREE;
			break;
		case E_FREE:
			if (o->ch) {
				rc = libssh2_channel_free(o->ch);
				if (rc == LIBSSH2_ERROR_EAGAIN)
					return 0;
				o->ch = NULL;
			}
			if (o->timed_out) {
				char d[32];
				return fail(o, "timeout", "'%s' on %s ran past %s (killed)",
					    o->user_cmd, se->host,
					    drr_duration_fmt(o->timeout, d, sizeof d));
			}
			return 1;
		}
	}
}

/* ---- sftp ------------------------------------------------------------------------------- */

enum {
	F_INIT,
	F_OPEN,
	F_XFER,
	F_CLOSE
};

static int sftp_ready(struct sshop *o)
{
	struct sess *se = o->se;
	/* libssh2 keeps one state per kind of SFTP request (open, read, write,
	 * close) on the session's SFTP channel: transfers take turns, and the
	 * turn ends in op_finish */
	if (se->sftp_owner && se->sftp_owner != o)
		return 0;
	se->sftp_owner = o;
	if (se->sftp)
		return 1;
	se->sftp = libssh2_sftp_init(se->s);
	if (!se->sftp) {
		if (libssh2_session_last_errno(se->s) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		fail_ssh(o, "closed", "cannot start SFTP on");
		return -1;
	}
	return 1;
}

static int xfer_abandon(struct sshop *o)
{
	/* a transfer cut off mid-protocol leaves the session unusable; one
	 * still waiting for its turn sent nothing */
	if (o->se->sftp_owner == o)
		o->se->state = S_DEAD;
	char d[32];
	if (o->timed_out)
		return fail(o, "timeout", "transfer of %s with %s ran past %s", o->remote,
			    o->se->host, drr_duration_fmt(o->timeout, d, sizeof d));
	return 1;
}

/* The start every transfer shares: give up when timed out or cancelled,
 * wait for the session's SFTP channel, open the remote file.  Returns 1
 * once o->fh is open; else 0, with *ret what the step returns (0: wait,
 * 1: finished, failed or abandoned). */
static int xfer_open(struct sshop *o, unsigned long flags, long mode, const char *verb, int *ret)
{
	struct sess *se = o->se;
	if (o->timed_out || o->cancelled) {
		*ret = xfer_abandon(o);
		return 0;
	}
	if (o->phase == F_INIT) {
		int r = sftp_ready(o);
		if (r <= 0) {
			*ret = r < 0;
			return 0;
		}
		o->phase = F_OPEN;
	}
	if (o->phase == F_OPEN) {
		o->fh = libssh2_sftp_open_ex(se->sftp, o->remote, (unsigned)strlen(o->remote),
					     flags, mode, LIBSSH2_SFTP_OPENFILE);
		if (!o->fh) {
			if (libssh2_session_last_errno(se->s) == LIBSSH2_ERROR_EAGAIN)
				*ret = 0;
			else
				*ret = fail(o, "sftp", "cannot %s %s on %s: SFTP error %lu", verb,
					    o->remote, se->host, libssh2_sftp_last_error(se->sftp));
			return 0;
		}
		o->phase = F_XFER;
	}
	return 1;
}

static int put_step(struct sshop *o)
{
	struct sess *se = o->se;
	int ret;
	if (!xfer_open(o, LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, o->mode,
		       "create", &ret))
		return ret;
	switch (o->phase) {
	case F_XFER:
		for (;;) {
			if (o->boff == o->blen) {
				ssize_t n = read(o->lfd, o->buf, CHUNK);
				if (n < 0)
					return fail(o, "io", "cannot read %s: %s", o->local,
						    strerror(errno));
				if (n == 0)
					break;
				SHA256_Update(&o->sha, o->buf, (size_t)n);
				o->blen = (size_t)n;
				o->boff = 0;
			}
			ssize_t w = libssh2_sftp_write(o->fh, o->buf + o->boff, o->blen - o->boff);
			if (w == LIBSSH2_ERROR_EAGAIN)
				return 0;
			if (w < 0)
				return fail(o, "sftp", "writing %s on %s: SFTP error %lu",
					    o->remote, se->host, libssh2_sftp_last_error(se->sftp));
			o->boff += (size_t)w;
			o->bytes += (uint64_t)w;
		}
		o->phase = F_CLOSE;
		/* fallthrough */
	case F_CLOSE:
		if (libssh2_sftp_close_handle(o->fh) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		o->fh = NULL;
		return 1;
	}
	return 1;
}

static int get_step(struct sshop *o)
{
	struct sess *se = o->se;
	int ret;
	if (!xfer_open(o, LIBSSH2_FXF_READ, 0, "open", &ret))
		return ret;
	switch (o->phase) {
	case F_XFER:
		for (;;) {
			ssize_t n = libssh2_sftp_read(o->fh, o->buf, CHUNK);
			if (n == LIBSSH2_ERROR_EAGAIN)
				return 0;
			if (n < 0)
				return fail(o, "sftp", "reading %s on %s: SFTP error %lu",
					    o->remote, se->host, libssh2_sftp_last_error(se->sftp));
			if (n == 0)
				break;
			SHA256_Update(&o->sha, o->buf, (size_t)n);
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(o->lfd, o->buf + off, (size_t)(n - off));
				if (w < 0)
					return fail(o, "io", "cannot write %s: %s", o->tmp,
						    strerror(errno));
				off += w;
			}
			o->bytes += (uint64_t)n;
		}
		o->phase = F_CLOSE;
		/* fallthrough */
	case F_CLOSE:
		if (libssh2_sftp_close_handle(o->fh) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		o->fh = NULL;
		if (fsync(o->lfd) < 0 || close(o->lfd) < 0) {
			o->lfd = -1;
			return fail(o, "io", "cannot write %s: %s", o->tmp, strerror(errno));
		}
		o->lfd = -1;
		if (rename(o->tmp, o->local) < 0)
			return fail(o, "io", "cannot rename into %s: %s", o->local,
				    strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return 1;
	}
	return 1;
}

/* ---- cancellation ----------------------------------------------------------------------- */

static void op_cancel(struct drr_op *op)
{
	struct sshop *o = (struct sshop *)op;
	if (o->finished) { /* done, but its task went away before reading it */
		op_free(o);
		return;
	}
	o->cancelled = 1;
	/* the op finishes on its own (an exec still kills its remote command);
	 * op_finish sees no task and frees it */
	if (o->kind == K_CONNECT && o->phase == C_RESOLVE)
		return; /* on_resolved ends it */
	drive(o->se);
}

/* ---- Lua --------------------------------------------------------------------------------- */

struct ud {
	struct sess *se;
};

static struct sess *check_sess(lua_State *L)
{
	struct ud *u = luaL_checkudata(L, 1, SESSION_MT);
	if (!u->se)
		luaL_error(L, "ssh session is closed");
	if (u->se->state != S_READY)
		luaL_error(L, "ssh session to %s is broken; connect again", u->se->host);
	return u->se;
}

static void push_session(lua_State *L, struct sess *se)
{
	struct ud *u = lua_newuserdatauv(L, sizeof *u, 0);
	u->se = NULL; /* "closed" until it holds a reference */
	luaL_setmetatable(L, SESSION_MT);
	se->refs++;
	u->se = se;
}

static void sha_hex(SHA256_CTX *c, char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_Final(md, c);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int op_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct sshop *o = (struct sshop *)ctx;
	int n = 1;
	if (o->tok) {
		n = drr_push_fail(L, o->tok, "%s", o->err);
	} else if (o->kind == K_CONNECT) {
		struct sess *se = o->se;
		se->pooled = 1;
		se->refs++;
		push_session(L, se);
		if (o->recorded)
			drr_task_log(L, "ssh: recorded the host key of %s:%d in %s", se->host,
				     se->port, o->known_hosts);
	} else if (o->kind == K_EXEC) {
		lua_createtable(L, 0, 6);
		if (o->signame[0]) {
			lua_pushstring(L, o->signame);
			lua_setfield(L, -2, "signal");
		} else {
			lua_pushinteger(L, o->exit_status);
			lua_setfield(L, -2, "status");
		}
		for (int stream = 0; stream < 2; stream++) {
			struct drr_buf *b = stream ? &o->errb : &o->out;
			size_t total = stream ? o->err_total : o->out_total;
			luaL_Buffer lb;
			luaL_buffinit(L, &lb);
			luaL_addlstring(&lb, b->data ? b->data : "", b->len);
			if (total > o->max_output) {
				char note[96];
				snprintf(note, sizeof note,
					 "\n[drrun: output truncated: %zu of %zu bytes kept]\n",
					 o->max_output, total);
				luaL_addstring(&lb, note);
			}
			luaL_pushresult(&lb);
			lua_setfield(L, -2, stream ? "stderr" : "stdout");
		}
		lua_pushnumber(L, drr_mono() - o->t0);
		lua_setfield(L, -2, "duration");
		lua_pushboolean(L, o->out_total > o->max_output || o->err_total > o->max_output);
		lua_setfield(L, -2, "truncated");
		lua_pushstring(L, o->se->host);
		lua_setfield(L, -2, "host");
	} else {
		char hex[65];
		sha_hex(&o->sha, hex);
		lua_createtable(L, 0, 3);
		lua_pushinteger(L, (lua_Integer)o->bytes);
		lua_setfield(L, -2, "bytes");
		lua_pushstring(L, hex);
		lua_setfield(L, -2, "sha256");
		lua_pushnumber(L, drr_mono() - o->t0);
		lua_setfield(L, -2, "duration");
	}
	op_free(o);
	return n;
}

/* t[field] as a string, or NULL when nil; it stays on the stack (so alive)
 * until the function returns.  [-0, +1, e] */
static const char *opt_str(lua_State *L, int idx, const char *field)
{
	lua_getfield(L, idx, field);
	if (lua_isnil(L, -1))
		return NULL;
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "ssh: %s must be a string", field);
	return lua_tostring(L, -1);
}

static char *home_path(const char *rel)
{
	const char *h = getenv("HOME");
	return drr_xasprintf("%s/%s", h && *h ? h : ".", rel);
}

static char *expand_tilde(char *p)
{
	if (p && p[0] == '~' && p[1] == '/') {
		char *e = home_path(p + 2);
		free(p);
		return e;
	}
	return p;
}

static void ensure_lib(void);

/* core.connect{ host, port, user, key, passphrase, agent, known_hosts,
 * host_key, timeout } -> session | nil, err, token */
static int l_connect(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "host");
	const char *host = luaL_checkstring(L, -1);
	lua_getfield(L, 1, "port");
	lua_Integer port = luaL_optinteger(L, -1, 22);
	luaL_argcheck(L, port > 0 && port < 65536, 1, "port out of range");
	lua_getfield(L, 1, "user");
	const char *user = lua_isnil(L, -1) ? getenv("USER") : luaL_checkstring(L, -1);
	if (!user)
		user = "root";
	double timeout = drr_opt_duration(L, 1, "timeout", DEFAULT_TIMEOUT, "ssh.connect");
	/* every check that can raise comes before the first malloc */
	const char *key_s = opt_str(L, 1, "key"), *pass_s = opt_str(L, 1, "passphrase");
	const char *kh_s = opt_str(L, 1, "known_hosts"), *mode_s = opt_str(L, 1, "host_key");
	lua_getfield(L, 1, "agent");
	int agent = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
	if (mode_s && strcmp(mode_s, "strict") && strcmp(mode_s, "accept-new"))
		return luaL_error(L, "ssh: host_key must be \"strict\" or \"accept-new\"");
	drr_task_check(L, "ssh.connect");
	char *key = expand_tilde(key_s ? drr_xstrdup(key_s) : NULL);
	char *pass = pass_s ? drr_xstrdup(pass_s) : NULL;
	char *kh = kh_s ? expand_tilde(drr_xstrdup(kh_s)) : home_path(".ssh/known_hosts");
	char *mode = mode_s ? drr_xstrdup(mode_s) : NULL;
	struct drr_buf pk = { 0 };
	/* a session is reused only for the same identity and host key policy */
	drr_buf_addf(&pk, "%s@%s:%lld|%s|%s|%s", user, host, (long long)port, key ? key : "agent",
		     kh, mode ? mode : "strict");
	for (struct sess *se = sessions; se; se = se->next)
		if (se->pooled && se->state == S_READY && !strcmp(se->pool_key, pk.data)) {
			drr_buf_free(&pk);
			free(key), free(pass), free(kh), free(mode);
			push_session(L, se);
			lua_pushboolean(L, 1); /* second value: reused */
			return 2;
		}
	ensure_lib();
	struct sess *se = drr_xcalloc(1, sizeof *se);
	se->fd = -1;
	se->state = S_CONNECTING;
	se->pool_key = pk.data;
	se->host = drr_xstrdup(host);
	se->user = drr_xstrdup(user);
	se->port = (int)port;
	se->refs = 1; /* the op */
	se->next = sessions;
	sessions = se;
	struct sshop *o = op_new(K_CONNECT);
	o->op.cancel = op_cancel;
	o->step = connect_step;
	o->key_path = key;
	if (key) {
		/* with the public half at hand (as ssh(1) uses it), libssh2 need
		 * not derive it from the private key: one key parse per login
		 * instead of two, the biggest part of a login's CPU */
		o->pub_path = drr_xasprintf("%s.pub", key);
		if (access(o->pub_path, R_OK) < 0) {
			free(o->pub_path);
			o->pub_path = NULL;
		}
	}
	o->passphrase = pass;
	o->known_hosts = kh;
	o->host_key_mode = mode;
	o->try_agent = agent && getenv("SSH_AUTH_SOCK") != NULL;
	add_op(se, o);
	start_timer(o, timeout);
	o->gai.data = o;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%lld", (long long)port);
	struct addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	int rc = uv_getaddrinfo(drr_loop(), &o->gai, on_resolved, host, portstr, &hints);
	if (rc < 0) {
		fail(o, "dns", "cannot resolve %s: %s", host, uv_strerror(rc));
		se->state = S_DEAD;
		o->sync = 1;
		op_finish(o);
		return op_k(L, 0, (lua_KContext)o);
	}
	return drr_task_yield(L, &o->op, (lua_KContext)o, op_k);
}

/* Queue o on se and run it as far as it goes now; yield unless it is done. */
static int start_op(lua_State *L, struct sess *se, struct sshop *o, double timeout)
{
	se->refs++;
	add_op(se, o);
	start_timer(o, timeout);
	o->sync = 1;
	drive(se);
	o->sync = 0;
	if (o->finished)
		return op_k(L, 0, (lua_KContext)o);
	return drr_task_yield(L, &o->op, (lua_KContext)o, op_k);
}

static int dry(lua_State *L, struct sess *se, const char *what, const char *detail)
{
	drr_task_log(L, "would %s on %s@%s:%d: %s", what, se->user, se->host, se->port, detail);
	lua_createtable(L, 0, 4);
	lua_pushinteger(L, 0);
	lua_setfield(L, -2, "status");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stdout");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "stderr");
	lua_pushboolean(L, 1);
	lua_setfield(L, -2, "dry_run");
	return 1;
}

/* session:exec(cmd, { timeout, stdin, pty, max_output }) */
static int l_exec(lua_State *L)
{
	struct sess *se = check_sess(L);
	const char *cmd = luaL_checkstring(L, 2);
	int opts = lua_istable(L, 3) ? 3 : 0;
	double timeout = drr_opt_duration(L, opts, "timeout", DEFAULT_EXEC_TIMEOUT, "ssh");
	size_t in_len = 0;
	const char *in = NULL;
	int pty = 0;
	lua_Integer max = DEFAULT_MAX_OUTPUT;
	if (opts) {
		lua_getfield(L, 3, "stdin");
		in = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &in_len);
		lua_getfield(L, 3, "pty");
		pty = lua_toboolean(L, -1);
		lua_getfield(L, 3, "max_output");
		max = luaL_optinteger(L, -1, DEFAULT_MAX_OUTPUT);
		luaL_argcheck(L, max > 0, 3, "max_output must be positive");
	}
	drr_task_check(L, "session:exec");
	if (drr_dry_run())
		return dry(L, se, "run", cmd);
	struct sshop *o = op_new(K_EXEC);
	o->op.cancel = op_cancel;
	o->step = exec_step;
	/* report the command's process group first, so a timeout can kill it */
	o->cmd = drr_xasprintf("printf '" PID_TAG "%%s\\n' \"$$\" >&2; %s", cmd);
	o->user_cmd = drr_xstrdup(cmd);
	o->pty = pty;
	o->max_output = (size_t)max;
	if (in) {
		o->in = drr_xmalloc(in_len ? in_len : 1);
		memcpy(o->in, in, in_len);
		o->in_len = in_len;
	}
	return start_op(L, se, o, timeout);
}

static int transfer(lua_State *L, int kind)
{
	struct sess *se = check_sess(L);
	const char *a = luaL_checkstring(L, 2), *b = luaL_checkstring(L, 3);
	int opts = lua_istable(L, 4) ? 4 : 0;
	double timeout = drr_opt_duration(L, opts, "timeout", DEFAULT_EXEC_TIMEOUT, "ssh");
	lua_Integer mode = 0644;
	if (opts) {
		lua_getfield(L, 4, "mode");
		mode = luaL_optinteger(L, -1, 0644);
	}
	drr_task_check(L, kind == K_PUT ? "session:put" : "session:get");
	const char *local = kind == K_PUT ? a : b, *remote = kind == K_PUT ? b : a;
	if (drr_dry_run()) {
		char *d =
			drr_xasprintf("%s %s %s %s", kind == K_PUT ? "send" : "fetch",
				      kind == K_PUT ? local : remote, kind == K_PUT ? "to" : "into",
				      kind == K_PUT ? remote : local);
		dry(L, se, "transfer", d);
		free(d);
		return 1;
	}
	struct sshop *o = op_new(kind);
	o->op.cancel = op_cancel;
	o->step = kind == K_PUT ? put_step : get_step;
	o->local = drr_xstrdup(local);
	o->remote = drr_xstrdup(remote);
	o->mode = (long)mode;
	SHA256_Init(&o->sha);
	if (kind == K_PUT) {
		o->lfd = open(local, O_RDONLY | O_CLOEXEC);
	} else {
		o->tmp = drr_xasprintf("%s.drrun-part", local);
		o->lfd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	}
	if (o->lfd < 0) {
		int e = errno;
		free(o->tmp);
		o->tmp = NULL;
		op_free(o);
		return drr_push_fail(L, "io", "cannot open %s: %s", local, strerror(e));
	}
	o->buf = drr_xmalloc(CHUNK);
	return start_op(L, se, o, timeout);
}

static int l_put(lua_State *L)
{
	return transfer(L, K_PUT);
}

static int l_get(lua_State *L)
{
	return transfer(L, K_GET);
}

static int l_close(lua_State *L)
{
	struct ud *u = luaL_checkudata(L, 1, SESSION_MT);
	struct sess *se = u->se;
	if (!se)
		return 0;
	u->se = NULL;
	if (lua_toboolean(L, lua_upvalueindex(1)) && se->pooled)
		pool_remove(se); /* an explicit :close() ends the connection too */
	sess_unref(se);
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct ud *u = luaL_checkudata(L, 1, SESSION_MT);
	if (u->se)
		lua_pushfstring(L, "ssh session %s@%s:%d", u->se->user, u->se->host, u->se->port);
	else
		lua_pushliteral(L, "ssh session (closed)");
	return 1;
}

static void ssh_shutdown(void *ud)
{
	(void)ud;
	/* the run is over: every connection goes, whoever still holds it */
	for (struct sess *se = sessions, *next; se; se = next) {
		next = se->next;
		se->refs++;
		while (se->ops) {
			struct sshop *o = se->ops;
			se->ops = o->next;
			o->se = NULL;
			o->op.task = NULL; /* no task outlives the run */
			op_free(o);
			se->refs--;
		}
		pool_remove(se);
		sess_release(se);
		sess_unref(se);
	}
	libssh2_exit();
	lib_ready = 0;
}

static void ensure_lib(void)
{
	if (lib_ready)
		return;
	libssh2_init(0);
	lib_ready = 1;
	drr_engine_at_shutdown(ssh_shutdown, NULL);
}

int luaopen_drrun_ssh(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "exec", l_exec },
		{ "put", l_put },
		{ "get", l_get },
		{ NULL, NULL },
	};
	static const luaL_Reg fns[] = {
		{ "connect", l_connect },
		{ NULL, NULL },
	};
	if (luaL_newmetatable(L, SESSION_MT)) {
		luaL_newlib(L, methods);
		lua_pushboolean(L, 1);
		lua_pushcclosure(L, l_close, 1);
		lua_setfield(L, -2, "close");
		lua_setfield(L, -2, "__index");
		lua_pushboolean(L, 0); /* collected or closed by scope: keep pooled */
		lua_pushcclosure(L, l_close, 1);
		lua_setfield(L, -2, "__gc");
		lua_pushboolean(L, 0);
		lua_pushcclosure(L, l_close, 1);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	lua_pushstring(L, LIBSSH2_VERSION);
	lua_setfield(L, -2, "libssh2_version");
	return 1;
}
