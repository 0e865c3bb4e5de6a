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
 * The values the runbook wrote are redacted before hashing, so secrets never
 * reach the disk; the record's own structure (seq, ts, run, type, step,
 * status, prev, hash...) never is, so a short secret cannot corrupt it.
 * Strings that are not UTF-8 keep their bytes (core.h: \xNN).
 *
 * Reading: a torn record, left by a crash mid-write, can only be the last
 * line, and only if it has no newline.  Anything else that does not verify is
 * damage: drr_journal_load refuses it, drr_journal_verify names the first bad
 * seq and why, and drr_journal_open (resume, rollback) refuses to append to
 * it, leaving the file as it is.  Starting, resuming and ending a run also
 * leave an entry in the state dir's ledger (ledger.c), which verify checks the
 * journal against, so cutting records off the end is evident.
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
	char *state_dir; /* where the ledger is */
	/* a ledger entry to write once the record it names is on disk */
	const char *ledger_type;
	int64_t ledger_records;
	char ledger_head[65];
	int64_t durable; /* the last seq known to be on disk */
	/* an fdatasync on the libuv thread pool (drr_journal_sync_async) */
	uv_work_t work;
	int busy, werr;
	int64_t work_upto;
	void (*work_done)(void *ud, int rc);
	void *work_ud;
};

/* Journal slurps are capped: a journal is bounded by its run's records. */
#define JOURNAL_MAX ((size_t)1 << 30)

/* Members that are the record's own structure, written by the engine: they
 * are never redacted (every other member holds values the runbook wrote). */
static const char *const STRUCTURE[] = { "type",      "step",	"status",  "phase",   "attempt",
					 "attempts",  "sha256", "plan",	   "version", "mode",
					 "completed", "rerun",	"runbook", "file",    "path",
					 "path_hex",  "env",	"host",	   "by",      "secrets",
					 "redacted",  "trigger_redacted", NULL };

static const char HASH_KEY[] = ",\"hash\":\"";
static const char MAC_KEY[] = "\",\"mac\":\"";

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
	drr_fsync_dir(runs);
	j = drr_xcalloc(1, sizeof *j);
	j->fd = fd;
	j->path = path;
	j->tmp_path = tmp;
	j->dir = dir;
	dir = NULL;
	j->run_id = drr_xstrdup(run_id);
	j->state_dir = drr_xstrdup(state_dir);
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

char *drr_journal_seal(const char *body, size_t blen, const void *key, size_t klen, char hash[65],
		       size_t *linelen)
{
	drr_sha256_hex(body, blen, hash);
	struct drr_buf line = { 0 };
	drr_buf_add(&line, body, blen - 1);
	drr_buf_adds(&line, HASH_KEY);
	drr_buf_adds(&line, hash);
	if (key && klen) {
		char mac[65];
		drr_hmac_sha256_hex(key, klen, body, blen, mac);
		drr_buf_adds(&line, MAC_KEY);
		drr_buf_adds(&line, mac);
	}
	drr_buf_adds(&line, "\"}\n");
	*linelen = line.len;
	return line.data;
}

/* Write the ledger entry a record asked for; -1 kills the journal. */
static int ledger_note(struct drr_journal *j, const char *type, int64_t records, const char *head)
{
	char err[256];
	if (drr_ledger_append(j->state_dir, type, j->run_id, records, head, j->key, j->klen, err,
			      sizeof err) == 0)
		return 0;
	snprintf(j->err, sizeof j->err, "%s", err);
	j->dead = 1;
	return -1;
}

