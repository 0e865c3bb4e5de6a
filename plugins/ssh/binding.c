/*
 * binding.c - the Lua module "drrun.ssh.core": connect, and the session
 * methods exec, put, get and close.  Only binds: it checks arguments,
 * starts an op (connect.c, exec.c, sftp.c), yields, and pushes the result.
 * Exports luaopen_drrun_ssh.  The public module (ssh.run, OpenSSH config)
 * is stdlib/drrun/ssh.lua.
 */
#include "ssh.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SESSION_MT "drrun.ssh.Session"

/* ---- Lua --------------------------------------------------------------------------------- */

struct ud {
	struct sess *se;
};

static struct sess *check_sess(lua_State *L)
{
	struct ud *u = luaL_checkudata(L, 1, SESSION_MT);
	if (!u->se)
		luaL_error(L, "ssh session is closed");
	if (u->se->state != S_READY)
		luaL_error(L, "ssh session to %s is broken; connect again", u->se->host);
	return u->se;
}

static void push_session(lua_State *L, struct sess *se)
{
	struct ud *u = lua_newuserdatauv(L, sizeof *u, 0);
	u->se = NULL; /* "closed" until it holds a reference */
	luaL_setmetatable(L, SESSION_MT);
	se->refs++;
	u->se = se;
}

