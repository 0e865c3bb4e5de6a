/*
 * journal.c - the append-only run journal: one JSON object per line,
 * SHA-256 hash-chained, written with write(2) and made durable with
 * fdatasync(2) at the points the scheduler asks for.
 *
 * Line format: {"seq":N,"ts":"...","run":"...","type":"...",...,
 * "prev":"<hash of previous line>","hash":"<sha256>"}.  The hash is computed
 * over the exact bytes of the line with its trailing ,"hash":"..." member
 * removed (the body ends in '}'), so a verifier never has to re-serialise.
 * With an audit key, a "mac" member follows "hash": HMAC-SHA256 over the
 * same body, so a chain rewritten by someone without the key is detected.
 * Every string is redacted before hashing: secrets never reach the disk.
 *
 * Reading: drr_journal_load parses the whole records (a torn last line, left
 * by a crash mid-write, is ignored and reported), drr_journal_open reopens a
 * journal for appending after repairing such a tail, and drr_journal_verify
 * checks the chain record by record.
 */
#include "journal/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

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
	unsigned char *key; /* HMAC key, or NULL */
	size_t klen;
	char *tmp_path; /* until the first record is on disk, the file's name */
	char *dir;
};

static const char HASH_KEY[] = ",\"hash\":\"";
static const char MAC_KEY[] = "\",\"mac\":\"";

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

struct drr_journal *drr_journal_create(const char *state_dir, const char *run_id, char *err,
				       size_t errlen)
{
	char *runs = drr_xasprintf("%s/runs", state_dir);
	char *dir = drr_xasprintf("%s/%s", runs, run_id);
	char *path = drr_xasprintf("%s/journal.jsonl", dir);
	struct drr_journal *j = NULL;
	int fd = -1;

	if (drr_mkdir_p(dir, 0700) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		goto out;
	}
	/* The journal appears under its name only once its first record is on
	 * disk: a crash before that leaves no journal, never an empty one. */
	char *tmp = drr_xasprintf("%s.new", path);
	if (access(path, F_OK) == 0) {
		snprintf(err, errlen, "%s exists: a run id is never reused", path);
		free(tmp);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
		free(tmp);
		goto out;
	}
	fsync_dir(runs);
	j = drr_xcalloc(1, sizeof *j);
	j->fd = fd;
	j->path = path;
	j->tmp_path = tmp;
	j->dir = dir;
	dir = NULL;
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
	if (j->key) {
		char mac[65];
		drr_hmac_sha256_hex(j->key, j->klen, body, blen, mac);
		drr_buf_adds(&line, MAC_KEY);
		drr_buf_adds(&line, mac);
	}
	drr_buf_adds(&line, "\"}\n");
	free(body);

	if (write_all(j->fd, line.data, line.len) < 0) {
		snprintf(j->err, sizeof j->err, "cannot write %s: %s", j->path, strerror(errno));
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
		snprintf(j->err, sizeof j->err, "cannot sync %s: %s", j->path, strerror(errno));
		j->dead = 1;
		return -1;
	}
	j->dirty = 0;
	if (j->tmp_path) {
		/* link, not rename: never replace a journal that appeared meanwhile */
		if (link(j->tmp_path, j->path) < 0 || unlink(j->tmp_path) < 0) {
			snprintf(j->err, sizeof j->err, "cannot create %s: %s", j->path,
				 strerror(errno));
			j->dead = 1;
			return -1;
		}
		fsync_dir(j->dir);
		free(j->tmp_path);
		j->tmp_path = NULL;
	}
	return 0;
}

void drr_journal_set_key(struct drr_journal *j, const void *key, size_t klen)
{
	free(j->key);
	j->key = NULL;
	j->klen = 0;
	if (key && klen) {
		j->key = drr_xmalloc(klen);
		memcpy(j->key, key, klen);
		j->klen = klen;
	}
}

void drr_journal_close(struct drr_journal *j)
{
	if (!j)
		return;
	drr_journal_sync(j);
	close(j->fd);
	if (j->key) {
		OPENSSL_cleanse(j->key, j->klen);
		free(j->key);
	}
	if (j->tmp_path) { /* never got a record on disk */
		unlink(j->tmp_path);
		rmdir(j->dir);
		free(j->tmp_path);
	}
	free(j->dir);
	free(j->path);
	free(j->run_id);
	free(j);
}

/* Split a line into body and trailer.  The trailer is ,"hash":"H"} or
 * ,"hash":"H","mac":"M"}; the body is everything before it plus '}'. */
