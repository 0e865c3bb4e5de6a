/*
 * connect.c - a new session: resolve (uv_getaddrinfo), non-blocking TCP
 * connect through each address, SSH handshake, host key check against
 * known_hosts before any credential is sent ("strict" refuses unknown and
 * changed keys; "accept-new" records unknown ones), then public key or
 * ssh-agent authentication.
 */
#include "ssh.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

/* Append a line (with its newline) to path, as ssh(1) does with a new
 * host: the rest of the file is left as it is.  0 or -1 (errno). */
static int append_line(const char *path, const char *line, size_t len)
{
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	char last = '\n';
	off_t end = lseek(fd, 0, SEEK_END);
	if (end > 0 && pread(fd, &last, 1, end - 1) != 1)
		last = '\n';
	int rc = 0;
	if (last != '\n' && write(fd, "\n", 1) != 1)
		rc = -1;
	for (size_t off = 0; rc == 0 && off < len;) {
		ssize_t w = write(fd, line + off, len - off);
		if (w < 0)
			rc = -1;
		else
			off += (size_t)w;
	}
	if (close(fd) < 0)
		rc = -1;
	return rc;
}

static int hostkey_check(struct sshop *o)
{
	struct sess *se = o->se;
	size_t len;
	int type;
	const char *key = libssh2_session_hostkey(se->s, &len, &type);
	if (!key)
		return ssh_fail_ssh(o, "hostkey", "no host key from");
	int kt;
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA:
		kt = LIBSSH2_KNOWNHOST_KEY_SSHRSA;
		break;
	case LIBSSH2_HOSTKEY_TYPE_DSS:
		kt = LIBSSH2_KNOWNHOST_KEY_SSHDSS;
		break;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256:
		kt = LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
		break;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384:
		kt = LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
		break;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521:
		kt = LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
		break;
	case LIBSSH2_HOSTKEY_TYPE_ED25519:
		kt = LIBSSH2_KNOWNHOST_KEY_ED25519;
		break;
	default:
		return ssh_fail(o, "hostkey", "%s: unsupported host key type", se->host);
	}
	/* the run's copy of known_hosts (files.c); a missing file is empty */
	struct ssh_file *khf = o->files[SSH_F_KH];
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	if (khf && (!khf->err || khf->err == ENOENT))
		kh = ssh_file_knownhosts(khf);
	if (!kh || khf->kh_bad)
		return ssh_fail(o, "hostkey", "cannot read known_hosts %s%s%s", o->known_hosts,
				khf && khf->err ? ": " : "",
				khf && khf->err ? strerror(khf->err) : "");
	struct libssh2_knownhost *found = NULL;
	int mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | kt;
	int rc = libssh2_knownhost_checkp(kh, se->host, se->port, key, len, mask, &found);
	int ret = 0;
	if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) {
		ret = 0;
	} else if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		ret = ssh_fail(o, "hostkey",
			       "host key for %s:%d does not match %s: refusing (possible "
			       "man-in-the-middle; remove the old key if the host was rebuilt)",
			       se->host, se->port, o->known_hosts);
	} else if (rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && o->host_key_mode &&
		   !strcmp(o->host_key_mode, "accept-new")) {
		char name[300];
		if (se->port == 22)
			snprintf(name, sizeof name, "%s", se->host);
		else
			snprintf(name, sizeof name, "[%s]:%d", se->host, se->port);
		struct libssh2_knownhost *added = NULL;
		char line[8192];
		size_t ll = 0;
		if (libssh2_knownhost_addc(kh, name, NULL, key, len, NULL, 0, mask, &added) < 0 ||
		    libssh2_knownhost_writeline(kh, added, line, sizeof line, &ll,
						LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0 ||
		    append_line(o->known_hosts, line, ll) < 0)
			ret = ssh_fail(o, "hostkey", "cannot record the host key of %s in %s", name,
				       o->known_hosts);
		else
			o->recorded = 1;
	} else if (rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) {
		ret = ssh_fail(
			o, "hostkey",
			"host %s:%d is not in %s: refusing (host_key = \"accept-new\" records "
			"unknown hosts)",
			se->host, se->port, o->known_hosts);
	} else {
		ret = ssh_fail(o, "hostkey", "host key check of %s failed", se->host);
	}
	if (ret)
		se->state = S_DEAD;
	return ret;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res);

