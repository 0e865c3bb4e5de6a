/*
 * test_graph.c - drr_graph_resolve (names, duplicates, unknown dependencies,
 * cycles, all reported as "file:line: message") and drr_graph_levels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runbook/runbook.h"

/* A small graph builder: node(g, "b", 7, "a", "c", NULL). */
struct g {
	struct drr_gnode n[16];
	int count;
	struct drr_diag d;
};

static void node(struct g *g, const char *name, int line, ...)
{
	struct drr_gnode *x = &g->n[g->count++];
	va_list ap;
	const char *dep;
	x->name = name;
	x->line = line;
	x->after = calloc(8, sizeof *x->after);
	va_start(ap, line);
	while ((dep = va_arg(ap, const char *)) != NULL)
		x->after[x->nafter++] = dep;
	va_end(ap);
}

static void g_free(struct g *g)
{
	for (int i = 0; i < g->count; i++) {
		free(g->n[i].after);
		free(g->n[i].deps);
	}
	drr_diag_free(&g->d);
}

static int resolve(struct g *g)
{
	return drr_graph_resolve(g->n, g->count, "rb.lua", &g->d);
}

static void dump(const struct g *g)
{
	for (int i = 0; i < g->d.n; i++)
		print_message("  diag: %s\n", g->d.msgs[i]);
}

/* The diagnostic containing `needle`, or fail. */
static const char *diag_with(const struct g *g, const char *needle)
{
	for (int i = 0; i < g->d.n; i++)
		if (strstr(g->d.msgs[i], needle))
			return g->d.msgs[i];
	dump(g);
	fail_msg("no diagnostic contains \"%s\"", needle);
	return NULL;
}

static void test_ok_dag(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "a", 1, NULL);
	node(&g, "b", 2, "a", NULL);
	node(&g, "c", 3, "a", "b", NULL);
	assert_int_equal(resolve(&g), 0);
	assert_int_equal(g.d.n, 0);
	assert_int_equal(g.n[0].ndeps, 0);
	assert_int_equal(g.n[1].ndeps, 1);
	assert_int_equal(g.n[1].deps[0], 0);
	assert_int_equal(g.n[2].ndeps, 2);
	assert_true((g.n[2].deps[0] == 0 && g.n[2].deps[1] == 1) ||
		    (g.n[2].deps[0] == 1 && g.n[2].deps[1] == 0));
	g_free(&g);
}

static void test_dependency_listed_twice(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "a", 1, NULL);
	node(&g, "b", 2, "a", "a", NULL);
	assert_int_equal(resolve(&g), 0);
	assert_int_equal(g.n[1].ndeps, 1);
	g_free(&g);
}

static void test_unknown_dep_did_you_mean(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "promote-db", 3, NULL);
	node(&g, "flip-dns", 9, "promote-bd", NULL);
	assert_int_equal(resolve(&g), 1);
	assert_int_equal(g.d.n, 1);
	const char *m = diag_with(&g, "unknown dependency");
	assert_string_equal(m, "rb.lua:9: step 'flip-dns': unknown dependency 'promote-bd' "
			       "in after (did you mean 'promote-db'?)");
	g_free(&g);
}

static void test_unknown_dep_no_suggestion(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "a", 1, NULL);
	node(&g, "b", 4, "completely-different", NULL);
	assert_int_equal(resolve(&g), 1);
	const char *m = diag_with(&g, "rb.lua:4: step 'b': unknown dependency "
				      "'completely-different' in after");
	assert_null(strstr(m, "did you mean"));
	g_free(&g);
}

static void test_duplicate(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "a", 2, NULL);
	node(&g, "b", 5, "a", NULL);
	node(&g, "a", 8, NULL);
	assert_true(resolve(&g) >= 1);
	const char *m = diag_with(&g, "duplicate step name 'a'");
	assert_true(strncmp(m, "rb.lua:8: ", 10) == 0); /* the second definition */
	g_free(&g);
}

static void test_self_cycle(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "a", 1, NULL);
	node(&g, "loop", 6, "loop", NULL);
	assert_int_equal(resolve(&g), 1);
	assert_int_equal(g.d.n, 1);
	assert_string_equal(g.d.msgs[0], "rb.lua:6: dependency cycle: loop -> loop");
	g_free(&g);
}

static void test_three_cycle(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "start", 1, NULL);
	node(&g, "a", 3, "start", "c", NULL);
	node(&g, "b", 5, "a", NULL);
	node(&g, "c", 7, "b", NULL);
	node(&g, "end", 9, "c", NULL);
	assert_int_equal(resolve(&g), 1);
	assert_int_equal(g.d.n, 1);
	/* printed in run order (a before b, b before c), from any member */
	const char *m = diag_with(&g, "dependency cycle: ");
	const char *cyc = strstr(m, "dependency cycle: ") + strlen("dependency cycle: ");
	if (strcmp(cyc, "a -> b -> c -> a") != 0 && strcmp(cyc, "b -> c -> a -> b") != 0 &&
	    strcmp(cyc, "c -> a -> b -> c") != 0)
		fail_msg("cycle printed as \"%s\"", cyc);
	assert_true(strncmp(m, "rb.lua:", 7) == 0);
	assert_null(strstr(m, "start"));
	assert_null(strstr(m, "-> end"));
	assert_null(strstr(m, ": end ->"));
	g_free(&g);
}

