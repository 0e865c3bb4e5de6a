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
	DRR_EXIT_USAGE = 64,	 /* bad command line */
	DRR_EXIT_INVALID = 65,	 /* invalid runbook or params; nothing ran */
	DRR_EXIT_CANTSTART = 75, /* state dir unwritable, lock held */
};

/* ---- util.c: strings, time, hashing, files ---------------------------- */

/* Wall clock, microseconds since the epoch. */
int64_t drr_now_us(void);
/* RFC 3339 UTC with microseconds: 2026-11-22T05:10:22.123456Z (buf >= 32). */
char *drr_rfc3339(int64_t us, char *buf, size_t n);

/* SHA-256 helpers (OpenSSL EVP); hex output is 64 chars + NUL. */
void drr_sha256_hex(const void *p, size_t n, char hex[65]);
int drr_sha256_file_hex(const char *path, char hex[65]);
void drr_hmac_sha256_hex(const void *key, size_t klen, const void *p, size_t n, char hex[65]);

/* mkdir -p; 0 or -1 with errno. */
int drr_mkdir_p(const char *path, unsigned mode);

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
/* Redact every string (values and keys) of a JSON tree in place. */
void drr_redact_json(json_t *j);

#endif