int drr_journal_append(struct drr_journal *j, json_t *rec, int sync)
{
	if (j->dead) {
		json_decref(rec);
		return -1;
	}
	/* the runbook's values are redacted, the record's own members never */
	drr_redact_values(rec, STRUCTURE);
	char ts[40];
	json_t *o = json_object();
	json_object_set_new(o, "seq", json_integer(++j->seq));
	json_object_set_new(o, "ts", json_string(drr_rfc3339(drr_now_us(), ts, sizeof ts)));
	json_object_set_new(o, "run", drr_json_str(j->run_id));
	const char *k;
	json_t *v;
	json_object_foreach(rec, k, v)
		json_object_set(o, k, v);
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *ltype = NULL;
	if (type &&
	    (!strcmp(type, "run_start") || !strcmp(type, "run_resume") || !strcmp(type, "run_end")))
		ltype = !strcmp(type, "run_start") ? "run_start"
			: !strcmp(type, "run_end") ? "run_end"
						   : "run_resume";
	json_decref(rec);
	json_object_set_new(o, "prev", json_string(j->prev));

	char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	json_decref(o);
	if (!body) {
		snprintf(j->err, sizeof j->err, "cannot encode journal record %lld",
			 (long long)j->seq);
		j->dead = 1;
		return -1;
	}
	char hash[65];
	size_t linelen;
	char *line = drr_journal_seal(body, strlen(body), j->key, j->klen, hash, &linelen);
	free(body);

	/* A run's first record is in the ledger before the journal shows it:
	 * the journal appears only once that record is on disk, so no journal
	 * ever exists that the ledger does not know. */
	if (ltype && j->seq == 1 && ledger_note(j, ltype, j->seq, hash) < 0) {
		free(line);
		return -1;
	}
	if (drr_write_all(j->fd, line, linelen) < 0) {
		snprintf(j->err, sizeof j->err, "cannot write %s: %s", j->path, strerror(errno));
		/* never leave half a record behind */
		if (ftruncate(j->fd, j->size) < 0) {
			/* nothing more we can do; the reader drops a torn tail */
		}
		j->dead = 1;
		free(line);
		return -1;
	}
	j->size += (off_t)linelen;
	memcpy(j->prev, hash, sizeof hash);
	j->dirty = 1;
	if (ltype && j->seq > 1) {
		/* the others once the record is on disk: a ledger entry never
		 * names a record a crash could lose */
		j->ledger_type = ltype;
		j->ledger_records = j->seq;
		memcpy(j->ledger_head, hash, sizeof hash);
	}
	if (j->tee) {
		line[linelen - 1] = '\0';
		j->tee(line, j->tee_ud);
	}
	free(line);
	return sync ? drr_journal_sync(j) : 0;
}

/* What follows an fdatasync that covered every record up to seq `upto`:
 * the journal's name once its first record is on disk, and the ledger entry
 * that names a record now on disk.  On the loop's thread. */
static int sync_finish(struct drr_journal *j, int64_t upto)
{
	if (upto > j->durable)
		j->durable = upto;
	if (j->durable >= j->seq)
		j->dirty = 0;
	if (j->tmp_path && j->durable >= 1) {
		/* link, not rename: never replace a journal that appeared meanwhile */
		if (link(j->tmp_path, j->path) < 0 || unlink(j->tmp_path) < 0) {
			snprintf(j->err, sizeof j->err, "cannot create %s: %s", j->path,
				 strerror(errno));
			j->dead = 1;
			return -1;
		}
		drr_fsync_dir(j->dir);
		free(j->tmp_path);
		j->tmp_path = NULL;
	}
	if (j->ledger_type && j->ledger_records <= j->durable) {
		const char *t = j->ledger_type;
		j->ledger_type = NULL;
		return ledger_note(j, t, j->ledger_records, j->ledger_head);
	}
	return 0;
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
	return sync_finish(j, j->seq);
}

static void sync_work(uv_work_t *w)
{
	struct drr_journal *j = w->data;
	j->werr = fdatasync(j->fd) < 0 ? errno : 0;
}

