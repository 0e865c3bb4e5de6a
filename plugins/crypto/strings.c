/*
 * crypto.c - drrun.crypto: hashes, MACs, encodings and AES-256-GCM over
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
 * in docs-pending/crypto.md and summed up below.
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
#include "drrun/plugin.h"

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

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define BLOB_VERSION 1
#define BLOB_OVERHEAD (1 + NONCE_LEN + TAG_LEN)
#define FILE_MAGIC "DRRUNENC"
#define FILE_VERSION 1
#define HDR_LEN 24
#define PREFIX_LEN 8
#define CHUNK_DEFAULT (1u << 20)
#define CHUNK_MIN (1u << 10)
#define CHUNK_MAX (64u << 20)
#define RANDOM_MAX (1 << 20)
#define KDF_DEFAULT_ITER 600000
#define KDF_CHECK_EVERY 4096
#define WORK_MT "drrun.crypto.Work"

/* ---- small helpers --------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void to_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
}

/* The last OpenSSL error on this thread, as text; clears the queue. */
static const char *ossl_error(char *buf, size_t n)
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
	return drr_push_fail(L, "crypto", "%s failed: %s", what, ossl_error(e, sizeof e));
}

/* The key at arg: a string of exactly 32 bytes, or raise. */
static const unsigned char *check_key(lua_State *L, int arg)
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
static const char *opt_string(lua_State *L, int arg, const char *field, size_t *len)
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
		to_hex(md, mdlen, out);
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
		to_hex(md, mdlen, out);
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
	to_hex(s, n, p);
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

/* ---- AES-256-GCM ----------------------------------------------------------------- */

struct piece {
	const void *p;
	size_t n;
};

/* Feed n bytes to the cipher in int-sized pieces (out NULL: AAD). */
static int gcm_update(EVP_CIPHER_CTX *cx, unsigned char *out, const unsigned char *in, size_t n)
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
static int gcm_run(EVP_CIPHER_CTX *cx, int enc, const unsigned char nonce[NONCE_LEN],
		   const struct piece *aad, int naad, unsigned char *out, const unsigned char *in,
		   size_t n, unsigned char tag[TAG_LEN])
{
	int outl;
	if (!EVP_CipherInit_ex(cx, NULL, NULL, NULL, nonce, enc))
		return 0;
	for (int i = 0; i < naad; i++)
		if (!gcm_update(cx, NULL, aad[i].p, aad[i].n))
			return 0;
	if (!gcm_update(cx, out, in, n))
		return 0;
	if (!enc && !EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag))
		return 0;
	if (EVP_CipherFinal_ex(cx, out + n, &outl) <= 0)
		return 0;
	return enc ? EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) > 0 : 1;
}

/* A new context for AES-256-GCM with key; NULL on failure.  Caller frees. */
static EVP_CIPHER_CTX *gcm_new(int enc, const unsigned char *key)
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
	const unsigned char *key = check_key(L, 1);
	size_t n, aadlen;
	const unsigned char *pt = (const unsigned char *)luaL_checklstring(L, 2, &n);
	const char *aad = opt_string(L, 3, "aad", &aadlen);
	luaL_argcheck(L, n <= ((size_t)1 << 36), 2, "plaintext too large (over 64 GiB)");
	luaL_Buffer b;
	unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, n + BLOB_OVERHEAD);
	p[0] = BLOB_VERSION;
	if (RAND_bytes(p + 1, NONCE_LEN) != 1)
		return fail_ossl(L, "RAND_bytes");
	/* no Lua call from here to the free: nothing can raise */
	EVP_CIPHER_CTX *cx = gcm_new(1, key);
	struct piece ad[2] = { { p, 1 }, { aad, aadlen } };
	int ok =
		cx && gcm_run(cx, 1, p + 1, ad, 2, p + 1 + NONCE_LEN, pt, n, p + 1 + NONCE_LEN + n);
	EVP_CIPHER_CTX_free(cx);
	if (!ok)
		return fail_ossl(L, "AES-256-GCM encryption");
	luaL_pushresultsize(&b, n + BLOB_OVERHEAD);
	return 1;
}

