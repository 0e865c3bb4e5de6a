/*
 * ssh.h - private to plugins/ssh/: the session and operation structs that
 * session.c (sessions, the poll driver, timers, op lifetime), connect.c
 * (resolve, TCP, handshake, host key, auth), exec.c (commands), sftp.c
 * (transfers) and binding.c (the Lua module "drrun.ssh.core") share.
 *
 * A session is one TCP connection with one uv_poll handle.  Every operation
 * on it (connect, exec, put, get) is a small state machine: its step
 * function calls libssh2 until it would block (LIBSSH2_ERROR_EAGAIN), and
 * the session's poll handle, watching the directions libssh2 asks for,
 * calls every pending step again when the socket is ready.  The calling
 * coroutine sleeps meanwhile, so hundreds of hosts cost hundreds of sockets,
 * not threads.  Sessions are pooled for the run by (user, host, port, key).
 */
#ifndef DRRUN_PLUGIN_SSH_H
#define DRRUN_PLUGIN_SSH_H

#include "drrun/plugin.h"

#include <netdb.h>
#include <sys/stat.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#include "drrun/libcrypto.h" /* opened on first use, as is libssh2: */
#include "ssh/libssh2.h"

#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_EXEC_TIMEOUT 600.0
#define DEFAULT_MAX_OUTPUT (16u << 20)
#define CHUNK (256 * 1024)
#define PID_TAG "drrun-pid:"

enum {
	S_CONNECTING,
	S_READY,
	S_DEAD
};

struct sshop;
struct resolve;
struct fetch;
struct fsjob;
struct ssh_agent;

/* files.c: one version of a local file a connection reads, cached for the
 * run (see files.c).  err is an errno (ENOENT: there is no such file). */
#define SSH_FILES 3
enum {
	SSH_F_KEY, /* the private key */
	SSH_F_PUB, /* its .pub */
	SSH_F_KH   /* known_hosts */
};
struct ssh_file {
	struct ssh_file *next;
	char *path;
	int refs, err, kh_bad;
	struct stat st;
	char *data; /* NUL-terminated; len bytes */
	size_t len;
	LIBSSH2_SESSION *kh_session; /* for kh's allocator; never connected */
	LIBSSH2_KNOWNHOSTS *kh;	     /* known_hosts, parsed once */
};

/* Lifetime: refs counts the Lua handles, the pool and each pending op.  The
 * connection (socket, poll handle, libssh2 state) is released as soon as
 * nothing needs it, or at the end of the run; the struct itself lives until
 * the last reference goes, which may be a Lua handle collected after the
 * loop is gone, so releasing never touches the loop twice. */
struct sess {
	LIBSSH2_SESSION *s;
	LIBSSH2_SFTP *sftp;
	struct sshop *sftp_owner; /* the transfer whose turn it is */
	int fd;
	uv_poll_t *poll;
	int state, refs, pooled;
	uint64_t rx; /* bytes read from the socket, for drive() */
	int events;  /* what the poll handle watches */
	char *pool_key, *host, *user;
	int port;
	struct sshop *ops;
	struct sess *next; /* every live session */
};

enum {
	K_CONNECT,
	K_EXEC,
	K_PUT,
	K_GET,
	K_READ /* a local file, read in the pool (core.read_file) */
};

struct sshop {
	struct drr_op op;
	struct sess *se;
	int kind, phase, finished, timed_out, cancelled;
	int sync; /* inside the Lua call that started it: finishing must not wake */
	int (*step)(struct sshop *); /* 1: finished; 0: would block */
	struct sshop *next;
	uv_timer_t *timer;
	double t0, timeout;
	const char *tok;
	char err[768];
	/* connect */
	struct resolve *resolving;	   /* the name lookup in flight, if any */
	struct fetch *fetching;		   /* the file reads in flight, if any */
	struct ssh_file *files[SSH_FILES]; /* held; NULL: not asked for */
	int files_ready;
	struct addrinfo *ai, *ai_cur;
	char *key_path, *pub_path, *passphrase, *known_hosts, *host_key_mode;
	int try_agent, recorded;
	struct ssh_agent *ag; /* agent.c */
	void *ag_abstract;
	/* exec */
	LIBSSH2_CHANNEL *ch, *kill_ch;
	char *cmd, *user_cmd, *in;
	size_t in_len, in_off;
	struct drr_capture out, errb;
	int pty, exit_status, has_exit;
	char signame[32];
	long remote_pgid; /* 0: not reported yet; -1: never will be */
	char tag[64];	  /* the start of the pid report */
	size_t tag_len;
	int tag_skip, tag_lines; /* inside, and count of, lines before it */
	char *kill_cmd;
	/* sftp */
	LIBSSH2_SFTP_HANDLE *fh;
	char *local, *remote, *tmp;
	int lfd;
	long mode;
	char *buf;
	size_t blen, boff;
	uint64_t bytes;
	SHA256_CTX sha;
	struct fsjob *job; /* the local read or write in flight, if any */
	int job_done, job_err, job_stage;
	ssize_t job_result;
};