static void sync_after(uv_work_t *w, int status)
{
	struct drr_journal *j = w->data;
	int rc = 0;
	j->busy = 0;
	if (j->dead) {
		rc = -1;
	} else if (status < 0 || j->werr) {
		snprintf(j->err, sizeof j->err, "cannot sync %s: %s", j->path,
			 status < 0 ? uv_strerror(status) : strerror(j->werr));
		j->dead = 1;
		rc = -1;
	} else {
		rc = sync_finish(j, j->work_upto);
	}
	j->work_done(j->work_ud, rc);
}

int drr_journal_sync_async(struct drr_journal *j, uv_loop_t *loop, void (*done)(void *ud, int rc),
			   void *ud)
{
	if (j->dead)
		return -1;
	if (j->busy)
		return 1;
	if (!j->dirty)
		return 0;
	j->busy = 1;
	j->werr = 0;
	j->work_upto = j->seq;
	j->work_done = done;
	j->work_ud = ud;
	j->work.data = j;
	if (uv_queue_work(loop, &j->work, sync_work, sync_after) < 0) {
		j->busy = 0;
		return drr_journal_sync(j) < 0 ? -1 : 0;
	}
	return 1;
}

int64_t drr_journal_seq(const struct drr_journal *j)
{
	return j->seq;
}

