/*
 * runbook.c - loads a runbook file into a fresh lua_State with its own
 * sandboxed environment, runs its top-level code (which only declares:
 * runbook{} and step "name" {}), collects the declarations into C structs
 * and validates all of it, reporting every error as "file:line: message".
 *
 * The sandbox (after Redis scripting): a runbook sees an allow-list of base
 * functions, copies of string/table/math/utf8, a few safe os functions, the
 * drrun modules, and nothing that could block the loop.  Reading or assigning
 * an undeclared global raises an error naming file and line.
 */
#include "runbook/runbook.h"
#include "lua/task.h"
#include "runbook/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lualib.h>

static const char *const STEP_FIELDS[] = { "phase", "after",   "run",	  "rollback",
					   "retry", "timeout", "approve", "when",
					   "once",  "doc",     "drill",
					   "production", "exec", NULL };
static const char *const RB_FIELDS[] = { "name",   "description", "rto", "rpo",
					 "params", "secrets",	  "env", "budgets", "exec", NULL };
static const char *const RETRY_FIELDS[] = { "attempts", "delay", "backoff", "max_delay", NULL };

/* ---- source text helpers -------------------------------------------------- */

struct src *drr_rb_src; /* the runbook being loaded (one at a time) */
int drr_rb_limit;	/* the line where runbook{}'s fields end */
lua_CFunction drr_runbook_preload;

static void src_index(struct src *s)
{
	s->nlines = 1;
	for (size_t i = 0; i < s->len; i++)
		s->nlines += s->text[i] == '\n';
	s->starts = drr_xmalloc((size_t)s->nlines * sizeof(int));
	int k = 0;
	s->starts[k++] = 0;
	for (size_t i = 0; i < s->len; i++)
		if (s->text[i] == '\n' && k < s->nlines)
			s->starts[k++] = (int)i + 1;
}

int drr_rb_is_ident(int c)
{
	return isalnum(c) || c == '_';
}

/* First line in [from, to) where `name =` appears as a field; else from. */
int drr_rb_find_field(const struct src *s, int from, int to, const char *name)
{
	size_t nl = strlen(name);
	if (!s || from < 1)
		return from;
	if (to <= from || to > s->nlines + 1)
		to = s->nlines + 1;
	for (int ln = from; ln < to; ln++) {
		const char *p = s->text + s->starts[ln - 1];
		const char *end = ln < s->nlines ? s->text + s->starts[ln] : s->text + s->len;
		for (const char *q = p; q + nl <= end; q++) {
			if (memcmp(q, name, nl) != 0)
				continue;
			if (q > p && drr_rb_is_ident((unsigned char)q[-1]))
				continue;
			const char *r = q + nl;
			while (r < end && (*r == ' ' || *r == '\t'))
				r++;
			if (r < end && *r == '=' && (r + 1 >= end || r[1] != '='))
				return ln;
		}
	}
	return from;
}

int drr_runbook_field_line(const struct drr_runbook *rb, int from, const char *name)
{
	(void)rb;
	return drr_rb_find_field(drr_rb_src, from, 0, name);
}

/* ---- secrets before anything runs ------------------------------------------------- */

static void register_secret_name(const char *name)
{
	const char *v = getenv(name);
	if (v && *v)
		drr_redact_add(v);
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* Before any runbook code runs, register the environment values of the
 * secret names the source declares, read lexically from every
 * `secrets = { "A", 'B' }`: so that nothing printed while loading (a
 * top-level error, print, a validation message) can carry a declared
 * secret.  drr_rb_l_runbook registers the list as Lua sees it (it may be built by
 * code) as soon as runbook{} is called; binding registers it once more. */
static void prescan_secrets(const struct src *s)
{
	const char *p = s->text, *end = s->text + s->len;
	while (p < end && (p = memmem(p, (size_t)(end - p), "secrets", 7)) != NULL) {
		const char *q = p + 7;
		int word = !(p > s->text && drr_rb_is_ident((unsigned char)p[-1])) &&
			   !(q < end && drr_rb_is_ident((unsigned char)*q));
		p = q;
		if (!word)
			continue;
		q = skip_space(q, end);
		if (q >= end || *q++ != '=')
			continue;
		q = skip_space(q, end);
		if (q >= end || *q++ != '{')
			continue;
		for (;;) {
			q = skip_space(q, end);
			if (q < end && *q == ',') {
				q++;
				continue;
			}
			if (q >= end || (*q != '"' && *q != '\''))
				break;
			char quote = *q++;
			const char *n = q;
			while (q < end && *q != quote && *q != '\\' && *q != '\n')
				q++;
			if (q >= end || *q != quote)
				break;
			char name[256];
			if ((size_t)(q - n) < sizeof name) {
				memcpy(name, n, (size_t)(q - n));
				name[q - n] = '\0';
				register_secret_name(name);
			}
			q++;
		}
	}
}

/* ---- declarations: runbook{} and step "name" {} ------------------------------ */

static int caller_line(lua_State *L)
{
	lua_Debug ar;
	if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar))
		return ar.currentline;
	return 0;
}

