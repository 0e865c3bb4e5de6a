/*
 * redact.c - the secret registry.  Every declared secret's value is
 * registered here, and every string that leaves the process (journal,
 * terminal, error messages, reports) passes through drr_redact first.
 * Longest secrets are replaced first so that a secret containing another
 * is hidden whole.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static char **secrets;
static int nsecrets;

static int by_length_desc(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return (la < lb) - (la > lb);
}

void drr_redact_add(const char *value)
{
	if (!value || !*value)
		return;
	for (int i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], value) == 0)
			return;
	secrets = drr_xrealloc(secrets, (size_t)(nsecrets + 1) * sizeof *secrets);
	secrets[nsecrets++] = drr_xstrdup(value);
	qsort(secrets, (size_t)nsecrets, sizeof *secrets, by_length_desc);
}

void drr_redact_clear(void)
{
	for (int i = 0; i < nsecrets; i++) {
		/* scrub the copy before giving the memory back */
		volatile char *p = secrets[i];
		while (*p)
			*p++ = 0;
		free(secrets[i]);
	}
	free(secrets);
	secrets = NULL;
	nsecrets = 0;
}

int drr_redact_count(void)
{
	return nsecrets;
}

char *drr_redact(const char *s)
{
	if (!nsecrets)
		return drr_xstrdup(s);
	struct drr_buf b = { 0 };
	const char *p = s;
	while (*p) {
		int hit = 0;
		for (int i = 0; i < nsecrets; i++) {
			size_t n = strlen(secrets[i]);
			if (*p == secrets[i][0] && strncmp(p, secrets[i], n) == 0) {
				drr_buf_adds(&b, "***");
				p += n;
				hit = 1;
				break;
			}
		}
		if (!hit) {
			/* copy the run up to the next possible secret start */
			const char *q = p + 1;
			while (*q) {
				int maybe = 0;
				for (int i = 0; i < nsecrets && !maybe; i++)
					maybe = *q == secrets[i][0];
				if (maybe)
					break;
				q++;
			}
			drr_buf_add(&b, p, (size_t)(q - p));
			p = q;
		}
	}
	if (!b.data)
		return drr_xstrdup("");
	return b.data;
}

void drr_redact_json(json_t *j)
{
	if (!nsecrets || !j)
		return;
	if (json_is_string(j)) {
		char *r = drr_redact(json_string_value(j));
		if (strcmp(r, json_string_value(j)) != 0)
			json_string_set(j, r);
		free(r);
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
			drr_redact_json(v);
	} else if (json_is_object(j)) {
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(j, tmp, k, v) {
			drr_redact_json(v);
			char *rk = drr_redact(k);
			if (strcmp(rk, k) != 0) {
				json_incref(v);
				json_object_del(j, k);
				json_object_set_new(j, rk, v);
			}
			free(rk);
		}
	}
}