static void sha_hex(SHA256_CTX *c, char hex[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256_Final(md, c);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int op_k(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	struct sshop *o = (struct sshop *)ctx;
	int n = 1;
	if (o->tok) {
		n = drr_push_fail(L, o->tok, "%s", o->err);
	} else if (o->kind == K_READ) {
		const struct ssh_file *f = o->files[0];
		if (!f)
			n = drr_push_fail(L, "io", "cannot read the file");
		else if (f->err == ENOENT)
			n = drr_push_fail(L, "not_found", "%s: %s", f->path, strerror(f->err));
		else if (f->err)
			n = drr_push_fail(L, "io", "cannot read %s: %s", f->path, strerror(f->err));
		else
			lua_pushlstring(L, f->data, f->len);
	} else if (o->kind == K_CONNECT) {
		struct sess *se = o->se;
		se->pooled = 1;
		se->refs++;
		push_session(L, se);
		if (o->recorded)
			drr_task_log(L, "ssh: recorded the host key of %s:%d in %s", se->host,
				     se->port, o->known_hosts);
	} else if (o->kind == K_EXEC) {
		lua_createtable(L, 0, 6);
		if (o->signame[0]) {
			lua_pushstring(L, o->signame);
			lua_setfield(L, -2, "signal");
		} else {
			lua_pushinteger(L, o->exit_status);
			lua_setfield(L, -2, "status");
		}
		drr_capture_push(L, &o->out);
		lua_setfield(L, -2, "stdout");
		drr_capture_push(L, &o->errb);
		lua_setfield(L, -2, "stderr");
		lua_pushnumber(L, drr_mono() - o->t0);
		lua_setfield(L, -2, "duration");
		lua_pushboolean(L,
				drr_capture_truncated(&o->out) || drr_capture_truncated(&o->errb));
		lua_setfield(L, -2, "truncated");
		lua_pushstring(L, o->se->host);
		lua_setfield(L, -2, "host");
	} else {
		char hex[65];
		sha_hex(&o->sha, hex);
		lua_createtable(L, 0, 3);
		lua_pushinteger(L, (lua_Integer)o->bytes);
		lua_setfield(L, -2, "bytes");
		lua_pushstring(L, hex);
		lua_setfield(L, -2, "sha256");
		lua_pushnumber(L, drr_mono() - o->t0);
		lua_setfield(L, -2, "duration");
	}
	ssh_op_free(o);
	return n;
}

/* t[field] as a string, or NULL when nil; it stays on the stack (so alive)
 * until the function returns.  [-0, +1, e] */
static const char *opt_str(lua_State *L, int idx, const char *field)
{
	lua_getfield(L, idx, field);
	if (lua_isnil(L, -1))
		return NULL;
	if (lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "ssh: %s must be a string", field);
	return lua_tostring(L, -1);
}

static char *home_path(const char *rel)
{
	const char *h = getenv("HOME");
	return drr_xasprintf("%s/%s", h && *h ? h : ".", rel);
}

static char *expand_tilde(char *p)
{
	if (p && p[0] == '~' && p[1] == '/') {
		char *e = home_path(p + 2);
		free(p);
		return e;
	}
	return p;
}

/* core.connect{ host, port, user, key, passphrase, agent, known_hosts,
 * host_key, timeout } -> session | nil, err, token */
static int l_connect(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "host");
	const char *host = luaL_checkstring(L, -1);
	lua_getfield(L, 1, "port");
	lua_Integer port = luaL_optinteger(L, -1, 22);
	luaL_argcheck(L, port > 0 && port < 65536, 1, "port out of range");
	lua_getfield(L, 1, "user");
	const char *user = lua_isnil(L, -1) ? getenv("USER") : luaL_checkstring(L, -1);
	if (!user)
		user = "root";
	double timeout = drr_opt_duration(L, 1, "timeout", DEFAULT_TIMEOUT, "ssh.connect");
	/* every check that can raise comes before the first malloc */
	const char *key_s = opt_str(L, 1, "key"), *pass_s = opt_str(L, 1, "passphrase");
	const char *kh_s = opt_str(L, 1, "known_hosts"), *mode_s = opt_str(L, 1, "host_key");
	lua_getfield(L, 1, "agent");
	int agent = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
	if (mode_s && strcmp(mode_s, "strict") && strcmp(mode_s, "accept-new"))
		return luaL_error(L, "ssh: host_key must be \"strict\" or \"accept-new\"");
	drr_task_check(L, "ssh.connect");
	char *key = expand_tilde(key_s ? drr_xstrdup(key_s) : NULL);
	char *pass = pass_s ? drr_xstrdup(pass_s) : NULL;
	char *kh = kh_s ? expand_tilde(drr_xstrdup(kh_s)) : home_path(".ssh/known_hosts");
	char *mode = mode_s ? drr_xstrdup(mode_s) : NULL;
	struct drr_buf pk = { 0 };
	/* a session is reused only for the same identity and host key policy */
	drr_buf_addf(&pk, "%s@%s:%lld|%s|%s|%s", user, host, (long long)port, key ? key : "agent",
		     kh, mode ? mode : "strict");
	struct sess *se = ssh_pool_find(pk.data);
	if (se) {
		drr_buf_free(&pk);
		free(key), free(pass), free(kh), free(mode);
		push_session(L, se);
		lua_pushboolean(L, 1); /* second value: reused */
		return 2;
	}
	struct sshop *o = ssh_connect_start(host, (int)port, user, pk.data, key, pass, kh, mode,
					    agent, timeout);
	if (o->finished)
		return op_k(L, 0, (lua_KContext)o);
	return drr_task_yield(L, &o->op, (lua_KContext)o, op_k);
}

/* Queue o on se and run it as far as it goes now; yield unless it is done. */
static int start_op(lua_State *L, struct sess *se, struct sshop *o, double timeout)
{
	se->refs++;
	ssh_add_op(se, o);
	ssh_start_timer(o, timeout);
	o->sync = 1;
	ssh_drive(se);
	o->sync = 0;
	if (o->finished)
		return op_k(L, 0, (lua_KContext)o);
	return drr_task_yield(L, &o->op, (lua_KContext)o, op_k);
}

static int dry(lua_State *L, struct sess *se, const char *what, const char *detail)
{
	return drr_push_dry_run(L, "would %s on %s@%s:%d: %s", what, se->user, se->host, se->port,
				detail);
}

/* session:exec(cmd, { timeout, stdin, pty, max_output }) */
static int l_exec(lua_State *L)
{
	struct sess *se = check_sess(L);
	const char *cmd = luaL_checkstring(L, 2);
	int opts = lua_istable(L, 3) ? 3 : 0;
	double timeout = drr_opt_duration(L, opts, "timeout", DEFAULT_EXEC_TIMEOUT, "ssh");
	size_t in_len = 0;
	const char *in = NULL;
	int pty = 0;
	lua_Integer max = DEFAULT_MAX_OUTPUT;
	if (opts) {
		lua_getfield(L, 3, "stdin");
		in = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &in_len);
		lua_getfield(L, 3, "pty");
		pty = lua_toboolean(L, -1);
		lua_getfield(L, 3, "max_output");
		max = luaL_optinteger(L, -1, DEFAULT_MAX_OUTPUT);
		luaL_argcheck(L, max > 0, 3, "max_output must be positive");
	}
	drr_task_check(L, "session:exec");
	if (drr_dry_run())
		return dry(L, se, "run", cmd);
	struct sshop *o = ssh_op_new(K_EXEC);
	o->op.cancel = ssh_op_cancel;
	o->step = ssh_exec_step;
	/* report the command's process group first, so a timeout can kill it */
	o->cmd = drr_xasprintf("printf '" PID_TAG "%%s\\n' \"$$\" >&2; %s", cmd);
	o->user_cmd = drr_xstrdup(cmd);
	o->pty = pty;
	o->out.cap = o->errb.cap = (size_t)max;
	if (in) {
		o->in = drr_xmalloc(in_len ? in_len : 1);
		memcpy(o->in, in, in_len);
		o->in_len = in_len;
	}
	return start_op(L, se, o, timeout);
}

