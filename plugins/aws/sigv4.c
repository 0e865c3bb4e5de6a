/*
 * sigv4.c - AWS Signature Version 4 signing (header and presigned query).
 *
 * One pass builds the canonical request from a request description, then
 * the string to sign and the HMAC chain.  Every piece (lower-cased header
 * names, canonical values, encoded query parameters, the results) is
 * appended to one buffer and known by its offset until the end, so a
 * signature costs one allocation, or none with a buffer the caller reuses;
 * the sorts are insertion sorts over small arrays on the stack.  Hashing
 * uses OpenSSL's direct SHA-256 functions: the EVP layer's first use loads
 * provider tables, which costs more than the whole signature here.
 */
#include "aws/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drrun/libcrypto.h" /* libcrypto is opened on first use */

static const char hexd[] = "0123456789abcdef";

static void to_hex(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexd[p[i] >> 4];
		out[2 * i + 1] = hexd[p[i] & 15];
	}
	out[2 * n] = 0;
}

/* SHA-256 through the direct functions: OpenSSL 3's one-shot SHA256() goes
 * through EVP (a fetch, locks and reference counts per call). */
static void sha256(const void *p, size_t n, unsigned char md[32])
{
	SHA256_CTX c;
	SHA256_Init(&c);
	SHA256_Update(&c, p, n);
	SHA256_Final(md, &c);
}

/* Make room for n more bytes (and the NUL) at the end of b: where to write. */
static char *room(struct drr_buf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->data = drr_xrealloc(b->data, cap);
		b->cap = cap;
	}
	return b->data + b->len;
}

static void done(struct drr_buf *b, char *end)
{
	b->len = (size_t)(end - b->data);
	b->data[b->len] = 0;
}

static void put(struct drr_buf *b, const void *p, size_t n)
{
	char *o = room(b, n);
	memcpy(o, p, n);
	done(b, o + n);
}

static void put1(struct drr_buf *b, char c)
{
	char *o = room(b, 1);
	*o = c;
	done(b, o + 1);
}

static void puts0(struct drr_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* The HMAC key's two padded blocks, hashed: an HMAC under the same key
 * then starts from them. */
struct hmac_key {
	SHA256_CTX in, out;
};

static void hmac_init(struct hmac_key *h, const void *key, size_t klen)
{
	unsigned char k[SHA256_CBLOCK], pad[SHA256_CBLOCK];
	memset(k, 0, sizeof k);
	if (klen > sizeof k)
		sha256(key, klen, k);
	else
		memcpy(k, key, klen);
	for (size_t i = 0; i < sizeof k; i++)
		pad[i] = k[i] ^ 0x36;
	SHA256_Init(&h->in);
	SHA256_Update(&h->in, pad, sizeof pad);
	for (size_t i = 0; i < sizeof k; i++)
		pad[i] = k[i] ^ 0x5c;
	SHA256_Init(&h->out);
	SHA256_Update(&h->out, pad, sizeof pad);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(pad, sizeof pad);
}

static void hmac_run(const struct hmac_key *h, const void *msg, size_t n, unsigned char out[32])
{
	unsigned char inner[32];
	SHA256_CTX c = h->in;
	SHA256_Update(&c, msg, n);
	SHA256_Final(inner, &c);
	c = h->out;
	SHA256_Update(&c, inner, sizeof inner);
	SHA256_Final(out, &c);
	OPENSSL_cleanse(&c, sizeof c);
}

void drr_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n, unsigned char out[32])
{
	struct hmac_key h;
	hmac_init(&h, key, klen);
	hmac_run(&h, msg, n, out);
	OPENSSL_cleanse(&h, sizeof h);
}

/* The last signing key, as the SDKs keep it: it changes once a day per
 * secret, region and service, and deriving it is four HMACs.  Kept as the
 * HMAC's two starting states, known by a hash of the secret, never the
 * secret itself.  The signer runs on the loop thread only. */
static struct {
	int valid;
	unsigned char secret_md[32];
	char date[9], region[40], service[40];
	unsigned char key[32];
	struct hmac_key hk;
} last;