int drr_rb_l_runbook(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_getfield(L, LUA_REGISTRYINDEX, K_RBLINE) != LUA_TNIL)
		return luaL_error(L, "runbook{} declared twice (first at line %d)",
				  (int)lua_tointeger(L, -1));
	lua_pushinteger(L, caller_line(L));
	lua_setfield(L, LUA_REGISTRYINDEX, K_RBLINE);
	lua_pushvalue(L, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, K_RB);
	/* declared secrets are hidden from here on, before anything can print */
	lua_pushliteral(L, "secrets");
	if (lua_rawget(L, 1) == LUA_TTABLE) {
		for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
			size_t n;
			const char *name = lua_tolstring(L, -1, &n);
			if (strlen(name) == n)
				register_secret_name(name);
			lua_pop(L, 1);
		}
		lua_pop(L, 1); /* the first non-string */
	}
	lua_pop(L, 1);
	/* the params, now: the rest of the top-level code may read them */
	lua_getfield(L, LUA_REGISTRYINDEX, K_RBLINE);
	return drr_rb_params_declared(L, (int)lua_tointeger(L, -1));
}

static int l_step_body(lua_State *L)
{
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_getfield(L, -1, "name");
	if (!lua_istable(L, 1))
		return luaL_error(L, "step '%s' expects a table: step \"%s\" { run = ... }",
				  lua_tostring(L, -1), lua_tostring(L, -1));
	lua_pop(L, 1);
	lua_getfield(L, -1, "body");
	if (!lua_isnil(L, -1))
		return luaL_error(L, "step body given twice");
	lua_pop(L, 1);
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "body");
	return 0;
}

int drr_rb_l_step(lua_State *L)
{
	if (lua_type(L, 1) != LUA_TSTRING)
		return luaL_error(L, "step expects a name: step \"name\" { ... }");
	size_t n;
	const char *name = lua_tolstring(L, 1, &n);
	if (n == 0 || n > 100)
		return luaL_error(L, "step name must be 1 to 100 characters");
	/* RUNBOOKS.md: printable ASCII only, so no NUL to cut the name short,
	 * and nothing that is not valid UTF-8 */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == 0)
			return luaL_error(L, "step name contains a NUL byte (at byte %d)",
					  (int)i + 1);
		if (c < 0x20 || c == 0x7f)
			return luaL_error(L, "step name contains a control character (byte %d)",
					  (int)i + 1);
		if (c >= 0x80) {
			char hex[8];
			snprintf(hex, sizeof hex, "0x%02X", (unsigned)c);
			return luaL_error(L,
					  "step name must be printable ASCII (byte %d is %s; "
					  "UTF-8 is not allowed in names)",
					  (int)i + 1, hex);
		}
	}
	lua_getfield(L, LUA_REGISTRYINDEX, K_STEPS);
	lua_createtable(L, 0, 3);
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "name");
	lua_pushinteger(L, caller_line(L));
	lua_setfield(L, -2, "line");
	lua_pushvalue(L, -1);
	lua_rawseti(L, -3, (lua_Integer)luaL_len(L, -3) + 1);
	lua_pushcclosure(L, l_step_body, 1);
	return 1;
}

/* ---- validation helpers ------------------------------------------------------- */

static const char *suggest(const char *key, const char *const *known)
{
	const char *best = NULL;
	int bd = 3;
	for (const char *const *k = known; *k; k++) {
		int dist = drr_edit_distance(key, *k);
		if (dist < bd) {
			bd = dist;
			best = *k;
		}
	}
	return best;
}