static int transfer(lua_State *L, int kind)
{
	struct sess *se = check_sess(L);
	const char *a = luaL_checkstring(L, 2), *b = luaL_checkstring(L, 3);
	int opts = lua_istable(L, 4) ? 4 : 0;
	double timeout = drr_opt_duration(L, opts, "timeout", DEFAULT_EXEC_TIMEOUT, "ssh");
	lua_Integer mode = 0644;
	if (opts) {
		lua_getfield(L, 4, "mode");
		mode = luaL_optinteger(L, -1, 0644);
	}
	drr_task_check(L, kind == K_PUT ? "session:put" : "session:get");
	const char *local = kind == K_PUT ? a : b, *remote = kind == K_PUT ? b : a;
	if (drr_dry_run()) {
		const char *d = lua_pushfstring(L, "%s %s %s %s", kind == K_PUT ? "send" : "fetch",
						kind == K_PUT ? local : remote,
						kind == K_PUT ? "to" : "into",
						kind == K_PUT ? remote : local);
		return dry(L, se, "transfer", d);
	}
	struct sshop *o = ssh_xfer_new(kind, local, remote, (long)mode);
	if (!o)
		return drr_push_fail(L, "io", "cannot open %s: %s", local, strerror(errno));
	return start_op(L, se, o, timeout);
}

static int l_put(lua_State *L)
{
	return transfer(L, K_PUT);
}

static int l_get(lua_State *L)
{
	return transfer(L, K_GET);
}

/* core.read_file(path) -> contents | nil, err, "not_found" or "io"; in
 * the thread pool, so a slow disk or a FIFO never holds up the loop */
static int l_read_file(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	drr_task_check(L, "ssh.config");
	ssh_ensure_lib();
	int err = 0;
	struct sshop *o = ssh_read_new(path, &err);
	if (!o)
		return drr_push_fail(L, "io", "cannot read %s: %s", path, uv_strerror(err));
	return drr_task_yield(L, &o->op, (lua_KContext)o, op_k);
}

static int l_close(lua_State *L)
{
	struct ud *u = luaL_checkudata(L, 1, SESSION_MT);
	struct sess *se = u->se;
	if (!se)
		return 0;
	u->se = NULL;
	if (lua_toboolean(L, lua_upvalueindex(1)) && se->pooled)
		ssh_pool_remove(se); /* an explicit :close() ends the connection too */
	ssh_sess_unref(se);
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct ud *u = luaL_checkudata(L, 1, SESSION_MT);
	if (u->se)
		lua_pushfstring(L, "ssh session %s@%s:%d", u->se->user, u->se->host, u->se->port);
	else
		lua_pushliteral(L, "ssh session (closed)");
	return 1;
}

int luaopen_drrun_ssh(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "exec", l_exec },
		{ "put", l_put },
		{ "get", l_get },
		{ NULL, NULL },
	};
	static const luaL_Reg fns[] = {
		{ "connect", l_connect },
		{ "read_file", l_read_file },
		{ NULL, NULL },
	};
	char err[300];
	if (ssh_libssh2_load(err, sizeof err) < 0) /* not linked: opened now */
		return luaL_error(L, "drrun.ssh: %s (install libssh2-1)", err);
	if (luaL_newmetatable(L, SESSION_MT)) {
		luaL_newlib(L, methods);
		lua_pushboolean(L, 1);
		lua_pushcclosure(L, l_close, 1);
		lua_setfield(L, -2, "close");
		lua_setfield(L, -2, "__index");
		lua_pushboolean(L, 0); /* collected or closed by scope: keep pooled */
		lua_pushcclosure(L, l_close, 1);
		lua_setfield(L, -2, "__gc");
		lua_pushboolean(L, 0);
		lua_pushcclosure(L, l_close, 1);
		lua_setfield(L, -2, "__close");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
	}
	lua_pop(L, 1);
	luaL_newlib(L, fns);
	lua_pushstring(L, LIBSSH2_VERSION);
	lua_setfield(L, -2, "libssh2_version");
	return 1;
}