int64_t drr_journal_durable(const struct drr_journal *j)
{
	return j->durable;
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
		explicit_bzero(j->key, j->klen);
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
	free(j->state_dir);
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

/* A journal split into lines.  A last line without its newline is torn. */
struct lines {
	char *text;
	size_t len;
	const char **starts;
	size_t *lens;
	int n, torn;
};

static int split_lines(const char *path, struct lines *ls, char *err, size_t errlen)
{
	memset(ls, 0, sizeof *ls);
	ls->text = drr_slurp(path, JOURNAL_MAX, &ls->len, err, errlen);
	if (!ls->text)
		return -1;
	int cap = 64;
	ls->starts = drr_xmalloc((size_t)cap * sizeof *ls->starts);
	ls->lens = drr_xmalloc((size_t)cap * sizeof *ls->lens);
	size_t off = 0;
	while (off < ls->len) {
		char *nl = memchr(ls->text + off, '\n', ls->len - off);
		if (ls->n == cap) {
			cap *= 2;
			ls->starts = drr_xrealloc(ls->starts, (size_t)cap * sizeof *ls->starts);
			ls->lens = drr_xrealloc(ls->lens, (size_t)cap * sizeof *ls->lens);
		}
		ls->starts[ls->n] = ls->text + off;
		ls->lens[ls->n] = nl ? (size_t)(nl - (ls->text + off)) : ls->len - off;
		ls->n++;
		if (!nl) {
			ls->torn = 1;
			break;
		}
		off += ls->lens[ls->n - 1] + 1;
	}
	return 0;
}

static void free_lines(struct lines *ls)
{
	free(ls->text);
	free(ls->starts);
	free(ls->lens);
	memset(ls, 0, sizeof *ls);
}

/* A journal line as JSON.  NULs are kept (a step's output may hold them). */
static json_t *parse_record(const char *line, size_t len)
{
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

json_t *drr_journal_load(const char *path, size_t *good_bytes, size_t *torn_bytes, char *err,
			 size_t errlen)
{
	struct lines ls;
	if (split_lines(path, &ls, err, errlen) < 0)
		return NULL;
	json_t *recs = json_array();
	size_t off = 0;
	for (int i = 0; i < ls.n - ls.torn; i++) {
		json_t *o = parse_record(ls.starts[i], ls.lens[i]);
		if (!o) {
			snprintf(err, errlen,
				 "%s: line %d is not a journal record: the journal is damaged "
				 "(drrun audit verify tells more)",
				 path, i + 1);
			json_decref(recs);
			free_lines(&ls);
			return NULL;
		}
		json_array_append_new(recs, o);
		off += ls.lens[i] + 1;
	}
	*good_bytes = off;
	*torn_bytes = ls.len - off;
	free_lines(&ls);
	return recs;
}

int drr_journal_check(const char *state_dir, const char *path, const void *key, size_t klen,
		      struct drr_verify *v, char *err, size_t errlen)
{
	int r = drr_journal_verify(path, state_dir, key, klen, DRR_VERIFY_TORN_OK, v);
	if (r < 0) {
		snprintf(err, errlen, "%s", v->reason);
		return 66;
	}
	if (r == 0 && v->records == 0) {
		r = 1;
		v->bad_seq = 1;
		snprintf(v->reason, sizeof v->reason, "the journal holds no whole record");
	}
	if (r == 0 && v->macs && !(key && klen)) {
		r = 1;
		v->bad_seq = 1;
		snprintf(v->reason, sizeof v->reason,
			 "its records carry HMACs: give the audit key (DRRUN_AUDIT_KEY or "
			 "--key-file) to append to it");
	}
	if (r == 0)
		return 0;
	snprintf(err, errlen, "%s: seq %ld: %s; refusing to append to it (the file is unchanged)",
		 path, v->bad_seq, v->reason);
	return DRR_EXIT_INVALID;
}

struct drr_journal *drr_journal_open(const char *state_dir, const char *path, const void *key,
				     size_t klen, size_t *repaired, int *code, char *err,
				     size_t errlen)
{
	struct drr_verify v;
	*code = drr_journal_check(state_dir, path, key, klen, &v, err, errlen);
	if (*code)
		return NULL;
	/* only a torn last line (no newline) is ever cut: never a record */
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 ||
	    (v.torn_bytes && (ftruncate(fd, (off_t)v.good_bytes) < 0 || fdatasync(fd) < 0))) {
		snprintf(err, errlen, "cannot open %s for appending: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		*code = DRR_EXIT_CANTSTART;
		return NULL;
	}
	struct drr_journal *j = drr_xcalloc(1, sizeof *j);
	j->fd = fd;
	j->path = drr_xstrdup(path);
	j->run_id = drr_xstrdup(v.run);
	j->state_dir = drr_xstrdup(state_dir);
	j->seq = v.records;
	j->durable = j->seq;
	j->size = (off_t)v.good_bytes;
	memcpy(j->prev, v.last_hash, 65);
	*repaired = v.torn_bytes;
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

/* The run directory a journal lies in, when it is named journal.jsonl. */
static int dir_name(const char *path, char *out, size_t n)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	if (strcmp(base, "journal.jsonl") != 0)
		return -1;
	if (!slash) {
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof cwd))
			return -1;
		const char *c = strrchr(cwd, '/');
		snprintf(out, n, "%.200s", c ? c + 1 : cwd);
		return 0;
	}
	const char *end = slash;
	while (end > path && end[-1] == '/')
		end--;
	const char *start = end;
	while (start > path && start[-1] != '/')
		start--;
	if (start == end)
		return -1;
	snprintf(out, n, "%.*s", (int)(end - start), start);
	return 0;
}

