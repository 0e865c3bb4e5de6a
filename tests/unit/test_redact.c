/*
 * test_redact.c - the secret registry (redact.c): plain-string redaction
 * (longest secret first, adjacent and edge occurrences, identity when no
 * secret is registered) and drr_redact_json over nested trees and keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static int clear(void **state)
{
	(void)state;
	drr_redact_clear();
	return 0;
}

static void expect(const char *in, const char *want)
{
	char *got = drr_redact(in);
	if (strcmp(got, want) != 0)
		fail_msg("drr_redact(\"%s\") = \"%s\", want \"%s\"", in, got, want);
	free(got);
}

static void test_identity_without_secrets(void **state)
{
	(void)state;
	assert_int_equal(drr_redact_count(), 0);
	expect("", "");
	expect("nothing to hide", "nothing to hide");
	char *r = drr_redact("x");
	assert_non_null(r);
	free(r);
	json_t *j = json_pack("{s:[s,i], s:s}", "k", "v", 1, "a", "b");
	char *before = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	drr_redact_json(j);
	char *after = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(before, after);
	free(before);
	free(after);
	json_decref(j);
	drr_redact_json(NULL);
}

static void test_basic(void **state)
{
	(void)state;
	drr_redact_add("abc123");
	assert_int_equal(drr_redact_count(), 1);
	expect("token=abc123;", "token=***;");
	expect("abc12", "abc12");
	expect("ABC123", "ABC123"); /* exact bytes only */
}

static void test_start_end_adjacent(void **state)
{
	(void)state;
	drr_redact_add("abc");
	expect("abc", "***");
	expect("abc-x-abc", "***-x-***");
	expect("abcabc", "******");
	expect("abcabcabc!", "*********!");
	expect("ababc", "ab***");
	expect("aabc", "a***");
	expect("", "");
}

static void test_longest_first(void **state)
{
	(void)state;
	/* registered short first: the long one must still be hidden whole */
	drr_redact_add("pass");
	drr_redact_add("password123");
	expect("password123", "***");
	expect("x password123 pass y", "x *** *** y");
	expect("passpassword123", "******");
	expect("password12", "***word12");
}

static void test_secret_inside_secret(void **state)
{
	(void)state;
	drr_redact_add("ell");
	drr_redact_add("hello-world");
	drr_redact_add("world");
	expect("hello-world", "***");
	expect("hello world", "h***o ***");
}

static void test_add_ignores_empty_and_duplicates(void **state)
{
	(void)state;
	drr_redact_add("");
	drr_redact_add(NULL);
	assert_int_equal(drr_redact_count(), 0);
	drr_redact_add("dup");
	drr_redact_add("dup");
	assert_int_equal(drr_redact_count(), 1);
	expect("dupdup", "******");
}

static void test_add_copies_value(void **state)
{
	(void)state;
	char buf[16];
	snprintf(buf, sizeof buf, "%s", "ephemeral");
	drr_redact_add(buf);
	memset(buf, 'z', sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	expect("an ephemeral value", "an *** value");
}

static void test_clear(void **state)
{
	(void)state;
	drr_redact_add("gone-soon");
	expect("gone-soon", "***");
	drr_redact_clear();
	assert_int_equal(drr_redact_count(), 0);
	expect("gone-soon", "gone-soon");
}

static void test_utf8(void **state)
{
	(void)state;
	drr_redact_add("p\xc3\xa4ssw\xc3\xb6rd");
	expect("k=p\xc3\xa4ssw\xc3\xb6rd \xc3\xa9", "k=*** \xc3\xa9");
}

static void test_many_secrets_long_input(void **state)
{
	(void)state;
	char name[32];
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof name, "secret-%02d-value", i);
		drr_redact_add(name);
	}
	struct drr_buf in = { 0 }, want = { 0 };
	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof name, "secret-%02d-value", i % 50);
		drr_buf_adds(&in, name);
		drr_buf_adds(&in, "|");
		drr_buf_adds(&want, "***|");
	}
	char *got = drr_redact(in.data);
	assert_string_equal(got, want.data);
	free(got);
	drr_buf_free(&in);
	drr_buf_free(&want);
}

