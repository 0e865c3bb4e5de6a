/*
 * fuzz/serve_body.c - libFuzzer harness: serve's webhook body parser, for
 * each source (the first byte picks Alertmanager, PagerDuty or generic;
 * the rest is the body).  It must accept or answer 400/413/422 with a
 * reason, never crash; an accepted body's alerts must hold only labels
 * that passed the checks (string values without control characters), and
 * the dedupe template over them must expand.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int source = data[0] % 3;
	struct serve_body b;
	const char *reason = NULL;
	char detail[256];
	int rc = serve_body_parse(source, (const char *)data + 1, size - 1, &b, &reason, detail,
				  sizeof detail);
	if (rc) {
		if ((rc != 400 && rc != 413 && rc != 422) || !reason)
			abort();
		return 0;
	}
	for (int i = 0; i < b.nalerts; i++) {
		const char *k;
		json_t *v;
		json_object_foreach(b.alerts[i].labels, k, v)
		{
			const char *s = json_string_value(v);
			if (!s)
				abort();
			for (; *s; s++)
				if ((unsigned char)*s < 0x20)
					abort();
		}
		char *key = serve_template("{labels.alertname}/{labels.instance}/{fingerprint}",
					   "r", source, &b.alerts[i]);
		free(key);
	}
	serve_body_free(&b);
	return 0;
}