/* Report keys of the table at idx that are not in `known`. */
void drr_rb_check_fields(struct ld *ld, int idx, const char *const *known, int line, int limit,
			 const char *what)
{
	lua_State *L = ld->L;
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			drr_diag_add(ld->d, ld->file, line, "%s: unexpected positional value",
				     what);
			continue;
		}
		const char *k = lua_tostring(L, -1);
		int ok = 0;
		for (const char *const *f = known; *f && !ok; f++)
			ok = strcmp(*f, k) == 0;
		if (ok)
			continue;
		const char *s = suggest(k, known);
		int at = drr_rb_find_field(drr_rb_src, line, limit, k);
		if (s)
			drr_diag_add(ld->d, ld->file, at,
				     "%s: unknown field '%s' (did you mean '%s'?)", what, k, s);
		else
			drr_diag_add(ld->d, ld->file, at, "%s: unknown field '%s'", what, k);
	}
}

/* Read an optional duration field of the table at idx; 0 when absent. */
double drr_rb_get_duration(struct ld *ld, int idx, const char *field, int line, int limit,
			   const char *what, double dflt, int allow_zero)
{
	lua_State *L = ld->L;
	double v = dflt;
	int t = lua_getfield(L, idx, field);
	if (t == LUA_TSTRING) {
		const char *why;
		if (drr_duration_parse(lua_tostring(L, -1), &v) < 0) {
			drr_diag_add(ld->d, ld->file,
				     drr_rb_find_field(drr_rb_src, line, limit, field),
				     "%s: %s: invalid duration '%s' (use e.g. \"250ms\", \"5s\", "
				     "\"10m\", \"1h30m\")",
				     what, field, lua_tostring(L, -1));
			v = dflt;
		} else if (drr_duration_check(v, allow_zero, &why) < 0) {
			/* "0s" used to mean "none" silently: absent is how to say it */
			drr_diag_add(ld->d, ld->file,
				     drr_rb_find_field(drr_rb_src, line, limit, field),
				     "%s: %s %s (leave %s out for none)", what, field, why, field);
			v = dflt;
		}
	} else if (t != LUA_TNIL) {
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, line, limit, field),
			     "%s: %s must be a duration string like \"5s\", not a %s", what, field,
			     lua_typename(L, t));
	}
	lua_pop(L, 1);
	return v;
}

char *drr_rb_get_string(struct ld *ld, int idx, const char *field, int line, int limit,
			const char *what)
{
	lua_State *L = ld->L;
	char *s = NULL;
	int t = lua_getfield(L, idx, field);
	size_t n = 0;
	if (t == LUA_TSTRING && strlen(lua_tolstring(L, -1, &n)) != n)
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, line, limit, field),
			     "%s: %s contains a NUL byte", what, field);
	else if (t == LUA_TSTRING)
		s = drr_xstrdup(lua_tostring(L, -1));
	else if (t != LUA_TNIL)
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, line, limit, field),
			     "%s: %s must be a string, not a %s", what, field, lua_typename(L, t));
	lua_pop(L, 1);
	return s;
}

static int get_func(struct ld *ld, int idx, const char *field, int line, int limit,
		    const char *what, int required)
{
	lua_State *L = ld->L;
	int t = lua_getfield(L, idx, field);
	if (t == LUA_TFUNCTION)
		return luaL_ref(L, LUA_REGISTRYINDEX);
	if (t != LUA_TNIL || required)
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, line, limit, field),
			     "%s: %s must be a function%s", what, field,
			     t == LUA_TNIL ? " (it is missing)" : "");
	lua_pop(L, 1);
	return LUA_NOREF;
}

/* ---- runbook{} ------------------------------------------------------------------ */

static int valid_name(const char *s)
{
	if (!*s || !isalnum((unsigned char)*s))
		return 0;
	for (; *s; s++)
		if (!drr_rb_is_ident((unsigned char)*s) && *s != '-' && *s != '.')
			return 0;
	return 1;
}

static int cmp_budget(const void *a, const void *b)
{
	return strcmp(((const struct drr_budget *)a)->phase,
		      ((const struct drr_budget *)b)->phase);
}

/* budgets = { restore = "20m", dns = "5m" }: each phase's wall time. */
static void parse_budgets(struct ld *ld, int idx, int line)
{
	lua_State *L = ld->L;
	struct drr_runbook *rb = ld->rb;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			drr_diag_add(ld->d, ld->file, line, "runbook: budgets keys must be phases");
			continue;
		}
		const char *ph = lua_tostring(L, -1);
		int bl = drr_rb_find_field(drr_rb_src, line, drr_rb_limit, ph);
		/* -1: not a duration, and get_duration said so */
		double v = drr_rb_get_duration(ld, idx, ph, bl, drr_rb_limit, "runbook: budgets", -1, 0);
		if (v < 0)
			continue;
		rb->budgets = drr_xrealloc(rb->budgets,
					   (size_t)(rb->nbudgets + 1) * sizeof *rb->budgets);
		struct drr_budget *b = &rb->budgets[rb->nbudgets++];
		b->phase = drr_xstrdup(ph);
		b->secs = v;
		b->line = bl;
	}
	if (rb->nbudgets > 1)
		qsort(rb->budgets, (size_t)rb->nbudgets, sizeof *rb->budgets, cmp_budget);
}