/* crypto.decrypt(key, blob [, { aad = "" }]) -> plaintext | nil, err, "auth" */
static int l_decrypt(lua_State *L)
{
	const unsigned char *key = check_key(L, 1);
	size_t n, aadlen;
	const unsigned char *blob = (const unsigned char *)luaL_checklstring(L, 2, &n);
	const char *aad = opt_string(L, 3, "aad", &aadlen);
	if (n < BLOB_OVERHEAD)
		return drr_push_fail(L, "auth", "authentication failed (blob truncated)");
	if (blob[0] != BLOB_VERSION)
		return drr_push_fail(L, "format", "unsupported blob version %d", blob[0]);
	size_t ptlen = n - BLOB_OVERHEAD;
	unsigned char tag[TAG_LEN];
	memcpy(tag, blob + n - TAG_LEN, TAG_LEN);
	luaL_Buffer b;
	unsigned char *p = (unsigned char *)luaL_buffinitsize(L, &b, ptlen);
	EVP_CIPHER_CTX *cx = gcm_new(0, key);
	if (!cx)
		return fail_ossl(L, "AES-256-GCM");
	struct piece ad[2] = { { blob, 1 }, { aad, aadlen } };
	int ok = gcm_run(cx, 0, blob + 1, ad, 2, p, blob + 1 + NONCE_LEN, ptlen, tag);
	EVP_CIPHER_CTX_free(cx);
	ERR_clear_error();
	if (!ok) {
		OPENSSL_cleanse(p, ptlen); /* unauthenticated plaintext */
		return drr_push_fail(L, "auth", "authentication failed");
	}
	luaL_pushresultsize(&b, ptlen);
	return 1;
}

/* ---- work in the thread pool ------------------------------------------------ */

enum {
	W_ENCRYPT,
	W_DECRYPT,
	W_DERIVE
};

/* One pool job.  A full userdata: the stack of the suspended step holds it,
 * and so does a registry reference from uv_queue_work until work_after has
 * run, whatever happens to the step.  Strings it points to (paths, aad,
 * passphrase, salt) are its user values.  The worker only reads the inputs
 * and writes the outputs; the loop thread reads the outputs after
 * work_after.  `cancelled` is the one field both touch concurrently. */
struct work {
	struct drr_op op;
	uv_work_t req;
	atomic_int cancelled;
	int kind, ref;
	unsigned char key[KEY_LEN];
	const char *src, *dst;
	const unsigned char *aad, *pass, *salt;
	size_t aadlen, passlen, saltlen;
	uint32_t chunk, iterations;
	/* results */
	const char *token; /* NULL: success */
	char msg[768];
	uint64_t bytes;
	unsigned char out[32]; /* the derived key, or the plaintext's SHA-256 */
};

static void set_err(struct work *w, const char *token, const char *fmt, ...) DRR_PRINTF(3, 4);
static void set_err(struct work *w, const char *token, const char *fmt, ...)
{
	if (w->token)
		return; /* the first error explains the rest */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof w->msg, fmt, ap);
	va_end(ap);
	w->token = token;
}

static void set_ossl_err(struct work *w, const char *what)
{
	char e[256];
	set_err(w, "crypto", "%s failed: %s", what, ossl_error(e, sizeof e));
}

static int cancelled(struct work *w)
{
	if (!atomic_load(&w->cancelled))
		return 0;
	set_err(w, "cancelled", "cancelled");
	return 1;
}

