/*
 * sigv4.c - AWS Signature Version 4 signing (header and presigned query).
 *
 * One pass builds the canonical request from a request description, then
 * the string to sign and the HMAC chain.  Hashing uses OpenSSL's direct
 * SHA-256 functions: the EVP layer's first use loads provider tables, which
 * costs more than the whole signature here.
 */
#include "aws/sigv4.h"

#include <ctype.h>
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

void drr_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n, unsigned char out[32])
{
	unsigned char k[SHA256_CBLOCK], pad[SHA256_CBLOCK], inner[32];
	memset(k, 0, sizeof k);
	if (klen > sizeof k)
		sha256(key, klen, k);
	else
		memcpy(k, key, klen);
	SHA256_CTX c;
	for (size_t i = 0; i < sizeof k; i++)
		pad[i] = k[i] ^ 0x36;
	SHA256_Init(&c);
	SHA256_Update(&c, pad, sizeof pad);
	SHA256_Update(&c, msg, n);
	SHA256_Final(inner, &c);
	for (size_t i = 0; i < sizeof k; i++)
		pad[i] = k[i] ^ 0x5c;
	SHA256_Init(&c);
	SHA256_Update(&c, pad, sizeof pad);
	SHA256_Update(&c, inner, sizeof inner);
	SHA256_Final(out, &c);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(pad, sizeof pad);
}

/* The last signing key, as the SDKs keep it: it changes once a day per
 * secret, region and service, and deriving it is four HMACs.  Known by a
 * hash of the secret, never the secret itself.  The signer runs on the
 * loop thread only. */
static struct {
	int valid;
	unsigned char secret_md[32];
	char date[9], region[40], service[40];
	unsigned char key[32];
} last;

static void derive(const char *secret, const char *date, const char *region, const char *service,
		   unsigned char key[32]);

void drr_sigv4_signing_key(const char *secret, const char *date, const char *region,
			   const char *service, unsigned char key[32])
{
	unsigned char md[32];
	sha256(secret, strlen(secret), md);
	if (last.valid && !memcmp(md, last.secret_md, 32) && !strcmp(date, last.date) &&
	    !strcmp(region, last.region) && !strcmp(service, last.service)) {
		memcpy(key, last.key, 32);
		return;
	}
	derive(secret, date, region, service, key);
	size_t dl = strlen(date), rl = strlen(region), sl = strlen(service);
	if (dl < sizeof last.date && rl < sizeof last.region && sl < sizeof last.service) {
		memcpy(last.secret_md, md, 32);
		memcpy(last.date, date, dl + 1);
		memcpy(last.region, region, rl + 1);
		memcpy(last.service, service, sl + 1);
		memcpy(last.key, key, 32);
		last.valid = 1;
	}
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

static int unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
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

void drr_sigv4_uri_encode(struct drr_buf *b, const char *s, size_t n, int keep_slash)
{
	char *o = room(b, 3 * n);
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
	done(b, o);
}

/* Percent-decode s[0..n) into b ('+' stays '+': SigV4 does not treat it
 * as a space). */
static void uri_decode(struct drr_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n && (h = hexval((unsigned char)s[i + 1])) >= 0 &&
		    (l = hexval((unsigned char)s[i + 2])) >= 0) {
			char c = (char)(h << 4 | l);
			drr_buf_add(b, &c, 1);
			i += 2;
		} else {
			drr_buf_add(b, &s[i], 1);
		}
	}
}

/* The path with dot segments and empty segments removed; a trailing '/'
 * stays when the input had one. */
static char *normalize_path(const char *p)
{
	size_t n = strlen(p);
	const char **seg = drr_xcalloc(n + 1, sizeof *seg);
	size_t *len = drr_xcalloc(n + 1, sizeof *len);
	int ns = 0;
	const char *s = p;
	while (*s) {
		while (*s == '/')
			s++;
		if (!*s)
			break;
		const char *e = strchr(s, '/');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (l == 1 && s[0] == '.') {
			/* nothing */
		} else if (l == 2 && s[0] == '.' && s[1] == '.') {
			if (ns > 0)
				ns--;
		} else {
			seg[ns] = s;
			len[ns++] = l;
		}
		s += l;
	}
	struct drr_buf b = { 0 };
	for (int i = 0; i < ns; i++) {
		drr_buf_add(&b, "/", 1);
		drr_buf_add(&b, seg[i], len[i]);
	}
	/* "/a/" keeps its slash; "/a/.." and "/a/." name a directory too */
	int dir = n > 0 && (p[n - 1] == '/' || (n >= 2 && !strcmp(p + n - 2, "/.")) ||
			    (n >= 3 && !strcmp(p + n - 3, "/..")));
	if (!ns || dir)
		drr_buf_add(&b, "/", 1);
	free(seg);
	free(len);
	return b.data;
}

