/*
 * graph.c - the step dependency graph: name resolution, duplicate and
 * unknown-dependency checks, cycle reporting, and topological levels.
 * Pure C over struct drr_gnode; no Lua, so it is unit-tested directly.
 */
#include "runbook/runbook.h"

#include <stdlib.h>
#include <string.h>

/* Iterative DFS colouring; on a back edge, print the cycle from the stack. */
static int report_cycles(struct drr_gnode *nodes, int n, const char *file, struct drr_diag *d)
{
	enum {
		WHITE,
		GREY,
		BLACK
	};
	int *color = drr_xcalloc((size_t)n, sizeof *color);
	int *stack = drr_xmalloc((size_t)n * sizeof *stack);
	int *edge = drr_xmalloc((size_t)n * sizeof *edge);
	int errors = 0;

	for (int root = 0; root < n; root++) {
		if (color[root] != WHITE)
			continue;
		int sp = 0;
		stack[sp] = root;
		edge[sp] = 0;
		color[root] = GREY;
		while (sp >= 0) {
			int v = stack[sp];
			if (edge[sp] < nodes[v].ndeps) {
				int w = nodes[v].deps[edge[sp]++];
				if (color[w] == WHITE) {
					color[w] = GREY;
					stack[++sp] = w;
					edge[sp] = 0;
				} else if (color[w] == GREY) {
					/* the cycle is w ... v -> w on the stack */
					struct drr_buf b = { 0 };
					int k = sp;
					while (stack[k] != w)
						k--;
					/* deps point backwards in time: print in run order */
					drr_buf_adds(&b, nodes[w].name);
					for (int i = sp; i >= k; i--) {
						drr_buf_adds(&b, " -> ");
						drr_buf_adds(&b, nodes[stack[i]].name);
					}
					drr_diag_add(d, file, nodes[w].line, "dependency cycle: %s",
						     b.data);
					drr_buf_free(&b);
					errors++;
				}
			} else {
				color[v] = BLACK;
				sp--;
			}
		}
	}
	free(color);
	free(stack);
	free(edge);
	return errors;
}

int drr_graph_resolve(struct drr_gnode *nodes, int n, const char *file, struct drr_diag *d)
{
	int errors = 0;
	struct drr_names x; /* resolving is O(nodes + edges), not a scan per name */
	drr_names_init(&x, (size_t)n);

	for (int i = 0; i < n; i++) {
		int j = drr_names_add(&x, nodes[i].name, i);
		if (j >= 0) {
			drr_diag_add(d, file, nodes[i].line,
				     "duplicate step name '%s' (first defined at line %d)",
				     nodes[i].name, nodes[j].line);
			errors++;
		}
	}
	for (int i = 0; i < n; i++) {
		free(nodes[i].deps);
		nodes[i].deps = drr_xcalloc((size_t)nodes[i].nafter, sizeof(int));
		nodes[i].ndeps = 0;
		for (int a = 0; a < nodes[i].nafter; a++) {
			const char *want = nodes[i].after[a];
			int j = drr_names_find(&x, want);
			if (j < 0) {
				const char *best = NULL;
				int bd = 3;
				for (int k = 0; k < n; k++) {
					int dist = drr_edit_distance(want, nodes[k].name);
					if (dist < bd) {
						bd = dist;
						best = nodes[k].name;
					}
				}
				if (best)
					drr_diag_add(d, file, nodes[i].line,
						     "step '%s': unknown dependency '%s' in after "
						     "(did you mean '%s'?)",
						     nodes[i].name, want, best);
				else
					drr_diag_add(d, file, nodes[i].line,
						     "step '%s': unknown dependency '%s' in after",
						     nodes[i].name, want);
				errors++;
				continue;
			}
			if (j == i) {
				drr_diag_add(d, file, nodes[i].line, "dependency cycle: %s -> %s",
					     want, want);
				errors++;
				continue;
			}
			int dup = 0;
			for (int k = 0; k < nodes[i].ndeps; k++)
				dup |= nodes[i].deps[k] == j;
			if (!dup)
				nodes[i].deps[nodes[i].ndeps++] = j;
		}
	}
	drr_names_free(&x);
	errors += report_cycles(nodes, n, file, d);
	return errors;
}

void drr_graph_levels(const struct drr_gnode *nodes, int n, int *level)
{
	/* Kahn's algorithm over reverse edges: O(nodes + edges). */
	int *indeg = drr_xcalloc((size_t)n, sizeof *indeg);
	int *first = drr_xmalloc((size_t)n * sizeof *first);
	int nedges = 0;
	for (int i = 0; i < n; i++) {
		indeg[i] = nodes[i].ndeps;
		nedges += nodes[i].ndeps;
		first[i] = -1;
		level[i] = -1;
	}
	int *next = drr_xmalloc((size_t)(nedges ? nedges : 1) * sizeof *next);
	int *to = drr_xmalloc((size_t)(nedges ? nedges : 1) * sizeof *to);
	int e = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < nodes[i].ndeps; k++) {
			int d = nodes[i].deps[k];
			to[e] = i;
			next[e] = first[d];
			first[d] = e++;
		}
	int *queue = drr_xmalloc((size_t)n * sizeof *queue);
	int qh = 0, qt = 0;
	for (int i = 0; i < n; i++)
		if (indeg[i] == 0) {
			level[i] = 0;
			queue[qt++] = i;
		}
	while (qh < qt) {
		int v = queue[qh++];
		for (int x = first[v]; x >= 0; x = next[x]) {
			int w = to[x];
			if (level[v] + 1 > level[w])
				level[w] = level[v] + 1;
			if (--indeg[w] == 0)
				queue[qt++] = w;
		}
	}
	free(indeg);
	free(first);
	free(next);
	free(to);
	free(queue);
}
