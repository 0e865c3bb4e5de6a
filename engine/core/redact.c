/*
 * redact.c - the secret registry.  Every declared secret's value is
 * registered here, and every string that leaves the process (journal,
 * terminal, error messages, reports) passes through drr_redact first.
 * Longest secrets are replaced first so that a secret containing another
 * is hidden whole.  Strings are handled by their full byte length, so a
 * secret after a NUL byte is found too.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

struct secret {
	char *v;
	size_t n;
};
static struct secret *secrets;
static int nsecrets;

static int by_length_desc(const void *a, const void *b)
{
	size_t la = ((const struct secret *)a)->n, lb = ((const struct secret *)b)->n;
	return (la < lb) - (la > lb);
}

void drr_redact_add(const char *value)
{
	if (!value || !*value)
		return;
	size_t n = strlen(value);
	for (int i = 0; i < nsecrets; i++)
		if (secrets[i].n == n && memcmp(secrets[i].v, value, n) == 0)
			return;
	secrets = drr_xrealloc(secrets, (size_t)(nsecrets + 1) * sizeof *secrets);
	secrets[nsecrets].v = drr_xstrdup(value);
	secrets[nsecrets++].n = n;
	qsort(secrets, (size_t)nsecrets, sizeof *secrets, by_length_desc);
}

void drr_redact_clear(void)
{
	for (int i = 0; i < nsecrets; i++) {
		/* scrub the copy before giving the memory back */
		volatile char *p = secrets[i].v;
		for (size_t k = 0; k < secrets[i].n; k++)
			p[k] = 0;
		free(secrets[i].v);
	}
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
}

int drr_redact_count(void)
{
	return nsecrets;
}

/* The secret that starts at p (n bytes left), longest first, or -1. */
static int match_at(const char *p, size_t n)
{
	for (int i = 0; i < nsecrets; i++)
		if (secrets[i].n <= n && *p == secrets[i].v[0] &&
		    memcmp(p, secrets[i].v, secrets[i].n) == 0)
			return i;
	return -1;
}

static int may_start(char c)
{
	for (int i = 0; i < nsecrets; i++)
		if (c == secrets[i].v[0])
			return 1;
	return 0;
}

char *drr_redactn(const char *s, size_t n, size_t *outlen)
{
	struct drr_buf b = { 0 };
	size_t i = 0;
	while (i < n) {
		int k = nsecrets ? match_at(s + i, n - i) : -1;
		if (k >= 0) {
			drr_buf_adds(&b, "***");
			i += secrets[k].n;
			continue;
		}
		/* copy the run up to the next possible secret start */
		size_t j = i + 1;
		while (j < n && !(nsecrets && may_start(s[j])))
			j++;
		drr_buf_add(&b, s + i, j - i);
		i = j;
	}
	if (!b.data)
		drr_buf_adds(&b, "");
	if (outlen)
		*outlen = b.len;
	return b.data;
}

void drr_redact_scan(const char *s, size_t n,
		     void (*hit)(void *ud, size_t out_at, const char *v, size_t vn), void *ud)
{
	size_t i = 0, out = 0;
	while (i < n) {
		int k = nsecrets ? match_at(s + i, n - i) : -1;
		if (k >= 0) {
			hit(ud, out, secrets[k].v, secrets[k].n);
			out += 3;
			i += secrets[k].n;
		} else {
			i++;
			out++;
		}
	}
}

char *drr_redact(const char *s)
{
	return drr_redactn(s, strlen(s), NULL);
}

static void redact_string(json_t *j)
{
	const char *v = json_string_value(j);
	size_t n = json_string_length(j), rn;
	char *r = drr_redactn(v, n, &rn);
	if (rn != n || memcmp(r, v, n) != 0) {
		/* a secret that is not whole UTF-8 could leave a broken
		 * sequence behind: then nothing of the string is kept */
		if (json_string_setn(j, r, rn) < 0)
			json_string_set(j, "***");
	}
	free(r);
}

void drr_redact_json(json_t *j)
{
	if (!nsecrets || !j)
		return;
	if (json_is_string(j)) {
		redact_string(j);
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			drr_redact_json(v);
	} else if (json_is_object(j)) {
		void *it = json_object_iter(j);
		while (it) {
			const char *k = json_object_iter_key(it);
			size_t kl = json_object_iter_key_len(it), rkl;
			json_t *v = json_object_iter_value(it);
			void *next = json_object_iter_next(j, it);
			drr_redact_json(v);
			char *rk = drr_redactn(k, kl, &rkl);
			if (rkl != kl || memcmp(rk, k, kl) != 0) {
				json_incref(v);
				json_object_deln(j, k, kl);
				if (json_object_setn_new(j, rk, rkl, v) < 0)
					json_object_set_new(j, "***", v);
			}
			free(rk);
			it = next;
		}
	}
}

void drr_redact_values(json_t *rec, const char *const *keep)
{
	if (!nsecrets || !json_is_object(rec))
		return;
	const char *k;
	json_t *v;
	json_object_foreach(rec, k, v) {
		int kept = 0;
		for (int i = 0; keep && keep[i] && !kept; i++)
			kept = !strcmp(keep[i], k);
		if (!kept)
			drr_redact_json(v);
	}
}