static void canonical_path(struct drr_buf *b, const struct drr_sigv4_cfg *c, const char *path)
{
	if (!path || !*path)
		path = "/";
	char *norm = c->normalize_path ? normalize_path(path) : drr_xstrdup(path);
	if (c->double_encode) {
		drr_sigv4_uri_encode(b, norm, strlen(norm), 1);
	} else {
		/* already encoded on the wire: encode only what is not */
		for (const char *s = norm; *s; s++) {
			unsigned char ch = (unsigned char)*s;
			if (ch == '%' && hexval((unsigned char)s[1]) >= 0 &&
			    hexval((unsigned char)s[2]) >= 0)
				drr_buf_add(b, s, 1);
			else
				drr_sigv4_uri_encode(b, s, 1, 1);
		}
	}
	free(norm);
}

struct qparam {
	char *k, *v; /* encoded */
};

static int qcmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int r = strcmp(x->k, y->k);
	return r ? r : strcmp(x->v, y->v);
}

static void qadd(struct qparam **q, int *n, int *cap, const char *k, size_t kl, const char *v,
		 size_t vl, int decode)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*q = drr_xrealloc(*q, (size_t)*cap * sizeof **q);
	}
	struct drr_buf d = { 0 }, ek = { 0 }, ev = { 0 };
	if (decode) {
		uri_decode(&d, k, kl);
		drr_sigv4_uri_encode(&ek, d.data ? d.data : "", d.len, 0);
		d.len = 0;
		uri_decode(&d, v, vl);
		drr_sigv4_uri_encode(&ev, d.data ? d.data : "", d.len, 0);
	} else {
		drr_sigv4_uri_encode(&ek, k, kl, 0);
		drr_sigv4_uri_encode(&ev, v, vl, 0);
	}
	(*q)[*n].k = ek.data ? ek.data : drr_xstrdup("");
	(*q)[*n].v = ev.data ? ev.data : drr_xstrdup("");
	(*n)++;
	drr_buf_free(&d);
}

static void parse_query(const char *query, struct qparam **q, int *n, int *cap)
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
				qadd(q, n, cap, s, (size_t)(eq - s), eq + 1,
				     l - (size_t)(eq - s) - 1, 1);
			else
				qadd(q, n, cap, s, l, "", 0, 1);
		}
		s += l;
		if (*s == '&')
			s++;
	}
}

static char *join_query(struct qparam *q, int n)
{
	if (n > 1)
		qsort(q, (size_t)n, sizeof *q, qcmp);
	struct drr_buf b = { 0 };
	for (int i = 0; i < n; i++) {
		if (i)
			drr_buf_add(&b, "&", 1);
		drr_buf_adds(&b, q[i].k);
		drr_buf_add(&b, "=", 1);
		drr_buf_adds(&b, q[i].v);
	}
	return b.data ? b.data : drr_xstrdup("");
}

static void free_query(struct qparam *q, int n)
{
	for (int i = 0; i < n; i++) {
		free(q[i].k);
		free(q[i].v);
	}
	free(q);
}

struct chdr {
	char *name;	      /* lower case */
	struct drr_buf value; /* canonical: trimmed, runs of white space folded */
};

static int hcmp(const void *a, const void *b)
{
	return strcmp(((const struct chdr *)a)->name, ((const struct chdr *)b)->name);
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

static struct chdr *hfind(struct chdr *h, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(h[i].name, name))
			return &h[i];
	return NULL;
}