static void parse_runbook(struct ld *ld)
{
	lua_State *L = ld->L;
	struct drr_runbook *rb = ld->rb;
	if (lua_getfield(L, LUA_REGISTRYINDEX, K_RB) != LUA_TTABLE) {
		lua_pop(L, 1);
		drr_diag_add(ld->d, ld->file, 0,
			     "no runbook { name = ... } declaration (it names the runbook and its "
			     "params)");
		return;
	}
	int t = lua_gettop(L);
	lua_getfield(L, LUA_REGISTRYINDEX, K_RBLINE);
	int line = ld->rb_line = rb->line = (int)lua_tointeger(L, -1);
	lua_pop(L, 1);
	/* runbook{}'s fields end where the first step after it starts */
	drr_rb_limit = 0;
	lua_getfield(L, LUA_REGISTRYINDEX, K_STEPS);
	for (lua_Integer i = 1, n = luaL_len(L, -1); i <= n; i++) {
		lua_rawgeti(L, -1, i);
		lua_getfield(L, -1, "line");
		int sl = (int)lua_tointeger(L, -1);
		if (sl > line && (!drr_rb_limit || sl < drr_rb_limit))
			drr_rb_limit = sl;
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	int limit = drr_rb_limit;
	drr_rb_check_fields(ld, t, RB_FIELDS, line, limit, "runbook");
	int nd = ld->d->n;
	rb->name = drr_rb_get_string(ld, t, "name", line, limit, "runbook");
	if (!rb->name && ld->d->n > nd)
		; /* not a string, or a NUL inside: already reported */
	else if (!rb->name)
		drr_diag_add(ld->d, ld->file, line, "runbook: name is required");
	else if (!valid_name(rb->name) || strlen(rb->name) > 64)
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, line, limit, "name"),
			     "runbook: name '%s' must be letters, digits, '-', '_' or '.' (at "
			     "most 64)",
			     rb->name);
	rb->description = drr_rb_get_string(ld, t, "description", line, limit, "runbook");
	rb->rto = drr_rb_get_duration(ld, t, "rto", line, limit, "runbook", 0, 0);
	rb->rpo = drr_rb_get_duration(ld, t, "rpo", line, limit, "runbook", 0, 0);
	rb->exec_env_ref = drr_rb_parse_exec(ld, t, line, limit, "runbook", LUA_NOREF);

	int ty = lua_getfield(L, t, "budgets");
	if (ty == LUA_TTABLE)
		parse_budgets(ld, lua_gettop(L),
			      drr_rb_find_field(drr_rb_src, line, limit, "budgets"));
	else if (ty != LUA_TNIL)
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, line, limit, "budgets"),
			     "runbook: budgets must map phases to durations, like { restore = "
			     "\"20m\" }");
	lua_pop(L, 1);

	/* params: read and bound when runbook{} was called (params.c) */

	ty = lua_getfield(L, t, "secrets");
	if (ty == LUA_TTABLE) {
		lua_Integer n = luaL_len(L, -1);
		for (lua_Integer i = 1; i <= n; i++) {
			if (lua_rawgeti(L, -1, i) == LUA_TSTRING && lua_rawlen(L, -1) > 0 &&
			    lua_rawlen(L, -1) == strlen(lua_tostring(L, -1))) {
				rb->secrets = drr_xrealloc(rb->secrets, (size_t)(rb->nsecrets + 1) *
										sizeof(char *));
				rb->secrets[rb->nsecrets++] = drr_xstrdup(lua_tostring(L, -1));
			} else {
				drr_diag_add(ld->d, ld->file,
					     drr_rb_find_field(drr_rb_src, line, limit, "secrets"),
					     "runbook: secrets must be a list of environment "
					     "variable names");
			}
			lua_pop(L, 1);
		}
	} else if (ty != LUA_TNIL) {
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, line, limit, "secrets"),
			     "runbook: secrets must be a list of names, like { \"API_TOKEN\" }");
	}
	lua_pop(L, 1);

	ty = lua_getfield(L, t, "env");
	if (ty == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, -2)) {
			if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1)) {
				drr_diag_add(ld->d, ld->file,
					     drr_rb_find_field(drr_rb_src, line, limit, "env"),
					     "runbook: env must map names to tables, like { dr = { "
					     "region = \"eu-west-1\" } }");
			} else {
				rb->envs = drr_xrealloc(rb->envs,
							(size_t)(rb->nenvs + 1) * sizeof(char *));
				rb->envs[rb->nenvs++] = drr_xstrdup(lua_tostring(L, -2));
			}
			lua_pop(L, 1);
		}
		lua_pushvalue(L, -1);
		rb->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	} else if (ty != LUA_TNIL) {
		drr_diag_add(ld->d, ld->file, line, "runbook: env must be a table");
	}
	lua_pop(L, 2);
}

