/*
 * test_names.c - drr_names: the name -> index map that step lookups use.
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

static void empty_map_finds_nothing(void **state)
{
	(void)state;
	struct drr_names x = { 0 };
	assert_int_equal(drr_names_find(&x, "a"), -1);
	drr_names_free(&x);
}

static void add_then_find(void **state)
{
	(void)state;
	struct drr_names x = { 0 };
	assert_int_equal(drr_names_add(&x, "restore", 0), -1);
	assert_int_equal(drr_names_add(&x, "verify", 1), -1);
	assert_int_equal(drr_names_find(&x, "restore"), 0);
	assert_int_equal(drr_names_find(&x, "verify"), 1);
	assert_int_equal(drr_names_find(&x, "verif"), -1);
	assert_int_equal(drr_names_find(&x, ""), -1);
	drr_names_free(&x);
}

static void a_second_add_keeps_the_first(void **state)
{
	(void)state;
	struct drr_names x;
	drr_names_init(&x, 4);
	assert_int_equal(drr_names_add(&x, "dns", 3), -1);
	assert_int_equal(drr_names_add(&x, "dns", 9), 3);
	assert_int_equal(drr_names_find(&x, "dns"), 3);
	assert_int_equal((int)x.used, 1);
	drr_names_free(&x);
}

/* 100,000 names through many doublings, every one still found, with the
 * load kept at or under half */
static void grows_and_keeps_every_name(void **state)
{
	(void)state;
	enum { N = 100000 };
	char(*names)[16] = malloc(N * sizeof *names);
	assert_non_null(names);
	struct drr_names x = { 0 };
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "s%d", i);
		assert_int_equal(drr_names_add(&x, names[i], i), -1);
	}
	assert_int_equal((int)x.used, N);
	assert_true(x.used * 2 <= x.mask + 1);
	for (int i = 0; i < N; i++)
		assert_int_equal(drr_names_find(&x, names[i]), i);
	assert_int_equal(drr_names_find(&x, "s100000"), -1);
	drr_names_free(&x);
	assert_null(x.slot);
	free(names);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(empty_map_finds_nothing),
		cmocka_unit_test(add_then_find),
		cmocka_unit_test(a_second_add_keeps_the_first),
		cmocka_unit_test(grows_and_keeps_every_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
