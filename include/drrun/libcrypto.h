/*
 * drrun/libcrypto.h - OpenSSL's libcrypto for the plugins that use it
 * (crypto, ssh, aws), opened on first use instead of linked: libcrypto binds
 * its 3,000 relocations when it is loaded, which made it the largest part of
 * drrun's start-up, paid by every verb (engine/lua/libcrypto.c).
 *
 * Include this instead of, or after, the OpenSSL headers: it includes the
 * ones the plugins use, then makes each libcrypto function below a call
 * through a table that is filled on the first use.  A plugin's luaopen
 * calls drr_libcrypto_load() so a missing library is a Lua error at
 * `require`; later calls (or C code with no Lua state) go through
 * drr_libcrypto(), which exits with status 75 if the library cannot be
 * opened.  A libcrypto function that is not in DRR_LIBCRYPTO_FUNCS fails
 * the link with its name: add it here.
 */
#ifndef DRR_LIBCRYPTO_H
#define DRR_LIBCRYPTO_H

#include <stddef.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#define DRR_LIBCRYPTO_FUNCS(X)              \
	X(CRYPTO_clear_free)                \
	X(CRYPTO_memcmp)                    \
	X(ERR_clear_error)                  \
	X(ERR_error_string_n)               \
	X(ERR_peek_last_error)              \
	X(EVP_CIPHER_CTX_ctrl)              \
	X(EVP_CIPHER_CTX_free)              \
	X(EVP_CIPHER_CTX_new)               \
	X(EVP_CipherFinal_ex)               \
	X(EVP_CipherInit_ex)                \
	X(EVP_CipherUpdate)                 \
	X(EVP_DecodeBlock)                  \
	X(EVP_Digest)                       \
	X(EVP_DigestFinal_ex)               \
	X(EVP_DigestInit_ex)                \
	X(EVP_DigestUpdate)                 \
	X(EVP_MAC_CTX_free)                 \
	X(EVP_MAC_CTX_new)                  \
	X(EVP_MAC_fetch)                    \
	X(EVP_MAC_final)                    \
	X(EVP_MAC_free)                     \
	X(EVP_MAC_init)                     \
	X(EVP_MAC_update)                   \
	X(EVP_MD_CTX_free)                  \
	X(EVP_MD_CTX_new)                   \
	X(EVP_aes_256_gcm)                  \
	X(EVP_sha256)                       \
	X(EVP_sha512)                       \
	X(HMAC)                             \
	X(OPENSSL_cleanse)                  \
	X(OSSL_PARAM_construct_end)         \
	X(OSSL_PARAM_construct_utf8_string) \
	X(RAND_bytes)                       \
	X(SHA256)                           \
	X(SHA256_Final)                     \
	X(SHA256_Init)                      \
	X(SHA256_Update)

/* One pointer per function, with the function's own type. */
struct drr_libcrypto {
#define DRR_LIBCRYPTO_PTR(name) __typeof__(name) *name;
	DRR_LIBCRYPTO_FUNCS(DRR_LIBCRYPTO_PTR)
#undef DRR_LIBCRYPTO_PTR
};

/* Open libcrypto and fill the table, once (thread-safe).  The table, or
 * NULL with a one-line reason in err. */
const struct drr_libcrypto *drr_libcrypto_load(char *err, size_t errlen);
/* The table; if libcrypto cannot be opened, says why on stderr and exits
 * with status 75. */
const struct drr_libcrypto *drr_libcrypto(void);

#ifndef DRR_LIBCRYPTO_NO_REDIRECT
#define CRYPTO_clear_free (drr_libcrypto()->CRYPTO_clear_free)
#define CRYPTO_memcmp (drr_libcrypto()->CRYPTO_memcmp)
#define ERR_clear_error (drr_libcrypto()->ERR_clear_error)
#define ERR_error_string_n (drr_libcrypto()->ERR_error_string_n)
#define ERR_peek_last_error (drr_libcrypto()->ERR_peek_last_error)
#define EVP_CIPHER_CTX_ctrl (drr_libcrypto()->EVP_CIPHER_CTX_ctrl)
#define EVP_CIPHER_CTX_free (drr_libcrypto()->EVP_CIPHER_CTX_free)
#define EVP_CIPHER_CTX_new (drr_libcrypto()->EVP_CIPHER_CTX_new)
#define EVP_CipherFinal_ex (drr_libcrypto()->EVP_CipherFinal_ex)
#define EVP_CipherInit_ex (drr_libcrypto()->EVP_CipherInit_ex)
#define EVP_CipherUpdate (drr_libcrypto()->EVP_CipherUpdate)
#define EVP_DecodeBlock (drr_libcrypto()->EVP_DecodeBlock)
#define EVP_Digest (drr_libcrypto()->EVP_Digest)
#define EVP_DigestFinal_ex (drr_libcrypto()->EVP_DigestFinal_ex)
#define EVP_DigestInit_ex (drr_libcrypto()->EVP_DigestInit_ex)
#define EVP_DigestUpdate (drr_libcrypto()->EVP_DigestUpdate)
#define EVP_MAC_CTX_free (drr_libcrypto()->EVP_MAC_CTX_free)
#define EVP_MAC_CTX_new (drr_libcrypto()->EVP_MAC_CTX_new)
#define EVP_MAC_fetch (drr_libcrypto()->EVP_MAC_fetch)
#define EVP_MAC_final (drr_libcrypto()->EVP_MAC_final)
#define EVP_MAC_free (drr_libcrypto()->EVP_MAC_free)
#define EVP_MAC_init (drr_libcrypto()->EVP_MAC_init)
#define EVP_MAC_update (drr_libcrypto()->EVP_MAC_update)
#define EVP_MD_CTX_free (drr_libcrypto()->EVP_MD_CTX_free)
#define EVP_MD_CTX_new (drr_libcrypto()->EVP_MD_CTX_new)
#define EVP_aes_256_gcm (drr_libcrypto()->EVP_aes_256_gcm)
#define EVP_sha256 (drr_libcrypto()->EVP_sha256)
#define EVP_sha512 (drr_libcrypto()->EVP_sha512)
#define HMAC (drr_libcrypto()->HMAC)
#define OPENSSL_cleanse (drr_libcrypto()->OPENSSL_cleanse)
#define OSSL_PARAM_construct_end (drr_libcrypto()->OSSL_PARAM_construct_end)
#define OSSL_PARAM_construct_utf8_string (drr_libcrypto()->OSSL_PARAM_construct_utf8_string)
#define RAND_bytes (drr_libcrypto()->RAND_bytes)
#define SHA256 (drr_libcrypto()->SHA256)
#define SHA256_Final (drr_libcrypto()->SHA256_Final)
#define SHA256_Init (drr_libcrypto()->SHA256_Init)
#define SHA256_Update (drr_libcrypto()->SHA256_Update)
#endif

#endif
