/*
 * sftp.c - put and get over the session's SFTP channel, one transfer at a
 * time per session, hashed (SHA-256) as they go; a download is written to
 * a temporary file next to its destination (a unique name, from
 * mkostemp), synced and renamed into place.
 */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
		ssh_fail_ssh(o, "closed", "cannot start SFTP on");
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
		return ssh_fail(o, "timeout", "transfer of %s with %s ran past %s", o->remote,
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
				*ret = ssh_fail(o, "sftp", "cannot %s %s on %s: SFTP error %lu",
						verb, o->remote, se->host,
						libssh2_sftp_last_error(se->sftp));
			return 0;
		}
		o->phase = F_XFER;
	}
	return 1;
}

int ssh_put_step(struct sshop *o)
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
					return ssh_fail(o, "io", "cannot read %s: %s", o->local,
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
				return ssh_fail(o, "sftp", "writing %s on %s: SFTP error %lu",
						o->remote, se->host,
						libssh2_sftp_last_error(se->sftp));
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

int ssh_get_step(struct sshop *o)
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
				return ssh_fail(o, "sftp", "reading %s on %s: SFTP error %lu",
						o->remote, se->host,
						libssh2_sftp_last_error(se->sftp));
			if (n == 0)
				break;
			SHA256_Update(&o->sha, o->buf, (size_t)n);
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(o->lfd, o->buf + off, (size_t)(n - off));
				if (w < 0)
					return ssh_fail(o, "io", "cannot write %s: %s", o->tmp,
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
			return ssh_fail(o, "io", "cannot write %s: %s", o->tmp, strerror(errno));
		}
		o->lfd = -1;
		if (rename(o->tmp, o->local) < 0)
			return ssh_fail(o, "io", "cannot rename into %s: %s", o->local,
					strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return 1;
	}
	return 1;
}

/* A transfer op (K_PUT or K_GET) with its local file open: the source, or
 * the temporary file a download goes to.  NULL and errno when it cannot
 * be opened. */
struct sshop *ssh_xfer_new(int kind, const char *local, const char *remote, long mode)
{
	struct sshop *o = ssh_op_new(kind);
	o->op.cancel = ssh_op_cancel;
	o->step = kind == K_PUT ? ssh_put_step : ssh_get_step;
	o->local = drr_xstrdup(local);
	o->remote = drr_xstrdup(remote);
	o->mode = mode;
	SHA256_Init(&o->sha);
	if (kind == K_PUT) {
		o->lfd = open(local, O_RDONLY | O_CLOEXEC);
	} else {
		/* unique (mkostemp: O_EXCL, mode 0600), so two gets into one
		 * file, or a file that happens to have the name, never mix */
		o->tmp = drr_xasprintf("%s.drrun-part.XXXXXX", local);
		o->lfd = mkostemp(o->tmp, O_CLOEXEC);
	}
	if (o->lfd < 0) {
		int e = errno;
		free(o->tmp);
		o->tmp = NULL;
		ssh_op_free(o);
		errno = e;
		return NULL;
	}
	o->buf = drr_xmalloc(CHUNK);
	return o;
}