/* ---- step "name" {} ------------------------------------------------------------ */

static void parse_after(struct ld *ld, int idx, struct drr_step *s, int limit, const char *what)
{
	lua_State *L = ld->L;
	struct drr_gnode *g = s->g;
	int t = lua_getfield(L, idx, "after");
	int at = drr_rb_find_field(drr_rb_src, s->line, limit, "after");
	if (t == LUA_TSTRING) {
		g->after = drr_xcalloc(1, sizeof(char *));
		if (lua_rawlen(L, -1) != strlen(lua_tostring(L, -1)))
			drr_diag_add(ld->d, ld->file, at, "%s: after names a step with a NUL byte",
				     what);
		else
			g->after[g->nafter++] = drr_xstrdup(lua_tostring(L, -1));
	} else if (t == LUA_TTABLE) {
		lua_Integer n = luaL_len(L, -1);
		g->after = drr_xcalloc((size_t)(n > 0 ? n : 1), sizeof(char *));
		for (lua_Integer i = 1; i <= n; i++) {
			if (lua_rawgeti(L, -1, i) == LUA_TSTRING &&
			    lua_rawlen(L, -1) == strlen(lua_tostring(L, -1)))
				g->after[g->nafter++] = drr_xstrdup(lua_tostring(L, -1));
			else
				drr_diag_add(ld->d, ld->file, at,
					     "%s: after must list step names (strings)", what);
			lua_pop(L, 1);
		}
	} else if (t != LUA_TNIL) {
		drr_diag_add(ld->d, ld->file, at,
			     "%s: after must be a step name or a list of step names", what);
	}
	lua_pop(L, 1);
}

static void parse_retry(struct ld *ld, int idx, struct drr_step *s, int limit, const char *what)
{
	lua_State *L = ld->L;
	struct drr_retry *r = &s->retry;
	r->attempts = 1;
	r->delay = 1;
	r->backoff = 2;
	r->max_delay = 0;
	int t = lua_getfield(L, idx, "retry");
	int at = drr_rb_find_field(drr_rb_src, s->line, limit, "retry");
	if (t == LUA_TNUMBER) {
		r->attempts = (int)lua_tointeger(L, -1);
		if (!lua_isinteger(L, -1) || r->attempts < 1 || r->attempts > 1000)
			drr_diag_add(ld->d, ld->file, at,
				     "%s: retry must be a number of attempts from 1 to 1000", what);
	} else if (t == LUA_TTABLE) {
		int rt = lua_gettop(L);
		char rwhat[200];
		snprintf(rwhat, sizeof rwhat, "%s: retry", what);
		drr_rb_check_fields(ld, rt, RETRY_FIELDS, at, limit, rwhat);
		lua_getfield(L, rt, "attempts");
		if (!lua_isnil(L, -1)) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
			    lua_tointeger(L, -1) > 1000)
				drr_diag_add(ld->d, ld->file, at,
					     "%s: attempts must be a whole number from 1 to 1000",
					     rwhat);
			else
				r->attempts = (int)lua_tointeger(L, -1);
		}
		lua_pop(L, 1);
		r->delay = drr_rb_get_duration(ld, rt, "delay", at, limit, rwhat, 1, 1);
		r->max_delay = drr_rb_get_duration(ld, rt, "max_delay", at, limit, rwhat, 0, 0);
		lua_getfield(L, rt, "backoff");
		if (!lua_isnil(L, -1)) {
			if (!lua_isnumber(L, -1) || lua_tonumber(L, -1) < 1 ||
			    lua_tonumber(L, -1) > 100)
				drr_diag_add(ld->d, ld->file, at,
					     "%s: backoff must be a number from 1 to 100", rwhat);
			else
				r->backoff = lua_tonumber(L, -1);
		}
		lua_pop(L, 1);
	} else if (t != LUA_TNIL) {
		drr_diag_add(ld->d, ld->file, at,
			     "%s: retry must be { attempts = n, delay = \"1s\", backoff = 2 }",
			     what);
	}
	lua_pop(L, 1);
}

