/*
 * test_faults.c - plugins when a library call they depend on fails: a
 * runbook is run in a child process (cmd_run, as `drrun run` does) with
 * curl_easy_init, libssh2_session_init_ex or uv_poll_init_socket made to
 * fail (the test binary is linked with -Wl,--wrap for curl and libuv; the
 * session init is swapped in libssh2's table).  The call must
 * come back as `nil, "io: ...", "io"`; the runbook checks that and exits 0.
 * A crash or a hang (a NULL handle used, a poll handle never started) fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libssh2.h>
#include <uv.h>

#define SSH_LIBSSH2_NO_REDIRECT /* this file reaches into the table itself */
#include "ssh/libssh2.h"

#include "cli/cli.h"

static int fail_curl, fail_ssh_init, fail_poll;

CURL *__real_curl_easy_init(void);
CURL *__wrap_curl_easy_init(void)
{
	return fail_curl ? NULL : __real_curl_easy_init();
}

/* libssh2 is opened at run time and called through a table (ssh/libssh2.h),
 * so its session init is swapped in the table rather than wrapped. */
static __typeof__(ssh_lib.libssh2_session_init_ex) real_session_init_ex;
static LIBSSH2_SESSION *fake_session_init_ex(LIBSSH2_ALLOC_FUNC((*a)), LIBSSH2_FREE_FUNC((*f)),
					     LIBSSH2_REALLOC_FUNC((*r)), void *abstract)
{
	return fail_ssh_init ? NULL : real_session_init_ex(a, f, r, abstract);
}

static void hook_libssh2(void)
{
	char err[300];
	if (ssh_libssh2_load(err, sizeof err) < 0)
		fail_msg("%s", err);
	if (ssh_lib.libssh2_session_init_ex != fake_session_init_ex) {
		real_session_init_ex = ssh_lib.libssh2_session_init_ex;
		ssh_lib.libssh2_session_init_ex = fake_session_init_ex;
	}
}

int __real_uv_poll_init_socket(uv_loop_t *loop, uv_poll_t *h, uv_os_sock_t fd);
int __wrap_uv_poll_init_socket(uv_loop_t *loop, uv_poll_t *h, uv_os_sock_t fd)
{
	return fail_poll ? UV_ENOMEM : __real_uv_poll_init_socket(loop, h, fd);
}

/* A listening socket on loopback: the kernel completes TCP handshakes into
 * its backlog, so a connect gets as far as the SSH handshake. */
static int listener(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Run src as a runbook in a child, in a fresh directory; it must exit 0
 * within 20 s.  On failure, what it printed is shown. */
static void run_runbook(const char *src)
{
	char dir[] = "/tmp/drrun-test-faults-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[512], out[512], state[512];
	snprintf(path, sizeof path, "%s/rb.lua", dir);
	snprintf(out, sizeof out, "%s/out", dir);
	snprintf(state, sizeof state, "%s/state", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(src, f);
	fclose(f);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		alarm(20);
		setenv("DRRUN_STATE_DIR", state, 1);
		char *argv[] = { "run", path, NULL };
		_exit(cmd_run(2, argv));
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char buf[8192] = "";
		f = fopen(out, "r");
		if (f) {
			buf[fread(buf, 1, sizeof buf - 1, f)] = 0;
			fclose(f);
		}
		fail_msg("runbook %s: %s %d\n%s", path, WIFEXITED(st) ? "exit" : "signal",
			 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), buf);
	}
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int reset(void **state)
{
	(void)state;
	fail_curl = fail_ssh_init = fail_poll = 0;
	return 0;
}

#define EXPECT_IO                                                                                \
	"if r or tok ~= 'io' or not err:find('^io: ') then\n"                                    \
	"  error(('want io, got %s %s %s'):format(tostring(r), tostring(err), tostring(tok)))\n" \
	"end\n"

static void test_curl_easy_init_fails(void **state)
{
	(void)state;
	fail_curl = 1;
	run_runbook("local http = require 'drrun.http'\n"
		    "runbook { name = 'faults' }\n"
		    "step 'get' { run = function()\n"
		    "  local r, err, tok = http.get('http://127.0.0.1:9/', { timeout = '5s' "
		    "})\n" EXPECT_IO "end }\n");
}

static void ssh_case(void)
{
	int port;
	int lfd = listener(&port);
	char src[2048];
	snprintf(
		src, sizeof src,
		"local ssh = require 'drrun.ssh'\n"
		"runbook { name = 'faults' }\n"
		"local PORT = %d\n"
		"step 'connect' { run = function()\n"
		"  local r, err, tok = ssh.connect { host = '127.0.0.1', port = PORT, user = 'x',\n"
		"    key = '/nonexistent', known_hosts = '/dev/null', agent = false,\n"
		"    timeout = '10s' }\n",
		port);
	strncat(src, EXPECT_IO "end }\n", sizeof src - strlen(src) - 1);
	run_runbook(src);
	close(lfd);
}

static void test_libssh2_session_init_fails(void **state)
{
	(void)state;
	hook_libssh2();
	fail_ssh_init = 1;
	ssh_case();
}

static void test_uv_poll_init_socket_fails(void **state)
{
	(void)state;
	fail_poll = 1;
	ssh_case();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_curl_easy_init_fails, reset),
		cmocka_unit_test_setup(test_libssh2_session_init_fails, reset),
		cmocka_unit_test_setup(test_uv_poll_init_socket_fails, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
