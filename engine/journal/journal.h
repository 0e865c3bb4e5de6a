/*
 * journal/journal.h - the append-only, hash-chained journal of a run (write,
 * read, verify) and the per-runbook lock.
 */
#ifndef DRR_JOURNAL_H
#define DRR_JOURNAL_H

#include "core/core.h"

/* ---- journal.c: the append-only, hash-chained journal ----------------- */

struct drr_journal;
/* Create <state_dir>/runs/<run_id>/journal.jsonl (directories included).
 * Returns NULL with a message in err on failure. */
struct drr_journal *drr_journal_create(const char *state_dir, const char *run_id, char *err,
				       size_t errlen);
/* Append one record.  Adds seq, ts, run, prev and hash; redacts the values
 * the runbook wrote (never the record's own members: type, step, status,
 * seq, ts, run, prev, hash...); steals the reference to rec.  With sync, the
 * record is on disk when this returns 0.  run_start, run_resume and run_end
 * also add an entry to the state dir's ledger (ledger.c).  Returns -1 on a
 * write error (journal is then dead). */
int drr_journal_append(struct drr_journal *j, json_t *rec, int sync);
int drr_journal_sync(struct drr_journal *j);
/* fdatasync everything appended so far on the libuv thread pool, so the
 * loop goes on meanwhile; done(ud, rc) runs on the loop afterwards, with 0
 * once those records are on disk (drr_journal_durable says up to which
 * seq) or -1 when the journal died.  One at a time: returns 1 when started
 * or while one is under way (ask again from done), 0 when every record is
 * already on disk (done is not called), -1 when the journal is dead.  The
 * journal must outlive the loop's run. */
int drr_journal_sync_async(struct drr_journal *j, uv_loop_t *loop, void (*done)(void *ud, int rc),
			   void *ud);
/* The seq of the last record appended, and of the last one known on disk. */
int64_t drr_journal_seq(const struct drr_journal *j);
int64_t drr_journal_durable(const struct drr_journal *j);
const char *drr_journal_path(const struct drr_journal *j);
const char *drr_journal_error(const struct drr_journal *j);
void drr_journal_close(struct drr_journal *j);
/* Called with every appended line (without newline), for --json. */
void drr_journal_set_tee(struct drr_journal *j, void (*fn)(const char *line, void *), void *ud);
/* Compute the hash of a line: the line with its trailing ,"hash":"..." field
 * removed.  Returns 0 and fills hex, or -1 if the line has no hash field. */
int drr_journal_line_hash(const char *line, size_t len, char hex[65], char found[65]);

/* Optional audit key: every record then carries an HMAC-SHA256 "mac". */
void drr_journal_set_key(struct drr_journal *j, const void *key, size_t klen);

/* A line from a serialised body (blen bytes, ending in '}'): the body with
 * ,"hash":"H"[,"mac":"M"]} and a newline.  Fills hash.  Caller frees.  The
 * journal's and the ledger's lines are made alike. */
char *drr_journal_seal(const char *body, size_t blen, const void *key, size_t klen, char hash[65],
		       size_t *linelen);

struct drr_jline {
	char hash[65];	     /* computed over the body */
	char found_hash[65]; /* as written in the line */
	char mac[65];	     /* as written, when has_mac */
	char want_mac[65];   /* computed with the key given */
	int has_mac;
	size_t body_len;
};
/* Parse a journal line's trailer and hash its body (and HMAC it, with a key). */
int drr_journal_parse_line(const char *line, size_t len, const void *key, size_t klen,
			   struct drr_jline *out);
/* Every whole record of a journal, as a JSON array (new reference).  A torn
 * last line (no newline) is left out: *torn_bytes says how long it is.  Any
 * other line that is not a record makes it NULL, with err. */
json_t *drr_journal_load(const char *path, size_t *good_bytes, size_t *torn_bytes, char *err,
			 size_t errlen);

struct drr_verify {
	long records;
	long bad_seq; /* 0 when intact */
	char reason[256];
	char run[160];
	long macs;		       /* records that carry a mac */
	int ended;		       /* the last run_start/run_resume was closed by run_end */
	size_t good_bytes, torn_bytes; /* the whole records; a torn last line */
	char last_hash[65];	       /* of the last whole record */
	/* the ledger (when a state dir was given): entries of this run, -1
	 * when not checked; the ledger's own last entry, to compare with a copy
	 * kept elsewhere */
	long ledger_entries;
	long ledger_seq;
	char ledger_head[65];
};
enum {
	DRR_VERIFY_TORN_OK = 1 /* a torn last line is not damage (resume cuts it) */
};
/* Check a journal line by line: hashes, seq, prev, run ids, HMACs with a
 * key, that a journal named journal.jsonl lies in its run's directory, and,
 * with a state dir, that it holds every record the ledger says it had.
 * 0: intact; 1: bad (v->bad_seq, v->reason); -1: unreadable (v->reason). */
int drr_journal_verify(const char *path, const char *state_dir, const void *key, size_t klen,
		       int flags, struct drr_verify *v);
/* drr_journal_verify, and the journal's lines that are JSON objects, whole
 * or torn, in order (new reference in *recs), with the count of non-empty
 * lines that are not (*unreadable): one read and one parse of the file for
 * `drrun report`, which reports on a journal that does not verify too.
 * -1 (unreadable, v->reason) leaves *recs NULL. */
