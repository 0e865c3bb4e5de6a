/*
 * core/core.h - what every engine unit shares: exit codes, clocks, hashing,
 * file helpers, diagnostics and the secret registry.  Memory, buffers and
 * durations are in drrun/plugin.h, which this includes.
 */
#ifndef DRR_CORE_H
#define DRR_CORE_H

#include "drrun/plugin.h"

/* Exit codes, documented in README.md. */
enum {
	DRR_EXIT_OK = 0,	 /* completed */
	DRR_EXIT_FAILED = 1,	 /* failed, fully rolled back */
	DRR_EXIT_ROLLBACK = 2,	 /* failed and a rollback failed too */
	DRR_EXIT_STOPPED = 3,	 /* abort, approval declined, interrupted */
	DRR_EXIT_MISSED = 4,	 /* completed, but an objective (RTO, RPO, budget) missed */
	DRR_EXIT_USAGE = 64,	 /* bad command line */
	DRR_EXIT_INVALID = 65,	 /* invalid runbook or params; nothing ran */
	DRR_EXIT_CANTSTART = 75, /* state dir unwritable, lock held */
};

/* ---- util.c: strings, time, hashing, files ---------------------------- */

/* Wall clock, microseconds since the epoch. */
int64_t drr_now_us(void);
/* Virtual time (drrun test): move the wall and monotonic clocks (drr_now_us,
 * drr_mono) ahead by us microseconds, for good; and how far they were moved.
 * Only lua/vclock.c calls it, when nothing but timers is pending. */
void drr_clock_skip(int64_t us);
int64_t drr_clock_skipped(void);
/* RFC 3339 UTC with microseconds: 2026-11-22T05:10:22.123456Z (buf >= 32). */
char *drr_rfc3339(int64_t us, char *buf, size_t n);

/* names.c: a map from borrowed names to indices, for step lookups that
 * must not be a scan of every step per name. */
struct drr_name_slot {
	const char *name; /* NULL: empty */
	int index;
};
struct drr_names {
	struct drr_name_slot *slot;
	size_t mask, used;
};
void drr_names_init(struct drr_names *x, size_t hint); /* hint: expected names */
void drr_names_free(struct drr_names *x);
/* The index stored under name, or -1. */
int drr_names_find(const struct drr_names *x, const char *name);
/* Stores index under name unless it is there: then returns the index it
 * has and changes nothing; otherwise -1.  A zeroed map is an empty one. */
int drr_names_add(struct drr_names *x, const char *name, int index);

/* sha256.c: SHA-256 (FIPS 180-4), streaming.  final() wipes the context. */
struct drr_sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char buf[64];
	size_t fill;
};
void drr_sha256_init(struct drr_sha256 *c);
void drr_sha256_update(struct drr_sha256 *c, const void *p, size_t n);
void drr_sha256_final(struct drr_sha256 *c, unsigned char md[32]);
/* Whether the processor's SHA extensions do the work (1) or the portable
 * code (0); use_ni(0) forces the portable code, use_ni(1) asks for the
 * extensions where there are some (the tests check both). */
int drr_sha256_uses_ni(void);
void drr_sha256_use_ni(int on);
/* n bytes of a and b are equal, in time that does not depend on where
 * they differ (for MACs). */
int drr_ct_equal(const void *a, const void *b, size_t n);

/* SHA-256 helpers over sha256.c; hex output is 64 chars + NUL. */
void drr_sha256_hex(const void *p, size_t n, char hex[65]);
int drr_sha256_file_hex(const char *path, char hex[65]);
void drr_hmac_sha256_hex(const void *key, size_t klen, const void *p, size_t n, char hex[65]);

/* Text that is not valid UTF-8 keeps its bytes: every byte that is not
 * part of a valid UTF-8 sequence becomes the four characters \xNN (lowercase
 * hex); valid sequences, NULs included, are kept as they are.  This is the
 * one rule for every string the journal and drrun.json's lenient mode write. */