/* Check one line; 0 when it is the record seq i+1 that follows prev. */
static int check_line(const struct lines *ls, json_t **lines, int i, const char *prev,
		      const void *key, size_t klen, struct drr_verify *v, struct drr_jline *jl)
{
	json_int_t want = i + 1;
	json_t *o = lines[i];
	if (!o || drr_journal_parse_line(ls->starts[i], ls->lens[i], key, klen, jl) < 0) {
		snprintf(v->reason, sizeof v->reason, "line %d is not a journal record (edited)",
			 i + 1);
		return 1;
	}
	json_int_t seq = json_integer_value(json_object_get(o, "seq"));
	if (seq != want) {
		int at = find_seq(lines, i + 1, ls->n - ls->torn, want);
		if (at >= 0)
			snprintf(v->reason, sizeof v->reason,
				 "reordered: line %d holds seq %lld, seq %lld is at line %d", i + 1,
				 (long long)seq, (long long)want, at + 1);
		else
			snprintf(v->reason, sizeof v->reason,
				 "removed: line %d holds seq %lld where seq %lld should be", i + 1,
				 (long long)seq, (long long)want);
		return 1;
	}
	if (strcmp(jl->hash, jl->found_hash) != 0) {
		snprintf(v->reason, sizeof v->reason,
			 "edited: the record's content does not match its hash");
		return 1;
	}
	const char *p = json_string_value(json_object_get(o, "prev"));
	if (!p || strcmp(p, prev) != 0) {
		snprintf(v->reason, sizeof v->reason,
			 "chain broken: prev does not match the hash of seq %lld",
			 (long long)want - 1);
		return 1;
	}
	const char *run = json_string_value(json_object_get(o, "run"));
	if (i == 0) {
		snprintf(v->run, sizeof v->run, "%s", run ? run : "?");
		const char *type = json_string_value(json_object_get(o, "type"));
		if (!type || strcmp(type, "run_start") != 0) {
			snprintf(v->reason, sizeof v->reason, "the first record is not run_start");
			return 1;
		}
	} else if (!run || strcmp(run, v->run) != 0) {
		snprintf(v->reason, sizeof v->reason, "record belongs to another run (%s)",
			 run ? run : "none");
		return 1;
	}
	if (key && klen) {
		if (!jl->has_mac) {
			snprintf(v->reason, sizeof v->reason, "no mac, but an audit key was given");
			return 1;
		}
		if (!drr_ct_equal(jl->mac, jl->want_mac, 64)) {
			snprintf(v->reason, sizeof v->reason,
				 "mac mismatch: written without the audit key (rewritten?)");
			return 1;
		}
	}
	return 0;
}

/* The checks of drr_journal_verify over a journal split into ls, its whole
 * lines parsed into lines[] (NULL: not a record), parsed before any is
 * checked so a moved record can be told from a lost one.  Reads lines[],
 * never changes them. */
static int verify_lines(const char *path, const char *state_dir, const void *key, size_t klen,
			int flags, const struct lines *ls, json_t **lines, struct drr_verify *v)
{
	int n = ls->n, whole = ls->n - ls->torn;
	char(*hashes)[65] = drr_xcalloc((size_t)(n ? n : 1), sizeof *hashes);
	char prev[65];
	memset(prev, '0', 64);
	prev[64] = '\0';
	int rc = 0;
	for (int i = 0; i < whole && rc == 0; i++) {
		struct drr_jline jl;
		v->bad_seq = i + 1;
		rc = check_line(ls, lines, i, prev, key, klen, v, &jl);
		if (rc)
			break;
		v->macs += jl.has_mac;
		const char *type = json_string_value(json_object_get(lines[i], "type"));
		if (type && !strcmp(type, "run_end"))
			v->ended = 1;
		else if (type && !strcmp(type, "run_resume"))
			v->ended = 0;
		memcpy(prev, jl.found_hash, 65);
		memcpy(hashes[i], jl.found_hash, 65);
		v->records++;
		v->good_bytes += ls->lens[i] + 1;
	}
	memcpy(v->last_hash, prev, 65);
	if (rc == 0 && ls->torn) {
		v->torn_bytes = ls->lens[n - 1];
		if (!(flags & DRR_VERIFY_TORN_OK)) {
			v->bad_seq = n;
			snprintf(v->reason, sizeof v->reason,
				 "truncated mid-line: %zu bytes after the last whole record",
				 ls->lens[n - 1]);
			rc = 1;
		}
	}
	if (rc == 0 && n == 0) {
		v->bad_seq = 1;
		snprintf(v->reason, sizeof v->reason,
			 "the journal is empty: every journal begins with its run_start");
		rc = 1;
	}
	char dir[256];
	if (rc == 0 && v->records && dir_name(path, dir, sizeof dir) == 0 &&
	    strcmp(dir, v->run) != 0) {
		v->bad_seq = 1;
		snprintf(v->reason, sizeof v->reason,
			 "the journal of run %.90s is in the directory of run %.90s (copied?)",
			 v->run, dir);
		rc = 1;
	}
	if (rc == 0 && state_dir && v->records)
		rc = drr_ledger_check(state_dir, v->run, (const char(*)[65])hashes, v->records, key,
				      klen, v);
	if (rc == 0)
		v->bad_seq = 0;
	free(hashes);
	return rc;
}