static struct chdr *hput(struct chdr **h, int *n, const char *name)
{
	struct chdr *c = hfind(*h, *n, name);
	if (c) {
		drr_buf_add(&c->value, ",", 1);
		return c;
	}
	c = &(*h)[(*n)++]; /* the array has room: sign() sized it */
	c->name = drr_xstrdup(name);
	for (char *p = c->name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	memset(&c->value, 0, sizeof c->value);
	return c;
}

static int skip_header(const struct drr_sigv4_cfg *c, const char *lname, int query)
{
	/* the signer owns these: a caller's copy would be signed twice */
	if (!strcmp(lname, "x-amz-date") || !strcmp(lname, "authorization"))
		return 1;
	if (!strcmp(lname, "x-amz-security-token") && c->token)
		return 1;
	if (!strcmp(lname, "x-amz-content-sha256") && c->sign_body && !query)
		return 1;
	return 0;
}

static void add_out(struct drr_sigv4_out *o, const char *name, const char *value)
{
	o->add_names[o->nadd] = drr_xstrdup(name);
	o->add_values[o->nadd] = drr_xstrdup(value);
	o->nadd++;
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

/* What one signature is built from, between the steps below. */
struct work {
	struct chdr *h; /* canonical headers, sorted */
	int nh;
	struct drr_buf signed_h; /* "host;x-amz-date" */
	struct qparam *q;	 /* canonical query, unsorted until joined */
	int nq, qcap;
	struct drr_buf scope; /* 20150830/us-east-1/service/aws4_request */
	char date[9];
};

/* X-Amz-Date (YYYYMMDD'T'HHMMSS'Z') and the scope's date. */
static void amz_date(struct drr_sigv4_out *o, struct work *w, time_t when)
{
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
}

/* The request's headers and those the signer adds, canonical and sorted,
 * and the signed-headers list. */
static void headers(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r, int query,
		    struct drr_sigv4_out *o, struct work *w)
{
	/* every header of the request, and the three the signer adds */
	w->h = drr_xcalloc((size_t)r->nheaders + 3, sizeof *w->h);
	for (int i = 0; i < r->nheaders; i++) {
		char small[64];
		size_t nl = strlen(r->headers[i].name);
		char *lname = nl < sizeof small ? small : drr_xmalloc(nl + 1);
		for (size_t j = 0; j <= nl; j++)
			lname[j] = (char)tolower((unsigned char)r->headers[i].name[j]);
		if (!skip_header(c, lname, query))
			add_value(&hput(&w->h, &w->nh, lname)->value, r->headers[i].value);
		if (lname != small)
			free(lname);
	}
	if (!query) {
		add_value(&hput(&w->h, &w->nh, "x-amz-date")->value, o->amz_date);
		add_out(o, "X-Amz-Date", o->amz_date);
		if (c->sign_body) {
			add_value(&hput(&w->h, &w->nh, "x-amz-content-sha256")->value,
				  r->payload_hash);
			add_out(o, "X-Amz-Content-Sha256", r->payload_hash);
		}
		if (c->token) {
			if (!c->omit_token)
				add_value(&hput(&w->h, &w->nh, "x-amz-security-token")->value,
					  c->token);
			add_out(o, "X-Amz-Security-Token", c->token);
		}
	}
	if (w->nh > 1)
		qsort(w->h, (size_t)w->nh, sizeof *w->h, hcmp);
	for (int i = 0; i < w->nh; i++) {
		if (i)
			drr_buf_add(&w->signed_h, ";", 1);
		drr_buf_adds(&w->signed_h, w->h[i].name);
	}
	if (!w->signed_h.data)
		drr_buf_add(&w->signed_h, "", 0);
}

/* The X-Amz-* parameters of a presigned URL, before the signature. */
static void presign_params(const struct drr_sigv4_cfg *c, struct drr_sigv4_out *o, struct work *w)
{
	char *cred = drr_xasprintf("%s/%s", c->access_key, w->scope.data);
	char exp[24];
	snprintf(exp, sizeof exp, "%ld", c->expires);
	qadd(&w->q, &w->nq, &w->qcap, "X-Amz-Algorithm", 15, "AWS4-HMAC-SHA256", 16, 0);
	qadd(&w->q, &w->nq, &w->qcap, "X-Amz-Credential", 16, cred, strlen(cred), 0);
	qadd(&w->q, &w->nq, &w->qcap, "X-Amz-Date", 10, o->amz_date, 16, 0);
	qadd(&w->q, &w->nq, &w->qcap, "X-Amz-Expires", 13, exp, strlen(exp), 0);
	qadd(&w->q, &w->nq, &w->qcap, "X-Amz-SignedHeaders", 19, w->signed_h.data, w->signed_h.len,
	     0);
	if (c->token && !c->omit_token)
		qadd(&w->q, &w->nq, &w->qcap, "X-Amz-Security-Token", 20, c->token,
		     strlen(c->token), 0);
	free(cred);
}

/* METHOD \n path \n query \n headers \n \n signed \n payload hash */
static char *canonical_request(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r,
			       struct work *w, size_t *len)
{
	char *cquery = join_query(w->q, w->nq);
	struct drr_buf cr = { 0 };
	room(&cr,
	     512 + 3 * (strlen(r->path ? r->path : "/") + strlen(cquery)) + w->signed_h.len * 3);
	drr_buf_adds(&cr, r->method);
	drr_buf_add(&cr, "\n", 1);
	canonical_path(&cr, c, r->path);
	drr_buf_add(&cr, "\n", 1);
	drr_buf_adds(&cr, cquery);
	drr_buf_add(&cr, "\n", 1);
	for (int i = 0; i < w->nh; i++) {
		drr_buf_adds(&cr, w->h[i].name);
		drr_buf_add(&cr, ":", 1);
		drr_buf_add(&cr, w->h[i].value.data, w->h[i].value.len);
		drr_buf_add(&cr, "\n", 1);
	}
	drr_buf_add(&cr, "\n", 1);
	drr_buf_add(&cr, w->signed_h.data, w->signed_h.len);
	drr_buf_add(&cr, "\n", 1);
	drr_buf_adds(&cr, r->payload_hash);
	free(cquery);
	*len = cr.len;
	return cr.data;
}

/* The string to sign and the signature over it. */
static void signature(const struct drr_sigv4_cfg *c, struct drr_sigv4_out *o, struct work *w,
		      size_t crlen)
{
	unsigned char md[32], key[32], sig[32];
	char mdhex[65];
	sha256(o->canonical, crlen, md);
	to_hex(md, 32, mdhex);
	struct drr_buf ts = { 0 };
	drr_buf_add(&ts, "AWS4-HMAC-SHA256\n", 17);
	drr_buf_add(&ts, o->amz_date, 16);
	drr_buf_add(&ts, "\n", 1);
	drr_buf_add(&ts, w->scope.data, w->scope.len);
	drr_buf_add(&ts, "\n", 1);
	drr_buf_add(&ts, mdhex, 64);
	o->to_sign = ts.data;
	drr_sigv4_signing_key(c->secret_key, w->date, c->region, c->service, key);
	drr_hmac_sha256(key, 32, ts.data, ts.len, sig);
	OPENSSL_cleanse(key, sizeof key);
	to_hex(sig, 32, o->signature);
}

static void authorization(const struct drr_sigv4_cfg *c, struct drr_sigv4_out *o, struct work *w)
{
	struct drr_buf au = { 0 };
	drr_buf_add(&au, "AWS4-HMAC-SHA256 Credential=", 28);
	drr_buf_adds(&au, c->access_key);
	drr_buf_add(&au, "/", 1);
	drr_buf_add(&au, w->scope.data, w->scope.len);
	drr_buf_add(&au, ", SignedHeaders=", 16);
	drr_buf_add(&au, w->signed_h.data, w->signed_h.len);
	drr_buf_add(&au, ", Signature=", 12);
	drr_buf_add(&au, o->signature, 64);
	o->authorization = au.data;
}

static void work_free(struct work *w)
{
	free_query(w->q, w->nq);
	for (int i = 0; i < w->nh; i++) {
		free(w->h[i].name);
		drr_buf_free(&w->h[i].value);
	}
	free(w->h);
	drr_buf_free(&w->signed_h);
	drr_buf_free(&w->scope);
}

/* Canonical request, string to sign and signature; then the Authorization
 * value, or (query) the presigned query string. */
static int sign(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r, int query,
		struct drr_sigv4_out *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof *o);
	if (check_cfg(c, r, query, err, errlen) < 0)
		return -1;
	struct work w = { 0 };
	amz_date(o, &w, c->when);
	drr_buf_add(&w.scope, w.date, 8);
	drr_buf_add(&w.scope, "/", 1);
	drr_buf_adds(&w.scope, c->region);
	drr_buf_add(&w.scope, "/", 1);
	drr_buf_adds(&w.scope, c->service);
	drr_buf_add(&w.scope, "/aws4_request", 13);
	headers(c, r, query, o, &w);
	parse_query(r->query, &w.q, &w.nq, &w.qcap);
	if (query)
		presign_params(c, o, &w);
	size_t crlen;
	o->canonical = canonical_request(c, r, &w, &crlen);
	signature(c, o, &w, crlen);
	if (query) {
		if (c->token && c->omit_token)
			qadd(&w.q, &w.nq, &w.qcap, "X-Amz-Security-Token", 20, c->token,
			     strlen(c->token), 0);
		qadd(&w.q, &w.nq, &w.qcap, "X-Amz-Signature", 15, o->signature, 64, 0);
		o->query = join_query(w.q, w.nq);
	} else {
		authorization(c, o, &w);
	}
	work_free(&w);
	return 0;
}

int drr_sigv4_sign_header(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r,
			  struct drr_sigv4_out *out, char *err, size_t errlen)
{
	return sign(c, r, 0, out, err, errlen);
}

int drr_sigv4_sign_query(const struct drr_sigv4_cfg *c, const struct drr_sigv4_req *r,
			 struct drr_sigv4_out *out, char *err, size_t errlen)
{
	return sign(c, r, 1, out, err, errlen);
}

void drr_sigv4_out_free(struct drr_sigv4_out *o)
{
	free(o->canonical);
	free(o->to_sign);
	free(o->authorization);
	free(o->query);
	for (int i = 0; i < o->nadd; i++) {
		free(o->add_names[i]);
		free(o->add_values[i]);
	}
	memset(o, 0, sizeof *o);
}
