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
	F_CLOSE,
	F_SYNC
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

/* ---- local file I/O in the thread pool ----------------------------------------------- */

/* One local read, write, or the end of a download (fsync, close, rename),
 * on a pool thread.  It has its own buffer and lives apart from its op, as
 * a name lookup does: an op that ends while its job is in flight (timeout,
 * cancel, end of the run) lets go of it, handing over its fd (and a
 * download's temporary file) for the completion to close (and remove). */
enum {
	J_READ,
	J_WRITE,
	J_FINISH
};

struct fsjob {
	uv_work_t req;
	struct sshop *o; /* NULL once the op let go */
	int kind, fd, close_fd, err, stage;
	char *buf, *from, *to, *unlink_path;
	size_t len;
	ssize_t result;
};

static void job_run(uv_work_t *req)
{
	struct fsjob *j = req->data;
	ssize_t r;
	switch (j->kind) {
	case J_READ:
		do
			r = read(j->fd, j->buf, CHUNK);
		while (r < 0 && errno == EINTR);
		j->result = r;
		j->err = r < 0 ? errno : 0;
		break;
	case J_WRITE:
		for (size_t off = 0; off < j->len;) {
			r = write(j->fd, j->buf + off, j->len - off);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				j->err = errno;
				break;
			}
			off += (size_t)r;
		}
		j->result = j->err ? -1 : (ssize_t)j->len;
		break;
	case J_FINISH: /* the job owns the fd */
		if (fsync(j->fd) < 0)
			j->err = errno;
		if (close(j->fd) < 0 && !j->err)
			j->err = errno;
		j->fd = -1;
		if (!j->err && rename(j->from, j->to) < 0) {
			j->err = errno;
			j->stage = 1;
		}
		break;
	}
}

static void job_free(struct fsjob *j)
{
	free(j->buf);
	free(j->from);
	free(j->to);
	free(j->unlink_path);
	free(j);
}

static void job_after(uv_work_t *req, int status)
{
	struct fsjob *j = req->data;
	struct sshop *o = j->o;
	if (status == UV_ECANCELED && j->kind == J_FINISH && j->fd >= 0)
		close(j->fd); /* it never ran */
	if (!o) {	      /* abandoned: the op is gone */
		if (j->close_fd >= 0)
			close(j->close_fd);
		if (j->unlink_path)
			unlink(j->unlink_path);
		job_free(j);
		return;
	}
	o->job = NULL;
	o->job_done = 1;
	o->job_result = status < 0 ? -1 : j->result;
	o->job_err = status < 0 ? ECANCELED : j->err;
	o->job_stage = j->stage;
	if (j->kind == J_READ && j->result > 0)
		memcpy(o->buf, j->buf, (size_t)j->result);
	job_free(j);
	ssh_drive(o->se);
}

/* Start a job on o's local file: len bytes of o->buf written (J_WRITE), a
 * chunk read into o->buf (J_READ), or the download finished (J_FINISH).
 * 0, or -1 with o failed. */
static int job_start(struct sshop *o, int kind, size_t len)
{
	struct fsjob *j = drr_xcalloc(1, sizeof *j);
	j->o = o;
	j->kind = kind;
	j->fd = o->lfd;
	j->close_fd = -1;
	j->req.data = j;
	if (kind == J_READ) {
		j->buf = drr_xmalloc(CHUNK);
	} else if (kind == J_WRITE) {
		j->buf = drr_xmalloc(len ? len : 1);
		memcpy(j->buf, o->buf, len);
		j->len = len;
	} else {
		j->from = drr_xstrdup(o->tmp);
		j->to = drr_xstrdup(o->local);
		o->lfd = -1; /* the job closes it */
	}
	int rc = uv_queue_work(drr_loop(), &j->req, job_run, job_after);
	if (rc < 0) {
		if (kind == J_FINISH)
			o->lfd = j->fd;
		job_free(j);
		ssh_fail(o, "io", "cannot queue local file I/O: %s", uv_strerror(rc));
		return -1;
	}
	o->job = j;
	return 0;
}

void ssh_xfer_abandon_job(struct sshop *o)
{
	struct fsjob *j = o->job;
	if (!j)
		return;
	o->job = NULL;
	j->o = NULL;
	j->close_fd = o->lfd; /* -1 for J_FINISH, which closes its own */
	o->lfd = -1;
	j->unlink_path = o->tmp; /* a download's partial file */
	o->tmp = NULL;
	uv_cancel((uv_req_t *)&j->req);
}

/* ---- put and get ---------------------------------------------------------------------- */

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
				if (o->job)
					return 0; /* reading: job_after drives us */
				if (!o->job_done)
					return job_start(o, J_READ, 0) < 0;
				o->job_done = 0;
				ssize_t n = o->job_result;
				if (n < 0)
					return ssh_fail(o, "io", "cannot read %s: %s", o->local,
							strerror(o->job_err));
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
			if (o->job)
				return 0; /* writing: job_after drives us */
			if (o->job_done) {
				o->job_done = 0;
				if (o->job_result < 0)
					return ssh_fail(o, "io", "cannot write %s: %s", o->tmp,
							strerror(o->job_err));
			}
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
			o->bytes += (uint64_t)n;
			if (job_start(o, J_WRITE, (size_t)n) < 0)
				return 1;
		}
		o->phase = F_CLOSE;
		/* fallthrough */
	case F_CLOSE:
		if (libssh2_sftp_close_handle(o->fh) == LIBSSH2_ERROR_EAGAIN)
			return 0;
		o->fh = NULL;
		o->phase = F_SYNC;
		/* fallthrough */
	case F_SYNC: /* fsync, close and rename, in the pool */
		if (o->job)
			return 0;
		if (!o->job_done)
			return job_start(o, J_FINISH, 0) < 0;
		o->job_done = 0;
		if (o->job_err && o->job_stage)
			return ssh_fail(o, "io", "cannot rename into %s: %s", o->local,
					strerror(o->job_err));
		if (o->job_err)
			return ssh_fail(o, "io", "cannot write %s: %s", o->tmp,
					strerror(o->job_err));
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
