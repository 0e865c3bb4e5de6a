/*
 * names.c - a name -> index map (open addressing, FNV-1a, linear probing),
 * for the places that look steps up by name: the dependency graph, and a
 * past run read back from its journal.  The names are borrowed: they must
 * outlive the map.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static size_t fnv1a(const char *s)
{
	size_t h = (size_t)1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * (size_t)1099511628211ull;
	return h;
}

void drr_names_init(struct drr_names *x, size_t hint)
{
	size_t cap = 16;
	while (cap < hint * 2)
		cap <<= 1;
	x->slot = drr_xcalloc(cap, sizeof *x->slot);
	x->mask = cap - 1;
	x->used = 0;
}

void drr_names_free(struct drr_names *x)
{
	free(x->slot);
	memset(x, 0, sizeof *x);
}

static struct drr_name_slot *probe(const struct drr_names *x, const char *name)
{
	for (size_t h = fnv1a(name) & x->mask;; h = (h + 1) & x->mask) {
		struct drr_name_slot *s = &x->slot[h];
		if (!s->name || strcmp(s->name, name) == 0)
			return s;
	}
}

int drr_names_find(const struct drr_names *x, const char *name)
{
	if (!x->slot)
		return -1;
	const struct drr_name_slot *s = probe(x, name);
	return s->name ? s->index : -1;
}

int drr_names_add(struct drr_names *x, const char *name, int index)
{
	if (!x->slot)
		drr_names_init(x, 8);
	struct drr_name_slot *s = probe(x, name);
	if (s->name)
		return s->index;
	if ((x->used + 1) * 2 > x->mask + 1) { /* keep the load under 1/2 */
		struct drr_names big;
		drr_names_init(&big, x->mask + 1);
		for (size_t i = 0; i <= x->mask; i++)
			if (x->slot[i].name)
				*probe(&big, x->slot[i].name) = x->slot[i];
		big.used = x->used;
		free(x->slot);
		*x = big;
		s = probe(x, name);
	}
	s->name = name;
	s->index = index;
	x->used++;
	return -1;
}
