/*
 * jobs.c - drrun.crypto's slow work in libuv's thread pool: one job is a
 * full userdata, anchored in the registry from uv_queue_work until
 * work_after has run, so a step cancelled while its job is on a pool
 * thread frees nothing early.  Also the key derivation job (PBKDF2).
 */
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/params.h>

void crypto_set_err(struct work *w, const char *token, const char *fmt, ...)
{
	if (w->token)
		return; /* the first error explains the rest */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->msg, sizeof w->msg, fmt, ap);
	va_end(ap);
	w->token = token;
}

void crypto_set_ossl_err(struct work *w, const char *what)
{
	char e[256];
	crypto_set_err(w, "crypto", "%s failed: %s", what, crypto_ossl_error(e, sizeof e));
}

int crypto_cancelled(struct work *w)
{
	if (!atomic_load(&w->cancelled))
		return 0;
	crypto_set_err(w, "cancelled", "cancelled");
	return 1;
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
		if (i % KDF_CHECK_EVERY == 0 && crypto_cancelled(w))
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
	crypto_set_ossl_err(w, "PBKDF2-HMAC-SHA256");
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
		crypto_file_run(w);
}

/* On the loop thread, exactly once per job, cancelled or not. */
static void work_after(uv_work_t *req, int status)
{
	struct work *w = req->data;
	if (status == UV_ECANCELED)
		crypto_set_err(w, "cancelled", "cancelled");
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

int crypto_work_gc(lua_State *L)
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
	crypto_to_hex(w->out, 32, hex);
	lua_createtable(L, 0, 3);
	lua_pushinteger(L, (lua_Integer)w->bytes);
	lua_setfield(L, -2, "bytes");
	lua_pushlstring(L, hex, sizeof hex);
	lua_setfield(L, -2, "sha256");
	if (w->hash_output) {
		crypto_to_hex(w->out_sha, 32, hex);
		lua_pushlstring(L, hex, sizeof hex);
		lua_setfield(L, -2, "output_sha256");
	}
	return 1;
}

/* A new job on the stack, its strings taken from the 4 given stack slots
 * (0: none) as user values.  [-0, +1, m] */
struct work *crypto_work_new(lua_State *L, int kind, const int slots[4])
{
	struct work *w = lua_newuserdatauv(L, sizeof *w, 4);
	memset(w, 0, sizeof *w);
	atomic_init(&w->cancelled, 0);
	w->kind = kind;
	w->ref = LUA_NOREF;
	w->req.data = w;
	w->op.cancel = work_cancel;
	luaL_setmetatable(L, WORK_MT);
	for (int i = 0; i < 4; i++)
		if (slots[i]) {
			lua_pushvalue(L, slots[i]);
			lua_setiuservalue(L, -2, i + 1);
		}
	return w;
}

/* Queue the job at the top of the stack and suspend the step. */
int crypto_work_start(lua_State *L, struct work *w)
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