/* drill = "run" | "skip" | function(ctx): what `drrun drill` does instead. */
static void parse_drill(struct ld *ld, int idx, struct drr_step *s, int limit, const char *what)
{
	lua_State *L = ld->L;
	int t = lua_getfield(L, idx, "drill");
	const char *v = t == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
	if (t == LUA_TFUNCTION) {
		s->drill = DRR_DRILL_FN;
		s->drill_ref = luaL_ref(L, LUA_REGISTRYINDEX);
		return;
	}
	if (t == LUA_TNIL || (v && !strcmp(v, "run")))
		s->drill = DRR_DRILL_RUN;
	else if (v && !strcmp(v, "skip"))
		s->drill = DRR_DRILL_SKIP;
	else
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, s->line, limit, "drill"),
			     "%s: drill must be \"run\", \"skip\" or a function(ctx), not %s%s%s",
			     what, v ? "'" : "a ", v ? v : lua_typename(L, t), v ? "'" : "");
	lua_pop(L, 1);
}

static void parse_step(struct ld *ld, int idx, struct drr_step *s, int limit)
{
	lua_State *L = ld->L;
	char what[160];
	snprintf(what, sizeof what, "step '%s'", s->name);
	drr_rb_check_fields(ld, idx, STEP_FIELDS, s->line, limit, what);
	s->phase = drr_rb_get_string(ld, idx, "phase", s->line, limit, what);
	if (!s->phase)
		s->phase = drr_xstrdup("other");
	s->teardown = !strcmp(s->phase, "teardown");
	s->doc = drr_rb_get_string(ld, idx, "doc", s->line, limit, what);
	drr_rb_parse_gate(ld, idx, s, limit, what);
	s->timeout = drr_rb_get_duration(ld, idx, "timeout", s->line, limit, what, 0, 0);
	s->run_ref = get_func(ld, idx, "run", s->line, limit, what, 1);
	s->rollback_ref = get_func(ld, idx, "rollback", s->line, limit, what, 0);
	s->when_ref = get_func(ld, idx, "when", s->line, limit, what, 0);
	int t = lua_getfield(L, idx, "once");
	if (t != LUA_TNIL && t != LUA_TBOOLEAN)
		drr_diag_add(ld->d, ld->file, drr_rb_find_field(drr_rb_src, s->line, limit, "once"),
			     "%s: once must be true or false", what);
	s->once = lua_toboolean(L, -1);
	lua_pop(L, 1);
	t = lua_getfield(L, idx, "production");
	if (t != LUA_TNIL && t != LUA_TBOOLEAN)
		drr_diag_add(ld->d, ld->file,
			     drr_rb_find_field(drr_rb_src, s->line, limit, "production"),
			     "%s: production must be true or false", what);
	s->production = lua_toboolean(L, -1);
	lua_pop(L, 1);
	s->exec_env_ref = drr_rb_parse_exec(ld, idx, s->line, limit, what, ld->rb->exec_env_ref);
	parse_drill(ld, idx, s, limit, what);
	parse_after(ld, idx, s, limit, what);
	parse_retry(ld, idx, s, limit, what);
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* The first of the n sorted lines after `line`, or 0. */
static int next_line(const int *sorted, int n, int line)
{
	int lo = 0, hi = n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (sorted[mid] <= line)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n ? sorted[lo] : 0;
}

static void parse_steps(struct ld *ld)
{
	lua_State *L = ld->L;
	struct drr_runbook *rb = ld->rb;
	lua_getfield(L, LUA_REGISTRYINDEX, K_STEPS);
	int list = lua_gettop(L);
	int n = (int)luaL_len(L, list);
	rb->steps = drr_xcalloc((size_t)(n ? n : 1), sizeof *rb->steps);
	rb->graph = drr_xcalloc((size_t)(n ? n : 1), sizeof *rb->graph);
	if (n == 0)
		drr_diag_add(ld->d, ld->file, ld->rb_line, "runbook declares no steps");
	int *lines = ld->lines = drr_xcalloc((size_t)(n ? n : 1), sizeof(int));
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, list, i + 1);
		lua_getfield(L, -1, "line");
		lines[i] = (int)lua_tointeger(L, -1);
		lua_pop(L, 2);
	}
	int *sorted = ld->sorted = drr_xmalloc((size_t)(n ? n : 1) * sizeof(int));
	for (int i = 0; i < n; i++)
		sorted[i] = lines[i];
	qsort(sorted, (size_t)(n > 0 ? n : 0), sizeof(int), cmp_int);
	for (int i = 0; i < n; i++) {
		struct drr_step *s = &rb->steps[rb->nsteps++];
		s->run_ref = s->rollback_ref = s->when_ref = s->drill_ref = LUA_NOREF;
		s->gate.question_ref = s->gate.notify_ref = LUA_NOREF;
		s->gate.quorum = 1;
		s->g = &rb->graph[i];
		lua_rawgeti(L, list, i + 1);
		lua_getfield(L, -1, "name");
		s->name = drr_xstrdup(lua_tostring(L, -1));
		lua_pop(L, 1);
		s->line = lines[i];
		s->g->name = s->name;
		s->g->line = s->line;
		/* a field belongs to this step until the next step starts */
		int limit = next_line(sorted, n, s->line);
		if (lua_getfield(L, -1, "body") != LUA_TTABLE)
			drr_diag_add(
				ld->d, ld->file, s->line,
				"step '%s' has no body: write step \"%s\" { run = function(ctx) "
				"... end }",
				s->name, s->name);
		else
			parse_step(ld, lua_gettop(L), s, limit);
		lua_pop(L, 2);
	}
	lua_pop(L, 1);
	drr_graph_resolve(rb->graph, rb->nsteps, ld->file, ld->d);
	drr_runbook_check_phases(rb, ld->file, ld->d);
}

