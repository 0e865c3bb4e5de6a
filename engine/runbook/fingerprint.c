/*
 * fingerprint.c - what a step is, as a hash that `resume` compares with the
 * one its run_start recorded.  It covers the step's fields (phase, doc,
 * approve, once, timeout, retry, after; production, drill and exec.env when
 * set) and its functions (run, rollback, when, drill) as stripped Lua
 * bytecode (lua_dump with strip = 1) with the line
 * each function was defined on set to 0, plus the plain values (numbers,
 * booleans, strings) those functions capture as upvalues.  So moving a step,
 * or adding a comment above it, changes nothing; changing what it does does.
 * Depends on Lua 5.4's dump format (ldump.c); a dump it cannot walk is
 * hashed as it is, which can only report a change that is none.
 */
#include "runbook/runbook.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- walking a Lua 5.4 dump --------------------------------------------- */

struct rd {
	const unsigned char *p, *end;
	struct drr_buf *out; /* the canonical copy */
	int ok;
};

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud)
{
	(void)L;
	drr_buf_add(ud, p, n);
	return 0;
}

static void copy(struct rd *r, size_t n)
{
	if (!r->ok || (size_t)(r->end - r->p) < n) {
		r->ok = 0;
		return;
	}
	drr_buf_add(r->out, r->p, n);
	r->p += n;
}

/* ldump.c's dumpSize: 7 bits a byte, most significant first, 0x80 ends it. */
static size_t varint(struct rd *r, int keep)
{
	size_t x = 0;
	const unsigned char *start = r->p;
	for (int n = 0; r->ok; n++) {
		if (r->p >= r->end || n > 9) {
			r->ok = 0;
			return 0;
		}
		unsigned char b = *r->p++;
		x = (x << 7) | (b & 0x7f);
		if (b & 0x80)
			break;
	}
	if (r->ok && keep)
		drr_buf_add(r->out, start, (size_t)(r->p - start));
	return x;
}

static void string(struct rd *r)
{
	size_t n = varint(r, 1);
	if (n > 0)
		copy(r, n - 1);
}

static void function(struct rd *r, int depth)
{
	if (depth > 200) {
		r->ok = 0;
		return;
	}
	string(r);			    /* source: empty when stripped */
	varint(r, 0);			    /* linedefined */
	varint(r, 0);			    /* lastlinedefined */
	drr_buf_add(r->out, "\x80\x80", 2); /* both as 0 */
	copy(r, 3);			    /* numparams, is_vararg, maxstacksize */
	size_t n = varint(r, 1);
	if (n > (size_t)(r->end - r->p) / 4) {
		r->ok = 0;
		return;
	}
	copy(r, n * 4); /* code */
	n = varint(r, 1);
	for (size_t i = 0; i < n && r->ok; i++) { /* constants */
		if (r->p >= r->end) {
			r->ok = 0;
			return;
		}
		unsigned char tt = *r->p;
		copy(r, 1);
		if (tt == 0x03 || tt == 0x13)
			copy(r, 8); /* an integer, a float */
		else if (tt == 0x04 || tt == 0x14)
			string(r);
		else if (tt != 0x00 && tt != 0x01 && tt != 0x11)
			r->ok = 0; /* not nil, false or true: a format we do not know */
	}
	n = varint(r, 1);
	if (n > (size_t)(r->end - r->p) / 3) {
		r->ok = 0;
		return;
	}
	copy(r, n * 3); /* upvalues: instack, idx, kind */
	n = varint(r, 1);
	for (size_t i = 0; i < n && r->ok; i++)
		function(r, depth + 1);
	/* debug info: all four counts are 0 in a stripped dump */
	for (int i = 0; i < 4 && r->ok; i++)
		if (varint(r, 1) != 0)
			r->ok = 0;
}

/* The function at the top of L's stack as canonical stripped bytecode. */
static void add_function(lua_State *L, struct drr_buf *b)
{
	if (!lua_isfunction(L, -1) || lua_iscfunction(L, -1)) {
		drr_buf_adds(b, lua_iscfunction(L, -1) ? "C function" : "none");
		return;
	}
	struct drr_buf raw = { 0 };
	lua_dump(L, dump_writer, &raw, 1);
	/* header: signature, version 5.4, format 0, LUAC_DATA, three sizes, LUAC_INT, LUAC_NUM */
	static const unsigned char head[] = "\x1bLua\x54\x00\x19\x93\r\n\x1a\n\x04\x08\x08";
	size_t hl = sizeof head - 1, all = hl + 16 + 1;
	struct drr_buf canon = { 0 };
	struct rd r = { (const unsigned char *)raw.data, (const unsigned char *)raw.data + raw.len,
			&canon, 1 };
	if (raw.len > all && !memcmp(raw.data, head, hl)) {
		copy(&r, all); /* the header and sizeupvalues, as they are */
		function(&r, 0);
		r.ok = r.ok && r.p == r.end;
	} else {
		r.ok = 0;
	}
	if (r.ok)
		drr_buf_add(b, canon.data, canon.len);
	else
		drr_buf_add(b, raw.data, raw.len);
	drr_buf_free(&canon);
	drr_buf_free(&raw);
}

/* ---- the fingerprint ---------------------------------------------------- */

/* One field: its name, then its length, then its bytes. */
static void field(struct drr_buf *b, const char *name, const char *v, size_t n)
{
	drr_buf_addf(b, "%s:%zu:", name, v ? n : (size_t)0);
	if (v)
		drr_buf_add(b, v, n);
	drr_buf_adds(b, ";");
}

