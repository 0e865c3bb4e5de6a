/*
 * stream.c - encrypt_file and decrypt_file on a pool thread: the file is
 * read and sealed chunk by chunk (the STREAM construction, format in
 * strings.c's opening comment) into a temporary file next to the
 * destination, which is synced and renamed into place; a cancelled job
 * stops between chunks and removes it.  An encryption may write a prefix
 * (a caller's own header) before the file and hash all it writes; a
 * decryption may start at an offset of src, past such a prefix, so neither
 * needs a second pass over the data to add or strip one.
 */
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

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
		crypto_set_err(w, "io", "cannot write '%s': %s", *tmp, strerror(errno));
		return -1;
	}
	int rc = close(*out);
	*out = -1;
	if (rc < 0) {
		crypto_set_err(w, "io", "cannot write '%s': %s", *tmp, strerror(errno));
		return -1;
	}
	if (rename(*tmp, w->dst) < 0) {
		crypto_set_err(w, "io", "cannot rename '%s' to '%s': %s", *tmp, w->dst,
			       strerror(errno));
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
	crypto_put_be32(nonce + PREFIX_LEN, idx);
	crypto_put_be32(pos, idx);
	pos[4] = (unsigned char)(last ? 1 : 0);
	struct piece ad[3] = { { hdr, HDR_LEN }, { pos, sizeof pos }, { w->aad, w->aadlen } };
	return crypto_gcm_run(cx, enc, nonce, ad, 3, buf, buf, n, buf + n);
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
		if (crypto_cancelled(w))
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
				crypto_set_err(w, "auth",
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
			crypto_set_err(w, "io", "'%s' has too many chunks for chunk size %u",
				       w->src, (unsigned)w->chunk);
			return;
		}
		if (!file_chunk(cx, enc, hdr, idx, last, w, buf, n)) {
			if (enc)
				crypto_set_ossl_err(w, "AES-256-GCM encryption");
			else
				crypto_set_err(
					w, "auth",
					"authentication failed at chunk %u of '%s' "
					"(wrong key or aad, or the file was modified, truncated "
					"or reordered)",
					(unsigned)idx, w->src);
			return;
		}
		if (!enc)
			EVP_DigestUpdate(md, buf, n);
		else if (w->omd)
			EVP_DigestUpdate(w->omd, buf, n + TAG_LEN);
		w->bytes += n;
		if (write_full(out, buf, enc ? n + TAG_LEN : n) < 0) {
			crypto_set_err(w, "io", "cannot write next to '%s': %s", w->dst,
				       strerror(errno));
			return;
		}
		if (last)
			return;
		buf[0] = next;
		have = 1;
	}
read_error:
	crypto_set_err(w, "io", "cannot read '%s': %s", w->src, strerror(errno));
}

/* Check a file header read from w->src; sets w->chunk.  0 or -1. */
static int check_header(struct work *w, const unsigned char *hdr, ssize_t got)
{
	if (got < HDR_LEN || memcmp(hdr, FILE_MAGIC, 8) != 0) {
		if (w->offset)
			crypto_set_err(w, "format",
				       "'%s' holds no drrun encrypted file at offset %llu", w->src,
				       (unsigned long long)w->offset);
		else
			crypto_set_err(w, "format", "'%s' is not a drrun encrypted file", w->src);
		return -1;
	}
	uint32_t chunk = crypto_get_be32(hdr + 12);
	if (hdr[8] != FILE_VERSION || hdr[9] || hdr[10] || hdr[11] || chunk < CHUNK_MIN ||
	    chunk > CHUNK_MAX) {
		crypto_set_err(w, "format", "'%s': unsupported format version %d or bad header",
			       w->src, hdr[8]);
		return -1;
	}
	w->chunk = chunk;
	return 0;
}

/* The caller's prefix, then the header, at the start of an encryption's
 * output (hashed with it when asked).  0 or -1 (error set). */