static void test_json_nested(void **state)
{
	(void)state;
	drr_redact_add("tok-XYZ");
	json_t *j = json_pack("{s:s, s:[s, i, b, n, {s:s}], s:{s:{s:s}}, s:f}", "plain",
			      "Bearer tok-XYZ", "list", "tok-XYZtok-XYZ", 42, 1, "inner",
			      "x tok-XYZ", "deep", "deeper", "deepest", "tok-XYZ", "num", 1.5);
	drr_redact_json(j);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_null(strstr(s, "tok-XYZ"));
	assert_string_equal(s, "{\"deep\":{\"deeper\":{\"deepest\":\"***\"}},"
			       "\"list\":[\"******\",42,true,null,{\"inner\":\"x ***\"}],"
			       "\"num\":1.5,\"plain\":\"Bearer ***\"}");
	free(s);
	json_decref(j);
}

static void test_json_keys(void **state)
{
	(void)state;
	drr_redact_add("k3y");
	json_t *j = json_pack("{s:s, s:{s:i, s:s}}", "k3y", "value", "obj", "my-k3y-name", 1,
			      "other", "k3y");
	drr_redact_json(j);
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_null(strstr(s, "k3y"));
	assert_string_equal(s, "{\"***\":\"value\",\"obj\":{\"my-***-name\":1,\"other\":\"***\"}}");
	free(s);
	json_decref(j);
}

static void test_json_top_level_string(void **state)
{
	(void)state;
	drr_redact_add("hidden");
	json_t *j = json_string("is hidden here");
	drr_redact_json(j);
	assert_string_equal(json_string_value(j), "is *** here");
	json_decref(j);
	json_t *a = json_pack("[s,[s,[s]]]", "hidden", "hidden", "hidden!");
	drr_redact_json(a);
	char *s = json_dumps(a, JSON_COMPACT);
	assert_string_equal(s, "[\"***\",[\"***\",[\"***!\"]]]");
	free(s);
	json_decref(a);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, clear, clear)

static void test_nul_bytes(void **state)
{
	(void)state;
	drr_redact_add("tok-XYZ");
	/* a secret after a NUL is found: the whole length is searched */
	size_t n;
	static const char in[] = "env\0API_TOKEN=tok-XYZ\0HOME=x";
	char *r = drr_redactn(in, sizeof in - 1, &n);
	static const char want[] = "env\0API_TOKEN=***\0HOME=x";
	assert_int_equal(n, sizeof want - 1);
	assert_memory_equal(r, want, n);
	free(r);
	json_t *j =
		json_pack("{s:s%, s:[s%]}", "stdout", in, sizeof in - 1, "list", in, sizeof in - 1);
	drr_redact_json(j);
	const char *got = json_string_value(json_object_get(j, "stdout"));
	assert_int_equal(json_string_length(json_object_get(j, "stdout")), sizeof want - 1);
	assert_memory_equal(got, want, sizeof want - 1);
	json_t *e = json_array_get(json_object_get(j, "list"), 0);
	assert_int_equal(json_string_length(e), sizeof want - 1);
	assert_memory_equal(json_string_value(e), want, sizeof want - 1);
	json_decref(j);
}

static void test_values_not_structure(void **state)
{
	(void)state;
	/* a one-byte secret: the values are redacted, the members kept */
	drr_redact_add("a");
	json_t *rec = json_pack("{s:s, s:s, s:s, s:{s:s}, s:i}", "type", "step_start", "step",
				"load_data", "msg", "a cat", "output", "k-a", "a", "attempt", 1);
	static const char *const keep[] = { "type", "step", NULL };
	drr_redact_values(rec, keep);
	char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	assert_string_equal(s, "{\"type\":\"step_start\",\"step\":\"load_data\",\"msg\":\"*** "
			       "c***t\",\"output\":{\"k-***\":\"***\"},\"attempt\":1}");
	free(s);
	json_decref(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_identity_without_secrets),
		T(test_basic),
		T(test_start_end_adjacent),
		T(test_longest_first),
		T(test_secret_inside_secret),
		T(test_add_ignores_empty_and_duplicates),
		T(test_add_copies_value),
		T(test_clear),
		T(test_utf8),
		T(test_many_secrets_long_input),
		T(test_json_nested),
		T(test_json_keys),
		T(test_json_top_level_string),
		T(test_nul_bytes),
		T(test_values_not_structure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
