/*
 * libcrypto.c - the table behind drrun/libcrypto.h: libcrypto opened on the
 * first call (dl.c), once, from whichever thread gets there first (crypto's
 * jobs run on the thread pool).
 */
#define DRR_LIBCRYPTO_NO_REDIRECT
#include "drrun/libcrypto.h"

#include "drrun/plugin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static struct drr_libcrypto table;
static int loaded;
static char why[300];

static void load_once(void)
{
#define DRR_LIBCRYPTO_SYM(name) { #name, (void **)&table.name },
	static const struct drr_dl_sym syms[] = {
		DRR_LIBCRYPTO_FUNCS(DRR_LIBCRYPTO_SYM){ NULL, NULL },
	};
#undef DRR_LIBCRYPTO_SYM
	/* OpenSSL 3's ABI: the headers drrun is built with */
	static const char *const sonames[] = { "libcrypto.so.3", NULL };
	loaded = drr_dl_load(sonames, syms, why, sizeof why) == 0;
}

const struct drr_libcrypto *drr_libcrypto_load(char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, load_once);
	if (!loaded) {
		snprintf(err, errlen, "%s", why);
		return NULL;
	}
	return &table;
}

const struct drr_libcrypto *drr_libcrypto(void)
{
	char err[300];
	const struct drr_libcrypto *t = drr_libcrypto_load(err, sizeof err);
	if (!t) {
		fprintf(stderr, "drrun: %s (drrun needs OpenSSL 3's libcrypto: install libssl3)\n",
			err);
		exit(75);
	}
	return t;
}
