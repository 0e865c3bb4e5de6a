/*
 * strings.c - drrun.crypto: hashes, MACs, encodings and AES-256-GCM over
 * OpenSSL 3 (libcrypto), for backups a runbook must protect.
 *
 *   quick, callable anywhere:   sha256, sha256_hex, hmac_sha256,
 *     hmac_sha256_hex, equal, random, key, hex, unhex, base64, unbase64,
 *     encrypt, decrypt (strings)
 *   slow, inside a step only:   encrypt_file, decrypt_file, derive_key
 *
 * The slow ones run in libuv's thread pool while the calling step is
 * suspended; the loop keeps serving every other step.  Their state is a full
 * userdata anchored in the registry until the pool's after-work callback
 * has run, so a step cancelled while its work is still on a pool thread
 * frees nothing early, and a cancelled file operation stops between chunks
 * and removes its temporary output.  The exact formats and error tokens are
 * in docs-pending/crypto.md and summed up below.  The pool jobs are in
 * jobs.c and stream.c; binding.c makes the module table.
 *
 * String blob:  0x01 || nonce(12) || ciphertext || tag(16);
 *               AAD = 0x01 || opts.aad.
 * File:         header(24) = "DRRUNENC" || 0x01 || 00 00 00 || chunk size
 *               (u32 BE) || nonce prefix(8); then per chunk i (from 0) its
 *               ciphertext || tag(16), every chunk `chunk size` bytes of
 *               plaintext except the last (1..chunk size; 0 only when the
 *               whole file is empty); nonce = prefix ||
 *               i (u32 BE); AAD = header || i (u32 BE) || last (1 byte: 1 for
 *               the final chunk, else 0) || opts.aad.
 *
 * OpenSSL is never touched at load time: EVP's first use loads provider
 * tables (~2 ms), paid only by runbooks that call this module.
 */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* ---- small helpers --------------------------------------------------------- */

void crypto_put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

uint32_t crypto_get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void crypto_to_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
}

/* The last OpenSSL error on this thread, as text; clears the queue. */
const char *crypto_ossl_error(char *buf, size_t n)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, buf, n);
	else
		snprintf(buf, n, "unknown OpenSSL error");
	ERR_clear_error();
	return buf;
}

static int fail_ossl(lua_State *L, const char *what)
{
	char e[256];
	return drr_push_fail(L, "crypto", "%s failed: %s", what, crypto_ossl_error(e, sizeof e));
}

/* The key at arg: a string of exactly 32 bytes, or raise. */
const unsigned char *crypto_check_key(lua_State *L, int arg)
{
	size_t n;
	const char *k = luaL_checklstring(L, arg, &n);
	if (n != KEY_LEN)
		luaL_argerror(L, arg,
			      lua_pushfstring(L,
					      "key must be %d bytes, got %I "
					      "(use crypto.key() or crypto.derive_key())",
					      KEY_LEN, (lua_Integer)n));
	return (const unsigned char *)k;
}

/* Push opts[field] of the optional options table at arg: a string, or ""
 * when absent.  It stays on the stack, so the returned pointer stays valid.
 * [-0, +1, e] */
const char *crypto_opt_string(lua_State *L, int arg, const char *field, size_t *len)
{
	if (lua_isnoneornil(L, arg)) {
		lua_pushliteral(L, "");
	} else {
		luaL_checktype(L, arg, LUA_TTABLE);
		int t = lua_getfield(L, arg, field);
		if (t == LUA_TNIL) {
			lua_pop(L, 1);
			lua_pushliteral(L, "");
		} else if (t != LUA_TSTRING) {
			luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a string", field));
		}
	}
	return lua_tolstring(L, -1, len);
}

static int opt_bool(lua_State *L, int arg, const char *field, int dflt)
{
	if (lua_isnoneornil(L, arg))
		return dflt;
	luaL_checktype(L, arg, LUA_TTABLE);
	int t = lua_getfield(L, arg, field);
	int v = dflt;
	if (t == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (t != LUA_TNIL)
		luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a boolean", field));
	lua_pop(L, 1);
	return v;
}

/* ---- hashes, MACs, comparison, randomness ------------------------------------ */

static int digest(lua_State *L, int hex)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL))
		return fail_ossl(L, "SHA-256");
	if (hex) {
		char out[2 * EVP_MAX_MD_SIZE];
		crypto_to_hex(md, mdlen, out);
		lua_pushlstring(L, out, 2 * mdlen);
	} else {
		lua_pushlstring(L, (const char *)md, mdlen);
	}
	return 1;
}

static int l_sha256(lua_State *L)
{
	return digest(L, 0);
}

static int l_sha256_hex(lua_State *L)
{
	return digest(L, 1);
}