static void derive(const char *secret, const char *date, const char *region, const char *service,
		   unsigned char key[32]);

/* The signing key for these in last, derived anew when they changed (and
 * then not kept for the next call when too long to compare). */
static void cached_key(const char *secret, const unsigned char *secret_md, const char *date,
		       const char *region, const char *service)
{
	unsigned char md[32];
	if (secret_md)
		memcpy(md, secret_md, 32);
	else
		sha256(secret, strlen(secret), md);
	if (last.valid && !memcmp(md, last.secret_md, 32) && !strcmp(date, last.date) &&
	    !strcmp(region, last.region) && !strcmp(service, last.service))
		return;
	last.valid = 0;
	derive(secret, date, region, service, last.key);
	hmac_init(&last.hk, last.key, 32);
	size_t dl = strlen(date), rl = strlen(region), sl = strlen(service);
	if (dl < sizeof last.date && rl < sizeof last.region && sl < sizeof last.service) {
		memcpy(last.secret_md, md, 32);
		memcpy(last.date, date, dl + 1);
		memcpy(last.region, region, rl + 1);
		memcpy(last.service, service, sl + 1);
		last.valid = 1;
	}
}

void drr_sigv4_secret_md(const char *secret, unsigned char md[32])
{
	sha256(secret, strlen(secret), md);
}

void drr_sigv4_signing_key(const char *secret, const char *date, const char *region,
			   const char *service, unsigned char key[32])
{
	cached_key(secret, NULL, date, region, service);
	memcpy(key, last.key, 32);
}

static void derive(const char *secret, const char *date, const char *region, const char *service,
		   unsigned char key[32])
{
	size_t n = strlen(secret);
	char *k0 = drr_xmalloc(n + 5);
	memcpy(k0, "AWS4", 4);
	memcpy(k0 + 4, secret, n + 1);
	unsigned char a[32], b[32];
	drr_hmac_sha256(k0, n + 4, date, strlen(date), a);
	drr_hmac_sha256(a, 32, region, strlen(region), b);
	drr_hmac_sha256(b, 32, service, strlen(service), a);
	drr_hmac_sha256(a, 32, "aws4_request", 12, key);
	OPENSSL_cleanse(k0, n + 4);
	OPENSSL_cleanse(a, sizeof a);
	OPENSSL_cleanse(b, sizeof b);
	free(k0);
}

/* A - _ . ~ and ASCII letters and digits, whatever the locale */
static int unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Encode s[0..n) at o, which has room for 3n bytes: the end. */
static char *encode_at(char *o, const char *s, size_t n, int keep_slash)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = "0123456789ABCDEF"[c >> 4];
			*o++ = "0123456789ABCDEF"[c & 15];
		}
	}
	return o;
}

void drr_sigv4_uri_encode(struct drr_buf *b, const char *s, size_t n, int keep_slash)
{
	char *o = room(b, 3 * n);
	done(b, encode_at(o, s, n, keep_slash));
}

/* Percent-decode s[0..n) at o, which has room for n bytes ('+' stays '+':
 * SigV4 does not treat it as a space): the end. */
