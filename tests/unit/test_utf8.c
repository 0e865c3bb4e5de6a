/*
 * test_utf8.c - the one rule for text that is not UTF-8 (core/util.c):
 * drr_utf8_seq judges sequences as jansson does, drr_utf8_escape writes each
 * invalid byte as \xNN and keeps everything else (NULs included), and
 * drr_json_text never fails, so no journal member is dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void test_seq(void **state)
{
	(void)state;
	assert_int_equal(drr_utf8_seq("a", 1), 1);
	assert_int_equal(drr_utf8_seq("\0", 1), 1);
	assert_int_equal(drr_utf8_seq("\xc3\xa9", 2), 2);
	assert_int_equal(drr_utf8_seq("\xe2\x82\xac", 3), 3);
	assert_int_equal(drr_utf8_seq("\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(drr_utf8_seq("\xc3\xa9", 1), 0);	  /* cut short */
	assert_int_equal(drr_utf8_seq("\xc0\xaf", 2), 0);	  /* overlong */
	assert_int_equal(drr_utf8_seq("\xe0\x80\xaf", 3), 0);	  /* overlong */
	assert_int_equal(drr_utf8_seq("\xed\xa0\x80", 3), 0);	  /* a surrogate */
	assert_int_equal(drr_utf8_seq("\xf4\x90\x80\x80", 4), 0); /* past U+10FFFF */
	assert_int_equal(drr_utf8_seq("\x80", 1), 0);		  /* a lone continuation */
	assert_int_equal(drr_utf8_seq("\xff", 1), 0);
	assert_int_equal(drr_utf8_seq("", 0), 0);
	assert_true(drr_utf8_valid("ok \xc3\xa9\0x", 7));
	assert_false(drr_utf8_valid("bad \xff", 5));
}

static void test_escape(void **state)
{
	(void)state;
	size_t n;
	static const char in[] = "a\xff"
				 "b\xc3(\0\xed\xa0\x80\xc3\xa9";
	char *e = drr_utf8_escape(in, sizeof in - 1, &n);
	static const char want[] = "a\\xff"
				   "b\\xc3(\0\\xed\\xa0\\x80\xc3\xa9";
	assert_int_equal(n, sizeof want - 1);
	assert_memory_equal(e, want, n);
	free(e);
}

static void test_json_text_never_drops(void **state)
{
	(void)state;
	json_t *j = drr_json_text("why: \xfe\xff", 7);
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "why: \\xfe\\xff");
	json_decref(j);
	j = drr_json_text("nul\0kept", 8);
	assert_int_equal(json_string_length(j), 8);
	json_decref(j);
	j = drr_json_str(NULL);
	assert_true(json_is_null(j));
	json_decref(j);
	/* as a member: the field is there */
	json_t *o = json_object();
	assert_int_equal(json_object_set_new(o, "msg", drr_json_str("\xff")), 0);
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "\\xff");
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seq),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_json_text_never_drops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
