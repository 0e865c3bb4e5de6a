/*
 * libssh2.c - the table behind ssh/libssh2.h: libssh2 opened when the
 * module is required (drr_dl_load), with libcrypto, which its SFTP hashing
 * and host key checks use too.
 */
#define SSH_LIBSSH2_NO_REDIRECT
#include "ssh/libssh2.h"

#include "drrun/libcrypto.h"
#include "drrun/plugin.h"

#include <stdio.h>

struct ssh_libssh2 ssh_lib;

int ssh_libssh2_load(char *err, size_t errlen)
{
	static int loaded;
	if (loaded)
		return 0;
	if (!drr_libcrypto_load(err, errlen))
		return -1;
#define SSH_LIBSSH2_SYM(name) { #name, (void **)&ssh_lib.name },
	static const struct drr_dl_sym syms[] = {
		SSH_LIBSSH2_FUNCS(SSH_LIBSSH2_SYM){ NULL, NULL },
	};
#undef SSH_LIBSSH2_SYM
	static const char *const sonames[] = { "libssh2.so.1", NULL };
	if (drr_dl_load(sonames, syms, err, errlen) < 0)
		return -1;
	loaded = 1;
	return 0;
}