static char *decode_at(char *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n && (h = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (l = hexval((unsigned char)s[i + 2])) >= 0) {
			*o++ = (char)(h << 4 | l);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	return o;
}

/* A piece of the work buffer, by offset: the buffer moves as it grows. */
struct span {
	uint32_t off, len;
};

static struct span span_from(const struct drr_buf *b, size_t start)
{
	return (struct span){ (uint32_t)start, (uint32_t)(b->len - start) };
}

/* Append a piece of b to b: room first, as room may move it. */
static void put_span(struct drr_buf *b, struct span s)
{
	char *o = room(b, s.len);
	memcpy(o, b->data + s.off, s.len);
	done(b, o + s.len);
}

static int span_cmp(const char *base, struct span a, struct span b)
{
	int r = memcmp(base + a.off, base + b.off, a.len < b.len ? a.len : b.len);
	return r ? r : (a.len > b.len) - (a.len < b.len);
}

/* Append s[0..n) decoded then encoded, as the canonical query wants it
 * (%7e becomes ~, a bare space %20).  Most parameters need neither. */
static void canon_param(struct drr_buf *b, const char *s, size_t n, int decode)
{
	size_t i = 0;
	while (i < n && unreserved((unsigned char)s[i]))
		i++;
	if (i == n) {
		put(b, s, n);
		return;
	}
	if (!decode) {
		drr_sigv4_uri_encode(b, s, n, 0);
		return;
	}
	/* decoded (never longer) at the end, then encoded after it */
	size_t at = b->len;
	char *o = room(b, 4 * n);
	size_t dl = (size_t)(decode_at(o, s, n) - o);
	o = b->data + at;
	memmove(o + 3 * dl, o, dl); /* out of the encoder's way */
	done(b, encode_at(o, o + 3 * dl, dl, 0));
}

/* The path with dot segments and empty segments removed, appended to b; a
 * trailing '/' stays when the input had one. */
static void normalize_path(struct drr_buf *b, const char *p)
{
	size_t n = strlen(p);
	char *o = room(b, n + 1), *base = o;
	const char *s = p;
	while (*s) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 2 && s[0] == '.' && s[1] == '.') {
			while (o > base && *--o != '/')
				;
		} else if (!(l == 1 && s[0] == '.')) {
			*o++ = '/';
			memcpy(o, s, l);
			o += l;
		}
		s += l;
	}
	/* "/a/" keeps its slash; "/a/.." and "/a/." name a directory too */
	int dir = n > 0 && (p[n - 1] == '/' || (n >= 2 && !strcmp(p + n - 2, "/.")) ||
			    (n >= 3 && !strcmp(p + n - 3, "/..")));
	if (o == base || dir)
		*o++ = '/';
	done(b, o);
}

static void canonical_path(struct drr_buf *b, const struct drr_sigv4_cfg *c, const char *path)
{
	if (!path || !*path)
		path = "/";
	size_t at = b->len, n;
	if (c->normalize_path) {
		normalize_path(b, path);
		n = b->len - at;
	} else {
		n = strlen(path);
	}
	/* the path to encode: the normalised copy at the end of b, moved
	 * out of the encoder's way (see canon_param), or the caller's */
	char *o = room(b, 4 * n);
	const char *src = path;
	if (c->normalize_path) {
		o = b->data + at;
		memmove(o + 3 * n, o, n);
		src = o + 3 * n;
	}
	if (c->double_encode) {
		done(b, encode_at(o, src, n, 1));
		return;
	}
	/* already encoded on the wire: encode only what is not */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];
		if (ch == '%' && i + 2 < n && hexval((unsigned char)src[i + 1]) >= 0 &&
		    hexval((unsigned char)src[i + 2]) >= 0)
			*o++ = '%';
		else
			o = encode_at(o, &src[i], 1, 1);
	}
	done(b, o);
}

struct qparam {
	struct span k, v; /* encoded */
};

struct chdr {
	struct span name;  /* lower case */
	struct span value; /* canonical: trimmed, runs of white space folded */
};

/* What one signature is built from, between the steps below: pieces of
 * mem, and the two arrays (on the caller's stack when they fit). */
struct work {
	struct drr_buf *mem;
	struct chdr *h; /* canonical headers, sorted */
	int nh;
	struct qparam *q; /* canonical query, unsorted until joined */
	int nq, qcap;
	struct span signed_h; /* "host;x-amz-date" */
	struct span scope;    /* 20150830/us-east-1/service/aws4_request */
	char date[9];
};

static const char *at(const struct work *w, struct span s)
{
	return w->mem->data + s.off;
}

static void qadd(struct work *w, const char *k, size_t kl, const char *v, size_t vl, int decode)
{
	struct drr_buf *b = w->mem;
	struct qparam *p = &w->q[w->nq++]; /* sign() sized the array */
	size_t start = b->len;
	canon_param(b, k, kl, decode);
	p->k = span_from(b, start);
	start = b->len;
	canon_param(b, v, vl, decode);
	p->v = span_from(b, start);
}

