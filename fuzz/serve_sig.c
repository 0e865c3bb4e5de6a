/*
 * fuzz/serve_sig.c - libFuzzer harness: serve's signature-header parsers.
 * The input is split at the first NUL into a header and a body; the header
 * goes to the PagerDuty check (X-PagerDuty-Signature), the generic check
 * (X-Drrun-Signature) and the Authorization check.  Each must answer one of
 * its documented results, and a forged header must never pass: a header
 * the fuzzer wrote cannot carry the HMAC of a secret it never saw, except
 * by copying the right one, which the harness makes impossible by using a
 * secret whose HMAC it does not put anywhere.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = 0;
	size_t hl = strlen(buf);
	const char *body = hl < size ? buf + hl + 1 : "";
	size_t bn = hl < size ? size - hl - 1 : 0;
	char *secrets[2] = { "fuzz-secret-one", "fuzz-secret-two" };
	int rc = serve_sig_pagerduty(buf, body, bn, secrets, 2);
	if (rc != SIG_MALFORMED && rc != SIG_MISMATCH)
		abort();
	int64_t t = 0;
	char m[65];
	rc = serve_sig_generic(buf, body, bn, secrets, 2, 1800000000, &t, m);
	if (rc != SIG_MALFORMED && rc != SIG_MISMATCH && rc != SIG_STALE)
		abort();
	if (serve_auth_bearer(buf, "fuzz-token-never-in-the-corpus"))
		abort();
	char **list;
	int n = serve_secrets_split(buf, &list);
	for (int i = 0; i < n; i++)
		if (!*list[i] || strchr(list[i], ','))
			abort();
	serve_secrets_free(list, n);
	free(buf);
	return 0;
}
