/*
 * test_serve.c - serve's pure parts: the PagerDuty v3 signature vectors
 * (every case of signature-vectors.json, from $DRRUN_VECTORS, default
 * ../shared/vectors: a missing file fails), the generic hook's signature,
 * bearer and basic auth, the webhook body parser's refusals, the dedupe
 * template and cron.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"

static const char *vectors(void)
{
	const char *v = getenv("DRRUN_VECTORS");
	return v && *v ? v : "../shared/vectors";
}

static char *slurp(const char *path, size_t *len)
{
	char err[256];
	char *t = drr_slurp(path, (size_t)1 << 24, len, err, sizeof err);
	if (!t)
		fail_msg("%s", err);
	return t;
}

static int unhex(const char *h, char *out)
{
	int n = 0;
	for (; h[0] && h[1]; h += 2) {
		unsigned v;
		sscanf(h, "%2x", &v);
		out[n++] = (char)v;
	}
	return n;
}

static void pagerduty_vectors(void **state)
{
	char *dir = drr_xasprintf("%s/webhooks/pagerduty", vectors());
	char *path = drr_xasprintf("%s/signature-vectors.json", dir);
	size_t len;
	char *text = slurp(path, &len);
	json_t *root = json_loads(text, 0, NULL);
	assert_non_null(root);
	json_t *cases = json_object_get(root, "cases");
	assert_true(json_array_size(cases) >= 9);
	size_t i;
	json_t *c;
	json_array_foreach(cases, i, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *secret = json_string_value(json_object_get(c, "secret"));
		const char *bf = json_string_value(json_object_get(c, "body_file"));
		const char *hex = json_string_value(json_object_get(c, "body_bytes_hex"));
		const char *header = json_string_value(json_object_get(c, "header"));
		const char *expect = json_string_value(json_object_get(c, "expect"));
		char *body;
		size_t n;
		if (bf) {
			char *p = drr_xasprintf("%s/%s", dir, bf);
			body = slurp(p, &n);
			free(p);
		} else {
			body = drr_xmalloc(strlen(hex) / 2 + 1);
			n = (size_t)unhex(hex, body);
		}
		char *sec[1] = { (char *)secret };
		int rc = serve_sig_pagerduty(header, body, n, sec, 1);
		int want = !strncmp(expect, "valid", 5)	      ? SIG_OK
			   : !strncmp(expect, "malformed", 9) ? SIG_MALFORMED
							      : SIG_MISMATCH;
		if (rc != want)
			fail_msg("%s: got %d, want %d (%s)", name, rc, want, expect);
		/* rotation: the right secret second in DRRUN_PAGERDUTY_SECRET */
		char **two;
		char *list = drr_xasprintf("old-secret-retired, %s", secret);
		int nt = serve_secrets_split(list, &two);
		assert_int_equal(nt, 2);
		assert_int_equal(serve_sig_pagerduty(header, body, n, two, nt), want);
		serve_secrets_free(two, nt);
		free(list);
		/* a tampered body never passes */
		if (want == SIG_OK) {
			body[n / 2] ^= 1;
			assert_int_equal(serve_sig_pagerduty(header, body, n, sec, 1), SIG_MISMATCH);
		}
		free(body);
	}
	json_decref(root);
	free(text);
	free(path);
	free(dir);
}

static void generic_header(char *out, size_t n, const char *secret, long long t,
			   const char *body)
{
	char *msg = drr_xasprintf("%lld.%s", t, body);
	char hex[65];
	drr_hmac_sha256_hex(secret, strlen(secret), msg, strlen(msg), hex);
	snprintf(out, n, "t=%lld,v1=%s", t, hex);
	free(msg);
}