static size_t count_params(const char *query)
{
	size_t n = 1;
	for (const char *s = query; s && *s; s++)
		n += *s == '&';
	return n;
}

static void parse_query(struct work *w, const char *query)
{
	if (!query)
		return;
	const char *s = query;
	while (*s) {
		const char *e = strchr(s, '&');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l) {
			const char *eq = memchr(s, '=', l);
			if (eq)
				qadd(w, s, (size_t)(eq - s), eq + 1, l - (size_t)(eq - s) - 1, 1);
			else
				qadd(w, s, l, "", 0, 1);
		}
		s += l;
		if (*s == '&')
			s++;
	}
}

static int qless(const char *base, const struct qparam *x, const struct qparam *y)
{
	int r = span_cmp(base, x->k, y->k);
	return (r ? r : span_cmp(base, x->v, y->v)) < 0;
}

/* Sorted, joined with '&', appended to mem, NUL-terminated: its offset. */
static size_t join_query(struct work *w)
{
	const char *base = w->mem->data;
	for (int i = 1; i < w->nq; i++) {
		struct qparam t = w->q[i];
		int j = i;
		for (; j > 0 && qless(base, &t, &w->q[j - 1]); j--)
			w->q[j] = w->q[j - 1];
		w->q[j] = t;
	}
	size_t need = 0;
	for (int i = 0; i < w->nq; i++)
		need += w->q[i].k.len + w->q[i].v.len + 2;
	size_t start = w->mem->len;
	char *o = room(w->mem, need + 1);
	base = w->mem->data;
	for (int i = 0; i < w->nq; i++) {
		if (i)
			*o++ = '&';
		memcpy(o, base + w->q[i].k.off, w->q[i].k.len);
		o += w->q[i].k.len;
		*o++ = '=';
		memcpy(o, base + w->q[i].v.off, w->q[i].v.len);
		o += w->q[i].v.len;
	}
	*o++ = 0;
	done(w->mem, o);
	return start;
}

/* Append v canonically: leading and trailing white space dropped, inner
 * runs (folded lines included) as one space. */
static void add_value(struct drr_buf *b, const char *v)
{
	int space = 0, any = 0;
	char *o = room(b, strlen(v));
	for (const char *s = v; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') {
			space = any;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = 0;
		any = 1;
		*o++ = *s;
	}
	done(b, o);
}

static int is(const char *name, size_t n, const char *lit)
{
	return n == strlen(lit) && !memcmp(name, lit, n);
}

static int skip_header(const struct drr_sigv4_cfg *c, const char *lname, size_t n, int query)
{
	/* the signer owns these: a caller's copy would be signed twice */
	if (is(lname, n, "x-amz-date") || is(lname, n, "authorization"))
		return 1;
	if (c->token && is(lname, n, "x-amz-security-token"))
		return 1;
	if (c->sign_body && !query && is(lname, n, "x-amz-content-sha256"))
		return 1;
	return 0;
}

