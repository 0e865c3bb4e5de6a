/*
 * secrets.c - giving a resumed run back the secrets its journal hides.
 * The journal writes "***" where a declared secret's value was, so params
 * (run_start) and outputs (step_end) read back from it are not what the
 * first session had.  Beside them the scheduler records where each "***"
 * stands and which secret (by name) it hides ("redacted"), and run_start
 * records a salted PBKDF2 of each declared secret's value ("secrets"),
 * keyed by the audit key when there is one.  `resume` and `rollback` put
 * the values back from the environment, and refuse, naming the secret, when
 * one is not set or is not the value the run started with.  No value is
 * ever written.
 */
#include "run/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITER 10000

static void hex(const unsigned char *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* HMAC-SHA256 from the key's inner and outer contexts (RFC 2104). */
struct hmac {
	struct drr_sha256 in, out;
};

static void hmac_init(struct hmac *h, const unsigned char *key, size_t klen)
{
	unsigned char k[64] = { 0 }, pad[64];
	if (klen > 64) {
		struct drr_sha256 c;
		drr_sha256_init(&c);
		drr_sha256_update(&c, key, klen);
		drr_sha256_final(&c, k);
	} else {
		memcpy(k, key, klen);
	}
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x36;
	drr_sha256_init(&h->in);
	drr_sha256_update(&h->in, pad, 64);
	for (int i = 0; i < 64; i++)
		pad[i] = k[i] ^ 0x5c;
	drr_sha256_init(&h->out);
	drr_sha256_update(&h->out, pad, 64);
	memset(k, 0, sizeof k);
}

static void hmac(const struct hmac *h, const void *p, size_t n, unsigned char md[32])
{
	struct drr_sha256 c = h->in;
	drr_sha256_update(&c, p, n);
	drr_sha256_final(&c, md);
	c = h->out;
	drr_sha256_update(&c, md, 32);
	drr_sha256_final(&c, md);
}

/* PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block. */
static void pbkdf2(const char *pw, const unsigned char *salt, size_t sl, int iter,
		   unsigned char out[32])
{
	struct hmac h;
	hmac_init(&h, (const unsigned char *)pw, strlen(pw));
	unsigned char s[96 + 4], u[32];
	memcpy(s, salt, sl);
	memcpy(s + sl, "\0\0\0\1", 4);
	hmac(&h, s, sl + 4, u);
	memcpy(out, u, 32);
	for (int i = 1; i < iter; i++) {
		hmac(&h, u, 32, u);
		for (int k = 0; k < 32; k++)
			out[k] ^= u[k];
	}
	memset(&h, 0, sizeof h);
}

/* "pbkdf2-sha256:ITER:k|-:SALT:HASH" of value v, with salt (16 bytes). */
static char *stamp_of(const char *v, const unsigned char salt[16], const char *key, size_t klen)
{
	unsigned char s[16 + 32], h[32];
	size_t sl = 16;
	memcpy(s, salt, 16);
	if (key && klen) { /* the audit key joins the salt: a keyed hash */
		struct drr_sha256 c;
		drr_sha256_init(&c);
		drr_sha256_update(&c, key, klen);
		drr_sha256_final(&c, s + 16);
		sl += 32;
	}
	pbkdf2(v, s, sl, ITER, h);
	char sx[33], hx[65];
	hex(salt, 16, sx);
	hex(h, 32, hx);
	return drr_xasprintf("pbkdf2-sha256:%d:%s:%s:%s", ITER, key && klen ? "k" : "-", sx, hx);
}

json_t *drr_secrets_stamp(char **names, int n, const char *key, size_t klen)
{
	json_t *o = json_object();
	for (int i = 0; i < n; i++) {
		const char *v = getenv(names[i]);
		if (!v || !*v)
			continue;
		unsigned char salt[16];
		if (uv_random(NULL, NULL, salt, sizeof salt, 0, NULL) != 0)
			continue; /* no stamp: resume then cannot vouch, and says so */
		char *st = stamp_of(v, salt, key, klen);
		json_object_set_new(o, names[i], json_string(st));
		free(st);
	}
	return o;
}

/* 1 when the environment's value of name matches its stamp, 0 when not, -1
 * when the stamp is not one we can read. */
static int stamp_matches(const char *stamp, const char *v, const char *key, size_t klen)
{
	int iter;
	char keyed[2], sx[33], hx[65];
	if (sscanf(stamp, "pbkdf2-sha256:%d:%1[k-]:%32[0-9a-f]:%64[0-9a-f]", &iter, keyed, sx,
		   hx) != 4 ||
	    iter != ITER || strlen(sx) != 32)
		return -1;
	unsigned char salt[16];
	for (int i = 0; i < 16; i++) {
		unsigned x;
		sscanf(sx + 2 * i, "%2x", &x);
		salt[i] = (unsigned char)x;
	}
	if ((keyed[0] == 'k') != (key && klen))
		return 0;
	char *now = stamp_of(v, salt, key, klen);
	int same = strcmp(now, stamp) == 0;
	free(now);
	return same;
}

int drr_secrets_verify(json_t *stamps, const char *key, size_t klen, const char *run_id, char *err,
		       size_t errlen)
{
	const char *name;
	json_t *st;
	json_object_foreach(stamps, name, st) {
		const char *v = getenv(name);
		if (!v || !*v)
			continue; /* binding names it if it is still declared */
		int m = stamp_matches(json_string_value(st) ? json_string_value(st) : "", v, key,
				      klen);
		if (m == 1)
			continue;
		snprintf(err, errlen,
			 m < 0 ? "run %s's record of secret %s cannot be read; refusing to run "
				 "resumed steps with a secret that cannot be checked"
			       : "secret %s is not the value run %s started with; set it as it "
				 "was, so that resumed steps see what the first session saw",
			 m < 0 ? run_id : name, m < 0 ? name : run_id);
		return -1;
	}
	return 0;
}

/* ---- where the journal hides them ---------------------------------------- */

struct scan {
	char **names;
	int n;
	json_t *hits;
};

static void on_hit(void *ud, size_t at, const char *v, size_t vn)
{
	struct scan *sc = ud;
	json_t *name = json_null();
	for (int i = 0; i < sc->n; i++) {
		const char *e = getenv(sc->names[i]);
		if (e && strlen(e) == vn && !memcmp(e, v, vn)) {
			name = json_string(sc->names[i]);
			break;
		}
	}
	json_array_append_new(sc->hits, json_pack("[o, I]", name, (json_int_t)at));
}

static void map_value(json_t *v, json_t *path, struct scan *sc, json_t *out)
{
	if (json_is_string(v)) {
		sc->hits = json_array();
		drr_redact_scan(json_string_value(v), json_string_length(v), on_hit, sc);
		if (json_array_size(sc->hits))
			json_array_append_new(
				out, json_pack("{s:O, s:o}", "path", path, "hits", sc->hits));
		else
			json_decref(sc->hits);
	} else if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			json_t *p = json_copy(path);
			json_array_append_new(p, json_integer((json_int_t)i));
			map_value(e, p, sc, out);
			json_decref(p);
		}
	} else if (json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e) {
			/* the path names the key as the journal writes it: redacted */
			json_t *p = json_copy(path);
			size_t rl;
			char *rk = drr_redactn(k, strlen(k), &rl);
			json_t *jk = json_stringn(rk, rl);
			free(rk);
			json_array_append_new(p, jk ? jk : json_string("***"));
			sc->hits = json_array();
			drr_redact_scan(k, strlen(k), on_hit, sc);
			if (json_array_size(sc->hits)) /* a key that holds a secret */
				json_array_append_new(out,
						      json_pack("{s:O, s:b}", "path", p, "key", 1));
			json_decref(sc->hits);
			map_value(e, p, sc, out);
			json_decref(p);
		}
	}
}