static void generic_signature(void **state)
{
	const char *body = "{\"labels\":{\"alertname\":\"x\"}}";
	char h[256], m[65];
	int64_t t;
	char *sec[2] = { "new-secret", "old-secret" };
	long long now = 1800000000;
	generic_header(h, sizeof h, "old-secret", now - 10, body);
	assert_int_equal(serve_sig_generic(h, body, strlen(body), sec, 2, now, &t, m), SIG_OK);
	assert_int_equal(t, now - 10);
	assert_int_equal(serve_sig_generic(h, body, strlen(body), sec, 1, now, &t, m),
			 SIG_MISMATCH);
	/* 5 minutes either way, and no more */
	generic_header(h, sizeof h, "new-secret", now - 300, body);
	assert_int_equal(serve_sig_generic(h, body, strlen(body), sec, 2, now, &t, m), SIG_OK);
	generic_header(h, sizeof h, "new-secret", now - 301, body);
	assert_int_equal(serve_sig_generic(h, body, strlen(body), sec, 2, now, &t, m), SIG_STALE);
	generic_header(h, sizeof h, "new-secret", now + 301, body);
	assert_int_equal(serve_sig_generic(h, body, strlen(body), sec, 2, now, &t, m), SIG_STALE);
	/* the timestamp is signed: moving it breaks the signature */
	generic_header(h, sizeof h, "new-secret", now, body);
	char *last = strchr(h, ',') - 1;
	*last = *last == '9' ? '8' : '9';
	assert_int_equal(serve_sig_generic(h, body, strlen(body), sec, 2, now, &t, m),
			 SIG_MISMATCH);
	/* several v1 entries, one right */
	char h2[400];
	generic_header(h, sizeof h, "new-secret", now, body);
	snprintf(h2, sizeof h2, "t=%lld,v1=%064d,%s", now, 0, strchr(h, ',') + 1);
	assert_int_equal(serve_sig_generic(h2, body, strlen(body), sec, 2, now, &t, m), SIG_OK);
	static const char *const bad[] = { "", "v1=abc", "t=,v1=00", "t=12x,v1=00", "t=1,t=2,v1=00",
					   "t=1", "t=1,,v1=00", "t=1,v1=00,", "=1,v1=2", NULL };
	for (int i = 0; bad[i]; i++)
		assert_int_equal(serve_sig_generic(bad[i], body, strlen(body), sec, 2, now, &t, m),
				 SIG_MALFORMED);
	assert_int_equal(serve_sig_generic(NULL, body, strlen(body), sec, 2, now, &t, m),
			 SIG_MALFORMED);
}

static void bearer(void **state)
{
	const char *tok = "s3cr3t-token";
	assert_true(serve_auth_bearer("Bearer s3cr3t-token", tok));
	assert_true(serve_auth_bearer("bearer s3cr3t-token", tok));
	assert_false(serve_auth_bearer("Bearer s3cr3t-tokeN", tok));
	assert_false(serve_auth_bearer("Bearer s3cr3t-token2", tok));
	assert_false(serve_auth_bearer("Bearer ", tok));
	assert_false(serve_auth_bearer(NULL, tok));
	assert_false(serve_auth_bearer("Bearer x", ""));
	/* drrun:s3cr3t-token */
	assert_true(serve_auth_bearer("Basic ZHJydW46czNjcjN0LXRva2Vu", tok));
	assert_false(serve_auth_bearer("Basic ZHJydW46aHVudGVyMg==", tok)); /* drrun:hunter2 */
	assert_false(serve_auth_bearer("Basic !!!", tok));
}

static int parse(int source, const char *body, const char **reason)
{
	struct serve_body b;
	char detail[256];
	int rc = serve_body_parse(source, body, strlen(body), &b, reason, detail, sizeof detail);
	if (rc == 0)
		serve_body_free(&b);
	return rc;
}

static void alertmanager_vectors(void **state)
{
	static const char *const files[] = { "constructed-firing-two-alerts.json",
					     "constructed-mixed-truncated.json",
					     "constructed-resolved.json",
					     "constructed-legacy-v0.2x-firing.json", NULL };
	for (int i = 0; files[i]; i++) {
		char *p = drr_xasprintf("%s/webhooks/alertmanager/%s", vectors(), files[i]);
		size_t n;
		char *t = slurp(p, &n);
		struct serve_body b;
		const char *reason = "";
		char detail[256] = "";
		int rc = serve_body_parse(SRC_ALERTMANAGER, t, n, &b, &reason, detail,
					  sizeof detail);
		if (rc)
			fail_msg("%s: %d %s %s", files[i], rc, reason, detail);
		assert_true(b.nalerts >= 1);
		assert_true(*b.group_key);
		assert_int_equal(strlen(b.alerts[0].fingerprint), 16);
		if (strstr(files[i], "resolved"))
			assert_false(b.firing);
		serve_body_free(&b);
		free(t);
		free(p);
	}
}

