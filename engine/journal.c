/*
 * journal.c - the append-only run journal: one JSON object per line,
 * SHA-256 hash-chained, written with write(2) and made durable with
 * fdatasync(2) at the points the scheduler asks for.
 *
 * Line format: {"seq":N,"ts":"...","run":"...","type":"...",...,
 * "prev":"<hash of previous line>","hash":"<sha256>"}.  The hash is computed
 * over the exact bytes of the line with its trailing ,"hash":"..." member
 * removed (the body ends in '}'), so a verifier never has to re-serialise.
 * Every string is redacted before hashing: secrets never reach the disk.
 */
#include "drrun.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct drr_journal {
	int fd;
	char *path;
	char *run_id;
	int64_t seq;
	off_t size;
	int dirty, dead;
	char prev[65];
	char err[256];
	void (*tee)(const char *line, void *ud);
	void *tee_ud;
};

static const char HASH_KEY[] = ",\"hash\":\"";

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

struct drr_journal *drr_journal_create(const char *state_dir, const char *run_id,
				       char *err, size_t errlen)
{
	char *runs = drr_xasprintf("%s/runs", state_dir);
	char *dir = drr_xasprintf("%s/%s", runs, run_id);
	char *path = drr_xasprintf("%s/journal.jsonl", dir);
	struct drr_journal *j = NULL;
	int fd = -1;

	if (mkdir_p(dir, 0700) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	fsync_dir(dir);
	fsync_dir(runs);
	j = drr_xcalloc(1, sizeof *j);
	j->fd = fd;
	j->path = path;
	j->run_id = drr_xstrdup(run_id);
	memset(j->prev, '0', 64);
	j->prev[64] = '\0';
	path = NULL;
out:
	free(runs);
	free(dir);
	free(path);
	return j;
}

void drr_journal_set_tee(struct drr_journal *j, void (*fn)(const char *, void *), void *ud)
{
	j->tee = fn;
	j->tee_ud = ud;
}

const char *drr_journal_path(const struct drr_journal *j)
{
	return j->path;
}

const char *drr_journal_error(const struct drr_journal *j)
{
	return j->err;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int drr_journal_append(struct drr_journal *j, json_t *rec, int sync)
{
	if (j->dead) {
		json_decref(rec);
		return -1;
	}
	char ts[40];
	json_t *o = json_object();
	json_object_set_new(o, "seq", json_integer(++j->seq));
	json_object_set_new(o, "ts", json_string(drr_rfc3339(drr_now_us(), ts, sizeof ts)));
	json_object_set_new(o, "run", json_string(j->run_id));
	const char *k;
	json_t *v;
	json_object_foreach(rec, k, v)
		json_object_set(o, k, v);
	json_decref(rec);
	json_object_set_new(o, "prev", json_string(j->prev));
	drr_redact_json(o);

	char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	json_decref(o);
	if (!body) {
		snprintf(j->err, sizeof j->err, "cannot encode journal record %lld",
			 (long long)j->seq);
		j->dead = 1;
		return -1;
	}
	size_t blen = strlen(body);
	char hash[65];
	drr_sha256_hex(body, blen, hash);
	struct drr_buf line = { 0 };
	drr_buf_add(&line, body, blen - 1);
	drr_buf_adds(&line, HASH_KEY);
	drr_buf_adds(&line, hash);
	drr_buf_adds(&line, "\"}\n");
	free(body);

	if (write_all(j->fd, line.data, line.len) < 0) {
		snprintf(j->err, sizeof j->err, "cannot write %s: %s", j->path,
			 strerror(errno));
		/* never leave half a record behind */
		if (ftruncate(j->fd, j->size) < 0) {
			/* nothing more we can do; the reader drops a torn tail */
		}
		j->dead = 1;
		drr_buf_free(&line);
		return -1;
	}
	j->size += (off_t)line.len;
	memcpy(j->prev, hash, sizeof hash);
	j->dirty = 1;
	if (j->tee) {
		line.data[line.len - 1] = '\0';
		j->tee(line.data, j->tee_ud);
	}
	drr_buf_free(&line);
	return sync ? drr_journal_sync(j) : 0;
}

int drr_journal_sync(struct drr_journal *j)
{
	if (j->dead)
		return -1;
	if (!j->dirty)
		return 0;
	if (fdatasync(j->fd) < 0) {
		snprintf(j->err, sizeof j->err, "cannot sync %s: %s", j->path,
			 strerror(errno));
		j->dead = 1;
		return -1;
	}
	j->dirty = 0;
	return 0;
}

void drr_journal_close(struct drr_journal *j)
{
	if (!j)
		return;
	drr_journal_sync(j);
	close(j->fd);
	free(j->path);
	free(j->run_id);
	free(j);
}

int drr_journal_line_hash(const char *line, size_t len, char hex[65], char found[65])
{
	/* The hash member is the last one: ,"hash":"<64 hex>"} */
	const size_t tail = sizeof HASH_KEY - 1 + 64 + 2;
	if (len < tail + 1 || line[len - 1] != '}' || line[len - 2] != '"')
		return -1;
	const char *h = line + len - tail;
	if (memcmp(h, HASH_KEY, sizeof HASH_KEY - 1) != 0)
		return -1;
	memcpy(found, h + sizeof HASH_KEY - 1, 64);
	found[64] = '\0';
	size_t blen = (size_t)(h - line);
	char *body = drr_xmalloc(blen + 1);
	memcpy(body, line, blen);
	body[blen] = '}';
	drr_sha256_hex(body, blen + 1, hex);
	free(body);
	return 0;
}
