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
/* Append one record.  Adds seq, ts, run, prev and hash; redacts every string;
 * steals the reference to rec.  With sync, the record is on disk when this
 * returns 0.  Returns -1 on a write error (journal is then dead). */
int drr_journal_append(struct drr_journal *j, json_t *rec, int sync);
int drr_journal_sync(struct drr_journal *j);
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
 * last line is left out: *torn_bytes says how long it is. */
json_t *drr_journal_load(const char *path, size_t *good_bytes, size_t *torn_bytes, char *err,
			 size_t errlen);
/* Reopen a journal for appending; a torn tail is truncated (*repaired bytes). */
struct drr_journal *drr_journal_open(const char *path, size_t *repaired, char *err, size_t errlen);

struct drr_verify {
	long records;
	long bad_seq; /* 0 when intact */
	char reason[256];
	char run[160];
	long macs; /* records that carry a mac */
	int ended; /* the last run_start/run_resume was closed by run_end */
};
/* 0: intact; 1: bad (v->bad_seq, v->reason); -1: unreadable (v->reason). */
int drr_journal_verify(const char *path, const void *key, size_t klen, struct drr_verify *v);

/* ---- lock.c: one active run per runbook name ----------------------------- */

/* Returns the lock's fd, or -1 with err naming the holder's run and pid. */
int drr_lock_take(const char *state_dir, const char *name, const char *run_id, char *err,
		  size_t errlen);
/* 1 if a live process holds the runbook's lock (fills run_id and pid). */
int drr_lock_holder(const char *state_dir, const char *name, char *run_id, size_t n, long *pid);
void drr_lock_release(int fd);

#endif
