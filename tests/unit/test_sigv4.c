/*
 * test_sigv4.c - every case of AWS's two published SigV4 test suites, one
 * cmocka test each:
 *   - botocore's aws4_testsuite (classic .req/.creq/.sts/.authz): header
 *     signing, compared on the canonical request, the string to sign and
 *     the Authorization value;
 *   - aws-c-auth's v4 suite: header and query (presigned) signing, each
 *     compared on canonical request, string to sign and signature.
 * The vectors are read from $DRRUN_VECTORS (default ../shared/vectors):
 * a missing folder or case file is a failure, never a skip.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "aws/sigv4.h"

#define KEY_ID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define WHEN 1440938160 /* 2015-08-30T12:36:00Z */

static const char *vectors(void)
{
	const char *v = getenv("DRRUN_VECTORS");
	return v && *v ? v : "../shared/vectors";
}

/* The whole file, or NULL. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct drr_buf b = { 0 };
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		drr_buf_add(&b, tmp, n);
	int bad = ferror(f);
	fclose(f);
	if (bad) {
		drr_buf_free(&b);
		return NULL;
	}
	if (!b.data)
		drr_buf_add(&b, "", 0);
	if (len)
		*len = b.len;
	return b.data;
}

static char *must_read(const char *dir, const char *name)
{
	char *p = drr_xasprintf("%s/%s", dir, name);
	char *s = slurp(p, NULL);
	if (!s)
		fail_msg("cannot read %s", p);
	free(p);
	return s;
}

/* A parsed .req / request.txt. */
struct req {
	char *method, *path, *query;
	struct drr_sigv4_header h[32];
	int nh;
	char *body;
	size_t blen;
	char *buf; /* owns the strings above */
};

static void parse_req(char *text, size_t len, struct req *r)
{
	memset(r, 0, sizeof *r);
	r->buf = text;
	char *end = text + len;
	char *nl = memchr(text, '\n', len);
	char *line_end = nl ? nl : end;
	*line_end = 0;
	/* the target may contain spaces: it ends at the last " HTTP/" */
	char *sp = strchr(text, ' ');
	assert_non_null(sp);
	*sp = 0;
	r->method = text;
	char *target = sp + 1;
	char *http = strstr(target, " HTTP/");
	for (char *p = http; p; p = strstr(p + 1, " HTTP/"))
		http = p;
	assert_non_null(http);
	*http = 0;
	char *q = strchr(target, '?');
	if (q) {
		*q = 0;
		r->query = q + 1;
	}
	r->path = target;
	char *s = nl ? nl + 1 : end;
	while (s < end) {
		char *e = memchr(s, '\n', (size_t)(end - s));
		char *le = e ? e : end;
		if (le == s) { /* blank line: the body follows */
			s = e ? e + 1 : end;
			break;
		}
		*le = 0;
		if ((*s == ' ' || *s == '\t') && r->nh) {
			/* obsolete line folding: keep it for the signer to fold */
			struct drr_sigv4_header *prev = &r->h[r->nh - 1];
			char *joined = drr_xasprintf("%s\n%s", prev->value, s);
			/* leak-free: stash joined strings in the body chain */
			free((char *)(prev->value != prev->name + strlen(prev->name) + 1
					      ? prev->value
					      : NULL));
			prev->value = joined;
		} else {
			char *colon = strchr(s, ':');
			assert_non_null(colon);
			*colon = 0;
			assert_true(r->nh < 32);
			r->h[r->nh].name = s;
			r->h[r->nh].value = colon + 1;
			r->nh++;
		}
		s = e ? e + 1 : end;
	}
	r->body = s;
	r->blen = (size_t)(end - s);
}

static void free_req(struct req *r)
{
	for (int i = 0; i < r->nh; i++)
		if (r->h[i].value != r->h[i].name + strlen(r->h[i].name) + 1)
			free((char *)r->h[i].value);
	free(r->buf);
}

