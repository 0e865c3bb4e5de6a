/*
 * test_state.c - the one vocabulary of step states (run/state.c): every
 * state has its own name, and RUNBOOKS.md's "Step states" table lists
 * exactly those names, so the live view, the summary, `status` and the
 * docs cannot drift apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/state.h"

#define NSTATES (DRR_INTERRUPTED + 1)

static void test_every_state_has_its_own_name(void **state)
{
	(void)state;
	for (int i = 0; i < NSTATES; i++) {
		const char *w = drr_state_word((enum drr_step_state)i);
		assert_non_null(w);
		if (!strcmp(w, "?") || !*w)
			fail_msg("state %d has no name", i);
		for (int k = 0; k < i; k++)
			if (!strcmp(w, drr_state_word((enum drr_step_state)k)))
				fail_msg("states %d and %d are both called '%s'", k, i, w);
	}
}

/* The names in the first column of the table under "### Step states". */
static int doc_states(char names[][40], int max)
{
	FILE *f = fopen("RUNBOOKS.md", "r");
	if (!f)
		fail_msg("cannot open RUNBOOKS.md (run from the repository root)");
	char line[1024];
	int in = 0, n = 0;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "### Step states", 15)) {
			in = 1;
			continue;
		}
		if (in && !strncmp(line, "#", 1))
			break;
		if (in && !strncmp(line, "| `", 3)) {
			char *end = strchr(line + 3, '`');
			if (end && n < max) {
				snprintf(names[n], sizeof names[n], "%.*s", (int)(end - line - 3),
					 line + 3);
				n++;
			}
		}
	}
	fclose(f);
	return n;
}

static void test_runbooks_md_lists_the_same_names(void **state)
{
	(void)state;
	char names[64][40];
	int n = doc_states(names, 64);
	if (n != NSTATES)
		fail_msg("RUNBOOKS.md lists %d step states, the engine has %d", n, NSTATES);
	for (int i = 0; i < NSTATES; i++) {
		const char *w = drr_state_word((enum drr_step_state)i);
		int found = 0;
		for (int k = 0; k < n && !found; k++)
			found = !strcmp(names[k], w);
		if (!found)
			fail_msg("RUNBOOKS.md's Step states lacks '%s'", w);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_state_has_its_own_name),
		cmocka_unit_test(test_runbooks_md_lists_the_same_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