/* Read up to n bytes; fewer only at end of file.  -1 on error (errno). */
static ssize_t read_full(int fd, void *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, (char *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static int write_full(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		p = (const char *)p + r;
		n -= (size_t)r;
	}
	return 0;
}

/* Create "<dst>.drrun-tmp.XXXXXX" (mode 0600) next to dst.  Returns the
 * path (caller frees and unlinks) with *fd open, or NULL with errno set. */
static char *temp_for(const char *dst, int *fd)
{
	static const char suffix[] = ".drrun-tmp.XXXXXX";
	size_t n = strlen(dst);
	char *path = malloc(n + sizeof suffix);
	if (!path)
		return NULL;
	memcpy(path, dst, n);
	memcpy(path + n, suffix, sizeof suffix);
	*fd = mkostemp(path, O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;
		free(path);
		errno = e;
		return NULL;
	}
	fchmod(*fd, 0600);
	return path;
}

/* Make the finished temporary file dst.  Returns 0, or -1 (error set). */
static int commit(struct work *w, int *out, char **tmp)
{
	if (fsync(*out) < 0) {
		set_err(w, "io", "cannot write '%s': %s", *tmp, strerror(errno));
		return -1;
	}
	int rc = close(*out);
	*out = -1;
	if (rc < 0) {
		set_err(w, "io", "cannot write '%s': %s", *tmp, strerror(errno));
		return -1;
	}
	if (rename(*tmp, w->dst) < 0) {
		set_err(w, "io", "cannot rename '%s' to '%s': %s", *tmp, w->dst, strerror(errno));
		return -1;
	}
	free(*tmp);
	*tmp = NULL;
	/* the new name on disk too (best effort: the data already is) */
	const char *slash = strrchr(w->dst, '/');
	char dir[4096];
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - w->dst) + 1 : 1,
		 slash ? w->dst : ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* Encrypt or decrypt chunk idx of a file in place (tag after the data). */
static int file_chunk(EVP_CIPHER_CTX *cx, int enc, const unsigned char hdr[HDR_LEN], uint32_t idx,
		      int last, struct work *w, unsigned char *buf, size_t n)
{
	unsigned char nonce[NONCE_LEN], pos[5];
	memcpy(nonce, hdr + HDR_LEN - PREFIX_LEN, PREFIX_LEN);
	put_be32(nonce + PREFIX_LEN, idx);
	put_be32(pos, idx);
	pos[4] = (unsigned char)(last ? 1 : 0);
	struct piece ad[3] = { { hdr, HDR_LEN }, { pos, sizeof pos }, { w->aad, w->aadlen } };
	return gcm_run(cx, enc, nonce, ad, 3, buf, buf, n, buf + n);
}

/*
 * The one loop both directions share.  Reads records of `rec` bytes (a
 * plaintext chunk, or a chunk's ciphertext and tag) with a one-byte
 * look-ahead, so the final record is known before it is processed: it is
 * the short one, or a full one followed by end of file.
 */
static void file_loop(struct work *w, int enc, int in, int out, EVP_CIPHER_CTX *cx, EVP_MD_CTX *md,
		      const unsigned char hdr[HDR_LEN], unsigned char *buf, size_t rec)
{
	size_t have = 0;
	unsigned char next = 0;
	for (uint32_t idx = 0;; idx++) {
		if (cancelled(w))
			return;
		ssize_t r = read_full(in, buf + have, rec - have);
		if (r < 0)
			goto read_error;
		have += (size_t)r;
		int last = 1;
		if (have == rec) {
			if ((r = read_full(in, &next, 1)) < 0)
				goto read_error;
			last = r == 0;
		}
		size_t n = have;
		if (!enc) {
			if (have < TAG_LEN) {
				set_err(w, "auth",
					"authentication failed: '%s' is truncated "
					"(chunk %u is incomplete)",
					w->src, (unsigned)idx);
				return;
			}
			n -= TAG_LEN;
		} else {
			EVP_DigestUpdate(md, buf, n);
		}
		if (!last && idx == UINT32_MAX) {
			set_err(w, "io", "'%s' has too many chunks for chunk size %u", w->src,
				(unsigned)w->chunk);
			return;
		}
		if (!file_chunk(cx, enc, hdr, idx, last, w, buf, n)) {
			if (enc)
				set_ossl_err(w, "AES-256-GCM encryption");
			else
				set_err(w, "auth",
					"authentication failed at chunk %u of '%s' "
					"(wrong key or aad, or the file was modified, truncated "
					"or reordered)",
					(unsigned)idx, w->src);
			return;
		}
		if (!enc)
			EVP_DigestUpdate(md, buf, n);
		w->bytes += n;
		if (write_full(out, buf, enc ? n + TAG_LEN : n) < 0) {
			set_err(w, "io", "cannot write next to '%s': %s", w->dst, strerror(errno));
			return;
		}
		if (last)
			return;
		buf[0] = next;
		have = 1;
	}
read_error:
	set_err(w, "io", "cannot read '%s': %s", w->src, strerror(errno));
}

/* Check a file header read from w->src; sets w->chunk.  0 or -1. */
static int check_header(struct work *w, const unsigned char *hdr, ssize_t got)
{
	if (got < HDR_LEN || memcmp(hdr, FILE_MAGIC, 8) != 0) {
		set_err(w, "format", "'%s' is not a drrun encrypted file", w->src);
		return -1;
	}
	uint32_t chunk = get_be32(hdr + 12);
	if (hdr[8] != FILE_VERSION || hdr[9] || hdr[10] || hdr[11] || chunk < CHUNK_MIN ||
	    chunk > CHUNK_MAX) {
		set_err(w, "format", "'%s': unsupported format version %d or bad header", w->src,
			hdr[8]);
		return -1;
	}
	w->chunk = chunk;
	return 0;
}

static void file_run(struct work *w)
{
	int enc = w->kind == W_ENCRYPT, in = -1, out = -1;
	char *tmp = NULL;
	unsigned char hdr[HDR_LEN], *buf = NULL, md_out[EVP_MAX_MD_SIZE];
	size_t rec = 0;
	EVP_CIPHER_CTX *cx = NULL;
	EVP_MD_CTX *md = NULL;

	if (cancelled(w))
		goto cleanup;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer */
	in = open(w->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0) {
		set_err(w, "io", "cannot open '%s': %s", w->src, strerror(errno));
		goto cleanup;
	}
	/* a read that never returns could not be cancelled: files only */
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		set_err(w, "io", "'%s' is not a regular file", w->src);
		goto cleanup;
	}
	if (enc) {
		memcpy(hdr, FILE_MAGIC, 8);
		hdr[8] = FILE_VERSION;
		hdr[9] = hdr[10] = hdr[11] = 0;
		put_be32(hdr + 12, w->chunk);
		if (RAND_bytes(hdr + HDR_LEN - PREFIX_LEN, PREFIX_LEN) != 1) {
			set_ossl_err(w, "RAND_bytes");
			goto cleanup;
		}
	} else {
		ssize_t got = read_full(in, hdr, HDR_LEN);
		if (got < 0) {
			set_err(w, "io", "cannot read '%s': %s", w->src, strerror(errno));
			goto cleanup;
		}
		if (check_header(w, hdr, got) < 0)
			goto cleanup;
	}
	rec = (size_t)w->chunk + (enc ? 0 : TAG_LEN);
	buf = malloc(rec + (enc ? TAG_LEN : 0));
	md = EVP_MD_CTX_new();
	if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !(cx = gcm_new(enc, w->key))) {
		set_ossl_err(w, "AES-256-GCM setup");
		goto cleanup;
	}
	tmp = temp_for(w->dst, &out);
	if (!tmp) {
		set_err(w, "io", "cannot create a temporary file next to '%s': %s", w->dst,
			strerror(errno));
		goto cleanup;
	}
	if (enc && write_full(out, hdr, HDR_LEN) < 0) {
		set_err(w, "io", "cannot write '%s': %s", tmp, strerror(errno));
		goto cleanup;
	}
	file_loop(w, enc, in, out, cx, md, hdr, buf, rec);
	if (w->token || commit(w, &out, &tmp) < 0)
		goto cleanup;
	EVP_DigestFinal_ex(md, md_out, NULL);
	memcpy(w->out, md_out, 32);

