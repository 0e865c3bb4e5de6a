/*
 * lock.c - one active run per runbook name per state directory.  The lock
 * is flock(2) on <state-dir>/locks/<runbook>.lock, so it dies with the
 * process: a crashed run never blocks the next one.  The file names the
 * holder ("<run-id> <pid>") for the error message and for `drrun status`.
 * The descriptor is close-on-exec: services a step starts never inherit it.
 * The lock is opened with O_NOFOLLOW: a symlink in its place is refused.
 */
#include "journal/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char *lock_path(const char *state_dir, const char *name)
{
	return drr_xasprintf("%s/locks/%s.lock", state_dir, name);
}

static void read_holder(int fd, char *buf, size_t n)
{
	ssize_t r = pread(fd, buf, n - 1, 0);
	buf[r > 0 ? r : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

int drr_lock_take(const char *state_dir, const char *name, const char *run_id, char *err,
		  size_t errlen)
{
	char *dir = drr_xasprintf("%s/locks", state_dir);
	if (drr_mkdir_p(dir, 0700) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		free(dir);
		return -1;
	}
	free(dir);
	char *path = lock_path(state_dir, name);
	/* O_NOFOLLOW: a symlink planted as the lock is refused, and whatever
	 * it points at is never truncated or written */
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 errno == ELOOP ? "it is a symbolic link (refused)" : strerror(errno));
		free(path);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char holder[256];
		read_holder(fd, holder, sizeof holder);
		char id[200] = "?";
		long pid = 0;
		sscanf(holder, "%199s %ld", id, &pid);
		snprintf(err, errlen, "runbook '%s' is already running: run %s (pid %ld)", name, id,
			 pid);
		close(fd);
		free(path);
		return -1;
	}
	/* the holder's line, cut to the buffer: snprintf's return is what it
	 * wanted to write, not what it wrote */
	char line[256];
	int want = snprintf(line, sizeof line, "%s %ld\n", run_id, (long)getpid());
	size_t n = want < 0 ? 0 : (size_t)want >= sizeof line ? sizeof line - 1 : (size_t)want;
	if (ftruncate(fd, 0) < 0 || pwrite(fd, line, n, 0) != (ssize_t)n) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		close(fd);
		free(path);
		return -1;
	}
	free(path);
	return fd;
}

int drr_lock_holder(const char *state_dir, const char *name, char *run_id, size_t n, long *pid)
{
	char *path = lock_path(state_dir, name);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return 0;
	int held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
	if (held) {
		char holder[256], id[200] = "";
		read_holder(fd, holder, sizeof holder);
		*pid = 0;
		sscanf(holder, "%199s %ld", id, pid);
		snprintf(run_id, n, "%s", id);
	}
	close(fd);
	return held;
}

void drr_lock_release(int fd)
{
	if (fd >= 0)
		close(fd);
}
