/*
 * ledger.c - the ledger of runs: <state-dir>/ledger.jsonl, one line each
 * time a run starts, resumes and ends, in every run of the state dir.
 *
 * A journal's hash chain proves that no record in it was changed, but not
 * that none was cut off its end: a shortened chain is still a chain.  So, as
 * Certificate Transparency publishes signed tree heads, every run writes the
 * head of its journal (record count and last hash) to a second chain that
 * only grows.  `audit verify`, resume and rollback then check that the
 * journal still holds every record the ledger saw, with the same hash.
 *
 * Lines are made like a journal's (journal.c, drr_journal_seal):
 *   {"seq":N,"ts":"...","type":"run_end","run":"<id>","records":K,
 *    "head":"<hash of record K>","prev":"<hash of ledger line N-1>",
 *    "hash":"...","mac":"..."}
 * with a mac under the audit key when one is given.  Appends take an
 * exclusive flock, read the last line for seq and prev, append with
 * O_APPEND, fdatasync, and drop the lock, so concurrent runs of different
 * runbooks chain their entries one after the other.  The file is opened with
 * O_NOFOLLOW: a symlink in its place is refused.
 */
#include "journal/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEDGER_MAX ((size_t)1 << 30)
#define TAIL 65536 /* a ledger line is far shorter */

static char *ledger_path(const char *state_dir)
{
	return drr_xasprintf("%s/ledger.jsonl", state_dir);
}

/* seq and hash of the last line of the locked ledger; a torn last line (a
 * crash mid-append) is cut first.  0, or -1 with err. */
static int ledger_tail(int fd, const char *path, json_int_t *seq, char prev[65], char *err,
		       size_t errlen)
{
	static char buf[TAIL];
	*seq = 0;
	memset(prev, '0', 64);
	prev[64] = '\0';
	for (int pass = 0; pass < 2; pass++) {
		struct stat st;
		if (fstat(fd, &st) < 0)
			goto io;
		if (st.st_size == 0)
			return 0;
		size_t want = st.st_size < TAIL ? (size_t)st.st_size : TAIL;
		off_t at = st.st_size - (off_t)want;
		ssize_t r = pread(fd, buf, want, at);
		if (r != (ssize_t)want)
			goto io;
		if (buf[want - 1] != '\n') {
			/* torn: cut back to the last newline */
			char *nl = memrchr(buf, '\n', want);
			if (!nl && at > 0) {
				snprintf(err, errlen, "%s: its last line is longer than %d bytes",
					 path, TAIL);
				return -1;
			}
			off_t cut = nl ? at + (nl - buf) + 1 : 0;
			if (pass || ftruncate(fd, cut) < 0)
				goto io;
			continue;
		}
		char *end = buf + want - 1; /* the final newline */
		char *start = memrchr(buf, '\n', (size_t)(end - buf));
		start = start ? start + 1 : buf;
		if (!start || (start == buf && at > 0)) {
			snprintf(err, errlen, "%s: its last line is longer than %d bytes", path,
				 TAIL);
			return -1;
		}
		size_t len = (size_t)(end - start);
		json_t *o = json_loadb(start, len, JSON_ALLOW_NUL, NULL);
		*seq = json_integer_value(json_object_get(o, "seq"));
		json_decref(o);
		struct drr_jline jl;
		if (drr_journal_parse_line(start, len, NULL, 0, &jl) == 0)
			memcpy(prev, jl.found_hash, 65);
		else /* damaged: chain on from its bytes; verify reports it */
			drr_sha256_hex(start, len, prev);
		return 0;
	}
io:
	snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
	return -1;
}

int drr_ledger_append(const char *state_dir, const char *type, const char *run_id, int64_t records,
		      const char head[65], const void *key, size_t klen, char *err, size_t errlen)
{
	char *path = ledger_path(state_dir);
	int rc = -1, created = 1;
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST) {
		created = 0;
		fd = open(path, O_RDWR | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot open the ledger %s: %s", path, strerror(errno));
		free(path);
		return -1;
	}
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			snprintf(err, errlen, "cannot lock the ledger %s: %s", path,
				 strerror(errno));
			goto out;
		}
	}
	json_int_t seq;
	char prev[65], ts[40], hash[65];
	if (ledger_tail(fd, path, &seq, prev, err, errlen) < 0)
		goto out;
	json_t *o = json_object();
	json_object_set_new(o, "seq", json_integer(seq + 1));
	json_object_set_new(o, "ts", json_string(drr_rfc3339(drr_now_us(), ts, sizeof ts)));
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "run", drr_json_str(run_id));
	json_object_set_new(o, "records", json_integer((json_int_t)records));
	json_object_set_new(o, "head", json_string(head));
	json_object_set_new(o, "prev", json_string(prev));
	char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	size_t linelen;
	char *line = drr_journal_seal(body, strlen(body), key, klen, hash, &linelen);
	free(body);
	if (drr_write_all(fd, line, linelen) < 0 || fdatasync(fd) < 0 ||
	    (created && drr_fsync_dir(state_dir) < 0))
		snprintf(err, errlen, "cannot write the ledger %s: %s", path, strerror(errno));
	else
		rc = 0;
	free(line);