static void test_two_cycles(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "a", 1, "b", NULL);
	node(&g, "b", 2, "a", NULL);
	node(&g, "x", 3, "y", NULL);
	node(&g, "y", 4, "x", NULL);
	assert_int_equal(resolve(&g), 2);
	assert_int_equal(g.d.n, 2);
	int ab = 0, xy = 0;
	for (int i = 0; i < 2; i++) {
		ab += strstr(g.d.msgs[i], "a -> b -> a") || strstr(g.d.msgs[i], "b -> a -> b");
		xy += strstr(g.d.msgs[i], "x -> y -> x") || strstr(g.d.msgs[i], "y -> x -> y");
	}
	if (ab != 1 || xy != 1) {
		dump(&g);
		fail_msg("want each cycle reported once");
	}
	g_free(&g);
}

static void test_all_errors_reported(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "a", 1, NULL);
	node(&g, "a", 2, NULL);
	node(&g, "b", 3, "nope", NULL);
	node(&g, "c", 4, "zzz-unknown", NULL);
	assert_int_equal(resolve(&g), 3);
	assert_int_equal(g.d.n, 3);
	diag_with(&g, "duplicate step name 'a'");
	diag_with(&g, "'nope'");
	diag_with(&g, "'zzz-unknown'");
	g_free(&g);
}

static void test_levels_diamond(void **state)
{
	(void)state;
	struct g g = { 0 };
	node(&g, "d", 4, "b", "c", NULL); /* declared first on purpose */
	node(&g, "a", 1, NULL);
	node(&g, "b", 2, "a", NULL);
	node(&g, "c", 3, "a", NULL);
	assert_int_equal(resolve(&g), 0);
	int level[4];
	drr_graph_levels(g.n, g.count, level);
	assert_int_equal(level[1], 0); /* a */
	assert_int_equal(level[2], 1); /* b */
	assert_int_equal(level[3], 1); /* c */
	assert_int_equal(level[0], 2); /* d */
	g_free(&g);
}

static void test_levels_uneven(void **state)
{
	(void)state;
	/* e waits for a (level 0) and for the end of a 3-chain: level is the longest path */
	struct g g = { 0 };
	node(&g, "a", 1, NULL);
	node(&g, "x1", 2, NULL);
	node(&g, "x2", 3, "x1", NULL);
	node(&g, "x3", 4, "x2", NULL);
	node(&g, "e", 5, "a", "x3", NULL);
	node(&g, "lonely", 6, NULL);
	assert_int_equal(resolve(&g), 0);
	int level[6];
	drr_graph_levels(g.n, g.count, level);
	assert_int_equal(level[0], 0);
	assert_int_equal(level[3], 2);
	assert_int_equal(level[4], 3);
	assert_int_equal(level[5], 0);
	g_free(&g);
}

#define CHAIN 1000

static void test_long_chain(void **state)
{
	(void)state;
	/* declared in reverse: node i waits for node i+1; the last one is the root */
	struct drr_gnode *n = calloc(CHAIN, sizeof *n);
	char(*names)[16] = calloc(CHAIN, sizeof *names);
	const char **after = calloc(CHAIN, sizeof *after);
	struct drr_diag d = { 0 };
	for (int i = 0; i < CHAIN; i++) {
		snprintf(names[i], sizeof names[i], "s%d", i);
		n[i].name = names[i];
		n[i].line = i + 1;
	}
	for (int i = 0; i + 1 < CHAIN; i++) {
		after[i] = names[i + 1];
		n[i].after = &after[i];
		n[i].nafter = 1;
	}
	assert_int_equal(drr_graph_resolve(n, CHAIN, "rb.lua", &d), 0);
	int *level = calloc(CHAIN, sizeof *level);
	drr_graph_levels(n, CHAIN, level);
	for (int i = 0; i < CHAIN; i++)
		if (level[i] != CHAIN - 1 - i)
			fail_msg("level[%d] = %d, want %d", i, level[i], CHAIN - 1 - i);

	/* close the chain into one 1000-long cycle: reported once, no crash */
	after[CHAIN - 1] = names[0];
	n[CHAIN - 1].after = &after[CHAIN - 1];
	n[CHAIN - 1].nafter = 1;
	assert_int_equal(drr_graph_resolve(n, CHAIN, "rb.lua", &d), 1);
	assert_int_equal(d.n, 1);
	assert_non_null(strstr(d.msgs[0], "dependency cycle: "));

	for (int i = 0; i < CHAIN; i++)
		free(n[i].deps);
	free(level);
	free(after);
	free(names);
	free(n);
	drr_diag_free(&d);
}

static void test_empty_graph(void **state)
{
	(void)state;
	struct drr_diag d = { 0 };
	int level[1] = { 7 };
	assert_int_equal(drr_graph_resolve(NULL, 0, "rb.lua", &d), 0);
	drr_graph_levels(NULL, 0, level);
	assert_int_equal(d.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_dag),
		cmocka_unit_test(test_dependency_listed_twice),
		cmocka_unit_test(test_unknown_dep_did_you_mean),
		cmocka_unit_test(test_unknown_dep_no_suggestion),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_self_cycle),
		cmocka_unit_test(test_three_cycle),
		cmocka_unit_test(test_two_cycles),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_levels_diamond),
		cmocka_unit_test(test_levels_uneven),
		cmocka_unit_test(test_long_chain),
		cmocka_unit_test(test_empty_graph),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