static void body_hash(const struct req *r, char hex[65])
{
	unsigned char md[32];
	SHA256((const unsigned char *)r->body, r->blen, md);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void expect_eq(const char *what, const char *dir, const char *want, const char *got)
{
	if (strcmp(want, got))
		fail_msg("%s: %s differs\n--- want\n%s\n--- got\n%s", dir, what, want, got);
}

/* ---- the classic suite ------------------------------------------------- */

static const char *base_name(const char *dir)
{
	const char *s = strrchr(dir, '/');
	return s ? s + 1 : dir;
}

static void classic_case(void **state)
{
	const char *dir = *state;
	const char *name = base_name(dir);
	char *f = drr_xasprintf("%s.req", name);
	size_t len;
	char *p = drr_xasprintf("%s/%s", dir, f);
	char *text = slurp(p, &len);
	free(p);
	free(f);
	if (!text)
		fail_msg("%s: no .req", dir);
	struct req r;
	parse_req(text, len, &r);
	char hash[65];
	body_hash(&r, hash);
	struct drr_sigv4_cfg c = { .access_key = KEY_ID,
				   .secret_key = SECRET,
				   .region = "us-east-1",
				   .service = "service",
				   .when = WHEN,
				   .normalize_path = 1,
				   .double_encode = 1 };
	/* post-sts-token: the token is signed when the request carries it
	 * ("before"), or added once signed ("after") */
	char *token = NULL;
	for (int i = 0; i < r.nh; i++)
		if (!strcasecmp(r.h[i].name, "X-Amz-Security-Token"))
			token = drr_xstrdup(r.h[i].value);
	if (!token && strstr(name, "post-sts-header-after")) {
		char *readme = drr_xasprintf("%s/../readme.txt", dir);
		char *t = slurp(readme, NULL);
		free(readme);
		assert_non_null(t);
		char *v = strstr(t, "AQoD");
		assert_non_null(v);
		v[strcspn(v, " \r\n")] = 0;
		token = drr_xstrdup(v);
		free(t);
		c.omit_token = 1;
	}
	if (!token && !strcmp(name, "get-vanilla-with-session-token")) {
		/* botocore's harness gives this case the token that aws-c-auth's
		 * copy of it writes in its context.json */
		char *cp = drr_xasprintf("%s/sigv4/aws-signing-test-suite/v4/%s/context.json",
					 vectors(), name);
		json_error_t je;
		json_t *ctx = json_load_file(cp, 0, &je);
		free(cp);
		if (!ctx)
			fail_msg("%s: %s", name, je.text);
		const char *t = json_string_value(
			json_object_get(json_object_get(ctx, "credentials"), "token"));
		assert_non_null(t);
		token = drr_xstrdup(t);
		json_decref(ctx);
	}
	c.token = token;
	struct drr_sigv4_req q = { r.method, r.path, r.query, r.h, r.nh, hash };
	struct drr_sigv4_out o;
	char err[256];
	assert_int_equal(drr_sigv4_sign_header(&c, &q, &o, err, sizeof err), 0);
	char *fc = drr_xasprintf("%s.creq", name), *fs = drr_xasprintf("%s.sts", name),
	     *fa = drr_xasprintf("%s.authz", name);
	char *creq = must_read(dir, fc), *sts = must_read(dir, fs), *authz = must_read(dir, fa);
	free(fc);
	free(fs);
	free(fa);
	expect_eq("canonical request", dir, creq, o.canonical);
	expect_eq("string to sign", dir, sts, o.to_sign);
	expect_eq("Authorization", dir, authz, o.authorization);
	free(creq);
	free(sts);
	free(authz);
	free(token);
	drr_sigv4_out_free(&o);
	free_req(&r);
}

/* ---- the aws-c-auth suite ---------------------------------------------- */

static void crt_case(const char *dir, int query)
{
	size_t len;
	char *p = drr_xasprintf("%s/request.txt", dir);
	char *text = slurp(p, &len);
	free(p);
	if (!text)
		fail_msg("%s: no request.txt", dir);
	char *ctxs = must_read(dir, "context.json");
	json_error_t je;
	json_t *ctx = json_loads(ctxs, 0, &je);
	if (!ctx)
		fail_msg("%s: context.json: %s", dir, je.text);
	json_t *cr = json_object_get(ctx, "credentials");
	struct drr_sigv4_cfg c = {
		.access_key = json_string_value(json_object_get(cr, "access_key_id")),
		.secret_key = json_string_value(json_object_get(cr, "secret_access_key")),
		.token = json_string_value(json_object_get(cr, "token")),
		.region = json_string_value(json_object_get(ctx, "region")),
		.service = json_string_value(json_object_get(ctx, "service")),
		.when = WHEN,
		.normalize_path = json_is_true(json_object_get(ctx, "normalize")),
		.double_encode = 1,
		.sign_body = json_is_true(json_object_get(ctx, "sign_body")),
		.omit_token = json_is_true(json_object_get(ctx, "omit_session_token")),
		.expires = (long)json_integer_value(json_object_get(ctx, "expiration_in_seconds")),
	};
	assert_string_equal(json_string_value(json_object_get(ctx, "timestamp")),
			    "2015-08-30T12:36:00Z");
	struct req r;
	parse_req(text, len, &r);
	char hash[65];
	body_hash(&r, hash);
	struct drr_sigv4_req q = { r.method, r.path, r.query, r.h, r.nh, hash };
	struct drr_sigv4_out o;
	char err[256];
	int rc = query ? drr_sigv4_sign_query(&c, &q, &o, err, sizeof err)
		       : drr_sigv4_sign_header(&c, &q, &o, err, sizeof err);
	if (rc)
		fail_msg("%s: %s", dir, err);
	const char *pre = query ? "query" : "header";
	char *f1 = drr_xasprintf("%s-canonical-request.txt", pre);
	char *f2 = drr_xasprintf("%s-string-to-sign.txt", pre);
	char *f3 = drr_xasprintf("%s-signature.txt", pre);
	char *want_c = must_read(dir, f1), *want_s = must_read(dir, f2),
	     *want_g = must_read(dir, f3);
	expect_eq("canonical request", dir, want_c, o.canonical);
	expect_eq("string to sign", dir, want_s, o.to_sign);
	expect_eq("signature", dir, want_g, o.signature);
	if (query) {
		/* the presigned URL carries the signature and, unsigned or
		 * not, the token */
		assert_non_null(strstr(o.query, "X-Amz-Signature="));
		if (c.token)
			assert_non_null(strstr(o.query, "X-Amz-Security-Token="));
	}
	free(want_c);
	free(want_s);
	free(want_g);
	free(f1);
	free(f2);
	free(f3);
	drr_sigv4_out_free(&o);
	free_req(&r);
	json_decref(ctx);
	free(ctxs);
}

static void crt_header_case(void **state)
{
	crt_case(*state, 0);
}

static void crt_query_case(void **state)
{
	crt_case(*state, 1);
}

/* ---- the suite's own checks -------------------------------------------- */

static void bad_input_is_refused(void **state)
{
	(void)state;
	struct drr_sigv4_cfg c = { .access_key = KEY_ID,
				   .secret_key = SECRET,
				   .region = "us-east-1",
				   .service = "s3",
				   .when = WHEN };
	struct drr_sigv4_req q = { "GET", "/", NULL, NULL, 0, "UNSIGNED-PAYLOAD" };
	struct drr_sigv4_out o;
	char err[256];
	c.region = "";
	assert_int_equal(drr_sigv4_sign_header(&c, &q, &o, err, sizeof err), -1);
	assert_string_equal(err, "sigv4: no region");
	c.region = "us-east-1";
	c.expires = 604801;
	assert_int_equal(drr_sigv4_sign_query(&c, &q, &o, err, sizeof err), -1);
	assert_non_null(strstr(err, "604800"));
	c.expires = 0;
	assert_int_equal(drr_sigv4_sign_query(&c, &q, &o, err, sizeof err), -1);
}

static void s3_paths_are_encoded_once(void **state)
{
	(void)state;
	struct drr_sigv4_cfg c = { .access_key = KEY_ID,
				   .secret_key = SECRET,
				   .region = "us-east-1",
				   .service = "s3",
				   .when = WHEN };
	struct drr_sigv4_header h[] = { { "Host", "b.s3.amazonaws.com" } };
	/* S3: a key sent encoded is signed as sent, dot segments and all */
	struct drr_sigv4_req q = { "GET", "/a%20b/./c d//e", NULL, h, 1, "UNSIGNED-PAYLOAD" };
	struct drr_sigv4_out o;
	char err[256];
	assert_int_equal(drr_sigv4_sign_header(&c, &q, &o, err, sizeof err), 0);
	assert_non_null(strstr(o.canonical, "\n/a%20b/./c%20d//e\n"));
	drr_sigv4_out_free(&o);
	/* any other service: encoded again */
	c.service = "ec2";
	c.double_encode = 1;
	assert_int_equal(drr_sigv4_sign_header(&c, &q, &o, err, sizeof err), 0);
	assert_non_null(strstr(o.canonical, "\n/a%2520b/./c%20d//e\n"));
	drr_sigv4_out_free(&o);
}

/* ---- collecting the cases ---------------------------------------------- */

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every folder under root holding a file named like the folder + ".req"
 * (classic) or a request.txt (aws-c-auth). */
static void collect(const char *root, int classic, char ***out, int *n)
{
	DIR *d = opendir(root);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = drr_xasprintf("%s/%s", root, e->d_name);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			char *probe = classic ? drr_xasprintf("%s/%s.req", p, e->d_name)
					      : drr_xasprintf("%s/request.txt", p);
			if (access(probe, R_OK) == 0) {
				*out = drr_xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
				(*out)[(*n)++] = p;
				p = NULL;
			} else if (classic) {
				collect(p, classic, out, n);
			}
			free(probe);
		}
		free(p);
	}
	closedir(d);
	qsort(*out, (size_t)*n, sizeof **out, by_str);
}

