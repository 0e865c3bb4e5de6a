/*
 * token.c - the signed links of approval gates.  A token names the run,
 * the step, the gate, the approver and when it expires; it is
 *   base64url(JSON payload) "." hex(HMAC-SHA256(secret, "drrun-approve-v1." payload))
 * The run that waits makes them (with DRRUN_APPROVAL_SECRET) for its
 * notify function to send; `drrun serve` checks them at /approve/<token>.
 * A token is a credential: it is registered with the redactor when made.
 */
#include "run/run.h"

#include <string.h>

#define TOKEN_CONTEXT "drrun-approve-v1."

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url(const unsigned char *p, size_t n)
{
	char *o = drr_xmalloc(n / 3 * 4 + 5), *q = o;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		*q++ = B64[v >> 18 & 63], *q++ = B64[v >> 12 & 63], *q++ = B64[v >> 6 & 63],
		*q++ = B64[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0);
		*q++ = B64[v >> 18 & 63], *q++ = B64[v >> 12 & 63];
		if (i + 1 < n)
			*q++ = B64[v >> 6 & 63];
	}
	*q = '\0';
	return o;
}

/* Decoded bytes (malloc'd, *n long), or NULL when s is not base64url. */
static unsigned char *unb64url(const char *s, size_t len, size_t *n)
{
	if (len % 4 == 1)
		return NULL;
	unsigned char *o = drr_xmalloc(len / 4 * 3 + 3);
	size_t k = 0;
	unsigned v = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		const char *c = memchr(B64, s[i], 64);
		if (!s[i] || !c) {
			free(o);
			return NULL;
		}
		v = v << 6 | (unsigned)(c - B64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[k++] = (unsigned char)(v >> bits);
		}
	}
	*n = k;
	return o;
}

static void mac(const char *secret, const char *payload, size_t n, char hex[65])
{
	struct drr_buf b = { 0 };
	drr_buf_adds(&b, TOKEN_CONTEXT);
	drr_buf_add(&b, payload, n);
	drr_hmac_sha256_hex(secret, strlen(secret), b.data, b.len, hex);
	drr_buf_free(&b);
}

char *drr_approval_token(const char *secret, const char *run, const char *step, const char *gate,
			 const char *as, int64_t exp)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I}", "run", run, "step", step, "gate", gate, "as",
			      as, "exp", (json_int_t)exp);
	char *js = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	char *p = b64url((const unsigned char *)js, strlen(js));
	free(js);
	char hex[65];
	mac(secret, p, strlen(p), hex);
	char *tok = drr_xasprintf("%s.%s", p, hex);
	free(p);
	drr_redact_add(tok); /* a credential: never journalled or logged */
	return tok;
}

json_t *drr_approval_token_check(const char *secret, const char *tok, int64_t now, const char **why)
{
	const char *dot = strchr(tok, '.');
	if (!dot || strlen(dot + 1) != 64 || dot - tok > 2048) {
		*why = "malformed";
		return NULL;
	}
	char hex[65];
	mac(secret, tok, (size_t)(dot - tok), hex);
	unsigned char diff = 0;
	for (int i = 0; i < 64; i++)
		diff |= (unsigned char)(hex[i] ^ dot[1 + i]);
	if (diff) {
		*why = "forged";
		return NULL;
	}
	size_t n = 0;
	unsigned char *js = unb64url(tok, (size_t)(dot - tok), &n);
	json_t *o = js ? json_loadb((const char *)js, n, JSON_REJECT_DUPLICATES, NULL) : NULL;
	free(js);
	const char *keys[] = { "run", "step", "gate", "as" };
	int ok = json_is_object(o) && json_is_integer(json_object_get(o, "exp"));
	for (int i = 0; ok && i < 4; i++)
		ok = json_is_string(json_object_get(o, keys[i]));
	if (!ok) {
		json_decref(o);
		*why = "malformed";
		return NULL;
	}
	if (json_integer_value(json_object_get(o, "exp")) <= now / 1000000) {
		json_decref(o);
		*why = "expired";
		return NULL;
	}
	return o;
}
