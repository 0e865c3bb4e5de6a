/*
 * exec.c - a command on a session's channel: optional pty, stdin, stdout
 * and stderr kept up to max_output.  A timed-out command is killed on the
 * remote side: each command reports its process group id first (on
 * stderr, removed from the result) and a second channel kills that group.
 */
#include "ssh.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	drr_capture_add(stream ? &o->errb : &o->out, p, n);
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

/* The phase helpers below return 0 (wait for the socket), 1 (the operation
 * is over, well or not) or NEXT (the phase moved on: go round again). */
enum { NEXT = -1 };

/* A timeout or a cancel before the kill phases: kill the remote process
 * group when the command reported one, or give up on the connection. */
static int exec_interrupt(struct sshop *o)
{
	struct sess *se = o->se;
	if (!(o->timed_out || o->cancelled) || o->phase >= E_KILL_OPEN)
		return NEXT;
	if (o->remote_pgid > 0) {
		/* dash (Debian's /bin/sh) takes no "--" in kill */
		o->kill_cmd = drr_xasprintf("kill -KILL -%ld 2>/dev/null || "
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
		return ssh_fail(o, "timeout",
				"'%s' on %s ran past %s (not killed: it reported no process "
				"id; the connection was closed)",
				o->user_cmd, se->host, drr_duration_fmt(o->timeout, d, sizeof d));
	} else {
		o->phase = o->ch ? E_CLOSE : E_FREE;
	}
	return NEXT;
}

/* Both output streams, as far as they go without waiting. */
static int exec_drain(struct sshop *o, char *buf, size_t len, int keep_it)
{
	ssize_t n = 0;
	for (int stream = 0; stream < 2; stream++) {
		while ((n = libssh2_channel_read_ex(o->ch, stream, buf, len)) > 0)
			if (keep_it)
				keep(o, stream, buf, (size_t)n);
		if (n < 0 && n != LIBSSH2_ERROR_EAGAIN)
			return -1;
	}
	return 0;
}

/* Open the channel, ask for a pty, exec, feed stdin, read to EOF. */
static int exec_run_phase(struct sshop *o, char *buf, size_t len)
{
	LIBSSH2_SESSION *s = o->se->s;
	ssize_t n;
	int rc;
	switch (o->phase) {
	case E_OPEN:
		o->ch = libssh2_channel_open_session(s);
		if (!o->ch) {
			if (libssh2_session_last_errno(s) == LIBSSH2_ERROR_EAGAIN)
				return 0;
			return ssh_fail_ssh(o, "closed", "cannot open a channel to");
		}
		o->phase = o->pty ? E_PTY : E_EXEC;
		return NEXT;
	case E_PTY:
		rc = libssh2_channel_request_pty(o->ch, "xterm");
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (rc)
			return ssh_fail_ssh(o, "closed", "pty request refused by");
		o->phase = E_EXEC;
		return NEXT;
	case E_EXEC:
		rc = libssh2_channel_exec(o->ch, o->cmd);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (rc)
			return ssh_fail_ssh(o, "closed", "exec refused by");
		o->phase = o->in ? E_STDIN : E_EOF;
		return NEXT;
	case E_STDIN:
		while (o->in_off < o->in_len) {
			n = libssh2_channel_write(o->ch, o->in + o->in_off, o->in_len - o->in_off);
			/* 0: the remote window is full; its adjustment comes in
			 * with the output, so keep draining that meanwhile */
			if (n == LIBSSH2_ERROR_EAGAIN || n == 0) {
				if (exec_drain(o, buf, len, 1) < 0)
					return ssh_fail_ssh(o, "closed", "reading from");
				return 0;
			}
			if (n < 0)
				return ssh_fail_ssh(o, "closed", "writing stdin to");
			o->in_off += (size_t)n;
		}
		o->phase = E_EOF;
		return NEXT;
	case E_EOF:
		if (libssh2_channel_send_eof(o->ch) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		o->phase = E_READ;
		return NEXT;
	default: /* E_READ */
		if (exec_drain(o, buf, len, 1) < 0)
			return ssh_fail_ssh(o, "closed", "reading from");
		if (!libssh2_channel_eof(o->ch))
			return 0;
		o->phase = E_CLOSE;
		return NEXT;
	}
}

/* A second channel that kills the remote process group. */
static int exec_kill_phase(struct sshop *o, char *buf, size_t len)
{
	LIBSSH2_SESSION *s = o->se->s;
	ssize_t n;
	switch (o->phase) {
	case E_KILL_OPEN:
		o->kill_ch = libssh2_channel_open_session(s);
		if (!o->kill_ch) {
			if (libssh2_session_last_errno(s) == LIBSSH2_ERROR_EAGAIN)
				return 0;
			o->phase = E_CLOSE;
			return NEXT;
		}
		o->phase = E_KILL_EXEC;
		return NEXT;
	case E_KILL_EXEC:
		if (libssh2_channel_exec(o->kill_ch, o->kill_cmd) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		o->phase = E_KILL_WAIT;
		return NEXT;
	default: /* E_KILL_WAIT */
		while ((n = libssh2_channel_read(o->kill_ch, buf, len)) > 0)
			;
		if (n == LIBSSH2_ERROR_EAGAIN && !libssh2_channel_eof(o->kill_ch))
			return 0;
		if (libssh2_channel_close(o->kill_ch) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (libssh2_channel_wait_closed(o->kill_ch) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		libssh2_channel_free(o->kill_ch);
		o->kill_ch = NULL;
		o->phase = E_CLOSE;
		return NEXT;
	}
}

/* Close the channel, collect the exit status and signal, free it. */
static int exec_close_phase(struct sshop *o, char *buf, size_t len)
{
	struct sess *se = o->se;
	switch (o->phase) {
	case E_CLOSE:
		/* drain what is left so the close is not held up by the window */
		(void)exec_drain(o, buf, len, !o->timed_out && !o->cancelled);
		if (libssh2_channel_close(o->ch) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		o->phase = E_WAIT;
		return NEXT;
	case E_WAIT:
		if (libssh2_channel_wait_closed(o->ch) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		o->exit_status = libssh2_channel_get_exit_status(o->ch);
		char *sig = NULL;
		size_t slen = 0;
		libssh2_channel_get_exit_signal(o->ch, &sig, &slen, NULL, NULL, NULL, NULL);
		if (sig) {
			snprintf(o->signame, sizeof o->signame, "%.*s", (int)slen, sig);
			libssh2_free(se->s, sig);
		}
		o->has_exit = 1;
		keep_flush(o);
		o->phase = E_FREE;
		return NEXT;
	default: /* E_FREE */
		if (o->ch) {
			if (libssh2_channel_free(o->ch) == LIBSSH2_ERROR_EAGAIN)
				return 0;
			o->ch = NULL;
		}
		if (o->timed_out) {
			char d[32];
			return ssh_fail(o, "timeout", "'%s' on %s ran past %s (killed)", o->user_cmd,
					se->host, drr_duration_fmt(o->timeout, d, sizeof d));
		}
		return 1;
	}
}

int ssh_exec_step(struct sshop *o)
{
	char buf[32768];
	int rc = exec_interrupt(o);
	while (rc == NEXT) {
		if (o->phase <= E_READ)
			rc = exec_run_phase(o, buf, sizeof buf);
		else if (o->phase <= E_KILL_WAIT)
			rc = exec_kill_phase(o, buf, sizeof buf);
		else
			rc = exec_close_phase(o, buf, sizeof buf);
	}
	return rc;
}
