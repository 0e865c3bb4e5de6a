/*
 * test_dl.c - dl.c, libraries opened on first use: a library that is not
 * there and a symbol it lacks give one clear line each and set no slot;
 * a library that is there fills every slot, and the pointers work.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "drrun/plugin.h"

static void test_missing_library(void **state)
{
	(void)state;
	void *slot = NULL;
	const struct drr_dl_sym syms[] = { { "strlen", &slot }, { NULL, NULL } };
	const char *const names[] = { "libdrrun-no-such.so.9", "libdrrun-no-such.so", NULL };
	char err[300] = "";
	assert_int_equal(drr_dl_load(names, syms, err, sizeof err), -1);
	assert_non_null(strstr(err, "cannot load libdrrun-no-such.so.9"));
	assert_null(slot);
}

static void test_missing_symbol(void **state)
{
	(void)state;
	void *a = NULL, *b = NULL;
	const struct drr_dl_sym syms[] = { { "strlen", &a },
					   { "drrun_no_such_function", &b },
					   { NULL, NULL } };
	const char *const names[] = { "libc.so.6", NULL };
	char err[300] = "";
	assert_int_equal(drr_dl_load(names, syms, err, sizeof err), -1);
	assert_non_null(strstr(err, "libc.so.6 has no drrun_no_such_function"));
	assert_null(a); /* all or nothing */
	assert_null(b);
}

static void test_loads_and_resolves(void **state)
{
	(void)state;
	size_t (*my_strlen)(const char *) = NULL;
	int (*my_abs)(int) = NULL;
	const struct drr_dl_sym syms[] = { { "strlen", (void **)&my_strlen },
					   { "abs", (void **)&my_abs },
					   { NULL, NULL } };
	const char *const names[] = { "libdrrun-no-such.so.9", "libc.so.6", NULL };
	char err[300] = "";
	assert_int_equal(drr_dl_load(names, syms, err, sizeof err), 0);
	assert_non_null(my_strlen);
	assert_int_equal(my_strlen("four"), 4);
	assert_int_equal(my_abs(-3), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_library),
		cmocka_unit_test(test_missing_symbol),
		cmocka_unit_test(test_loads_and_resolves),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
