/*
 * sig.c - the signature headers of the inbound hooks, checked on the raw
 * body bytes before anything parses them (api-contracts §5b, issue 12).
 * Pure functions of their arguments: fuzz/serve_sig.c drives them.
 */
#include "serve/serve.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int serve_secrets_split(const char *list, char ***out)
{
	*out = NULL;
	if (!list)
		return 0;
	int n = 0, cap = 0;
	char **v = NULL;
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		while (len && isspace((unsigned char)*p))
			p++, len--;
		while (len && isspace((unsigned char)p[len - 1]))
			len--;
		if (len) {
			if (n == cap) {
				cap = cap ? cap * 2 : 4;
				v = drr_xrealloc(v, (size_t)cap * sizeof *v);
			}
			v[n] = drr_xmalloc(len + 1);
			memcpy(v[n], p, len);
			v[n][len] = '\0';
			n++;
		}
		if (!e)
			break;
		p = e + 1;
	}
	*out = v;
	return n;
}

void serve_secrets_free(char **s, int n)
{
	for (int i = 0; i < n; i++) {
		volatile char *c = s[i];
		while (*c)
			*c++ = 0;
		free(s[i]);
	}
	free(s);
}

struct entry {
	const char *k, *v;
	size_t kn, vn;
};

/* "k=v, k=v": 0..SIG_MAX_ENTRIES entries (more are ignored), or -1 when the
 * header is empty, too long, or has an entry without '='. */
static int split_header(const char *h, struct entry *e)
{
	if (!h)
		return -1;
	size_t len = strnlen(h, SIG_MAX_HEADER + 1);
	if (len == 0 || len > SIG_MAX_HEADER)
		return -1;
	int n = 0;
	const char *p = h, *end = h + len;
	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *q = c ? c : end;
		const char *a = p, *b = q;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (a == b) /* an empty entry: "v1=x,,v1=y" or a trailing comma */
			return -1;
		const char *eq = memchr(a, '=', (size_t)(b - a));
		if (!eq || eq == a)
			return -1;
		if (n < SIG_MAX_ENTRIES) {
			e[n].k = a;
			e[n].kn = (size_t)(eq - a);
			e[n].v = eq + 1;
			e[n].vn = (size_t)(b - eq - 1);
			n++;
		}
		p = c ? c + 1 : end;
		if (c && p == end)
			return -1;
	}
	return n;
}

static int is_key(const struct entry *e, const char *k)
{
	return e->kn == strlen(k) && !memcmp(e->k, k, e->kn);
}

/* A v1 value: 64 hex digits, compared lowercased in constant time. */
static int hex_matches(const struct entry *e, const char want[65])
{
	if (e->vn != 64)
		return 0;
	char got[64];
	for (int i = 0; i < 64; i++)
		got[i] = (char)tolower((unsigned char)e->v[i]);
	return drr_ct_equal(got, want, 64);
}

int serve_sig_pagerduty(const char *header, const char *body, size_t n, char *const *secrets,
			int nsecrets)
{
	struct entry e[SIG_MAX_ENTRIES];
	int ne = split_header(header, e);
	if (ne < 0 || n == 0)
		return SIG_MALFORMED;
	int ok = 0;
	for (int s = 0; s < nsecrets; s++) {
		char want[65];
		drr_hmac_sha256_hex(secrets[s], strlen(secrets[s]), body, n, want);
		for (int i = 0; i < ne; i++)
			if (is_key(&e[i], "v1"))
				ok |= hex_matches(&e[i], want);
	}
	return ok ? SIG_OK : SIG_MISMATCH;
}

int serve_sig_generic(const char *header, const char *body, size_t n, char *const *secrets,
		      int nsecrets, int64_t now, int64_t *t_out, char matched[65])
{
	struct entry e[SIG_MAX_ENTRIES];
	int ne = split_header(header, e);
	if (ne < 0)
		return SIG_MALFORMED;
	const struct entry *te = NULL;
	int nv1 = 0;
	for (int i = 0; i < ne; i++) {
		if (is_key(&e[i], "t")) {
			if (te)
				return SIG_MALFORMED; /* two timestamps: which one was signed? */
			te = &e[i];
		} else if (is_key(&e[i], "v1")) {
			nv1++;
		}
	}
	if (!te || !nv1 || te->vn == 0 || te->vn > 12)
		return SIG_MALFORMED;
	int64_t t = 0;
	for (size_t i = 0; i < te->vn; i++) {
		if (!isdigit((unsigned char)te->v[i]))
			return SIG_MALFORMED;
		t = t * 10 + (te->v[i] - '0');
	}
	if (t < now - SIG_WINDOW || t > now + SIG_WINDOW)
		return SIG_STALE;
	/* the signed message: "<t>.<body>" */
	size_t mlen = te->vn + 1 + n;
	char *msg = drr_xmalloc(mlen + 1);
	memcpy(msg, te->v, te->vn);
	msg[te->vn] = '.';
	if (n)
		memcpy(msg + te->vn + 1, body, n);
	int ok = 0;
	for (int s = 0; s < nsecrets && !ok; s++) {
		char want[65];
		drr_hmac_sha256_hex(secrets[s], strlen(secrets[s]), msg, mlen, want);
		for (int i = 0; i < ne; i++)
			if (is_key(&e[i], "v1") && hex_matches(&e[i], want)) {
				ok = 1;
				memcpy(matched, want, 65);
				break;
			}
	}
	free(msg);
	if (!ok)
		return SIG_MISMATCH;
	*t_out = t;
	return SIG_OK;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode standard base64 (padding optional) into out (cap bytes); length
 * or -1. */
static long b64_decode(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0;
	for (; *s && *s != '='; s++) {
		int v = b64val((unsigned char)*s);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	while (*s == '=')
		s++;
	return *s ? -1 : (long)n;
}

int serve_auth_bearer(const char *header, const char *token)
{
	if (!header || !token || !*token)
		return 0;
	size_t tl = strlen(token);
	if (!strncasecmp(header, "Bearer ", 7)) {
		const char *v = header + 7;
		while (*v == ' ')
			v++;
		size_t vl = strlen(v);
		return vl == tl && drr_ct_equal(v, token, tl);
	}
	if (!strncasecmp(header, "Basic ", 6)) {
		const char *v = header + 6;
		while (*v == ' ')
			v++;
		char dec[1024];
		long dl = b64_decode(v, dec, sizeof dec - 1);
		if (dl < 0)
			return 0;
		dec[dl] = '\0';
		const char *colon = memchr(dec, ':', (size_t)dl);
		if (!colon)
			return 0;
		size_t pl = (size_t)dl - (size_t)(colon + 1 - dec);
		int ok = pl == tl && drr_ct_equal(colon + 1, token, tl);
		memset(dec, 0, sizeof dec);
		return ok;
	}
	return 0;
}