json_t *drr_secrets_map(json_t *v, char **names, int n)
{
	if (!drr_redact_count() || !v)
		return NULL;
	struct scan sc = { names, n, NULL };
	json_t *out = json_array(), *root = json_array();
	map_value(v, root, &sc, out);
	json_decref(root);
	if (!json_array_size(out)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---- putting them back ---------------------------------------------------- */

static json_t *follow(json_t *v, json_t *path)
{
	size_t i;
	json_t *k;
	json_array_foreach(path, i, k) {
		if (json_is_string(k))
			v = json_object_get(v, json_string_value(k));
		else if (json_is_integer(k))
			v = json_array_get(v, (size_t)json_integer_value(k));
		else
			return NULL;
	}
	return v;
}

static void path_text(json_t *path, char *buf, size_t n)
{
	size_t used = 0;
	size_t i;
	json_t *k;
	buf[0] = '\0';
	json_array_foreach(path, i, k) {
		int w = json_is_string(k)
				? snprintf(buf + used, n - used, ".%s", json_string_value(k))
				: snprintf(buf + used, n - used, "[%lld]",
					   (long long)json_integer_value(k));
		if (w < 0 || (size_t)w >= n - used)
			return;
		used += (size_t)w;
	}
}

int drr_secrets_restore(json_t *v, json_t *map, const char *what, char *err, size_t errlen)
{
	size_t i;
	json_t *e;
	json_array_foreach(map, i, e) {
		json_t *path = json_object_get(e, "path");
		char where[256];
		path_text(path, where, sizeof where);
		if (json_is_true(json_object_get(e, "key"))) {
			snprintf(err, errlen,
				 "%s%s: a secret was in a table key, which resume cannot put back",
				 what, where);
			return -1;
		}
		json_t *s = follow(v, path);
		const char *txt = json_string_value(s);
		size_t len = json_string_length(s);
		struct drr_buf b = { 0 };
		size_t from = 0, k;
		json_t *h;
		json_array_foreach(json_object_get(e, "hits"), k, h) {
			const char *name = json_string_value(json_array_get(h, 0));
			json_int_t at = json_integer_value(json_array_get(h, 1));
			const char *val = name ? getenv(name) : NULL;
			const char *why =
				!txt ? "is not what the journal's record of it says"
				: at < (json_int_t)from || (size_t)at + 3 > len ||
						memcmp(txt + at, "***", 3)
					? "is not what the journal's record of it says"
				: !name ? "held a value registered while the run ran, not a "
					  "declared secret: resume cannot recover it"
				: !val || !*val ? NULL
						: "";
			if (!why) {
				snprintf(err, errlen,
					 "%s%s held secret %s, which is not set in the environment",
					 what, where, name);
				drr_buf_free(&b);
				return -1;
			}
			if (*why) {
				snprintf(err, errlen, "%s%s %s", what, where, why);
				drr_buf_free(&b);
				return -1;
			}
			drr_buf_add(&b, txt + from, (size_t)at - from);
			drr_buf_adds(&b, val);
			from = (size_t)at + 3;
		}
		drr_buf_add(&b, txt + from, len - from);
		json_string_setn_nocheck(s, b.data ? b.data : "", b.len);
		drr_buf_free(&b);
	}
	return 0;
}
