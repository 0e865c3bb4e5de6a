/*
 * fuzz/sigv4.c - libFuzzer harness: the SigV4 canonicaliser and signer.
 * The input is split at NUL bytes into method, path, query and then
 * name/value header pairs; both header and query signing must succeed or
 * refuse with a message, never crash, and the canonical request must end
 * with the payload hash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws/sigv4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	memcpy(buf, data, size);
	buf[size] = 0;
	const char *field[40];
	int nf = 0;
	for (size_t i = 0, start = 0; i <= size && nf < 40; i++)
		if (i == size || buf[i] == 0) {
			field[nf++] = buf + start;
			start = i + 1;
		}
	struct drr_sigv4_header h[18];
	int nh = 0;
	for (int i = 3; i + 1 < nf && nh < 18; i += 2) {
		h[nh].name = field[i];
		h[nh].value = field[i + 1];
		nh++;
	}
	const char *hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	struct drr_sigv4_req r = { nf > 0 ? field[0] : "GET", nf > 1 ? field[1] : "/",
				   nf > 2 ? field[2] : NULL, h, nh, hash };
	struct drr_sigv4_cfg c = { .access_key = "AKIDEXAMPLE",
				   .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
				   .token = size & 1 ? "token" : NULL,
				   .region = "us-east-1",
				   .service = size & 2 ? "s3" : "service",
				   .when = 1440938160,
				   .normalize_path = !(size & 2),
				   .double_encode = !(size & 2),
				   .sign_body = (size & 4) != 0,
				   .expires = 3600 };
	struct drr_sigv4_out o;
	char err[256];
	for (int q = 0; q < 2; q++) {
		int rc = q ? drr_sigv4_sign_query(&c, &r, &o, err, sizeof err)
			   : drr_sigv4_sign_header(&c, &r, &o, err, sizeof err);
		if (rc == 0) {
			size_t n = strlen(o.canonical);
			if (n < 64 || strcmp(o.canonical + n - 64, hash) != 0 ||
			    strlen(o.signature) != 64)
				abort();
			drr_sigv4_out_free(&o);
		} else if (!err[0]) {
			abort();
		}
	}
	free(buf);
	return 0;
}