int drr_journal_parse_line(const char *line, size_t len, const void *key, size_t klen,
			   struct drr_jline *out)
{
	const size_t hk = sizeof HASH_KEY - 1, mk = sizeof MAC_KEY - 1;
	memset(out, 0, sizeof *out);
	if (len < hk + 64 + 3 || line[len - 1] != '}' || line[len - 2] != '"')
		return -1;
	const char *end = line + len - 2; /* the closing quote */
	const char *h = end - 64 - hk;
	if (len >= hk + 64 + mk + 64 + 2 && memcmp(end - 64 - mk, MAC_KEY, mk) == 0) {
		memcpy(out->mac, end - 64, 64);
		out->has_mac = 1;
		h = end - 64 - mk - 64 - hk;
	}
	if (h < line || memcmp(h, HASH_KEY, hk) != 0)
		return -1;
	memcpy(out->found_hash, h + hk, 64);
	size_t blen = (size_t)(h - line);
	char *body = drr_xmalloc(blen + 1);
	memcpy(body, line, blen);
	body[blen] = '}';
	drr_sha256_hex(body, blen + 1, out->hash);
	if (key && klen)
		drr_hmac_sha256_hex(key, klen, body, blen + 1, out->want_mac);
	free(body);
	out->body_len = blen + 1;
	return 0;
}

int drr_journal_line_hash(const char *line, size_t len, char hex[65], char found[65])
{
	struct drr_jline jl;
	if (drr_journal_parse_line(line, len, NULL, 0, &jl) < 0)
		return -1;
	memcpy(hex, jl.hash, 65);
	memcpy(found, jl.found_hash, 65);
	return 0;
}

static char *slurp(const char *path, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct drr_buf b = { 0 };
	char chunk[65536];
	ssize_t r;
	while ((r = read(fd, chunk, sizeof chunk)) > 0)
		drr_buf_add(&b, chunk, (size_t)r);
	int e = errno;
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
		drr_buf_free(&b);
		return NULL;
	}
	if (!b.data)
		drr_buf_adds(&b, "");
	*len = b.len;
	return b.data;
}

json_t *drr_journal_load(const char *path, size_t *good_bytes, size_t *torn_bytes, char *err,
			 size_t errlen)
{
	size_t len;
	char *text = slurp(path, &len, err, errlen);
	if (!text)
		return NULL;
	json_t *recs = json_array();
	size_t off = 0;
	while (off < len) {
		char *nl = memchr(text + off, '\n', len - off);
		if (!nl)
			break; /* torn: a crash mid-write */
		size_t n = (size_t)(nl - (text + off));
		json_t *o = json_loadb(text + off, n, 0, NULL);
		if (!o || !json_is_object(o)) {
			json_decref(o);
			break;
		}
		json_array_append_new(recs, o);
		off += n + 1;
	}
	*good_bytes = off;
	*torn_bytes = len - off;
	free(text);
	return recs;
}

