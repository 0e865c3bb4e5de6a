/*
 * test_term.c - term.c, the gate to the terminal: printable ASCII and UTF-8
 * pass; C0 controls, DEL, C1 controls (raw and UTF-8 encoded) and bytes that
 * are not UTF-8 (overlongs, surrogates, cut sequences) come out visible.
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

static void expect_n(const char *in, size_t n, const char *want)
{
	struct drr_buf b = { 0 };
	drr_term_add(&b, in, n);
	const char *got = b.data ? b.data : "";
	if (strcmp(got, want) != 0)
		fail_msg("escape of %zu bytes = \"%s\", want \"%s\"", n, got, want);
	drr_buf_free(&b);
}

static void expect(const char *in, const char *want)
{
	expect_n(in, strlen(in), want);
}

static void test_printable_passes(void **state)
{
	(void)state;
	expect("", "");
	expect("plain text, 100% {ok} ~", "plain text, 100% {ok} ~");
	expect("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5",
	       "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa5");
	expect("back\\slash", "back\\slash");
}

static void test_c0_and_del(void **state)
{
	(void)state;
	expect("\r\033[2Kresult: completed", "\\r\\x1b[2Kresult: completed");
	expect("a\nb\tc", "a\\nb\\tc");
	expect("\a\b\v\f\x7f", "\\x07\\x08\\x0b\\x0c\\x7f");
	expect("\033]0;owned\a", "\\x1b]0;owned\\x07");
	expect_n("a\0b", 3, "a\\x00b");
}

static void test_bidi_controls(void **state)
{
	(void)state;
	/* "result: \u202e" would show the rest of the line reversed */
	char *o = drr_term_str("ok \xe2\x80\xae"
			       "deliamf \xe2\x81\xa6x\xe2\x81\xa9 \xd8\x9c \xe2\x80\x8f");
	assert_string_equal(o, "ok \\u202edeliamf \\u2066x\\u2069 \\u061c \\u200f");
	free(o);
	/* other punctuation of the same block passes: U+2014 (em dash) */
	o = drr_term_str("a\xe2\x80\x94"
			 "b");
	assert_string_equal(o, "a\xe2\x80\x94"
			       "b");
	free(o);
}

static void test_c1_controls(void **state)
{
	(void)state;
	/* U+009B (CSI) and U+0085 (NEL) as UTF-8, and CSI as a raw byte */
	expect("\xc2\x9b"
	       "2K",
	       "\\xc2\\x9b2K");
	expect("\xc2\x85", "\\xc2\\x85");
	expect("\x9b"
	       "31m",
	       "\\x9b31m");
	/* U+00A0, the first code point past C1, is printable */
	expect("\xc2\xa0", "\xc2\xa0");
}

static void test_not_utf8(void **state)
{
	(void)state;
	expect("\xff\xfe", "\\xff\\xfe");
	expect("\xc0\xaf", "\\xc0\\xaf");		    /* overlong '/' */
	expect("\xe0\x80\xaf", "\\xe0\\x80\\xaf");	    /* overlong, 3 bytes */
	expect("\xed\xa0\x80", "\\xed\\xa0\\x80");	    /* a surrogate */
	expect("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
	expect("\xe2\x82", "\\xe2\\x82");		    /* cut short at the end */
	expect("\xe2"
	       "A",
	       "\\xe2A"); /* cut short by ASCII */
}

static void test_str_and_line(void **state)
{
	(void)state;
	assert_null(drr_term_str(NULL));
	char *s = drr_term_str("x\ry");
	assert_string_equal(s, "x\\ry");
	free(s);
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	assert_non_null(f);
	drr_term_line(f, "%s %d", "a\nresult: completed", 3);
	fclose(f);
	assert_string_equal(buf, "a\\nresult: completed 3\n");
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_printable_passes), cmocka_unit_test(test_c0_and_del),
		cmocka_unit_test(test_c1_controls),	 cmocka_unit_test(test_bidi_controls),
		cmocka_unit_test(test_not_utf8),	 cmocka_unit_test(test_str_and_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
