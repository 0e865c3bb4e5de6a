/*
 * ssh/libssh2.h - libssh2, opened when drrun.ssh is first required
 * (libssh2.c) instead of linked, so start-up never maps it.  Included by
 * ssh.h after libssh2's headers: each libssh2 function below becomes a call
 * through a table that ssh_libssh2_load() fills, all or nothing, in the
 * module's luaopen, before any other ssh code runs.  A libssh2 function
 * that is not in SSH_LIBSSH2_FUNCS fails the link with its name: add it.
 */
#ifndef DRRUN_PLUGIN_SSH_LIBSSH2_H
#define DRRUN_PLUGIN_SSH_LIBSSH2_H

#include <stddef.h>

#include <libssh2.h>
#include <libssh2_sftp.h>

#define SSH_LIBSSH2_FUNCS(X)                     \
	X(libssh2_channel_close)                 \
	X(libssh2_channel_eof)                   \
	X(libssh2_channel_free)                  \
	X(libssh2_channel_get_exit_signal)       \
	X(libssh2_channel_get_exit_status)       \
	X(libssh2_channel_open_ex)               \
	X(libssh2_channel_process_startup)       \
	X(libssh2_channel_read_ex)               \
	X(libssh2_channel_request_pty_ex)        \
	X(libssh2_channel_send_eof)              \
	X(libssh2_channel_wait_closed)           \
	X(libssh2_channel_write_ex)              \
	X(libssh2_exit)                          \
	X(libssh2_free)                          \
	X(libssh2_init)                          \
	X(libssh2_knownhost_addc)                \
	X(libssh2_knownhost_checkp)              \
	X(libssh2_knownhost_free)                \
	X(libssh2_knownhost_init)                \
	X(libssh2_knownhost_readfile)            \
	X(libssh2_knownhost_writeline)           \
	X(libssh2_session_block_directions)      \
	X(libssh2_session_callback_set)          \
	X(libssh2_session_disconnect_ex)         \
	X(libssh2_session_free)                  \
	X(libssh2_session_handshake)             \
	X(libssh2_session_hostkey)               \
	X(libssh2_session_init_ex)               \
	X(libssh2_session_last_errno)            \
	X(libssh2_session_last_error)            \
	X(libssh2_session_set_blocking)          \
	X(libssh2_sftp_close_handle)             \
	X(libssh2_sftp_init)                     \
	X(libssh2_sftp_last_error)               \
	X(libssh2_sftp_open_ex)                  \
	X(libssh2_sftp_read)                     \
	X(libssh2_sftp_shutdown)                 \
	X(libssh2_sftp_write)                    \
	X(libssh2_knownhost_readline)            \
	X(libssh2_userauth_publickey)            \
	X(libssh2_userauth_publickey_frommemory) \
	X(libssh2_version)

/* One pointer per function, with the function's own type. */
struct ssh_libssh2 {
#define SSH_LIBSSH2_PTR(name) __typeof__(name) *name;
	SSH_LIBSSH2_FUNCS(SSH_LIBSSH2_PTR)
#undef SSH_LIBSSH2_PTR
};
extern struct ssh_libssh2 ssh_lib;

/* Open libssh2 and fill ssh_lib, once.  0, or -1 with a one-line reason. */
int ssh_libssh2_load(char *err, size_t errlen);

#ifndef SSH_LIBSSH2_NO_REDIRECT
#define libssh2_channel_close (ssh_lib.libssh2_channel_close)
#define libssh2_channel_eof (ssh_lib.libssh2_channel_eof)
#define libssh2_channel_free (ssh_lib.libssh2_channel_free)
#define libssh2_channel_get_exit_signal (ssh_lib.libssh2_channel_get_exit_signal)
#define libssh2_channel_get_exit_status (ssh_lib.libssh2_channel_get_exit_status)
#define libssh2_channel_open_ex (ssh_lib.libssh2_channel_open_ex)
#define libssh2_channel_process_startup (ssh_lib.libssh2_channel_process_startup)
#define libssh2_channel_read_ex (ssh_lib.libssh2_channel_read_ex)
#define libssh2_channel_request_pty_ex (ssh_lib.libssh2_channel_request_pty_ex)
#define libssh2_channel_send_eof (ssh_lib.libssh2_channel_send_eof)
#define libssh2_channel_wait_closed (ssh_lib.libssh2_channel_wait_closed)
#define libssh2_channel_write_ex (ssh_lib.libssh2_channel_write_ex)
#define libssh2_exit (ssh_lib.libssh2_exit)
#define libssh2_free (ssh_lib.libssh2_free)
#define libssh2_init (ssh_lib.libssh2_init)
#define libssh2_knownhost_addc (ssh_lib.libssh2_knownhost_addc)
#define libssh2_knownhost_checkp (ssh_lib.libssh2_knownhost_checkp)
#define libssh2_knownhost_free (ssh_lib.libssh2_knownhost_free)
#define libssh2_knownhost_init (ssh_lib.libssh2_knownhost_init)
#define libssh2_knownhost_readfile (ssh_lib.libssh2_knownhost_readfile)
#define libssh2_knownhost_writeline (ssh_lib.libssh2_knownhost_writeline)
#define libssh2_session_block_directions (ssh_lib.libssh2_session_block_directions)
#define libssh2_session_callback_set (ssh_lib.libssh2_session_callback_set)
#define libssh2_session_disconnect_ex (ssh_lib.libssh2_session_disconnect_ex)
#define libssh2_session_free (ssh_lib.libssh2_session_free)
#define libssh2_session_handshake (ssh_lib.libssh2_session_handshake)
#define libssh2_session_hostkey (ssh_lib.libssh2_session_hostkey)
#define libssh2_session_init_ex (ssh_lib.libssh2_session_init_ex)
#define libssh2_session_last_errno (ssh_lib.libssh2_session_last_errno)
#define libssh2_session_last_error (ssh_lib.libssh2_session_last_error)
#define libssh2_session_set_blocking (ssh_lib.libssh2_session_set_blocking)
#define libssh2_sftp_close_handle (ssh_lib.libssh2_sftp_close_handle)
#define libssh2_sftp_init (ssh_lib.libssh2_sftp_init)
#define libssh2_sftp_last_error (ssh_lib.libssh2_sftp_last_error)
#define libssh2_sftp_open_ex (ssh_lib.libssh2_sftp_open_ex)
#define libssh2_sftp_read (ssh_lib.libssh2_sftp_read)
#define libssh2_sftp_shutdown (ssh_lib.libssh2_sftp_shutdown)
#define libssh2_sftp_write (ssh_lib.libssh2_sftp_write)
#define libssh2_knownhost_readline (ssh_lib.libssh2_knownhost_readline)
#define libssh2_userauth_publickey (ssh_lib.libssh2_userauth_publickey)
#define libssh2_userauth_publickey_frommemory (ssh_lib.libssh2_userauth_publickey_frommemory)
#define libssh2_version (ssh_lib.libssh2_version)
#endif

#endif
