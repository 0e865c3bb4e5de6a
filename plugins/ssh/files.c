/*
 * files.c - the local files a connection needs (the private key, its .pub,
 * known_hosts), read in the thread pool and cached for the run.
 *
 * An entry is keyed by path and stands for one version of the file: its
 * device, inode, size and mtime.  A connection asks for its files when it
 * starts (ssh_files_fetch): a pool job stats each path and reads only those
 * whose version differs from the cache's, so the loop never waits on the
 * disk and an unchanged file is read once per run.  The loop thread alone
 * touches the cache.  Entries are reference counted: an op holds the
 * entries it uses (libssh2 reads a key's bytes across EAGAIN calls), and a
 * newer version of a file replaces the entry without freeing it under them.
 */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX (16u << 20) /* no key or known_hosts is bigger */

static struct ssh_file *cache; /* the newest entry of each path */

static void file_unref(struct ssh_file *f)
{
	if (!f || --f->refs > 0)
		return;
	if (f->kh)
		libssh2_knownhost_free(f->kh);
	if (f->kh_session)
		libssh2_session_free(f->kh_session);
	if (f->data) {
		memset(f->data, 0, f->len); /* a private key */
		free(f->data);
	}
	free(f->path);
	free(f);
}

void ssh_file_unref(struct ssh_file *f)
{
	file_unref(f);
}

static struct ssh_file *cache_find(const char *path)
{
	for (struct ssh_file *f = cache; f; f = f->next)
		if (!strcmp(f->path, path))
			return f;
	return NULL;
}

/* One path of a fetch: what the loop knew, what the pool found. */
struct want {
	char *path;
	int known; /* the cache has a version: dev..mtim below are it */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtim;
	/* results */
	int changed, err; /* err: errno, 0, or ENOENT for a missing file */
	struct stat st;
	char *data;
	size_t len;
};

struct fetch {
	uv_work_t req;
	struct sshop *o; /* NULL once the op let go */
	int n;
	struct want w[SSH_FILES];
};

static int same_version(const struct want *w, const struct stat *st)
{
	return w->known && w->dev == st->st_dev && w->ino == st->st_ino && w->size == st->st_size &&
	       w->mtim.tv_sec == st->st_mtim.tv_sec && w->mtim.tv_nsec == st->st_mtim.tv_nsec;
}

