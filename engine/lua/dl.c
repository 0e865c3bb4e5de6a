/*
 * dl.c - libraries opened when a module is first required, not at start-up
 * (drrun/plugin.h, drr_dl_load).  libcurl pulls some thirty libraries of its
 * own (TLS, GSS-API, LDAP, IDN, compression...): mapping and relocating
 * them was most of drrun's start-up, for runs and verbs that never make an
 * HTTP request.  Depends on the C library's dlopen only.
 */
#include "drrun/plugin.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int drr_dl_load(const char *const *sonames, const struct drr_dl_sym *syms, char *err, size_t errlen)
{
	void *h = NULL;
	const char *name = sonames[0];
	snprintf(err, errlen, "cannot load %s: no library named", name);
	for (int i = 0; sonames[i] && !h; i++) {
		dlerror();
		h = dlopen(sonames[i], RTLD_NOW | RTLD_LOCAL);
		if (h) {
			name = sonames[i];
		} else if (i == 0) { /* the first is the one to report; the next
				      * dlopen frees dlerror's string */
			const char *why = dlerror();
			snprintf(err, errlen, "cannot load %s: %s", name,
				 why ? why : "unknown error");
		}
	}
	if (!h)
		return -1;
	int n = 0;
	while (syms[n].name)
		n++;
	void *found[n > 0 ? n : 1];
	for (int i = 0; i < n; i++) {
		found[i] = dlsym(h, syms[i].name);
		if (!found[i]) {
			snprintf(err, errlen,
				 "%s has no %s: it is older than the one drrun was built for", name,
				 syms[i].name);
			dlclose(h);
			return -1;
		}
	}
	for (int i = 0; i < n; i++)
		*syms[i].slot = found[i];
	return 0; /* the library stays loaded for the life of the process */
}