static int hmac(lua_State *L, int hex)
{
	size_t klen, n;
	const char *key = luaL_checklstring(L, 1, &klen);
	const char *s = luaL_checklstring(L, 2, &n);
	luaL_argcheck(L, klen <= INT_MAX, 1, "key too long");
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)s, n, md, &mdlen))
		return fail_ossl(L, "HMAC-SHA256");
	if (hex) {
		char out[2 * EVP_MAX_MD_SIZE];
		crypto_to_hex(md, mdlen, out);
		lua_pushlstring(L, out, 2 * mdlen);
	} else {
		lua_pushlstring(L, (const char *)md, mdlen);
	}
	return 1;
}

static int l_hmac_sha256(lua_State *L)
{
	return hmac(L, 0);
}

static int l_hmac_sha256_hex(lua_State *L)
{
	return hmac(L, 1);
}

/* Constant time in the content: the time depends on #a only.  Different
 * lengths compare a with itself and then answer false. */
static int l_equal(lua_State *L)
{
	size_t la, lb;
	const char *a = luaL_checklstring(L, 1, &la);
	const char *b = luaL_checklstring(L, 2, &lb);
	int same_len = la == lb;
	int diff = CRYPTO_memcmp(a, same_len ? b : a, la);
	lua_pushboolean(L, same_len & (diff == 0));
	return 1;
}

static int push_random(lua_State *L, size_t n)
{
	luaL_Buffer b;
	unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, n);
	if (n > 0 && RAND_bytes(p, (int)n) != 1)
		return fail_ossl(L, "RAND_bytes");
	luaL_pushresultsize(&b, n);
	return 1;
}

static int l_random(lua_State *L)
{
	lua_Integer n = luaL_checkinteger(L, 1);
	luaL_argcheck(L, n >= 0 && n <= RANDOM_MAX, 1, "must be between 0 and 1048576");
	return push_random(L, (size_t)n);
}

static int l_key(lua_State *L)
{
	return push_random(L, KEY_LEN);
}

/* ---- hex and base64 ------------------------------------------------------------ */

static int l_hex(lua_State *L)
{
	size_t n;
	const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, 2 * n);
	crypto_to_hex(s, n, p);
	luaL_pushresultsize(&b, 2 * n);
	return 1;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int l_unhex(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	if (n % 2)
		return drr_push_fail(L, "invalid", "hex string has an odd length (%zu)", n);
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, n / 2);
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);
		if (hi < 0 || lo < 0)
			return drr_push_fail(L, "invalid", "not a hex digit at offset %zu",
					     hi < 0 ? i : i + 1);
		p[i / 2] = (char)(hi << 4 | lo);
	}
	luaL_pushresultsize(&b, n / 2);
	return 1;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* crypto.base64(s [, { url = false, pad = not url }]) */
static int l_base64(lua_State *L)
{
	size_t n;
	const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
	int url = opt_bool(L, 2, "url", 0);
	int pad = opt_bool(L, 2, "pad", !url);
	const char *abc = url ? B64URL : B64;
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, (n + 2) / 3 * 4), *o = p;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		*o++ = abc[(v >> 6) & 63];
		*o++ = abc[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;
		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		if (pad) {
			*o++ = '=';
			*o++ = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		*o++ = abc[(v >> 6) & 63];
		if (pad)
			*o++ = '=';
	}
	luaL_pushresultsize(&b, (size_t)(o - p));
	return 1;
}

static int b64val(int c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Strict: only the chosen alphabet, no whitespace, padding optional but
 * correct when present, unused trailing bits zero (one encoding per value). */
static int l_unbase64(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	int url = opt_bool(L, 2, "url", 0);
	size_t m = n, pad = 0;
	while (m > 0 && s[m - 1] == '=' && pad < 2) {
		m--;
		pad++;
	}
	if (m % 4 == 1 || (pad && (n % 4 || pad != (4 - m % 4) % 4)))
		return drr_push_fail(L, "invalid", "base64 string has a bad length or padding");
	luaL_Buffer b;
	char *p = luaL_buffinitsize(L, &b, m / 4 * 3 + 2), *o = p;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < m; i++) {
		int v = b64val((unsigned char)s[i], url);
		if (v < 0)
			return drr_push_fail(L, "invalid", "not a base64%s character at offset %zu",
					     url ? "url" : "", i);
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return drr_push_fail(L, "invalid", "base64 string has non-zero trailing bits");
	luaL_pushresultsize(&b, (size_t)(o - p));
	return 1;
}

/* Feed n bytes to the cipher in int-sized pieces (out NULL: AAD). */
int crypto_gcm_update(EVP_CIPHER_CTX *cx, unsigned char *out, const unsigned char *in, size_t n)
{
	while (n > 0) {
		int step = n > (1u << 30) ? (1 << 30) : (int)n, outl;
		if (!EVP_CipherUpdate(cx, out, &outl, in, step))
			return 0;
		in += step;
		if (out)
			out += step;
		n -= (size_t)step;
	}
	return 1;
}

/* One AES-256-GCM message with the key already set in cx.  Encrypting
 * writes the tag to tag; decrypting checks it.  in and out may be the same
 * buffer.  Returns 1, or 0 (decrypting: authentication failed). */
int crypto_gcm_run(EVP_CIPHER_CTX *cx, int enc, const unsigned char nonce[NONCE_LEN],
		   const struct piece *aad, int naad, unsigned char *out, const unsigned char *in,
		   size_t n, unsigned char tag[TAG_LEN])
{
	int outl;
	if (!EVP_CipherInit_ex(cx, NULL, NULL, NULL, nonce, enc))
		return 0;
	for (int i = 0; i < naad; i++)
		if (!crypto_gcm_update(cx, NULL, aad[i].p, aad[i].n))
			return 0;
	if (!crypto_gcm_update(cx, out, in, n))
		return 0;
	if (!enc && !EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag))
		return 0;
	if (EVP_CipherFinal_ex(cx, out + n, &outl) <= 0)
		return 0;
	return enc ? EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) > 0 : 1;
}

