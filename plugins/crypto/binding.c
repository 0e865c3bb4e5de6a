/*
 * binding.c - "drrun.crypto": the quick functions (strings.c) and the
 * file and key derivation jobs (stream.c, jobs.c) behind one module table.
 * Exports luaopen_drrun_crypto.
 */
#include "crypto.h"

#include <string.h>

#include <openssl/crypto.h>

/* ---- files and key derivation --------------------------------------------------- */

static int file_op(lua_State *L, int kind, const char *what)
{
	const unsigned char *key = crypto_check_key(L, 1);
	const char *src = luaL_checkstring(L, 2);
	const char *dst = luaL_checkstring(L, 3);
	size_t aadlen;
	const char *aad = crypto_opt_string(L, 4, "aad", &aadlen);
	int aad_slot = lua_gettop(L);
	lua_Integer chunk = CHUNK_DEFAULT;
	if (kind == W_ENCRYPT && lua_istable(L, 4)) {
		lua_getfield(L, 4, "chunk");
		chunk = luaL_optinteger(L, -1, CHUNK_DEFAULT);
		lua_pop(L, 1);
		luaL_argcheck(L, chunk >= CHUNK_MIN && chunk <= CHUNK_MAX, 4,
			      "chunk must be between 1024 and 67108864 bytes");
	}
	drr_task_check(L, what);
	if (drr_dry_run()) {
		return drr_push_dry_run(L, "would %s '%s' to '%s'",
					kind == W_ENCRYPT ? "encrypt" : "decrypt", src, dst);
	}
	struct work *w = crypto_work_new(L, kind, 2, 3, aad_slot);
	memcpy(w->key, key, KEY_LEN);
	w->src = src;
	w->dst = dst;
	w->aad = (const unsigned char *)aad;
	w->aadlen = aadlen;
	w->chunk = (uint32_t)chunk;
	return crypto_work_start(L, w);
}

/* crypto.encrypt_file(key, src, dst [, { aad = "", chunk = 1 MiB }]) */
static int l_encrypt_file(lua_State *L)
{
	return file_op(L, W_ENCRYPT, "crypto.encrypt_file");
}

/* crypto.decrypt_file(key, src, dst [, { aad = "" }]) */
static int l_decrypt_file(lua_State *L)
{
	return file_op(L, W_DECRYPT, "crypto.decrypt_file");
}

/* crypto.derive_key(passphrase, salt [, iterations = 600000]) -> 32 bytes */
static int l_derive_key(lua_State *L)
{
	size_t plen, slen;
	const char *pass = luaL_checklstring(L, 1, &plen);
	const char *salt = luaL_checklstring(L, 2, &slen);
	lua_Integer iter = luaL_optinteger(L, 3, KDF_DEFAULT_ITER);
	luaL_argcheck(L, iter >= 1 && iter <= INT32_MAX, 3, "iterations must be at least 1");
	drr_task_check(L, "crypto.derive_key");
	struct work *w = crypto_work_new(L, W_DERIVE, 1, 2, 0);
	w->pass = (const unsigned char *)pass;
	w->passlen = plen;
	w->salt = (const unsigned char *)salt;
	w->saltlen = slen;
	w->iterations = (uint32_t)iter;
	return crypto_work_start(L, w);
}

int luaopen_drrun_crypto(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "encrypt_file", l_encrypt_file },
		{ "decrypt_file", l_decrypt_file },
		{ "derive_key", l_derive_key },
		{ NULL, NULL },
	};
	static const luaL_Reg work_meta[] = {
		{ "__gc", crypto_work_gc },
		{ NULL, NULL },
	};
	char err[300];
	if (!drr_libcrypto_load(err, sizeof err))
		return luaL_error(L, "drrun.crypto: %s (install libssl3)", err);
	luaL_newmetatable(L, WORK_MT);
	luaL_setfuncs(L, work_meta, 0);
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	luaL_setfuncs(L, crypto_string_fns, 0);
	return 1;
}