/* Read and split a journal, and parse its lines: the whole ones, and with
 * torn_too the torn last one.  lines[] has ls->n slots (caller frees each
 * and it).  -1 with v->reason when the file cannot be read. */
static json_t **read_lines(const char *path, int torn_too, struct lines *ls, struct drr_verify *v)
{
	memset(v, 0, sizeof *v);
	memset(v->last_hash, '0', 64);
	v->ledger_entries = -1;
	if (split_lines(path, ls, v->reason, sizeof v->reason) < 0)
		return NULL;
	int upto = torn_too ? ls->n : ls->n - ls->torn;
	json_t **lines = drr_xcalloc((size_t)(ls->n ? ls->n : 1), sizeof *lines);
	for (int i = 0; i < upto; i++)
		lines[i] = parse_record(ls->starts[i], ls->lens[i]);
	return lines;
}

static void free_parsed(struct lines *ls, json_t **lines)
{
	for (int i = 0; i < ls->n; i++)
		json_decref(lines[i]);
	free(lines);
	free_lines(ls);
}

int drr_journal_verify(const char *path, const char *state_dir, const void *key, size_t klen,
		       int flags, struct drr_verify *v)
{
	struct lines ls;
	json_t **lines = read_lines(path, 0, &ls, v);
	if (!lines)
		return -1;
	int rc = verify_lines(path, state_dir, key, klen, flags, &ls, lines, v);
	free_parsed(&ls, lines);
	return rc;
}

int drr_journal_verify_load(const char *path, const char *state_dir, const void *key, size_t klen,
			    int flags, struct drr_verify *v, json_t **recs, long *unreadable)
{
	struct lines ls;
	*recs = NULL;
	*unreadable = 0;
	json_t **lines = read_lines(path, 1, &ls, v);
	if (!lines)
		return -1;
	/* the torn line is not the chain's: verify_lines reads whole lines only */
	int rc = verify_lines(path, state_dir, key, klen, flags, &ls, lines, v);
	*recs = json_array();
	for (int i = 0; i < ls.n; i++) {
		if (lines[i])
			json_array_append(*recs, lines[i]);
		else if (ls.lens[i])
			(*unreadable)++;
	}
	free_parsed(&ls, lines);
	return rc;
}

void drr_journal_path_members(json_t *rec, const char *path)
{
	size_t n = strlen(path);
	json_object_set_new(rec, "path", drr_json_text(path, n));
	if (drr_utf8_valid(path, n))
		return;
	static const char hex[] = "0123456789abcdef";
	char *h = drr_xmalloc(2 * n + 1);
	for (size_t i = 0; i < n; i++) {
		h[2 * i] = hex[(unsigned char)path[i] >> 4];
		h[2 * i + 1] = hex[(unsigned char)path[i] & 15];
	}
	h[2 * n] = '\0';
	json_object_set_new(rec, "path_hex", json_string(h));
	free(h);
}

json_t *drr_journal_raw_path(json_t *rec)
{
	const char *h = json_string_value(json_object_get(rec, "path_hex"));
	size_t n = h ? strlen(h) : 0;
	if (!h || n % 2)
		return NULL;
	char *b = drr_xmalloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(h + 2 * i, "%2x", &v) != 1 || !v) {
			free(b);
			return NULL;
		}
		b[i] = (char)v;
	}
	/* in memory only, never written: jansson holds the bytes as they are */
	json_t *j = json_stringn_nocheck(b, n / 2);
	free(b);
	return j;
}