/* On a pool thread: stat, and read what changed.  Touches only w. */
static void fetch_one(struct want *w)
{
	if (!w->path)
		return;
	int fd = open(w->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		w->err = errno;
		w->changed = !w->known || w->err != ENOENT;
		return;
	}
	if (fstat(fd, &w->st) < 0) {
		w->err = errno;
		w->changed = 1;
		close(fd);
		return;
	}
	if (same_version(w, &w->st)) {
		close(fd);
		return;
	}
	w->changed = 1;
	if (S_ISDIR(w->st.st_mode) || (size_t)w->st.st_size > FILE_MAX) {
		w->err = S_ISDIR(w->st.st_mode) ? EISDIR : EFBIG;
		close(fd);
		return;
	}
	/* to its end (a pipe has no size), at most FILE_MAX */
	size_t cap = (size_t)w->st.st_size + 1, len = 0;
	if (cap < 4096)
		cap = 4096;
	char *p = malloc(cap);
	for (;;) {
		if (p && len == cap - 1 && cap <= FILE_MAX) {
			char *q = realloc(p, cap * 2);
			if (!q) {
				memset(p, 0, len);
				free(p);
			}
			p = q;
			cap *= 2;
		}
		if (!p) {
			w->err = ENOMEM;
			close(fd);
			return;
		}
		if (len == cap - 1) {
			w->err = EFBIG;
			break;
		}
		ssize_t r = read(fd, p + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			w->err = errno;
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (w->err) {
		memset(p, 0, len);
		free(p);
		return;
	}
	p[len] = 0;
	w->data = p;
	w->len = len;
}

static void fetch_run(uv_work_t *req)
{
	struct fetch *fe = req->data;
	for (int i = 0; i < fe->n; i++)
		fetch_one(&fe->w[i]);
}

/* On the loop: new versions go into the cache, then the op (if it still
 * waits) takes its entries and goes on. */
static void fetch_done(uv_work_t *req, int status)
{
	struct fetch *fe = req->data;
	struct sshop *o = fe->o;
	for (int i = 0; i < fe->n; i++) {
		struct want *w = &fe->w[i];
		if (!w->path)
			continue;
		struct ssh_file *f = cache_find(w->path);
		if (status == 0 && (w->changed || !f)) {
			struct ssh_file *nf = drr_xcalloc(1, sizeof *nf);
			nf->path = w->path;
			w->path = NULL;
			nf->err = w->err;
			nf->st = w->st;
			nf->data = w->data;
			nf->len = w->len;
			w->data = NULL;
			nf->refs = 1; /* the cache */
			if (f) {      /* replace the old version; its users keep it */
				for (struct ssh_file **pp = &cache; *pp; pp = &(*pp)->next)
					if (*pp == f) {
						*pp = f->next;
						break;
					}
				file_unref(f);
			}
			nf->next = cache;
			cache = nf;
			f = nf;
		}
		if (o && f) {
			f->refs++;
			o->files[i] = f;
		}
		free(w->path);
		free(w->data);
	}
	if (o) {
		o->fetching = NULL;
		o->files_ready = 1;
		if (status != 0)
			ssh_fail(o, "io", "cannot read the key or known_hosts files: %s",
				 uv_strerror(status));
		if (o->se)
			ssh_drive(o->se);
		else if (o->op.task) /* a K_READ: its continuation frees it */
			drr_task_wake(o->op.task);
	}
	free(fe);
}

int ssh_files_fetch(struct sshop *o, const char *const paths[SSH_FILES])
{
	struct fetch *fe = drr_xcalloc(1, sizeof *fe);
	fe->o = o;
	fe->req.data = fe;
	for (int i = 0; i < SSH_FILES; i++) {
		struct want *w = &fe->w[fe->n++];
		if (!paths[i])
			continue;
		w->path = drr_xstrdup(paths[i]);
		struct ssh_file *f = cache_find(paths[i]);
		if (f && !f->err && S_ISREG(f->st.st_mode)) { /* a pipe is read anew */
			w->known = 1;
			w->dev = f->st.st_dev;
			w->ino = f->st.st_ino;
			w->size = f->st.st_size;
			w->mtim = f->st.st_mtim;
		}
	}
	int rc = uv_queue_work(drr_loop(), &fe->req, fetch_run, fetch_done);
	if (rc < 0) {
		for (int i = 0; i < fe->n; i++)
			free(fe->w[i].path);
		free(fe);
		return rc;
	}
	o->fetching = fe;
	return 0;
}

static void read_cancel(struct drr_op *op)
{
	/* finished and woken, or still reading: either way it goes now (a
	 * fetch in flight is let go of and only fills the cache) */
	ssh_op_free((struct sshop *)op);
}

struct sshop *ssh_read_new(const char *path, int *err)
{
	struct sshop *o = ssh_op_new(K_READ);
	o->op.cancel = read_cancel;
	const char *paths[SSH_FILES] = { path, NULL, NULL };
	int rc = ssh_files_fetch(o, paths);
	if (rc < 0) {
		ssh_op_free(o);
		*err = rc;
		return NULL;
	}
	return o;
}

void ssh_files_abandon(struct sshop *o)
{
	if (o->fetching) {
		o->fetching->o = NULL;
		uv_cancel((uv_req_t *)&o->fetching->req);
		o->fetching = NULL;
	}
	for (int i = 0; i < SSH_FILES; i++) {
		file_unref(o->files[i]);
		o->files[i] = NULL;
	}
}

LIBSSH2_KNOWNHOSTS *ssh_file_knownhosts(struct ssh_file *f)
{
	if (f->kh)
		return f->kh;
	/* a collection needs a session for its allocator; this one is never
	 * connected */
	if (!f->kh_session && !(f->kh_session = libssh2_session_init()))
		return NULL;
	f->kh = libssh2_knownhost_init(f->kh_session);
	if (!f->kh)
		return NULL;
	/* line by line, each with its newline, as libssh2_knownhost_readfile
	 * hands them over */
	for (size_t off = 0; f->data && off < f->len;) {
		const char *line = f->data + off, *nl = memchr(line, '\n', f->len - off);
		size_t n = nl ? (size_t)(nl + 1 - line) : f->len - off;
		off += n;
		if (libssh2_knownhost_readline(f->kh, line, n, LIBSSH2_KNOWNHOST_FILE_OPENSSH))
			f->kh_bad = 1; /* as libssh2_knownhost_readfile refuses it */
	}
	return f->kh;
}

void ssh_files_shutdown(void)
{
	while (cache) {
		struct ssh_file *f = cache;
		cache = f->next;
		file_unref(f);
	}
}