cleanup:
	if (out >= 0)
		close(out);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	if (in >= 0)
		close(in);
	if (buf)
		OPENSSL_clear_free(buf, rec + (enc ? TAG_LEN : 0));
	EVP_CIPHER_CTX_free(cx);
	EVP_MD_CTX_free(md);
	OPENSSL_cleanse(w->key, sizeof w->key);
	ERR_clear_error();
}

/* PBKDF2-HMAC-SHA256 (RFC 8018), one 32-byte block, written out so that a
 * cancelled derivation stops within KDF_CHECK_EVERY iterations. */
static void derive_run(struct work *w)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	unsigned char u[32], t[32], one[4] = { 0, 0, 0, 1 };
	size_t n = 0;
	if (!c || !EVP_MAC_init(c, w->pass, w->passlen, params) ||
	    !EVP_MAC_update(c, w->salt, w->saltlen) || !EVP_MAC_update(c, one, 4) ||
	    !EVP_MAC_final(c, u, &n, sizeof u))
		goto fail;
	memcpy(t, u, sizeof t);
	for (uint32_t i = 1; i < w->iterations; i++) {
		if (i % KDF_CHECK_EVERY == 0 && cancelled(w))
			goto done;
		if (!EVP_MAC_init(c, NULL, 0, NULL) || !EVP_MAC_update(c, u, sizeof u) ||
		    !EVP_MAC_final(c, u, &n, sizeof u))
			goto fail;
		for (size_t k = 0; k < sizeof t; k++)
			t[k] ^= u[k];
	}
	memcpy(w->out, t, sizeof t);
	goto done;