static void bad_bodies(void **state)
{
	const char *r;
	char deep[200];
	memset(deep, '[', 40);
	memset(deep + 40, ']', 40);
	deep[80] = 0;
	assert_int_equal(parse(SRC_GENERIC, deep, &r), 400);
	assert_string_equal(r, "depth");
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":{\"a\":\"\xff\"}}", &r), 400);
	assert_string_equal(r, "utf8");
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":", &r), 400);
	assert_string_equal(r, "json");
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":{\"a\":\"x\",\"a\":\"y\"}}", &r), 400);
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":{\"host\":\"db-1\\n--yes\"}}", &r), 422);
	assert_string_equal(r, "label");
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":{\"host\":\"a\\u0000b\"}}", &r), 400);
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":{\"a b\":\"x\"}}", &r), 422);
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":{\"a\":1}}", &r), 422);
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":{\"runbook\":\"/etc/evil.lua\"}}", &r),
			 422);
	assert_string_equal(r, "runbook_in_alert");
	assert_int_equal(
		parse(SRC_GENERIC,
		      "{\"labels\":{\"a\":\"x\"},\"annotations\":{\"runbook\":\"../x.lua\"}}", &r),
		422);
	assert_string_equal(r, "runbook_in_alert");
	static const char *const tmpl[] = { "{labels.instance}", "{{ .Labels.x }}", "${HOME}",
					    "{% if %}", NULL };
	for (int i = 0; tmpl[i]; i++) {
		char *b = drr_xasprintf("{\"labels\":{\"a\":\"%s\"}}", tmpl[i]);
		assert_int_equal(parse(SRC_GENERIC, b, &r), 422);
		assert_string_equal(r, "template");
		free(b);
	}
	assert_int_equal(parse(SRC_GENERIC, "{\"labels\":{}}", &r), 422);
	assert_int_equal(parse(SRC_GENERIC, "[]", &r), 422);
	assert_int_equal(parse(SRC_ALERTMANAGER, "{\"alerts\":{}}", &r), 422);
	assert_int_equal(parse(SRC_ALERTMANAGER, "{\"version\":\"3\",\"alerts\":[]}", &r), 422);
	assert_int_equal(parse(SRC_PAGERDUTY, "{\"event\":{}}", &r), 422);
	/* fine: braces that are not templates, and annotations with anything */
	assert_int_equal(parse(SRC_GENERIC,
			       "{\"labels\":{\"a\":\"{}\"},\"annotations\":{\"d\":\"x\\ny {{y}}\"}}",
			       &r),
			 0);
	char *big = drr_xmalloc(BODY_MAX + 2);
	memset(big, ' ', BODY_MAX + 1);
	big[BODY_MAX + 1] = 0;
	assert_int_equal(parse(SRC_GENERIC, big, &r), 413);
	free(big);
}

static void templates(void **state)
{
	json_t *labels = json_pack("{s:s,s:s}", "alertname", "Down", "instance", "{labels.x}");
	struct serve_alert a = { 1, labels, NULL, "", "abc" };
	char *k = serve_template("{labels.alertname}/{labels.instance}/{fingerprint}/{rule}/"
				 "{labels.none}/{other}",
				 "r1", SRC_GENERIC, &a);
	/* single pass: the label's own braces are not expanded again */
	assert_string_equal(k, "Down/{labels.x}/abc/r1//{other}");
	free(k);
	json_decref(labels);
}

static void cron(void **state)
{
	struct serve_cron c;
	const char *why;
	assert_int_equal(serve_cron_parse("0 5 * * 1", &c, &why), 0);
	/* 2026-12-01 is a Tuesday: the next Monday 05:00 UTC is 2026-12-07 */
	time_t t = 1796083200; /* 2026-12-01T00:00:00Z */
	assert_int_equal(serve_cron_next(&c, t, 1), 1796083200 + 6 * 86400 + 5 * 3600);
	assert_int_equal(serve_cron_parse("*/15 * * * *", &c, &why), 0);
	assert_int_equal(serve_cron_next(&c, t, 1), t + 900);
	assert_int_equal(serve_cron_next(&c, t + 1, 1), t + 900);
	assert_int_equal(serve_cron_parse("30 2 1 * 7", &c, &why), 0); /* 1st, or Sundays */
	assert_int_equal(serve_cron_next(&c, t, 1), t + 9000);		   /* the 1st itself */
	assert_int_equal(serve_cron_next(&c, t + 9000, 1), t + 5 * 86400 + 9000); /* Sunday 6th */
	static const char *const bad[] = { "", "* * * *", "60 * * * *", "* 24 * * *",
					   "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *",
					   "a * * * *", "1-x * * * *", "5-1 * * * *",
					   "* * * * * *", NULL };
	for (int i = 0; bad[i]; i++)
		if (serve_cron_parse(bad[i], &c, &why) == 0)
			fail_msg("cron '%s' was accepted", bad[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pagerduty_vectors), cmocka_unit_test(generic_signature),
		cmocka_unit_test(bearer),	     cmocka_unit_test(alertmanager_vectors),
		cmocka_unit_test(bad_bodies),	     cmocka_unit_test(templates),
		cmocka_unit_test(cron),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