/* ---- connect ------------------------------------------------------------------------- */

enum {
	C_RESOLVE,
	C_TCP,
	C_HANDSHAKE,
	C_HOSTKEY,
	C_AUTH,
	C_DONE
};

/* session.c: every live session */
extern struct sess *ssh_sessions;

/* errors: record token and message on o; 1 (the step is finished) */
int ssh_fail(struct sshop *o, const char *tok, const char *fmt, ...) DRR_PRINTF(3, 4);
const char *ssh_last_error(struct sess *se);
/* a libssh2 failure: the session is no longer usable */
int ssh_fail_ssh(struct sshop *o, const char *tok, const char *what);

/* sessions and ops (session.c) */
void ssh_drive(struct sess *se);
/* watch fd (a new socket, se->fd from now on) with a fresh poll handle;
 * 0, or a libuv error */
int ssh_watch(struct sess *se, int fd, int events);
void ssh_unwatch(struct sess *se);
void ssh_pool_remove(struct sess *se);
struct sess *ssh_pool_find(const char *pool_key);
void ssh_sess_unref(struct sess *se);
void ssh_add_op(struct sess *se, struct sshop *o);
void ssh_op_finish(struct sshop *o);
void ssh_start_timer(struct sshop *o, double secs);
struct sshop *ssh_op_new(int kind);
void ssh_op_free(struct sshop *o);
void ssh_op_cancel(struct drr_op *op);
void ssh_ensure_lib(void);

/* the step functions: 1 finished, 0 would block */
int ssh_connect_step(struct sshop *o); /* connect.c */
int ssh_exec_step(struct sshop *o);    /* exec.c */
int ssh_put_step(struct sshop *o);     /* sftp.c */
int ssh_get_step(struct sshop *o);

/* connect.c: a new session to host and its connect op, resolving (the op
 * is finished already, with its error, when resolution could not start);
 * takes ownership of the malloc'ed strings */
struct sshop *ssh_connect_start(const char *host, int port, const char *user, char *pool_key,
				char *key, char *pass, char *known_hosts, char *mode, int agent,
				double timeout);

/* connect.c: let go of o's name lookup, if one is in flight: it is
 * cancelled if still queued, and its callback (which libuv always calls)
 * frees it without touching o */
void ssh_resolve_abandon(struct sshop *o);

/* files.c: read o's files (key, key.pub, known_hosts; NULL: none) in the
 * thread pool, each only if it changed since the cache read it; then
 * o->files[] hold them, o->files_ready is set and the session driven.
 * 0, or a libuv error. */
int ssh_files_fetch(struct sshop *o, const char *const paths[SSH_FILES]);
/* o lets go of its files, and of a fetch in flight */
void ssh_files_abandon(struct sshop *o);
void ssh_file_unref(struct ssh_file *f);
/* f's lines as a known hosts collection (owned by f), or NULL */
LIBSSH2_KNOWNHOSTS *ssh_file_knownhosts(struct ssh_file *f);
/* files.c: a K_READ op reading path (no session); it wakes its task */
struct sshop *ssh_read_new(const char *path, int *err);
/* the end of the run: the cache goes */
void ssh_files_shutdown(void);

/* agent.c: public key authentication of o's session through the
 * ssh-agent ($SSH_AUTH_SOCK), without blocking: 0 would block, 1 done
 * (o->tok set when it failed) */
int ssh_agent_step(struct sshop *o);
void ssh_agent_free(struct sshop *o);

/* sftp.c: o lets go of its local file job in flight, if any; the job's
 * completion closes the file (and removes a partial download) */
void ssh_xfer_abandon_job(struct sshop *o);

/* sftp.c: a transfer op with its local file open, or NULL and errno */
struct sshop *ssh_xfer_new(int kind, const char *local, const char *remote, long mode);

#endif