static int tcp_next(struct sshop *o)
{
	struct sess *se = o->se;
	while (o->ai_cur) {
		struct addrinfo *a = o->ai_cur;
		o->ai_cur = a->ai_next;
		int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
			snprintf(o->err, sizeof o->err, "%s", strerror(errno));
			close(fd);
			continue;
		}
		int rc = ssh_watch(se, fd, UV_WRITABLE);
		if (rc < 0) {
			ssh_unwatch(se); /* closes fd */
			return ssh_fail(o, "io", "cannot watch the socket to %s:%d: %s", se->host,
					se->port, uv_strerror(rc));
		}
		return 0;
	}
	return ssh_fail(o, "refused", "cannot connect to %s:%d: %s", se->host, se->port,
			o->err[0] ? o->err : "no address");
}

/* Whether a private key is RSA: its .pub (pub, may be NULL), a PEM
 * header, or the public half at the start of an OpenSSH-format key. */
static int key_is_rsa(const struct ssh_file *pub, const struct ssh_file *key)
{
	char b64[260], raw[200];
	if (pub && pub->data && pub->len >= 8 && !memcmp(pub->data, "ssh-rsa ", 8))
		return 1;
	if (!key || !key->data)
		return 0;
	if (strstr(key->data, "BEGIN RSA PRIVATE KEY"))
		return 1;
	const char *p = strstr(key->data, "BEGIN OPENSSH PRIVATE KEY-----");
	if (!p)
		return 0;
	size_t m = 0;
	for (p += 30; *p && *p != '-' && m < 256; p++)
		if (*p != '\n' && *p != '\r')
			b64[m++] = *p;
	m -= m % 4;
	int len = EVP_DecodeBlock((unsigned char *)raw, (unsigned char *)b64, (int)m);
	return len > 0 && memmem(raw, (size_t)len, "\0\0\0\7ssh-rsa", 11) != NULL;
}

/* Why an RSA key may be refused by a server that accepts the key itself. */
static const char *rsa_hint(const struct sshop *o)
{
	if (libssh2_version(0x010b00) || !key_is_rsa(o->files[SSH_F_PUB], o->files[SSH_F_KEY]))
		return "";
	return " (this libssh2 is older than 1.11 and signs with RSA keys only as ssh-rsa, "
	       "SHA-1, which OpenSSH 8.8 and later refuse by default: use an ed25519 key, "
	       "or allow ssh-rsa in the server's PubkeyAcceptedAlgorithms)";
}

static int auth_step(struct sshop *o)
{
	struct sess *se = o->se;
	int rc;
	if (o->key_path) {
		/* the run's copies of the key and its .pub (files.c): with the
		 * public half at hand (as ssh(1) uses it), libssh2 need not derive
		 * it from the private key: one key parse per login instead of two,
		 * the biggest part of a login's CPU */
		const struct ssh_file *k = o->files[SSH_F_KEY], *pub = o->files[SSH_F_PUB];
		const char *why;
		if (k && !k->err) {
			int has_pub = pub && !pub->err && pub->data;
			rc = libssh2_userauth_publickey_frommemory(
				se->s, se->user, strlen(se->user), has_pub ? pub->data : NULL,
				has_pub ? pub->len : 0, k->data, k->len, o->passphrase);
			if (rc == LIBSSH2_ERROR_EAGAIN)
				return 0;
			if (rc == 0)
				return 1;
			why = ssh_last_error(se);
		} else {
			why = k ? strerror(k->err) : "not read";
		}
		if (!o->try_agent)
			return ssh_fail(
				o, "auth",
				"public key authentication of %s@%s:%d with %s failed: %s%s",
				se->user, se->host, se->port, o->key_path, why, rsa_hint(o));
		free(o->key_path);
		o->key_path = NULL; /* fall back to the agent */
	}
	if (!o->try_agent)
		return ssh_fail(o, "auth", "no key for %s@%s:%d (give key = path, or run an agent)",
				se->user, se->host, se->port);
	return ssh_agent_step(o); /* agent.c: off the loop */
}

