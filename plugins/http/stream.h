/*
 * http/stream.h - request and response bodies streamed from and to files
 * (stream.c), for http.c.
 *
 * The loop never touches the disk: every open, read, write, fsync, rename
 * and unlink runs in libuv's thread pool, one job at a time per transfer,
 * and the SHA-256 of the bytes is computed there too, in order, as they are
 * read or written.  Two chunks per transfer bound the memory: while curl
 * sends (or fills) one, the pool reads (or writes) the other; when curl
 * gets ahead of the disk its callback pauses the transfer, and the job's
 * completion unpauses it.  A download's chunk may fill up to HTTP_SPILL
 * while the pool still writes the other: a pause makes curl copy what it
 * has read into a buffer of its own, so it is kept for a disk that is
 * really behind, not one whose job's completion has yet to reach the loop.
 */
#ifndef DRR_HTTP_STREAM_H
#define DRR_HTTP_STREAM_H

#include "drrun/plugin.h"

#include <stdatomic.h>
#include <stdint.h>

#include <curl/curl.h>

#include "drrun/libcrypto.h"

#define HTTP_CHUNK (256u << 10)
#define HTTP_SPILL (2 * HTTP_CHUNK)

enum { XFER_NONE, XFER_UP, XFER_DOWN };

struct http_chunk {
	char *data;
	size_t len, cap;
};

struct http_xfer {
	int mode; /* XFER_UP: the body from path; XFER_DOWN: the 2xx body to path */
	char *path, *tmp; /* owned; tmp: the download's temporary file */
	int fd;
	int64_t offset, length; /* up: the range of the file (length -1: to its end) */
	int64_t size;		/* up: the file's size */
	int64_t read_pos;	/* up: bytes of the range read so far (pool) */
	int64_t given;		/* up: bytes handed to curl (loop) */
	uint64_t bytes;		/* bytes hashed (and written, down) */
	SHA256_CTX sha;
	char sha256[65];			/* the result, hex */
	char want_hex[65], want_header[64]; /* down: expected digest, or the header carrying it */
	char got_b64[48];			/* down: the header's value */
	int dry;				/* down under --dry-run: hash only, write nothing */
	CURL *easy;
	uv_work_t work;
	int job, busy, paused, cancelled, finished, stale, finish_pending;
	const char *token; /* a failure, with msg */
	char msg[300];
	struct http_chunk cur, next; /* cur: the loop's; next: the pool's while busy */
	size_t cur_off;		     /* up: bytes of cur already given to curl */
	/* called on the loop when the open is done (ok or not), when the
	 * finish is done, and when an abort has released everything */
	void (*on_open)(struct http_xfer *x);
	void (*on_finish)(struct http_xfer *x);
	void (*on_abort)(struct http_xfer *x);
};

/* Start: open the file (and the first read, up) in the pool; on_open is
 * called on the loop afterwards, with x->token set on failure. */
int http_xfer_open(struct http_xfer *x);
/* curl's callbacks (READFUNCTION / SEEKFUNCTION with x as their data; the
 * write side is called by http.c's own WRITEFUNCTION for a 2xx body). */
size_t http_xfer_read(char *p, size_t sz, size_t n, void *ud);
int http_xfer_seek(void *ud, curl_off_t off, int origin);
size_t http_xfer_write(struct http_xfer *x, const char *p, size_t len);
/* After the transfer: flush, fsync and rename the download when ok (or
 * remove it), close the file; on_finish is called on the loop. */
void http_xfer_finish(struct http_xfer *x, int ok);
/* The request is gone: stop, close and remove what was written; on_abort
 * is called on the loop once no job holds x. */
void http_xfer_abort(struct http_xfer *x);
/* Release what x owns (nothing may be in the pool). */
void http_xfer_free(struct http_xfer *x);

/* core.file_sha256(path [, offset, length [, { small = n }]]) -> { sha256,
 * bytes, size [, body] }, in the pool.  With small, a range of at most n
 * bytes (n <= HTTP_CHUNK) comes back whole as body, from the same read as
 * its hash; a longer one is not read: the result has only size. */
int http_l_file_sha256(lua_State *L);

#endif