/* ---- load --------------------------------------------------------------------- */

/* The message handler of the top-level code: a non-string error object
 * (error({})) gets the file:line of the code that raised it. */
int drr_rb_traceback(lua_State *L)
{
	if (lua_type(L, 1) == LUA_TSTRING)
		return 1;
	lua_Debug ar;
	int found = 0;
	for (int level = 1; lua_getstack(L, level, &ar); level++)
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
			found = 1;
			break;
		}
	drr_lua_safe_tostring(L, 1);
	if (found)
		lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, lua_tostring(L, -1));
	return 1;
}

/* A panic means an error escaped every protected call: a bug.  Say so
 * without printing a secret, and stop. */
static int on_panic(lua_State *L)
{
	const char *m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error object";
	char *r = drr_redact(m);
	fprintf(stderr, "drrun: internal error: unprotected Lua error: %s\n", r);
	free(r);
	fflush(stderr);
	abort();
}

#define LOAD_CPU_DEFAULT 5.0

/* The CPU that loading, reading the declarations and binding may each take:
 * 5 s, or DRRUN_LOAD_CPU (a duration).  -1 if DRRUN_LOAD_CPU is invalid. */
static double load_budget(void)
{
	const char *e = getenv("DRRUN_LOAD_CPU");
	double v;
	if (!e || !*e)
		return LOAD_CPU_DEFAULT;
	if (drr_duration_parse(e, &v) < 0 || v <= 0)
		return -1;
	return v;
}

static char load_msg[96];

int drr_rb_bounded(lua_State *L, int nargs, int nres, int msgh)
{
	return drr_lua_pcall_bounded(L, nargs, nres, msgh, load_budget(), 1, load_msg);
}

/* Report the error on top of L (a string: drr_lua_pcall_bounded made sure)
 * as a diagnostic; it already reads "file:line: ..." when Lua knows where. */
void drr_rb_diag_lua_error(lua_State *L, struct drr_diag *d, const char *file, const char *when)
{
	const char *m = lua_tostring(L, -1);
	char *r = drr_redact(m ? m : "error");
	if (m && strncmp(m, file, strlen(file)) == 0)
		drr_diag_add(d, NULL, 0, "%s", r);
	else
		drr_diag_add(d, file, 0, "%s%s", when, r);
	free(r);
	lua_pop(L, 1);
}

static int parse_all(lua_State *L)
{
	struct ld *ld = lua_touserdata(L, 1);
	parse_runbook(ld);
	parse_steps(ld);
	return 0;
}

struct drr_runbook *drr_runbook_load(const char *path, const struct drr_opts *o,
				     struct drr_diag *d)
{
	struct drr_runbook *rb = drr_xcalloc(1, sizeof *rb);
	rb->path = drr_xstrdup(path);
	rb->env_ref = rb->params_ref = rb->ctxenv_ref = rb->exec_env_ref = LUA_NOREF;
	const char *slash = strrchr(path, '/');
	rb->dir = slash ? drr_xasprintf("%.*s", (int)(slash - path), path) : drr_xstrdup(".");
	if (slash == path)
		rb->dir[0] = '/', rb->dir[1] = '\0';

