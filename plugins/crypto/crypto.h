/*
 * crypto.h - private to plugins/crypto/: what strings.c (hashes, MACs,
 * encodings, AES-256-GCM on strings), jobs.c (the thread-pool job and key
 * derivation), stream.c (the file STREAM jobs) and binding.c
 * ("drrun.crypto") share.
 */
#ifndef DRRUN_PLUGIN_CRYPTO_H
#define DRRUN_PLUGIN_CRYPTO_H

#include "drrun/plugin.h"

#include <stdatomic.h>

#include "drrun/libcrypto.h" /* libcrypto is opened when the module is required */

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

/* ---- AES-256-GCM ----------------------------------------------------------------- */

struct piece {
	const void *p;
	size_t n;
};

/* ---- work in the thread pool ------------------------------------------------ */

enum {
	W_ENCRYPT,
	W_DECRYPT,
	W_DERIVE
};

/* One pool job.  A full userdata: the stack of the suspended step holds it,
 * and so does a registry reference from uv_queue_work until work_after has
 * run, whatever happens to the step.  Strings it points to (paths, aad,
 * passphrase, salt, prefix) are its user values.  The worker only reads the inputs
 * and writes the outputs; the loop thread reads the outputs after
 * work_after.  `cancelled` is the one field both touch concurrently. */
struct work {
	struct drr_op op;
	uv_work_t req;
	atomic_int cancelled;
	int kind, ref;
	unsigned char key[KEY_LEN];
	const char *src, *dst;
	const unsigned char *aad, *pass, *salt, *prefix;
	size_t aadlen, passlen, saltlen, prefixlen;
	uint32_t chunk, iterations;
	uint64_t offset; /* decrypt: where in src the encrypted file starts */
	int hash_output; /* encrypt: also hash every byte written to dst */
	EVP_MD_CTX *omd; /* that hash, on the pool thread only */
	/* results */
	const char *token; /* NULL: success */
	char msg[768];
	uint64_t bytes;
	unsigned char out[32];	   /* the derived key, or the plaintext's SHA-256 */
	unsigned char out_sha[32]; /* with hash_output: dst's SHA-256 */
};

/* strings.c */
extern const luaL_Reg crypto_string_fns[];
void crypto_put_be32(unsigned char *p, uint32_t v);
uint32_t crypto_get_be32(const unsigned char *p);
void crypto_to_hex(const unsigned char *p, size_t n, char *out);
const char *crypto_ossl_error(char *buf, size_t n);
const unsigned char *crypto_check_key(lua_State *L, int arg);
const char *crypto_opt_string(lua_State *L, int arg, const char *field, size_t *len);
int crypto_gcm_update(EVP_CIPHER_CTX *cx, unsigned char *out, const unsigned char *in, size_t n);
EVP_CIPHER_CTX *crypto_gcm_new(int enc, const unsigned char *key);
/* One AES-256-GCM pass over in (n bytes) into out, with naad pieces of
 * AAD; the tag is written (enc) or checked.  1 on success. */
int crypto_gcm_run(EVP_CIPHER_CTX *cx, int enc, const unsigned char nonce[NONCE_LEN],
		   const struct piece *aad, int naad, unsigned char *out, const unsigned char *in,
		   size_t n, unsigned char tag[TAG_LEN]);

/* jobs.c: errors of a job (the first one wins), cancellation, and the job's
 * life: a new one on the stack, queued while the step is suspended */
void crypto_set_err(struct work *w, const char *token, const char *fmt, ...) DRR_PRINTF(3, 4);
void crypto_set_ossl_err(struct work *w, const char *what);
int crypto_cancelled(struct work *w);
struct work *crypto_work_new(lua_State *L, int kind, const int slots[4]);
int crypto_work_start(lua_State *L, struct work *w);
int crypto_work_gc(lua_State *L);

/* stream.c: encrypt_file / decrypt_file, on a pool thread */
void crypto_file_run(struct work *w);

#endif