/* A new context for AES-256-GCM with key; NULL on failure.  Caller frees. */
EVP_CIPHER_CTX *crypto_gcm_new(int enc, const unsigned char *key)
{
	EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
	if (cx && !EVP_CipherInit_ex(cx, EVP_aes_256_gcm(), NULL, key, NULL, enc)) {
		EVP_CIPHER_CTX_free(cx);
		cx = NULL;
	}
	return cx;
}

/* crypto.encrypt(key, plaintext [, { aad = "" }]) -> blob */
static int l_encrypt(lua_State *L)
{
	const unsigned char *key = crypto_check_key(L, 1);
	size_t n, aadlen;
	const unsigned char *pt = (const unsigned char *)luaL_checklstring(L, 2, &n);
	const char *aad = crypto_opt_string(L, 3, "aad", &aadlen);
	luaL_argcheck(L, n <= ((size_t)1 << 36), 2, "plaintext too large (over 64 GiB)");
	luaL_Buffer b;
	unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, n + BLOB_OVERHEAD);
	p[0] = BLOB_VERSION;
	if (RAND_bytes(p + 1, NONCE_LEN) != 1)
		return fail_ossl(L, "RAND_bytes");
	/* no Lua call from here to the free: nothing can raise */
	EVP_CIPHER_CTX *cx = crypto_gcm_new(1, key);
	struct piece ad[2] = { { p, 1 }, { aad, aadlen } };
	int ok = cx && crypto_gcm_run(cx, 1, p + 1, ad, 2, p + 1 + NONCE_LEN, pt, n,
				      p + 1 + NONCE_LEN + n);
	EVP_CIPHER_CTX_free(cx);
	if (!ok)
		return fail_ossl(L, "AES-256-GCM encryption");
	luaL_pushresultsize(&b, n + BLOB_OVERHEAD);
	return 1;
}

/* crypto.decrypt(key, blob [, { aad = "" }]) -> plaintext | nil, err, "auth" */
static int l_decrypt(lua_State *L)
{
	const unsigned char *key = crypto_check_key(L, 1);
	size_t n, aadlen;
	const unsigned char *blob = (const unsigned char *)luaL_checklstring(L, 2, &n);
	const char *aad = crypto_opt_string(L, 3, "aad", &aadlen);
	if (n < BLOB_OVERHEAD)
		return drr_push_fail(L, "auth", "authentication failed (blob truncated)");
	if (blob[0] != BLOB_VERSION)
		return drr_push_fail(L, "format", "unsupported blob version %d", blob[0]);
	size_t ptlen = n - BLOB_OVERHEAD;
	unsigned char tag[TAG_LEN];
	memcpy(tag, blob + n - TAG_LEN, TAG_LEN);
	luaL_Buffer b;
	unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, ptlen);
	EVP_CIPHER_CTX *cx = crypto_gcm_new(0, key);
	if (!cx)
		return fail_ossl(L, "AES-256-GCM");
	struct piece ad[2] = { { blob, 1 }, { aad, aadlen } };
	int ok = crypto_gcm_run(cx, 0, blob + 1, ad, 2, p, blob + 1 + NONCE_LEN, ptlen, tag);
	EVP_CIPHER_CTX_free(cx);
	ERR_clear_error();
	if (!ok) {
		OPENSSL_cleanse(p, ptlen); /* unauthenticated plaintext */
		return drr_push_fail(L, "auth", "authentication failed");
	}
	luaL_pushresultsize(&b, ptlen);
	return 1;
}

/* The quick functions, callable anywhere; binding.c adds the slow ones. */
const luaL_Reg crypto_string_fns[] = {
	{ "sha256", l_sha256 },
	{ "sha256_hex", l_sha256_hex },
	{ "hmac_sha256", l_hmac_sha256 },
	{ "hmac_sha256_hex", l_hmac_sha256_hex },
	{ "equal", l_equal },
	{ "random", l_random },
	{ "key", l_key },
	{ "hex", l_hex },
	{ "unhex", l_unhex },
	{ "base64", l_base64 },
	{ "unbase64", l_unbase64 },
	{ "encrypt", l_encrypt },
	{ "decrypt", l_decrypt },
	{ NULL, NULL },
};
