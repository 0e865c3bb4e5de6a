/*
 * session.c - "drrun.ssh.core"'s sessions: the uv_poll handle that drives
 * every pending operation of a connection, the per-op timers, the
 * lifetime of sessions (pooled for the run) and ops, cancellation, and the
 * end of the run.  The structs are in ssh.h.
 */
#include "ssh.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct sess *ssh_sessions;
static int lib_ready;

/* ---- errors ------------------------------------------------------------------ */

int ssh_fail(struct sshop *o, const char *tok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->err, sizeof o->err, fmt, ap);
	va_end(ap);
	o->tok = tok;
	return 1;
}

const char *ssh_last_error(struct sess *se)
{
	char *msg = NULL;
	libssh2_session_last_error(se->s, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown error";
}

/* A libssh2 failure: the session is no longer usable. */
int ssh_fail_ssh(struct sshop *o, const char *tok, const char *what)
{
	struct sess *se = o->se;
	ssh_fail(o, tok, "%s %s@%s:%d: %s", what, se->user, se->host, se->port, ssh_last_error(se));
	se->state = S_DEAD;
	return 1;
}

/* ---- sessions ------------------------------------------------------------------ */

static void on_poll(uv_poll_t *h, int status, int events)
{
	(void)status, (void)events;
	ssh_drive(h->data);
}

static void poll_closed(uv_handle_t *h)
{
	free(h);
}

/* Watch fd (a new socket) with a fresh poll handle. */
int ssh_watch(struct sess *se, int fd, int events)
{
	se->fd = fd;
	se->poll = drr_xcalloc(1, sizeof *se->poll);
	int rc = uv_poll_init_socket(drr_loop(), se->poll, fd);
	if (rc < 0) { /* never initialised: nothing to close but the socket */
		free(se->poll);
		se->poll = NULL;
		return rc;
	}
	se->poll->data = se;
	se->events = events;
	uv_poll_start(se->poll, events, on_poll);
	return 0;
}

void ssh_unwatch(struct sess *se)
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
	ssh_unwatch(se);
	se->state = S_DEAD;
}

void ssh_pool_remove(struct sess *se)
{
	if (se->pooled) {
		se->pooled = 0;
		se->refs--;
	}
}

/* The pooled, ready session for pool_key, or NULL. */
struct sess *ssh_pool_find(const char *pool_key)
{
	for (struct sess *se = ssh_sessions; se; se = se->next)
		if (se->pooled && se->state == S_READY && !strcmp(se->pool_key, pool_key))
			return se;
	return NULL;
}

void ssh_sess_unref(struct sess *se)
{
	if (--se->refs > 0 || se->ops)
		return;
	sess_release(se);
	for (struct sess **pp = &ssh_sessions; *pp; pp = &(*pp)->next)
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

void ssh_op_finish(struct sshop *o)
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
		ssh_op_free(o);
}

/* Run every pending operation until each would block or finishes.
 * libssh2 reads whatever the socket has, whichever call reads it, and
 * queues packets for the other channels (and for the other stream of the
 * same channel): once they are queued the socket is no longer readable.
 * So a pass that read anything from the socket is followed by another, in
 * which every op sees the queue; the socket is waited on only after a pass
 * that read nothing (or, after 64 passes, on the next loop iteration). */
void ssh_drive(struct sess *se)
{
	se->refs++; /* an op finishing must not free the session under us */
	int again = 1;
	for (int pass = 0; again && pass < 64; pass++) {
		uint64_t rx = se->rx;
		again = 0;
		for (struct sshop *o = se->ops, *next; o; o = next) {
			next = o->next;
			if (o->step(o)) {
				ssh_op_finish(o);
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
			ssh_pool_remove(se);
		if (!se->ops)
			sess_release(se);
	}
	ssh_sess_unref(se);
}

void ssh_add_op(struct sess *se, struct sshop *o)
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
	ssh_drive(o->se);
}

void ssh_start_timer(struct sshop *o, double secs)
{
	o->timeout = secs;
	if (secs <= 0)
		return;
	o->timer = drr_xcalloc(1, sizeof *o->timer);
	uv_timer_init(drr_loop(), o->timer);
	o->timer->data = o;
	uv_timer_start(o->timer, on_op_timeout, (uint64_t)(secs * 1000 + 0.5), 0);
}

void ssh_op_free(struct sshop *o)
{
	struct sess *se = o->se;
	ssh_resolve_abandon(o); /* at the end of the run, still resolving */
	ssh_files_abandon(o);
	ssh_xfer_abandon_job(o); /* before the fd and temp file below */
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
	drr_capture_free(&o->out);
	drr_capture_free(&o->errb);
	ssh_agent_free(o);
	free(o);
	if (se)
		ssh_sess_unref(se);
}

struct sshop *ssh_op_new(int kind)
{
	struct sshop *o = drr_xcalloc(1, sizeof *o);
	o->kind = kind;
	o->lfd = -1;
	o->t0 = drr_mono();
	return o;
}

/* ---- cancellation ----------------------------------------------------------------------- */

void ssh_op_cancel(struct drr_op *op)
{
	struct sshop *o = (struct sshop *)op;
	if (o->finished) { /* done, but its task went away before reading it */
		ssh_op_free(o);
		return;
	}
	o->cancelled = 1;
	/* the op finishes on its own (an exec still kills its remote command,
	 * a connect lets go of its name lookup); op_finish sees no task and
	 * frees it */
	ssh_drive(o->se);
}

static void ssh_shutdown(void *ud)
{
	(void)ud;
	/* the run is over: every connection goes, whoever still holds it */
	for (struct sess *se = ssh_sessions, *next; se; se = next) {
		next = se->next;
		se->refs++;
		while (se->ops) {
			struct sshop *o = se->ops;
			se->ops = o->next;
			o->se = NULL;
			o->op.task = NULL; /* no task outlives the run */
			ssh_op_free(o);
			se->refs--;
		}
		ssh_pool_remove(se);
		sess_release(se);
		ssh_sess_unref(se);
	}
	ssh_files_shutdown();
	libssh2_exit();
	lib_ready = 0;
}

void ssh_ensure_lib(void)
{
	if (lib_ready)
		return;
	libssh2_init(0);
	lib_ready = 1;
	drr_engine_at_shutdown(ssh_shutdown, NULL);
}
