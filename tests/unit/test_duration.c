/*
 * test_duration.c - drr_duration_parse and drr_duration_fmt (util.c).
 * Durations are <digits><unit> groups with units h, m, s, ms in strictly
 * decreasing order; anything else is rejected.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

static void expect_ok(const char *s, double want)
{
	double out = -1;
	int rc = drr_duration_parse(s, &out);
	if (rc != 0)
		fail_msg("drr_duration_parse(\"%s\") rejected a valid duration", s);
	if (fabs(out - want) > 1e-9)
		fail_msg("drr_duration_parse(\"%s\") = %g, want %g", s, out, want);
}

static void expect_bad(const char *s)
{
	double out = 12345;
	int rc = drr_duration_parse(s, &out);
	if (rc != -1)
		fail_msg("drr_duration_parse(\"%s\") accepted an invalid duration (%g)",
			 s ? s : "(null)", out);
}

static void test_parse_units(void **state)
{
	(void)state;
	expect_ok("250ms", 0.25);
	expect_ok("1ms", 0.001);
	expect_ok("5s", 5);
	expect_ok("10m", 600);
	expect_ok("1h", 3600);
	expect_ok("0s", 0);
	expect_ok("0ms", 0);
}

static void test_parse_compound(void **state)
{
	(void)state;
	expect_ok("1h30m", 5400);
	expect_ok("2m5s", 125);
	expect_ok("1h0m1s", 3601);
	expect_ok("1m5ms", 60.005);
	expect_ok("1h2m3s4ms", 3723.004);
	expect_ok("90s", 90); /* a group may exceed the next unit */
	expect_ok("1500ms", 1.5);
}

static void test_parse_empty_and_unitless(void **state)
{
	(void)state;
	expect_bad(NULL);
	expect_bad("");
	expect_bad("5");
	expect_bad("2m5"); /* trailing digits without a unit */
	expect_bad("s");
	expect_bad("ms");
	expect_bad("h1");
}

static void test_parse_bad_syntax(void **state)
{
	(void)state;
	expect_bad("5 s");
	expect_bad(" 5s");
	expect_bad("5s ");
	expect_bad("1.5s");
	expect_bad("5sec");
	expect_bad("5 seconds");
	expect_bad("5S");
	expect_bad("5M");
	expect_bad("-5s");
	expect_bad("+5s");
	expect_bad("5d");
	expect_bad("5us");
	expect_bad("5mss");
	expect_bad("1h,30m");
}

static void test_parse_unit_order(void **state)
{
	(void)state;
	expect_bad("30m1h"); /* wrong order */
	expect_bad("5s1m");
	expect_bad("5ms1s");
	expect_bad("1h1h"); /* repeated unit */
	expect_bad("1s1s");
	expect_bad("1m30m");
}

static void test_parse_huge(void **state)
{
	(void)state;
	expect_bad("99999999999999999999s");
	expect_bad("99999999999999999999999999999999999999999999999999h");
	expect_bad("18446744073709551617ms");
	/* a long string of valid groups in the wrong order is still rejected */
	expect_bad("1ms1ms1ms1ms1ms1ms1ms1ms1ms1ms1ms1ms1ms1ms1ms1ms");
}

static void expect_fmt(double secs, const char *want)
{
	char buf[64];
	memset(buf, 'x', sizeof buf);
	char *r = drr_duration_fmt(secs, buf, sizeof buf);
	assert_ptr_equal(r, buf);
	if (strcmp(buf, want) != 0)
		fail_msg("drr_duration_fmt(%g) = \"%s\", want \"%s\"", secs, buf, want);
}

static void test_fmt(void **state)
{
	(void)state;
	expect_fmt(0.25, "250ms");
	expect_fmt(0, "0ms");
	expect_fmt(1.2, "1.2s");
	expect_fmt(5, "5.0s");
	expect_fmt(185, "3m05s");
	expect_fmt(600, "10m00s");
	expect_fmt(3723, "1h02m03s");
	expect_fmt(-3, "0ms");
}

