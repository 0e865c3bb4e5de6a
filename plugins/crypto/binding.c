/*
 * binding.c - "drrun.crypto": the quick functions (strings.c) and the
 * file and key derivation jobs (stream.c, jobs.c) behind one module table.
 * Exports luaopen_drrun_crypto.
 */
#include "crypto.h"

#include <string.h>

#include <openssl/crypto.h>

/* ---- files and key derivation --------------------------------------------------- */

/* An integer option of the table at arg, or dflt; it must lie in [lo, hi]. */
static lua_Integer opt_int(lua_State *L, int arg, const char *field, lua_Integer dflt,
			   lua_Integer lo, lua_Integer hi, const char *range)
{
	if (!lua_istable(L, arg))
		return dflt;
	lua_getfield(L, arg, field);
	lua_Integer v = luaL_optinteger(L, -1, dflt);
	lua_pop(L, 1);
	luaL_argcheck(L, v >= lo && v <= hi, arg, range);
	return v;
}

static int opt_flag(lua_State *L, int arg, const char *field)
{
	if (!lua_istable(L, arg))
		return 0;
	lua_getfield(L, arg, field);
	int on = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return on;
}

/* The options only one direction has, refused in the other one. */
static void check_direction(lua_State *L, int kind)
{
	static const char *const enc_only[] = { "chunk", "prefix", "hash_output", NULL };
	static const char *const dec_only[] = { "offset", NULL };
	if (!lua_istable(L, 4))
		return;
	const char *const *other = kind == W_ENCRYPT ? dec_only : enc_only;
	for (int i = 0; other[i]; i++) {
		if (lua_getfield(L, 4, other[i]) != LUA_TNIL)
			luaL_argerror(L, 4,
				      lua_pushfstring(L, "%s is an option of %s_file only",
						      other[i],
						      kind == W_ENCRYPT ? "decrypt" : "encrypt"));
		lua_pop(L, 1);
	}
}

static int file_op(lua_State *L, int kind, const char *what)
{
	const unsigned char *key = crypto_check_key(L, 1);
	const char *src = luaL_checkstring(L, 2);
	const char *dst = luaL_checkstring(L, 3);
	lua_settop(L, 4); /* the options (or nil) at 4, what is pushed above */
	check_direction(L, kind);
	size_t aadlen, prefixlen;
	const char *aad = crypto_opt_string(L, 4, "aad", &aadlen);
	int aad_slot = lua_gettop(L);
	const char *prefix = crypto_opt_string(L, 4, "prefix", &prefixlen);
	int prefix_slot = lua_gettop(L);
	lua_Integer chunk = opt_int(L, 4, "chunk", CHUNK_DEFAULT, CHUNK_MIN, CHUNK_MAX,
				    "chunk must be between 1024 and 67108864 bytes");
	lua_Integer offset = opt_int(L, 4, "offset", 0, 0, LUA_MAXINTEGER,
				     "offset must be a byte count, 0 or more");
	int hash_output = opt_flag(L, 4, "hash_output");
	drr_task_check(L, what);
	if (drr_dry_run()) {
		return drr_push_dry_run(L, "would %s '%s' to '%s'",
					kind == W_ENCRYPT ? "encrypt" : "decrypt", src, dst);
	}
	const int slots[4] = { 2, 3, aad_slot, prefix_slot };
	struct work *w = crypto_work_new(L, kind, slots);
	memcpy(w->key, key, KEY_LEN);
	w->src = src;
	w->dst = dst;
	w->aad = (const unsigned char *)aad;
	w->aadlen = aadlen;
	w->prefix = (const unsigned char *)prefix;
	w->prefixlen = prefixlen;
	w->chunk = (uint32_t)chunk;
	w->offset = (uint64_t)offset;
	w->hash_output = hash_output;
	return crypto_work_start(L, w);
}

/* crypto.encrypt_file(key, src, dst [, { aad = "", chunk = 1 MiB, prefix = "",
 * hash_output = false }]): prefix is written to dst before the encrypted
 * file; hash_output adds output_sha256, the SHA-256 of all of dst */
static int l_encrypt_file(lua_State *L)
{
	return file_op(L, W_ENCRYPT, "crypto.encrypt_file");
}

/* crypto.decrypt_file(key, src, dst [, { aad = "", offset = 0 }]): the
 * encrypted file starts offset bytes into src (after a prefix) */
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
	const int slots[4] = { 1, 2, 0, 0 };
	struct work *w = crypto_work_new(L, W_DERIVE, slots);
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