out:
	close(fd); /* and the lock with it */
	free(path);
	return rc;
}

/* One failed check: fills v, returns 1. */
static int bad(struct drr_verify *v, long seq, const char *fmt, ...) DRR_PRINTF(3, 4);
static int bad(struct drr_verify *v, long seq, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof v->reason, fmt, ap);
	va_end(ap);
	v->bad_seq = seq;
	return 1;
}

/* One ledger line against the chain so far; 0 when it verifies. */
static int check_entry(const char *line, size_t len, json_int_t want, const char *prev,
		       const void *key, size_t klen, json_t **out, struct drr_jline *jl, char *why,
		       size_t n)
{
	json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	*out = o;
	if (!json_is_object(o) || drr_journal_parse_line(line, len, key, klen, jl) < 0)
		snprintf(why, n, "is not a ledger entry (edited)");
	else if (json_integer_value(json_object_get(o, "seq")) != want)
		snprintf(why, n, "holds seq %lld (removed or reordered entries)",
			 (long long)json_integer_value(json_object_get(o, "seq")));
	else if (strcmp(jl->hash, jl->found_hash) != 0)
		snprintf(why, n, "edited: its content does not match its hash");
	else if (!json_string_value(json_object_get(o, "prev")) ||
		 strcmp(json_string_value(json_object_get(o, "prev")), prev) != 0)
		snprintf(why, n, "chain broken: prev does not match the entry before");
	else
		return 0;
	return 1;
}

int drr_ledger_check(const char *state_dir, const char *run_id, const char (*hashes)[65], long nrec,
		     const void *key, size_t klen, struct drr_verify *v)
{
	char *path = ledger_path(state_dir), err[300];
	size_t len;
	char *text = drr_slurp(path, LEDGER_MAX, &len, err, sizeof err);
	v->ledger_entries = 0;
	v->ledger_seq = 0;
	memset(v->ledger_head, '0', 64);
	v->ledger_head[64] = '\0';
	if (!text) {
		int rc = errno == ENOENT ? bad(v, 1,
					       "there is no ledger (%s): nothing shows the "
					       "journal was not cut short",
					       path)
					 : bad(v, 1, "%s", err);
		free(path);
		return rc;
	}
	char prev[65];
	memset(prev, '0', 64);
	prev[64] = '\0';
	int rc = 0;
	json_int_t seq = 0;
	size_t off = 0;
	while (off < len && rc == 0) {
		char *nl = memchr(text + off, '\n', len - off);
		if (!nl)
			break; /* a torn last entry: a crash mid-append, cut by the next */
		const char *line = text + off;
		size_t n = (size_t)(nl - line);
		off += n + 1;
		seq++;
		json_t *o;
		struct drr_jline jl;
		char why[160];
		if (check_entry(line, n, seq, prev, key, klen, &o, &jl, why, sizeof why)) {
			rc = bad(v, nrec, "the ledger's entry %lld %s", (long long)seq, why);
			json_decref(o);
			break;
		}
		memcpy(prev, jl.found_hash, 65);
		const char *run = json_string_value(json_object_get(o, "run"));
		if (run && !strcmp(run, run_id)) {
			v->ledger_entries++;
			const char *type = json_string_value(json_object_get(o, "type"));
			const char *head = json_string_value(json_object_get(o, "head"));
			json_int_t k = json_integer_value(json_object_get(o, "records"));
			if (!type || !head)
				type = "?", head = "";
			if (key && klen && (!jl.has_mac || !drr_ct_equal(jl.mac, jl.want_mac, 64)))
				rc = bad(v, nrec,
					 "the ledger's entry %lld (%s) %s: written without the "
					 "audit key",
					 (long long)seq, type,
					 jl.has_mac ? "mac mismatch" : "has no mac");
			else if (k < 1 || k > nrec)
				rc = bad(
					v, nrec + 1,
					"cut short: the ledger's entry %lld (%s) saw %lld records, "
					"the journal holds %ld",
					(long long)seq, type, (long long)k, nrec);
			else if (strcmp(hashes[k - 1], head) != 0)
				rc = bad(v, (long)k,
					 "rewritten: the ledger's entry %lld (%s) saw another "
					 "record %lld",
					 (long long)seq, type, (long long)k);
		}
		json_decref(o);
	}
	v->ledger_seq = (long)seq;
	memcpy(v->ledger_head, prev, 65);
	if (rc == 0 && v->ledger_entries == 0)
		rc = bad(v, 1, "the ledger %s has no entry for run %s (not run here, or removed)",
			 path, run_id);
	free(text);
	free(path);
	return rc;
}