struct drr_journal *drr_journal_open(const char *path, size_t *repaired, char *err, size_t errlen)
{
	size_t good, torn;
	json_t *recs = drr_journal_load(path, &good, &torn, err, errlen);
	if (!recs)
		return NULL;
	if (json_array_size(recs) == 0) {
		snprintf(err, errlen, "%s holds no whole record", path);
		json_decref(recs);
		return NULL;
	}
	json_t *last = json_array_get(recs, json_array_size(recs) - 1);
	const char *hash = json_string_value(json_object_get(last, "hash"));
	const char *run = json_string_value(json_object_get(last, "run"));
	json_int_t seq = json_integer_value(json_object_get(last, "seq"));
	if (!hash || strlen(hash) != 64 || !run || seq < 1) {
		snprintf(err, errlen, "%s: the last record has no seq, run or hash", path);
		json_decref(recs);
		return NULL;
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0 || (torn && (ftruncate(fd, (off_t)good) < 0 || fdatasync(fd) < 0))) {
		snprintf(err, errlen, "cannot open %s for appending: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		json_decref(recs);
		return NULL;
	}
	struct drr_journal *j = drr_xcalloc(1, sizeof *j);
	j->fd = fd;
	j->path = drr_xstrdup(path);
	j->run_id = drr_xstrdup(run);
	j->seq = seq;
	j->size = (off_t)good;
	memcpy(j->prev, hash, 65);
	*repaired = torn;
	json_decref(recs);
	return j;
}

/* Find the index of the line whose seq is `want` among lines[from..n). */
static int find_seq(json_t **lines, int from, int n, json_int_t want)
{
	for (int i = from; i < n; i++)
		if (lines[i] && json_integer_value(json_object_get(lines[i], "seq")) == want)
			return i;
	return -1;
}

int drr_journal_verify(const char *path, const void *key, size_t klen, struct drr_verify *v)
{
	memset(v, 0, sizeof *v);
	size_t len;
	char *text = slurp(path, &len, v->reason, sizeof v->reason);
	if (!text)
		return -1;
	/* split into lines first, so a moved record can be told from a lost one */
	int n = 0, cap = 64;
	const char **starts = drr_xmalloc((size_t)cap * sizeof *starts);
	size_t *lens = drr_xmalloc((size_t)cap * sizeof *lens);
	size_t off = 0;
	int torn = 0;
	while (off < len) {
		char *nl = memchr(text + off, '\n', len - off);
		if (n == cap) {
			cap *= 2;
			starts = drr_xrealloc(starts, (size_t)cap * sizeof *starts);
			lens = drr_xrealloc(lens, (size_t)cap * sizeof *lens);
		}
		starts[n] = text + off;
		lens[n] = nl ? (size_t)(nl - (text + off)) : len - off;
		n++;
		if (!nl) {
			torn = 1;
			break;
		}
		off += lens[n - 1] + 1;
	}
	json_t **lines = drr_xcalloc((size_t)(n ? n : 1), sizeof *lines);
	for (int i = 0; i < n - torn; i++)
		lines[i] = json_loadb(starts[i], lens[i], 0, NULL);

	char prev[65];
	memset(prev, '0', 64);
	prev[64] = '\0';
	int rc = 0;
	for (int i = 0; i < n; i++) {
		json_int_t want = i + 1;
		v->bad_seq = want;
		if (torn && i == n - 1) {
			snprintf(v->reason, sizeof v->reason,
				 "truncated mid-line: %zu bytes after the last whole record",
				 lens[i]);
			rc = 1;
			break;
		}
		json_t *o = lines[i];
		struct drr_jline jl;
		if (!o || !json_is_object(o) ||
		    drr_journal_parse_line(starts[i], lens[i], key, klen, &jl) < 0) {
			snprintf(v->reason, sizeof v->reason,
				 "line %d is not a journal record "
				 "(edited)",
				 i + 1);
			rc = 1;
			break;
		}
		json_int_t seq = json_integer_value(json_object_get(o, "seq"));
		if (seq != want) {
			int at = find_seq(lines, i + 1, n - torn, want);
			if (at >= 0)
				snprintf(
					v->reason, sizeof v->reason,
					"reordered: line %d holds seq %lld, seq %lld is at line %d",
					i + 1, (long long)seq, (long long)want, at + 1);
			else
				snprintf(v->reason, sizeof v->reason,
					 "removed: line %d holds seq %lld where seq %lld should be",
					 i + 1, (long long)seq, (long long)want);
			rc = 1;
			break;
		}
		if (strcmp(jl.hash, jl.found_hash) != 0) {
			snprintf(v->reason, sizeof v->reason,
				 "edited: the record's content does not match its hash");
			rc = 1;
			break;
		}
		const char *p = json_string_value(json_object_get(o, "prev"));
		if (!p || strcmp(p, prev) != 0) {
			snprintf(v->reason, sizeof v->reason,
				 "chain broken: prev does not match the hash of seq %lld",
				 (long long)want - 1);
			rc = 1;
			break;
		}
		const char *run = json_string_value(json_object_get(o, "run"));
		if (i == 0) {
			snprintf(v->run, sizeof v->run, "%s", run ? run : "?");
			const char *type = json_string_value(json_object_get(o, "type"));
			if (!type || strcmp(type, "run_start") != 0) {
				snprintf(v->reason, sizeof v->reason,
					 "the first record is not run_start");
				rc = 1;
				break;
			}
		} else if (!run || strcmp(run, v->run) != 0) {
			snprintf(v->reason, sizeof v->reason, "record belongs to another run (%s)",
				 run ? run : "none");
			rc = 1;
			break;
		}
		if (key && klen) {
			if (!jl.has_mac) {
				snprintf(v->reason, sizeof v->reason,
					 "no mac, but an audit key was given");
				rc = 1;
				break;
			}
			if (CRYPTO_memcmp(jl.mac, jl.want_mac, 64) != 0) {
				snprintf(
					v->reason, sizeof v->reason,
					"mac mismatch: written without the audit key (rewritten?)");
				rc = 1;
				break;
			}
		}
		v->macs += jl.has_mac;
		const char *type = json_string_value(json_object_get(o, "type"));
		if (type && !strcmp(type, "run_end"))
			v->ended = 1;
		else if (type && !strcmp(type, "run_resume"))
			v->ended = 0;
		memcpy(prev, jl.found_hash, 65);
		v->records++;
	}
	if (rc == 0)
		v->bad_seq = 0;
	for (int i = 0; i < n; i++)
		json_decref(lines[i]);
	free(lines);
	free(starts);
	free(lens);
	free(text);
	return rc;
}