int drr_utf8_valid(const char *s, size_t n);
/* Length of the valid UTF-8 sequence at s (n bytes left; 1 for ASCII), or 0
 * if the bytes there are not one: overlong forms, surrogates and code points
 * past U+10FFFF are invalid, as jansson judges them.  The one decoder the
 * journal and the terminal share. */
size_t drr_utf8_seq(const char *s, size_t n);
/* The escaped copy (NUL-terminated, *outlen its length).  Caller frees. */
char *drr_utf8_escape(const char *s, size_t n, size_t *outlen);
/* A JSON string of n bytes under that rule (never NULL: a field is never
 * dropped because its text is not UTF-8).  New reference. */
json_t *drr_json_text(const char *s, size_t n);
/* The same for a NUL-terminated string; NULL gives json null. */
json_t *drr_json_str(const char *s);

/* mkdir -p; 0 or -1 with errno. */
int drr_mkdir_p(const char *path, unsigned mode);

/* ---- file.c: the shared whole-file reader and writers ------------------ */

/* The bytes of a regular file, NUL-terminated (a NUL inside is kept; *len
 * is the true length).  NULL, with "cannot open/read PATH: why" in err and
 * errno set, when it cannot be opened or read, is not a regular file, or is
 * larger than cap bytes.  Caller frees. */
char *drr_slurp(const char *path, size_t cap, size_t *len, char *err, size_t errlen);
/* write(2) until done (EINTR retried); 0 or -1 with errno. */
int drr_write_all(int fd, const void *p, size_t n);
/* fsync a directory, so an entry created in it is durable; 0 or -1. */
int drr_fsync_dir(const char *dir);

/* Levenshtein distance, for "did you mean" suggestions. */
int drr_edit_distance(const char *a, const char *b);

/* ---- diag: collected validation errors, "file:line: message" ----------- */

struct drr_diag {
	char **msgs;
	int n, cap;
};
void drr_diag_add(struct drr_diag *d, const char *file, int line, const char *fmt, ...)
	DRR_PRINTF(4, 5);
void drr_diag_free(struct drr_diag *d);

/* ---- term.c: what may reach a terminal -------------------------------- */

/* Every string drrun did not write itself goes through these on its way to
 * a terminal (never into a journal): C0 controls and DEL become \r \n \t or
 * \xNN, C1 controls and bytes that are not UTF-8 become \xNN; printable
 * UTF-8 passes.  Redact before escaping. */
void drr_term_add(struct drr_buf *b, const char *s, size_t n);
/* Newly allocated escaped copy of s (NULL for NULL).  Caller frees. */
char *drr_term_str(const char *s);
/* Format, escape the whole result, write it to f and end the line: for a
 * line of plain text whose only newline is its end. */
void drr_term_line(FILE *f, const char *fmt, ...) DRR_PRINTF(2, 3);

/* ---- redact.c: the secret registry ------------------------------------ */

/* Register a secret value; every string that leaves the process passes
 * through drr_redact.  Values are copied. */
void drr_redact_add(const char *value);
void drr_redact_clear(void);
int drr_redact_count(void);
/* Returns a newly allocated copy of s with every registered secret replaced
 * by "***".  Caller frees. */
char *drr_redact(const char *s);
/* drr_redactn is in drrun/plugin.h. */
/* Where drr_redactn would put each "***" in its output of s, and which
 * secret value it hides (for resume to put it back; the value is never
 * kept). */
void drr_redact_scan(const char *s, size_t n,
		     void (*hit)(void *ud, size_t out_at, const char *v, size_t vn), void *ud);
/* Redact every string (values and keys) of a JSON tree in place, each by
 * its full length. */
void drr_redact_json(json_t *j);
/* Redact the values of an object's members, except the members named in
 * keep (NULL-terminated): the object's own member names are never changed.
 * For records whose structure is not the runbook's to write. */
void drr_redact_values(json_t *rec, const char *const *keep);

#endif