/* Rounding must not produce a value that belongs to the next unit. */
static void test_fmt_boundaries(void **state)
{
	(void)state;
	expect_fmt(0.9996, "1.0s");
	expect_fmt(59.96, "1m00s");
	expect_fmt(3599.6, "1h00m00s");
}

static void test_fmt_small_buffer(void **state)
{
	(void)state;
	char buf[4];
	drr_duration_fmt(3723, buf, sizeof buf);
	assert_int_equal(strlen(buf), 3); /* truncated, still terminated */
}

static void test_parse_fmt_roundtrip(void **state)
{
	(void)state;
	static const char *const in[] = { "250ms", "3m05s", "1h02m03s", "10m00s" };
	for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
		double v;
		char buf[64];
		assert_int_equal(drr_duration_parse(in[i], &v), 0);
		assert_string_equal(drr_duration_fmt(v, buf, sizeof buf), in[i]);
	}
}

/* drr_duration_check: what may reach a timer.  NaN used to skip the timer,
 * infinity made (uint64_t)(inf * 1000) undefined, and 0 meant "none". */
static void check_is(double d, int allow_zero, const char *want)
{
	const char *why = "unset";
	int rc = drr_duration_check(d, allow_zero, &why);
	if (!want) {
		if (rc != 0)
			fail_msg("drr_duration_check(%g, %d) rejected it: %s", d, allow_zero, why);
		if (why)
			fail_msg("drr_duration_check(%g) accepted but set why", d);
		return;
	}
	if (rc != -1)
		fail_msg("drr_duration_check(%g, %d) accepted it", d, allow_zero);
	if (!why || strcmp(why, want) != 0)
		fail_msg("drr_duration_check(%g): why = '%s', want '%s'", d, why ? why : "(null)",
			 want);
}

static void test_check(void **state)
{
	(void)state;
	check_is(NAN, 1, "is not a number (NaN)");
	check_is(-NAN, 0, "is not a number (NaN)");
	check_is(INFINITY, 1, "must be finite");
	check_is(-INFINITY, 1, "must be finite");
	check_is(-1, 1, "must not be negative");
	check_is(-0.001, 0, "must not be negative");
	check_is(0, 0, "must be more than 0");
	check_is(0, 1, NULL);
	check_is(0.001, 0, NULL);
	check_is(5, 0, NULL);
	check_is(DRR_DURATION_MAX, 0, NULL);
	check_is(DRR_DURATION_MAX * 2, 0, "is too long");
	check_is(1e300, 1, "is too long");
	assert_int_equal(drr_duration_check(1, 0, NULL), 0);
	assert_int_equal(drr_duration_check(NAN, 0, NULL), -1);
}

/* Every duration string passes the check (except "0s" where 0 is not
 * allowed), and fits a uint64_t of milliseconds. */
static void test_check_largest_string(void **state)
{
	(void)state;
	double d = -1;
	assert_int_equal(drr_duration_parse("999999999h999999999m999999999s999999999ms", &d), 0);
	check_is(d, 0, NULL);
	assert_true(d * 1000 < 18446744073709551615.0);
	assert_int_equal(drr_duration_parse("0s", &d), 0);
	check_is(d, 0, "must be more than 0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_units),
		cmocka_unit_test(test_parse_compound),
		cmocka_unit_test(test_parse_empty_and_unitless),
		cmocka_unit_test(test_parse_bad_syntax),
		cmocka_unit_test(test_parse_unit_order),
		cmocka_unit_test(test_parse_huge),
		cmocka_unit_test(test_fmt),
		cmocka_unit_test(test_fmt_boundaries),
		cmocka_unit_test(test_fmt_small_buffer),
		cmocka_unit_test(test_parse_fmt_roundtrip),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_check_largest_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