static int write_start(struct work *w, int out, const char *tmp, const unsigned char hdr[HDR_LEN])
{
	if (write_full(out, w->prefix, w->prefixlen) < 0 || write_full(out, hdr, HDR_LEN) < 0) {
		crypto_set_err(w, "io", "cannot write '%s': %s", tmp, strerror(errno));
		return -1;
	}
	if (w->omd) {
		EVP_DigestUpdate(w->omd, w->prefix, w->prefixlen);
		EVP_DigestUpdate(w->omd, hdr, HDR_LEN);
	}
	return 0;
}

void crypto_file_run(struct work *w)
{
	int enc = w->kind == W_ENCRYPT, in = -1, out = -1;
	char *tmp = NULL;
	unsigned char hdr[HDR_LEN], *buf = NULL, md_out[EVP_MAX_MD_SIZE];
	size_t rec = 0;
	EVP_CIPHER_CTX *cx = NULL;
	EVP_MD_CTX *md = NULL;

	if (crypto_cancelled(w))
		goto cleanup;
	/* O_NONBLOCK: opening a FIFO must not wait for a writer */
	in = open(w->src, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0) {
		crypto_set_err(w, "io", "cannot open '%s': %s", w->src, strerror(errno));
		goto cleanup;
	}
	/* a read that never returns could not be cancelled: files only */
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		crypto_set_err(w, "io", "'%s' is not a regular file", w->src);
		goto cleanup;
	}
	if (enc) {
		memcpy(hdr, FILE_MAGIC, 8);
		hdr[8] = FILE_VERSION;
		hdr[9] = hdr[10] = hdr[11] = 0;
		crypto_put_be32(hdr + 12, w->chunk);
		if (RAND_bytes(hdr + HDR_LEN - PREFIX_LEN, PREFIX_LEN) != 1) {
			crypto_set_ossl_err(w, "RAND_bytes");
			goto cleanup;
		}
	} else {
		if (w->offset && lseek(in, (off_t)w->offset, SEEK_SET) < 0) {
			crypto_set_err(w, "io", "cannot seek to %llu in '%s': %s",
				       (unsigned long long)w->offset, w->src, strerror(errno));
			goto cleanup;
		}
		ssize_t got = read_full(in, hdr, HDR_LEN);
		if (got < 0) {
			crypto_set_err(w, "io", "cannot read '%s': %s", w->src, strerror(errno));
			goto cleanup;
		}
		if (check_header(w, hdr, got) < 0)
			goto cleanup;
	}
	rec = (size_t)w->chunk + (enc ? 0 : TAG_LEN);
	buf = malloc(rec + (enc ? TAG_LEN : 0));
	md = EVP_MD_CTX_new();
	if (enc && w->hash_output &&
	    (!(w->omd = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(w->omd, EVP_sha256(), NULL))) {
		crypto_set_ossl_err(w, "SHA-256 setup");
		goto cleanup;
	}
	if (!buf || !md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !(cx = crypto_gcm_new(enc, w->key))) {
		crypto_set_ossl_err(w, "AES-256-GCM setup");
		goto cleanup;
	}
	tmp = temp_for(w->dst, &out);
	if (!tmp) {
		crypto_set_err(w, "io", "cannot create a temporary file next to '%s': %s", w->dst,
			       strerror(errno));
		goto cleanup;
	}
	if (enc && write_start(w, out, tmp, hdr) < 0)
		goto cleanup;
	file_loop(w, enc, in, out, cx, md, hdr, buf, rec);
	if (w->token || commit(w, &out, &tmp) < 0)
		goto cleanup;
	EVP_DigestFinal_ex(md, md_out, NULL);
	memcpy(w->out, md_out, 32);
	if (w->omd) {
		EVP_DigestFinal_ex(w->omd, md_out, NULL);
		memcpy(w->out_sha, md_out, 32);
	}

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
	EVP_MD_CTX_free(w->omd);
	w->omd = NULL;
	OPENSSL_cleanse(w->key, sizeof w->key);
	ERR_clear_error();
}