fail:
	set_ossl_err(w, "PBKDF2-HMAC-SHA256");
done:
	OPENSSL_cleanse(u, sizeof u);
	OPENSSL_cleanse(t, sizeof t);
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(mac);
	ERR_clear_error();
}

/* On a pool thread. */
static void work_run(uv_work_t *req)
{
	struct work *w = req->data;
	if (w->kind == W_DERIVE)
		derive_run(w);
	else
		file_run(w);
}

/* On the loop thread, exactly once per job, cancelled or not. */
static void work_after(uv_work_t *req, int status)
{
	struct work *w = req->data;
	if (status == UV_ECANCELED)
		set_err(w, "cancelled", "cancelled");
	int ref = w->ref;
	w->ref = LUA_NOREF;
	if (w->op.task) /* NULL when the step was cancelled: nobody to wake */
		drr_task_wake(w->op.task);
	luaL_unref(drr_lua_main(), LUA_REGISTRYINDEX, ref); /* w may be collected now */
}

/* The step is going away (timeout, failure elsewhere, interrupt).  A job not
 * yet started is dropped; a running one sees the flag between chunks.
 * Either way work_after still runs and releases the anchor. */
static void work_cancel(struct drr_op *op)
{
	struct work *w = (struct work *)op;
	atomic_store(&w->cancelled, 1);
	uv_cancel((uv_req_t *)&w->req);
}

static int work_gc(lua_State *L)
{
	struct work *w = luaL_checkudata(L, 1, WORK_MT);
	OPENSSL_cleanse(w->key, sizeof w->key);
	OPENSSL_cleanse(w->out, sizeof w->out);
	return 0;
}