/* One header: its name lower-cased and its value canonical, in mem. */
static void hadd(struct work *w, const char *name, size_t nl, const char *value)
{
	struct drr_buf *b = w->mem;
	struct chdr *h = &w->h[w->nh++]; /* sign() sized the array */
	size_t start = b->len;
	char *o = room(b, nl);
	for (size_t j = 0; j < nl; j++) {
		unsigned char ch = (unsigned char)name[j];
		o[j] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
	done(b, o + nl);
	h->name = span_from(b, start);
	start = b->len;
	add_value(b, value);
	h->value = span_from(b, start);
}

static void add_out(struct drr_sigv4_out *o, const char *name, size_t value_off)
{
	o->add_names[o->nadd] = name;
	o->add_values[o->nadd] = (char *)(uintptr_t)value_off; /* fixed up at the end */
	o->nadd++;
}

/* A copy of s in mem, NUL-terminated: its offset. */
static size_t keep(struct drr_buf *b, const char *s, size_t n)
{
	size_t start = b->len;
	put(b, s, n);
	put1(b, 0);
	return start;
}

/* The request's headers and those the signer adds, canonical and sorted
 * (stable: a name given twice joins its values in order), and the
 * signed-headers list. */
static void headers(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r, int query,
		    struct drr_sigv4_out *o, struct work *w)
{
	struct drr_buf *b = w->mem;
	for (int i = 0; i < r->nheaders; i++) {
		size_t start = b->len;
		hadd(w, r->headers[i].name, strlen(r->headers[i].name), r->headers[i].value);
		struct chdr *h = &w->h[w->nh - 1];
		if (skip_header(c, at(w, h->name), h->name.len, query)) {
			w->nh--;
			b->len = start;
		}
	}
	if (!query) {
		hadd(w, "x-amz-date", 10, o->amz_date);
		add_out(o, "X-Amz-Date", keep(b, o->amz_date, 16));
		if (c->sign_body) {
			hadd(w, "x-amz-content-sha256", 20, r->payload_hash);
			add_out(o, "X-Amz-Content-Sha256",
				keep(b, r->payload_hash, strlen(r->payload_hash)));
		}
		if (c->token) {
			if (!c->omit_token)
				hadd(w, "x-amz-security-token", 20, c->token);
			add_out(o, "X-Amz-Security-Token", keep(b, c->token, strlen(c->token)));
		}
	}
	const char *base = b->data;
	for (int i = 1; i < w->nh; i++) {
		struct chdr t = w->h[i];
		int j = i;
		for (; j > 0 && span_cmp(base, t.name, w->h[j - 1].name) < 0; j--)
			w->h[j] = w->h[j - 1];
		w->h[j] = t;
	}
	size_t start = b->len;
	for (int i = 0; i < w->nh; i++) {
		if (i && !span_cmp(b->data, w->h[i].name, w->h[i - 1].name))
			continue;
		if (i)
			put1(b, ';');
		put_span(b, w->h[i].name);
	}
	w->signed_h = span_from(b, start);
}

/* The X-Amz-* parameters of a presigned URL, before the signature. */
static void presign_params(const struct drr_sigv4_cfg *c, struct drr_sigv4_out *o, struct work *w)
{
	struct drr_buf *b = w->mem;
	char exp[24];
	size_t el = (size_t)snprintf(exp, sizeof exp, "%ld", c->expires);
	/* the credential, access key/scope, as one piece to encode */
	size_t cred = b->len;
	puts0(b, c->access_key);
	put1(b, '/');
	put_span(b, w->scope);
	size_t credlen = b->len - cred;
	char *copy = drr_xmalloc(credlen + w->signed_h.len + 1);
	memcpy(copy, b->data + cred, credlen);
	memcpy(copy + credlen, at(w, w->signed_h), w->signed_h.len);
	qadd(w, "X-Amz-Algorithm", 15, "AWS4-HMAC-SHA256", 16, 0);
	qadd(w, "X-Amz-Credential", 16, copy, credlen, 0);
	qadd(w, "X-Amz-Date", 10, o->amz_date, 16, 0);
	qadd(w, "X-Amz-Expires", 13, exp, el, 0);
	qadd(w, "X-Amz-SignedHeaders", 19, copy + credlen, w->signed_h.len, 0);
	if (c->token && !c->omit_token)
		qadd(w, "X-Amz-Security-Token", 20, c->token, strlen(c->token), 0);
	free(copy);
}

static int check_cfg(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r, int query,
		     char *err, size_t errlen)
{
	const char *miss = !c->access_key || !*c->access_key   ? "access key id"
			   : !c->secret_key || !*c->secret_key ? "secret access key"
			   : !c->region || !*c->region	       ? "region"
			   : !c->service || !*c->service       ? "service"
			   : !r->method || !*r->method	       ? "method"
			   : !r->payload_hash		       ? "payload hash"
							       : NULL;
	if (miss) {
		snprintf(err, errlen, "sigv4: no %s", miss);
		return -1;
	}
	if (query && (c->expires < 1 || c->expires > 604800)) {
		snprintf(err, errlen, "sigv4: expiry must be 1 to 604800 seconds, not %ld",
			 c->expires);
		return -1;
	}
	return 0;
}

/* X-Amz-Date (YYYYMMDD'T'HHMMSS'Z') and the scope's date. */
static void amz_date(struct drr_sigv4_out *o, struct work *w, time_t when)
{
	static time_t last_when = -1; /* the loop thread's, as last above */
	static char last_date[17];
	if (when == last_when) {
		memcpy(o->amz_date, last_date, 17);
		memcpy(w->date, last_date, 8);
		w->date[8] = 0;
		return;
	}
	struct tm tm;
	gmtime_r(&when, &tm);
	int f[6] = {
		tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec
	};
	char *d = o->amz_date;
	for (int i = 0; i < 6; i++) {
		int width = i ? 2 : 4, v = f[i];
		for (int j = width - 1; j >= 0; j--, v /= 10)
			d[j] = (char)('0' + v % 10);
		d += width;
		if (i == 2)
			*d++ = 'T';
	}
	*d++ = 'Z';
	*d = 0;
	memcpy(w->date, o->amz_date, 8);
	w->date[8] = 0;
	memcpy(last_date, o->amz_date, 17);
	last_when = when;
}

/* METHOD \n path \n query \n headers \n \n signed \n payload hash, in
 * mem: its offset. */
static size_t canonical_request(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r,
				struct work *w)
{
	struct drr_buf *b = w->mem;
	size_t q = join_query(w);
	size_t ql = b->len - q - 1;
	size_t start = b->len;
	puts0(b, r->method);
	put1(b, '\n');
	canonical_path(b, c, r->path);
	put1(b, '\n');
	/* the joined query, from mem itself: room first, then the source */
	char *o = room(b, ql + 1);
	memcpy(o, b->data + q, ql);
	o[ql] = '\n';
	done(b, o + ql + 1);
	for (int i = 0; i < w->nh; i++) {
		int more = i && !span_cmp(b->data, w->h[i].name, w->h[i - 1].name);
		size_t nl = w->h[i].name.len, vl = w->h[i].value.len;
		o = room(b, nl + vl + 2);
		if (more) {
			o[-1] = ','; /* the line's newline becomes a comma */
		} else {
			memcpy(o, at(w, w->h[i].name), nl);
			o += nl;
			*o++ = ':';
		}
		memcpy(o, at(w, w->h[i].value), vl);
		o += vl;
		*o++ = '\n';
		done(b, o);
	}
	o = room(b, 1 + w->signed_h.len + 1);
	*o++ = '\n';
	memcpy(o, at(w, w->signed_h), w->signed_h.len);
	o += w->signed_h.len;
	*o++ = '\n';
	done(b, o);
	puts0(b, r->payload_hash);
	put1(b, 0);
	return start;
}

/* The string to sign, in mem (its offset), and the signature over it. */
static size_t signature(const struct drr_sigv4_cfg *c, struct drr_sigv4_out *o, struct work *w,
			size_t cr)
{
	struct drr_buf *b = w->mem;
	unsigned char md[32], sig[32];
	char mdhex[65];
	sha256(b->data + cr, b->len - cr - 1, md);
	to_hex(md, 32, mdhex);
	size_t start = b->len;
	char *p = room(b, 17 + 16 + 1 + w->scope.len + 1 + 64);
	memcpy(p, "AWS4-HMAC-SHA256\n", 17);
	memcpy(p + 17, o->amz_date, 16);
	p[33] = '\n';
	memcpy(p + 34, at(w, w->scope), w->scope.len);
	p += 34 + w->scope.len;
	*p++ = '\n';
	memcpy(p, mdhex, 64);
	done(b, p + 64);
	cached_key(c->secret_key, c->secret_md, w->date, c->region, c->service);
	hmac_run(&last.hk, b->data + start, b->len - start, sig);
	to_hex(sig, 32, o->signature);
	put1(b, 0);
	return start;
}

static size_t authorization(const struct drr_sigv4_cfg *c, struct drr_sigv4_out *o,
			    struct work *w)
{
	struct drr_buf *b = w->mem;
	size_t start = b->len;
	put(b, "AWS4-HMAC-SHA256 Credential=", 28);
	puts0(b, c->access_key);
	put1(b, '/');
	put_span(b, w->scope);
	put(b, ", SignedHeaders=", 16);
	put_span(b, w->signed_h);
	put(b, ", Signature=", 12);
	put(b, o->signature, 64);
	put1(b, 0);
	return start;
}

/* A rough size for mem, so that it grows once at most. */
static size_t estimate(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r)
{
	size_t n = 1024 + 8 * strlen(r->path ? r->path : "/");
	n += 8 * strlen(r->query ? r->query : "") + 6 * (c->token ? strlen(c->token) : 0);
	for (int i = 0; i < r->nheaders; i++)
		n += 3 * (strlen(r->headers[i].name) + strlen(r->headers[i].value)) + 8;
	return n;
}

/* Canonical request, string to sign and signature; then the Authorization
 * value, or (query) the presigned query string.  Offsets until the end. */
static void sign(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r, int query,
		 struct drr_sigv4_out *o, struct work *w)
{
	struct drr_buf *b = w->mem;
	amz_date(o, w, c->when);
	size_t start = b->len;
	put(b, w->date, 8);
	put1(b, '/');
	puts0(b, c->region);
	put1(b, '/');
	puts0(b, c->service);
	put(b, "/aws4_request", 13);
	w->scope = span_from(b, start);
	headers(c, r, query, o, w);
	parse_query(w, r->query);
	if (query)
		presign_params(c, o, w);
	size_t cr = canonical_request(c, r, w);
	size_t ts = signature(c, o, w, cr);
	size_t out;
	if (query) {
		if (c->token && c->omit_token)
			qadd(w, "X-Amz-Security-Token", 20, c->token, strlen(c->token), 0);
		qadd(w, "X-Amz-Signature", 15, o->signature, 64, 0);
		out = join_query(w);
	} else {
		out = authorization(c, o, w);
	}
	o->canonical = b->data + cr;
	o->to_sign = b->data + ts;
	if (query)
		o->query = b->data + out;
	else
		o->authorization = b->data + out;
	for (int i = 0; i < o->nadd; i++)
		o->add_values[i] = b->data + (uintptr_t)o->add_values[i];
}

int drr_sigv4_sign_in(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r, int query,
		      struct drr_sigv4_out *o, struct drr_buf *mem, char *err, size_t errlen)
{
	memset(o, 0, sizeof *o);
	if (check_cfg(c, r, query, err, errlen) < 0)
		return -1;
	mem->len = 0;
	room(mem, estimate(c, r));
	/* every header of the request and the three the signer adds; every
	 * parameter of the query and the eight of a presigned URL */
	struct chdr hs[32];
	struct qparam qs[32];
	size_t nq = count_params(r->query) + 8;
	struct work w = { .mem = mem, .h = hs, .q = qs };
	if ((size_t)r->nheaders + 3 > sizeof hs / sizeof *hs)
		w.h = drr_xcalloc((size_t)r->nheaders + 3, sizeof *w.h);
	if (nq > sizeof qs / sizeof *qs)
		w.q = drr_xcalloc(nq, sizeof *w.q);
	sign(c, r, query, o, &w);
	if (w.h != hs)
		free(w.h);
	if (w.q != qs)
		free(w.q);
	return 0;
}

int drr_sigv4_sign_header(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r,
			  struct drr_sigv4_out *out, char *err, size_t errlen)
{
	struct drr_buf mem = { 0 };
	int rc = drr_sigv4_sign_in(c, r, 0, out, &mem, err, errlen);
	if (rc == 0)
		out->mem = mem.data;
	else
		drr_buf_free(&mem);
	return rc;
}

int drr_sigv4_sign_query(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r,
			 struct drr_sigv4_out *out, char *err, size_t errlen)
{
	struct drr_buf mem = { 0 };
	int rc = drr_sigv4_sign_in(c, r, 1, out, &mem, err, errlen);
	if (rc == 0)
		out->mem = mem.data;
	else
		drr_buf_free(&mem);
	return rc;
}

void drr_sigv4_out_free(struct drr_sigv4_out *o)
{
	free(o->mem);
	memset(o, 0, sizeof *o);
}