int main(void)
{
	char *croot = drr_xasprintf("%s/sigv4/aws4_testsuite", vectors());
	char *troot = drr_xasprintf("%s/sigv4/aws-signing-test-suite/v4", vectors());
	char **cl = NULL, **crt = NULL;
	int ncl = 0, ncrt = 0;
	collect(croot, 1, &cl, &ncl);
	collect(troot, 0, &crt, &ncrt);
	int n = ncl + 2 * ncrt + 3;
	struct CMUnitTest *t = drr_xcalloc((size_t)n, sizeof *t);
	char **names = drr_xcalloc((size_t)n, sizeof *names);
	int k = 0;
	/* the suites are 34 and 38 cases: fewer means the vectors are not all
	 * there, which fails rather than passing on what was found */
	static int found[2];
	found[0] = ncl;
	found[1] = ncrt;
	for (int i = 0; i < ncl; i++) {
		names[k] = drr_xasprintf("classic/%s", base_name(cl[i]));
		t[k++] = (struct CMUnitTest){ names[k - 1], classic_case, NULL, NULL, cl[i] };
	}
	for (int i = 0; i < ncrt; i++) {
		names[k] = drr_xasprintf("v4/%s/header", base_name(crt[i]));
		t[k++] = (struct CMUnitTest){ names[k - 1], crt_header_case, NULL, NULL, crt[i] };
		names[k] = drr_xasprintf("v4/%s/query", base_name(crt[i]));
		t[k++] = (struct CMUnitTest){ names[k - 1], crt_query_case, NULL, NULL, crt[i] };
	}
	t[k++] = (struct CMUnitTest){ "bad_input_is_refused", bad_input_is_refused, NULL, NULL,
				      NULL };
	t[k++] = (struct CMUnitTest){ "s3_paths_are_encoded_once", s3_paths_are_encoded_once, NULL,
				      NULL, NULL };
	void all_cases_found(void **state);
	t[k++] = (struct CMUnitTest){ "all_vectors_present", all_cases_found, NULL, NULL, found };
	fprintf(stderr,
		"sigv4: %d classic cases from %s, %d aws-c-auth cases (x2: header, query)"
		" from %s\n",
		ncl, croot, ncrt, troot);
	int rc = _cmocka_run_group_tests("sigv4", t, (size_t)k, NULL, NULL);
	for (int i = 0; i < ncl; i++)
		free(cl[i]);
	for (int i = 0; i < ncrt; i++)
		free(crt[i]);
	for (int i = 0; i < k; i++)
		if (i < ncl + 2 * ncrt)
			free(names[i]);
	free(cl);
	free(crt);
	free(names);
	free(t);
	free(croot);
	free(troot);
	return rc;
}

void all_cases_found(void **state)
{
	int *found = *state;
	if (found[0] != 34 || found[1] != 38)
		fail_msg("expected 34 classic and 38 aws-c-auth cases, found %d and %d (is "
			 "$DRRUN_VECTORS or ../shared/vectors there?)",
			 found[0], found[1]);
}