static int work_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct work *w = (struct work *)ctx;
	if (w->token)
		return drr_push_fail(L, w->token, "%s", w->msg);
	if (w->kind == W_DERIVE) {
		lua_pushlstring(L, (const char *)w->out, 32);
		OPENSSL_cleanse(w->out, sizeof w->out);
		return 1;
	}
	char hex[64];
	to_hex(w->out, 32, hex);
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, (lua_Integer)w->bytes);
	lua_setfield(L, -2, "bytes");
	lua_pushlstring(L, hex, sizeof hex);
	lua_setfield(L, -2, "sha256");
	return 1;
}

/* A new job on the stack, its strings taken from the given stack slots
 * (0: none) as user values.  [-0, +1, m] */
static struct work *work_new(lua_State *L, int kind, int s1, int s2, int s3)
{
	int slots[3] = { s1, s2, s3 };
	struct work *w = lua_newuserdatauv(L, sizeof *w, 3);
	memset(w, 0, sizeof *w);
	atomic_init(&w->cancelled, 0);
	w->kind = kind;
	w->ref = LUA_NOREF;
	w->req.data = w;
	w->op.cancel = work_cancel;
	luaL_setmetatable(L, WORK_MT);
	for (int i = 0; i < 3; i++)
		if (slots[i]) {
			lua_pushvalue(L, slots[i]);
			lua_setiuservalue(L, -2, i + 1);
		}
	return w;
}

/* Queue the job at the top of the stack and suspend the step. */
static int work_start(lua_State *L, struct work *w)
{
	lua_pushvalue(L, -1);
	w->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	int rc = uv_queue_work(drr_loop(), &w->req, work_run, work_after);
	if (rc < 0) {
		luaL_unref(L, LUA_REGISTRYINDEX, w->ref);
		w->ref = LUA_NOREF;
		return drr_push_fail(L, "crypto", "cannot queue work: %s", uv_strerror(rc));
	}
	return drr_task_yield(L, &w->op, (lua_KContext)w, work_k);
}

/* ---- files and key derivation --------------------------------------------------- */

static int file_op(lua_State *L, int kind, const char *what)
{
	const unsigned char *key = check_key(L, 1);
	const char *src = luaL_checkstring(L, 2);
	const char *dst = luaL_checkstring(L, 3);
	size_t aadlen;
	const char *aad = opt_string(L, 4, "aad", &aadlen);
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
		drr_task_log(L, "would %s '%s' to '%s'", kind == W_ENCRYPT ? "encrypt" : "decrypt",
			     src, dst);
		lua_createtable(L, 0, 3);
		lua_pushinteger(L, 0);
		lua_setfield(L, -2, "bytes");
		lua_pushliteral(L, "");
		lua_setfield(L, -2, "sha256");
		lua_pushboolean(L, 1);
		lua_setfield(L, -2, "dry_run");
		return 1;
	}
	struct work *w = work_new(L, kind, 2, 3, aad_slot);
	memcpy(w->key, key, KEY_LEN);
	w->src = src;
	w->dst = dst;
	w->aad = (const unsigned char *)aad;
	w->aadlen = aadlen;
	w->chunk = (uint32_t)chunk;
	return work_start(L, w);
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
	struct work *w = work_new(L, W_DERIVE, 1, 2, 0);
	w->pass = (const unsigned char *)pass;
	w->passlen = plen;
	w->salt = (const unsigned char *)salt;
	w->saltlen = slen;
	w->iterations = (uint32_t)iter;
	return work_start(L, w);
}

int luaopen_drrun_crypto(lua_State *L)
{
	static const luaL_Reg fns[] = {
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
		{ "encrypt_file", l_encrypt_file },
		{ "decrypt_file", l_decrypt_file },
		{ "derive_key", l_derive_key },
		{ NULL, NULL },
	};
	static const luaL_Reg work_meta[] = {
		{ "__gc", work_gc },
		{ NULL, NULL },
	};
	luaL_newmetatable(L, WORK_MT);
	luaL_setfuncs(L, work_meta, 0);
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	return 1;
}