int drr_journal_verify_load(const char *path, const char *state_dir, const void *key, size_t klen,
			    int flags, struct drr_verify *v, json_t **recs, long *unreadable);
/* What resume and rollback ask before they append: the whole journal
 * verifies (a torn last line aside), with the key when one is given, and a
 * journal whose records carry HMACs is not appended to without it.  Returns
 * 0, 65 (damaged: err names the seq and why) or 66 (unreadable). */
int drr_journal_check(const char *state_dir, const char *path, const void *key, size_t klen,
		      struct drr_verify *v, char *err, size_t errlen);
/* Reopen a journal for appending, after drr_journal_check: on damage it
 * returns NULL with *code 65 and the file untouched.  Only a torn last line
 * is cut (*repaired bytes).  Other failures: NULL, *code 75. */
struct drr_journal *drr_journal_open(const char *state_dir, const char *path, const void *key,
				     size_t klen, size_t *repaired, int *code, char *err,
				     size_t errlen);

/* A record's "path" (a file's path, escaped when it is not UTF-8), and then
 * "path_hex", the exact bytes in hex, so the file can be found again. */
void drr_journal_path_members(json_t *rec, const char *path);
/* The exact bytes of a record's path from its "path_hex", as a string value
 * for use in memory only (new reference), or NULL when there is none. */
json_t *drr_journal_raw_path(json_t *rec);

/* ---- ledger.c: the state dir's ledger of runs ----------------------------- */

/* <state_dir>/ledger.jsonl: one line per run_start, run_resume and run_end
 * of every run in the state dir, hash-chained like a journal (and HMAC'd
 * under the audit key), each naming the run, its journal's record count and
 * the hash of its last record at that point.  Appends are O_APPEND under an
 * flock and fdatasync'd, so runs of different runbooks can share it. */
int drr_ledger_append(const char *state_dir, const char *type, const char *run_id, int64_t records,
		      const char head[65], const void *key, size_t klen, char *err, size_t errlen);
/* Check a journal's record hashes (hashes[0..nrec)) against the ledger's
 * entries for run_id: the ledger's chain verifies, the run is in it, and
 * every entry's record is there with the hash the ledger recorded.  0, or 1
 * with v->bad_seq and v->reason; fills v's ledger fields. */
int drr_ledger_check(const char *state_dir, const char *run_id, const char (*hashes)[65], long nrec,
		     const void *key, size_t klen, struct drr_verify *v);

/* ---- lock.c: one active run per runbook name ----------------------------- */

/* Returns the lock's fd, or -1 with err naming the holder's run and pid. */
int drr_lock_take(const char *state_dir, const char *name, const char *run_id, char *err,
		  size_t errlen);
/* 1 if a live process holds the runbook's lock (fills run_id and pid). */
int drr_lock_holder(const char *state_dir, const char *name, char *run_id, size_t n, long *pid);
void drr_lock_release(int fd);

/* ---- etcd.c: etcd v3 through its JSON gateway ---------------------------- */

/* 0 when url is etcd://HOST:PORT, else -1 with the one-line reason. */
int drr_etcd_url_check(const char *url, char *err, size_t errlen);
/* etcd://HOST:PORT -> "http://HOST:PORT" (malloc'd), libcurl opened; NULL
 * with err ("--lock '...': use etcd://HOST:PORT", or why libcurl is not). */
char *drr_etcd_base(const char *url, char *err, size_t errlen);
/* POST body to base + path and wait at most timeout_ms: its JSON answer, or
 * NULL with err (the transport's reason, "timeout", "HTTP 404: ...").
 * Blocking: call it on the thread pool, or before any loop runs. */
json_t *drr_etcd_post(const char *base, const char *path, const char *body, long timeout_ms,
		      char *err, size_t errlen);
/* The same with a JSON body (stolen). */
json_t *drr_etcd_call(const char *base, const char *path, json_t *body, long timeout_ms,
		      char *err, size_t errlen);
/* Keys and values are base64 in the gateway (malloc'd; unb64: NULL if bad). */
char *drr_etcd_b64(const char *s);
char *drr_etcd_unb64(const char *s);

/* ---- elock.c: the runbook's lock in etcd as well (--lock) ----------------- */

struct drr_elock;
/* Take /drrun/lock/<name> under a lease of ttl seconds; blocking (a few
 * seconds at most).  NULL with err naming the holder ("runbook 'x' is
 * already running: run ID (pid N on HOST; etcd lock at H:P)") or why etcd
 * could not be asked. */
struct drr_elock *drr_elock_take(const char *url, double ttl, const char *name,
				 const char *run_id, char *err, size_t errlen);
/* Keep it alive from loop (thread pool; the timer does not hold the loop
 * up); on_lost(ud, why) once, when it is lost. */
void drr_elock_watch(struct drr_elock *l, uv_loop_t *loop,
		     void (*on_lost)(void *ud, const char *why), void *ud);
/* NULL while the lock is held, else why it is not (its lease lapsed, its
 * key is gone, or etcd has not confirmed it for a TTL). */
const char *drr_elock_lost(struct drr_elock *l);
/* Stop watching (closes its timer: run the loop once more). */
void drr_elock_unwatch(struct drr_elock *l);
/* Give it back (revoke the lease, 2 s at most) and free it; NULL is fine. */
void drr_elock_release(struct drr_elock *l);

#endif