/* libssh2's socket reads, counted for ssh_drive(); errors as -errno. */
static LIBSSH2_RECV_FUNC(counting_recv)
{
	struct sess *se = *abstract;
	ssize_t n = recv(socket, buffer, length, flags);
	if (n < 0)
		return -errno;
	se->rx += (uint64_t)n;
	return n;
}

int ssh_connect_step(struct sshop *o)
{
	struct sess *se = o->se;
	if (o->phase == C_RESOLVE && !o->timed_out && !o->cancelled)
		return 0; /* on_resolved moves on */
	if (o->phase == C_RESOLVE) {
		/* the deadline covers resolution: the lookup may go on in the
		 * thread pool, but the op is done with it */
		ssh_resolve_abandon(o);
		se->state = S_DEAD;
		if (!o->timed_out)
			return 1;
		char d[32];
		return ssh_fail(o, "timeout", "resolving %s took longer than %s", se->host,
				drr_duration_fmt(o->timeout, d, sizeof d));
	}
	if (o->timed_out || o->cancelled) {
		char d[32];
		se->state = S_DEAD;
		return ssh_fail(o, "timeout", "connecting to %s:%d took longer than %s", se->host,
				se->port, drr_duration_fmt(o->timeout, d, sizeof d));
	}
	int rc;
	switch (o->phase) {
	case C_TCP: {
		int err = 0;
		socklen_t l = sizeof err;
		if (getsockopt(se->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err == EINPROGRESS || err == EALREADY)
			return 0;
		if (err) {
			snprintf(o->err, sizeof o->err, "%s", strerror(err));
			ssh_unwatch(se);
			if (tcp_next(o)) {
				se->state = S_DEAD;
				if (!strcmp(o->tok, "io"))
					return 1; /* a local failure, said as such */
				return ssh_fail(o, err == ECONNREFUSED ? "refused" : "closed",
						"cannot connect to %s:%d: %s", se->host, se->port,
						strerror(err));
			}
			return 0;
		}
		/* connected: is it writable yet?  SO_ERROR 0 before the connect
		 * finished is possible only once the poll said writable */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		if (getpeername(se->fd, (struct sockaddr *)&ss, &sl) < 0)
			return 0;
		se->s = libssh2_session_init_ex(NULL, NULL, NULL, se);
		if (!se->s) {
			se->state = S_DEAD;
			return ssh_fail(o, "io", "cannot start an SSH session to %s:%d (libssh2)",
					se->host, se->port);
		}
		libssh2_session_callback_set(se->s, LIBSSH2_CALLBACK_RECV, (void *)counting_recv);
		libssh2_session_set_blocking(se->s, 0);
		o->phase = C_HANDSHAKE;
	}
		/* fallthrough */
	case C_HANDSHAKE:
		rc = libssh2_session_handshake(se->s, se->fd);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (rc)
			return ssh_fail_ssh(o, "closed", "SSH handshake with");
		o->phase = C_HOSTKEY;
		/* fallthrough */
	case C_HOSTKEY:
		if (!o->files_ready)
			return 0; /* the pool job's completion drives us again */
		if (o->tok)	  /* it could not run */
			return 1;
		if (hostkey_check(o)) /* before any credential is sent */
			return 1;
		o->phase = C_AUTH;
		/* fallthrough */
	case C_AUTH:
		if (!auth_step(o))
			return 0;
		if (o->tok) {
			se->state = S_DEAD;
			return 1;
		}
		se->state = S_READY;
		o->phase = C_DONE;
		return 1;
	}
	return 1;
}

/* A name lookup.  It lives apart from its op, from uv_getaddrinfo until
 * libuv calls on_resolved (always, also after uv_cancel), so the op can
 * end at its deadline, or be cancelled and freed, while the lookup is
 * still queued or running in the thread pool; o is NULL once abandoned. */
struct resolve {
	uv_getaddrinfo_t req;
	struct sshop *o;
};

void ssh_resolve_abandon(struct sshop *o)
{
	struct resolve *r = o->resolving;
	if (!r)
		return;
	o->resolving = NULL;
	r->o = NULL;
	uv_cancel((uv_req_t *)&r->req); /* fails harmlessly once it runs */
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct resolve *r = req->data;
	struct sshop *o = r->o;
	free(r);
	if (!o) { /* abandoned: its op may be gone */
		if (res)
			uv_freeaddrinfo(res);
		return;
	}
	o->resolving = NULL;
	struct sess *se = o->se;
	if (status < 0) {
		ssh_fail(o, "dns", "cannot resolve %s: %s", se->host, uv_strerror(status));
		se->state = S_DEAD;
		ssh_op_finish(o);
		return;
	}
	o->ai = o->ai_cur = res;
	o->phase = C_TCP;
	if (tcp_next(o)) {
		se->state = S_DEAD;
		ssh_op_finish(o);
	}
}

/* A new session to host and its connect op, resolving; the op is finished
 * already (o->sync, with its error) when resolution could not start.
 * Takes ownership of pool_key, key, pass, known_hosts and mode. */
struct sshop *ssh_connect_start(const char *host, int port, const char *user, char *pool_key,
				char *key, char *pass, char *kh, char *mode, int agent,
				double timeout)
{
	ssh_ensure_lib();
	struct sess *se = drr_xcalloc(1, sizeof *se);
	se->fd = -1;
	se->state = S_CONNECTING;
	se->pool_key = pool_key;
	se->host = drr_xstrdup(host);
	se->user = drr_xstrdup(user);
	se->port = port;
	se->refs = 1; /* the op */
	se->next = ssh_sessions;
	ssh_sessions = se;
	struct sshop *o = ssh_op_new(K_CONNECT);
	o->op.cancel = ssh_op_cancel;
	o->step = ssh_connect_step;
	o->key_path = key;
	if (key)
		o->pub_path = drr_xasprintf("%s.pub", key);
	o->passphrase = pass;
	o->known_hosts = kh;
	o->host_key_mode = mode;
	o->try_agent = agent && getenv("SSH_AUTH_SOCK") != NULL;
	ssh_add_op(se, o);
	ssh_start_timer(o, timeout);
	/* the files are read in the pool while the name resolves */
	const char *paths[SSH_FILES] = { key, o->pub_path, kh };
	int frc = ssh_files_fetch(o, paths);
	if (frc < 0) {
		ssh_fail(o, "io", "cannot read the files for %s: %s", host, uv_strerror(frc));
		se->state = S_DEAD;
		o->sync = 1;
		ssh_op_finish(o);
		return o;
	}
	struct resolve *r = drr_xcalloc(1, sizeof *r);
	r->o = o;
	r->req.data = r;
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	struct addrinfo hints;
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	int rc = uv_getaddrinfo(drr_loop(), &r->req, on_resolved, host, portstr, &hints);
	if (rc < 0) {
		free(r);
		ssh_fail(o, "dns", "cannot resolve %s: %s", host, uv_strerror(rc));
		se->state = S_DEAD;
		o->sync = 1;
		ssh_op_finish(o);
		return o;
	}
	o->resolving = r;
	return o;
}