	double budget = load_budget();
	if (budget < 0) {
		drr_diag_add(d, NULL, 0,
			     "DRRUN_LOAD_CPU: invalid duration '%s' (use e.g. \"5s\", \"30s\")",
			     getenv("DRRUN_LOAD_CPU"));
		drr_runbook_free(rb);
		return NULL;
	}
	char bd[32];
	snprintf(load_msg, sizeof load_msg,
		 "loading the runbook took more than %s of CPU (a loop that never ends?)",
		 drr_duration_fmt(budget, bd, sizeof bd));

	static struct src src;
	free(src.text);
	free(src.starts);
	memset(&src, 0, sizeof src);
	char err[512];
	src.text = drr_slurp(path, RUNBOOK_MAX, &src.len, err, sizeof err);
	if (!src.text) {
		drr_diag_add(d, path, 0, "cannot read runbook: %s", strerror(errno));
		drr_runbook_free(rb);
		return NULL;
	}
	src_index(&src);
	drr_rb_src = &src;
	drr_sha256_hex(src.text, src.len, rb->sha256);
	prescan_secrets(&src);

	drr_rb_params_begin(rb, o, d);
	lua_State *L = rb->L = luaL_newstate();
	lua_atpanic(L, on_panic);
	*(void **)lua_getextraspace(L) = NULL; /* the main thread runs no task */
	luaL_openlibs(L);
	drr_modules_preload(L);
	lua_pushcfunction(L, drr_rb_traceback);
	int msgh = lua_gettop(L);
	int rc = LUA_OK;
	if (drr_runbook_preload) {
		lua_pushcfunction(L, drr_runbook_preload);
		rc = drr_rb_bounded(L, 0, 0, msgh);
	}
	if (rc == LUA_OK) {
		lua_pushcfunction(L, drr_rb_build_sandbox);
		lua_pushstring(L, rb->dir);
		rc = drr_rb_bounded(L, 1, 0, msgh);
	}
	if (rc == LUA_OK) {
		char *chunk = drr_xasprintf("@%s", path);
		rc = luaL_loadbufferx(L, src.text, src.len, chunk, "t");
		free(chunk);
	}
	if (rc == LUA_OK) {
		lua_getfield(L, LUA_REGISTRYINDEX, K_ENV);
		lua_setupvalue(L, -2, 1);
		rc = drr_rb_bounded(L, 0, 0, msgh);
	}
	if (rc != LUA_OK) {
		drr_rb_diag_lua_error(L, d, path, "");
		drr_runbook_free(rb);
		return NULL;
	}

	struct ld ld = { .rb = rb, .d = d, .file = path, .L = L };
	lua_pushcfunction(L, parse_all);
	lua_pushlightuserdata(L, &ld);
	rc = drr_rb_bounded(L, 1, 0, msgh);
	free(ld.lines);
	free(ld.sorted);
	if (rc != LUA_OK) {
		drr_rb_diag_lua_error(L, d, path, "while reading the declarations: ");
		drr_runbook_free(rb);
		return NULL;
	}
	lua_pop(L, 1); /* msgh */
	return rb;     /* the caller checks d: binding can add more errors */
}

void drr_runbook_free(struct drr_runbook *rb)
{
	if (!rb)
		return;
	if (rb->L)
		lua_close(rb->L);
	for (int i = 0; i < rb->nsteps; i++) {
		struct drr_step *s = &rb->steps[i];
		free(s->name);
		free(s->phase);
		free(s->doc);
		free(s->approve);
		for (int k = 0; k < s->gate.napprovers; k++)
			free(s->gate.approvers[k]);
		free(s->gate.approvers);
		for (int k = 0; k < s->g->nafter; k++)
			free((char *)s->g->after[k]);
		free(s->g->after);
		free(s->g->deps);
	}
	free(rb->steps);
	free(rb->graph);
	for (int i = 0; i < rb->nbudgets; i++)
		free(rb->budgets[i].phase);
	free(rb->budgets);
	for (int i = 0; i < rb->nparams; i++) {
		free(rb->params[i].name);
		free(rb->params[i].doc);
	}
	free(rb->params);
	for (int i = 0; i < rb->nsecrets; i++)
		free(rb->secrets[i]);
	free(rb->secrets);
	for (int i = 0; i < rb->nenvs; i++)
		free(rb->envs[i]);
	free(rb->envs);
	free(rb->path);
	free(rb->dir);
	free(rb->name);
	free(rb->description);
	free(rb->obj_from);
	free(rb);
}