static void sfield(struct drr_buf *b, const char *name, const char *v)
{
	field(b, name, v, v ? strlen(v) : 0);
}

static int is_secret(const char *v, size_t n, char **secrets, int nsecrets)
{
	for (int i = 0; i < nsecrets; i++) {
		const char *s = getenv(secrets[i]);
		if (s && strlen(s) == n && !memcmp(s, v, n))
			return 1;
	}
	return 0;
}

/* The function at ref, and the plain values it captures. */
static void func_field(lua_State *L, struct drr_buf *b, const char *name, int ref, char **secrets,
		       int nsecrets)
{
	struct drr_buf f = { 0 };
	if (ref != LUA_NOREF) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
		add_function(L, &f);
		for (int i = 1; lua_getupvalue(L, -1, i); i++) {
			size_t n;
			const char *v;
			switch (lua_type(L, -1)) {
			case LUA_TNUMBER:
			case LUA_TBOOLEAN:
				v = luaL_tolstring(L, -1, &n);
				drr_buf_addf(&f, "|up%d=%s", i, v);
				lua_pop(L, 1);
				break;
			case LUA_TSTRING:
				v = lua_tolstring(L, -1, &n);
				/* a secret's value is never hashed into the journal */
				if (is_secret(v, n, secrets, nsecrets))
					drr_buf_addf(&f, "|up%d=secret", i);
				else {
					drr_buf_addf(&f, "|up%d=%zu:", i, n);
					drr_buf_add(&f, v, n);
				}
				break;
			default:
				drr_buf_addf(&f, "|up%d:%s", i, luaL_typename(L, -1));
			}
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	field(b, name, f.data, f.len);
	drr_buf_free(&f);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* exec.env as sorted NAME=value lines (a secret's value as "secret"). */
static void env_field(lua_State *L, struct drr_buf *b, int ref, char **secrets, int nsecrets)
{
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	int n = 0;
	for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
		n++;
	const char **kv = drr_xcalloc((size_t)n + 1, sizeof *kv);
	int i = 0;
	lua_newtable(L); /* anchors the strings */
	for (lua_pushnil(L); lua_next(L, -3); lua_pop(L, 1)) {
		size_t vn;
		const char *v = lua_tolstring(L, -1, &vn);
		lua_pushfstring(L, "%s=%s", lua_tostring(L, -2),
				is_secret(v, vn, secrets, nsecrets) ? "secret" : v);
		kv[i] = lua_tostring(L, -1);
		lua_rawseti(L, -4, i + 1);
		i++;
	}
	qsort(kv, (size_t)i, sizeof *kv, cmp_str);
	for (int k = 0; k < i; k++)
		sfield(b, "exec.env", kv[k]);
	free(kv);
	lua_pop(L, 2);
}

void drr_step_fingerprint(lua_State *L, const struct drr_step *s, char **secrets, int nsecrets,
			  char out[65])
{
	struct drr_buf b = { 0 };
	char num[128];
	sfield(&b, "name", s->name);
	sfield(&b, "phase", s->phase);
	sfield(&b, "doc", s->doc);
	sfield(&b, "approve", s->approve);
	sfield(&b, "once", s->once ? "true" : "false");
	snprintf(num, sizeof num, "%.17g", s->timeout);
	sfield(&b, "timeout", num);
	snprintf(num, sizeof num, "%d/%.17g/%.17g/%.17g", s->retry.attempts, s->retry.delay,
		 s->retry.backoff, s->retry.max_delay);
	sfield(&b, "retry", num);
	for (int i = 0; s->g && i < s->g->nafter; i++)
		sfield(&b, "after", s->g->after[i]);
	func_field(L, &b, "run", s->run_ref, secrets, nsecrets);
	func_field(L, &b, "rollback", s->rollback_ref, secrets, nsecrets);
	func_field(L, &b, "when", s->when_ref, secrets, nsecrets);
	/* only when set: a step without them keeps the fingerprint it had */
	if (s->production)
		sfield(&b, "production", "true");
	if (s->gate.question_ref != LUA_NOREF)
		func_field(L, &b, "approve_fn", s->gate.question_ref, secrets, nsecrets);
	if (s->gate.notify_ref != LUA_NOREF)
		func_field(L, &b, "approve_notify", s->gate.notify_ref, secrets, nsecrets);
	if (s->gate.table) {
		snprintf(num, sizeof num, "%d/%.17g/%d/%d", s->gate.quorum, s->gate.timeout,
			 s->gate.on_timeout, s->gate.on_deny);
		sfield(&b, "gate", num);
		for (int i = 0; i < s->gate.napprovers; i++)
			sfield(&b, "approver", s->gate.approvers[i]);
	}
	if (s->exec_env_ref != LUA_NOREF)
		env_field(L, &b, s->exec_env_ref, secrets, nsecrets);
	if (s->drill == DRR_DRILL_SKIP)
		sfield(&b, "drill", "skip");
	else if (s->drill == DRR_DRILL_FN)
		func_field(L, &b, "drill", s->drill_ref, secrets, nsecrets);
	drr_sha256_hex(b.data ? b.data : "", b.len, out);
	drr_buf_free(&b);
}

void drr_runbook_fingerprints(struct drr_runbook *rb)
{
	for (int i = 0; i < rb->nsteps; i++)
		drr_step_fingerprint(rb->L, &rb->steps[i], rb->secrets, rb->nsecrets,
				     rb->steps[i].fp);
}
