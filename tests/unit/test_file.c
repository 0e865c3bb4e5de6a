/*
 * test_file.c - the shared whole-file reader and writers (core/file.c):
 * drr_slurp keeps every byte (NULs too), refuses directories, FIFOs and
 * devices without blocking, and files past its cap, with errno and a message
 * naming the file; drr_write_all and drr_fsync_dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/drrun-file-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "%s/f", dir);
	unlink(cmd);
	snprintf(cmd, sizeof cmd, "%s/fifo", dir);
	unlink(cmd);
	snprintf(cmd, sizeof cmd, "%s/sub", dir);
	rmdir(cmd);
	rmdir(dir);
	return 0;
}

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

static void test_bytes_kept(void **state)
{
	(void)state;
	char p[300], err[256];
	path_of(p, sizeof p, "f");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	static const char data[] = "a\0b\nc\xff";
	assert_int_equal(drr_write_all(fd, data, sizeof data - 1), 0);
	close(fd);
	size_t len;
	char *s = drr_slurp(p, 100, &len, err, sizeof err);
	assert_non_null(s);
	assert_int_equal(len, sizeof data - 1);
	assert_memory_equal(s, data, len);
	assert_int_equal(s[len], '\0');
	free(s);
	/* empty: an empty string, not NULL */
	fd = open(p, O_WRONLY | O_TRUNC);
	close(fd);
	s = drr_slurp(p, 100, &len, err, sizeof err);
	assert_non_null(s);
	assert_int_equal(len, 0);
	free(s);
}

static void test_refusals(void **state)
{
	(void)state;
	char p[300], err[256];
	size_t len;
	path_of(p, sizeof p, "missing");
	assert_null(drr_slurp(p, 100, &len, err, sizeof err));
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, p));

	path_of(p, sizeof p, "sub");
	assert_int_equal(mkdir(p, 0700), 0);
	assert_null(drr_slurp(p, 100, &len, err, sizeof err));
	assert_int_equal(errno, EISDIR);

	/* a FIFO with no writer: refused at once, never waited on */
	path_of(p, sizeof p, "fifo");
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_null(drr_slurp(p, 100, &len, err, sizeof err));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "not a regular file"));

	/* a device that never ends */
	assert_null(drr_slurp("/dev/zero", 100, &len, err, sizeof err));
	assert_int_equal(errno, EINVAL);

	/* past the cap */
	path_of(p, sizeof p, "f");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char big[200];
	memset(big, 'x', sizeof big);
	assert_int_equal(drr_write_all(fd, big, sizeof big), 0);
	close(fd);
	assert_null(drr_slurp(p, 100, &len, err, sizeof err));
	assert_int_equal(errno, EFBIG);
	assert_non_null(strstr(err, "larger than 100 bytes"));
	char *s = drr_slurp(p, 200, &len, err, sizeof err);
	assert_non_null(s);
	assert_int_equal(len, 200);
	free(s);
}

static void test_fsync_dir(void **state)
{
	(void)state;
	assert_int_equal(drr_fsync_dir(dir), 0);
	char p[300];
	path_of(p, sizeof p, "missing");
	assert_int_equal(drr_fsync_dir(p), -1);
	assert_int_equal(drr_write_all(-1, "x", 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bytes_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_dir, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
