/*
 * file.c - the one copy of the whole-file reader, write_all and fsync_dir
 * that the CLI (key files), the runbook loader and the journal share.
 * drr_slurp refuses what is not a regular file or is larger than a cap, so
 * `--key-file /dev/zero` is an error, not an out-of-memory abort; every read
 * error is reported with the file's name, and errno says which it was
 * (EISDIR, EINVAL for not a regular file, EFBIG past the cap).
 */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *drr_slurp(const char *path, size_t cap, size_t *len, char *err, size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer (fstat then
	 * refuses it); it changes nothing for a regular file */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
		errno = e;
		return NULL;
	}
	struct stat st;
	int st_rc = fstat(fd, &st);
	if (st_rc < 0 || !S_ISREG(st.st_mode)) {
		int e = st_rc < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		snprintf(err, errlen, "cannot read %s: %s", path,
			 e == EINVAL ? "not a regular file" : strerror(e));
		close(fd);
		errno = e;
		return NULL;
	}
	if ((size_t)st.st_size > cap) {
		snprintf(err, errlen, "cannot read %s: larger than %zu bytes", path, cap);
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	struct drr_buf b = { 0 };
	char chunk[65536];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
			close(fd);
			drr_buf_free(&b);
			errno = e;
			return NULL;
		}
		if (r == 0)
			break;
		if (b.len + (size_t)r > cap) {
			snprintf(err, errlen, "cannot read %s: larger than %zu bytes", path, cap);
			close(fd);
			drr_buf_free(&b);
			errno = EFBIG;
			return NULL;
		}
		drr_buf_add(&b, chunk, (size_t)r);
	}
	close(fd);
	if (!b.data)
		drr_buf_adds(&b, "");
	*len = b.len;
	return b.data;
}

int drr_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int drr_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}
