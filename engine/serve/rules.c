/*
 * rules.c - serve's rules file: `rule "name" {...}` and `schedule "name"
 * {...}` declared in the runbook sandbox (runbook/runbook.h,
 * drr_sandbox_load), read into C structs and validated with file:line
 * errors; matching, the dedupe template, params, and cron.
 */
#include "serve/serve.h"
#include "runbook/runbook.h"
#include "run/run.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define K_DECLS "drrun.serve.decls"
#define RE_MAX 1024		/* a match_re pattern */
#define RE_MATCH_LIMIT 100000	/* pcre2 match limit */
#define RE_DEPTH_LIMIT 1000	/* pcre2 depth limit */
#define PARAM_VALUE_MAX 4096

/* ---- the declarations --------------------------------------------------- */

static int decl_body(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_getsubtable(L, LUA_REGISTRYINDEX, K_DECLS);
	lua_createtable(L, 0, 4);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_setfield(L, -2, "kind");
	lua_pushvalue(L, lua_upvalueindex(2));
	lua_setfield(L, -2, "name");
	lua_pushvalue(L, lua_upvalueindex(3));
	lua_setfield(L, -2, "line");
	lua_pushvalue(L, 1);
	lua_setfield(L, -2, "t");
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	return 0;
}

static int decl(lua_State *L, const char *kind)
{
	const char *name = luaL_checkstring(L, 1);
	if (!*name)
		return luaL_error(L, "%s: the name is empty", kind);
	lua_Debug ar;
	int line = lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) ? ar.currentline : 0;
	lua_pushstring(L, kind);
	lua_pushvalue(L, 1);
	lua_pushinteger(L, line);
	lua_pushcclosure(L, decl_body, 3);
	return 1;
}

static int l_rule(lua_State *L)
{
	return decl(L, "rule");
}

static int l_schedule(lua_State *L)
{
	return decl(L, "schedule");
}

/* ---- reading one declaration -------------------------------------------- */

struct rd {
	struct serve_rules *rs;
	struct drr_diag *d;
	const char *kind, *name;
	int line;
	int t; /* stack index of the declaration's table */
};

static void err(struct rd *r, const char *fmt, ...) DRR_PRINTF(2, 3);
static void err(struct rd *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *m = drr_xvasprintf(fmt, ap);
	va_end(ap);
	drr_diag_add(r->d, r->rs->file, r->line, "%s '%s': %s", r->kind, r->name, m);
	free(m);
}

static void check_fields(struct rd *r, const char *const *known)
{
	lua_State *L = r->rs->L;
	lua_pushnil(L);
	while (lua_next(L, r->t)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING) {
			err(r, "a field name is not a string");
			continue;
		}
		const char *k = lua_tostring(L, -1);
		int ok = 0;
		for (const char *const *f = known; *f; f++)
			ok |= !strcmp(*f, k);
		if (!ok)
			err(r, "unknown field '%s'", k);
	}
}

/* A string field: malloc'd copy, NULL when absent (an error if required). */
static char *get_str(struct rd *r, const char *field, int required)
{
	lua_State *L = r->rs->L;
	int ty = lua_getfield(L, r->t, field);
	char *v = NULL;
	if (ty == LUA_TSTRING)
		v = drr_xstrdup(lua_tostring(L, -1));
	else if (ty != LUA_TNIL)
		err(r, "%s must be a string, not a %s", field, lua_typename(L, ty));
	else if (required)
		err(r, "%s is required", field);
	lua_pop(L, 1);
	return v;
}

static double get_duration(struct rd *r, const char *field)
{
	char *s = get_str(r, field, 0);
	double v = 0;
	if (s && drr_duration_parse(s, &v) < 0)
		err(r, "%s: invalid duration '%s' (use e.g. \"30m\", \"1h\")", field, s);
	free(s);
	return v;
}

static int get_bool(struct rd *r, const char *field)
{
	lua_State *L = r->rs->L;
	int ty = lua_getfield(L, r->t, field);
	int v = lua_toboolean(L, -1);
	if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
		err(r, "%s must be true or false", field);
	lua_pop(L, 1);
	return v;
}

/* The runbook, relative to the rules file; it must exist. */
static void get_runbook(struct rd *r, char **runbook, char **path)
{
	*runbook = get_str(r, "runbook", 1);
	*path = NULL;
	if (!*runbook)
		return;
	*path = (*runbook)[0] == '/' ? drr_xstrdup(*runbook)
				     : drr_xasprintf("%s/%s", r->rs->dir, *runbook);
	struct stat st;
	if (stat(*path, &st) < 0 || !S_ISREG(st.st_mode))
		err(r, "runbook '%s': %s", *runbook,
		    stat(*path, &st) < 0 ? strerror(errno) : "not a regular file");
}

static int get_params(struct rd *r)
{
	lua_State *L = r->rs->L;
	int ty = lua_getfield(L, r->t, "params");
	if (ty == LUA_TNIL) {
		lua_pop(L, 1);
		return LUA_NOREF;
	}
	if (ty != LUA_TFUNCTION && ty != LUA_TTABLE) {
		err(r, "params must be a table or a function(alert)");
		lua_pop(L, 1);
		return LUA_NOREF;
	}
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void add_match(struct rd *r, struct serve_rule *ru, const char *field, int re)
{
	lua_State *L = r->rs->L;
	int ty = lua_getfield(L, r->t, field);
	if (ty == LUA_TNIL) {
		lua_pop(L, 1);
		return;
	}
	if (ty != LUA_TTABLE) {
		err(r, "%s must be a table of label = %s", field, re ? "pattern" : "value");
		lua_pop(L, 1);
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
			err(r, "%s: every entry is label = \"string\"", field);
			lua_pop(L, 1);
			continue;
		}
		const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
		void *code = NULL;
		if (re) {
			int ec;
			PCRE2_SIZE off;
			if (strlen(v) > RE_MAX) {
				err(r, "%s.%s: pattern longer than %d bytes", field, k, RE_MAX);
			} else if (!(code = pcre2_compile((PCRE2_SPTR)v, PCRE2_ZERO_TERMINATED,
							  PCRE2_UTF, &ec, &off, NULL))) {
				PCRE2_UCHAR8 m[160];
				pcre2_get_error_message(ec, m, sizeof m);
				err(r, "%s.%s: invalid pattern at offset %zu: %s", field, k,
				    (size_t)off, (char *)m);
			}
			if (!code) {
				lua_pop(L, 1);
				continue;
			}
		}
		ru->match = drr_xrealloc(ru->match, (size_t)(ru->nmatch + 1) * sizeof *ru->match);
		ru->match[ru->nmatch++] = (struct serve_match){ drr_xstrdup(k), drr_xstrdup(v),
								code };
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
}

/* confirm = { timeout, default = "run" | "skip", approvers, quorum, notify } */
static void read_confirm(struct rd *r, struct serve_rule *ru, int on)
{
	lua_State *L = r->rs->L;
	int ty = lua_getfield(L, r->t, "confirm");
	if (!on) {
		if (ty != LUA_TNIL)
			err(r, "confirm is for mode = \"confirm\"");
		lua_pop(L, 1);
		return;
	}
	if (ty != LUA_TNIL && ty != LUA_TTABLE) {
		err(r, "confirm must be a table { timeout, default, approvers, quorum, notify }");
		lua_pop(L, 1);
		return;
	}
	json_t *c = json_object();
	char *q = drr_xasprintf("Start runbook %s for rule %s?", ru->runbook ? ru->runbook : "?",
				ru->name);
	json_object_set_new(c, "question", json_string(q));
	free(q);
	if (ty == LUA_TTABLE) {
		static const char *const known[] = { "timeout", "default", "approvers", "quorum",
						     "notify", NULL };
		struct rd sub = *r;
		sub.t = lua_gettop(L);
		check_fields(&sub, known);
		double t = get_duration(&sub, "timeout");
		if (t > 0)
			json_object_set_new(c, "timeout", json_real(t));
		char *d = get_str(&sub, "default", 0);
		if (d && strcmp(d, "run") && strcmp(d, "skip"))
			err(r, "confirm.default must be \"run\" or \"skip\", not '%s'", d);
		else if (d && t <= 0)
			err(r, "confirm.default is what the timeout decides: give confirm.timeout too");
		json_object_set_new(c, "default", json_string(d && !strcmp(d, "run") ? "run" : "skip"));
		free(d);
		char *n = get_str(&sub, "notify", 0);
		if (n && strcmp(n, "pagerduty") && strcmp(n, "slack"))
			err(r, "confirm.notify must be \"pagerduty\" or \"slack\", not '%s'", n);
		else if (n)
			json_object_set_new(c, "notify", json_string(n));
		free(n);
		int qt = lua_getfield(L, sub.t, "quorum");
		lua_Integer quorum = 1;
		if (qt == LUA_TNUMBER && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 &&
		    lua_tointeger(L, -1) <= 64)
			quorum = lua_tointeger(L, -1);
		else if (qt != LUA_TNIL)
			err(r, "confirm.quorum must be a whole number from 1 to 64");
		lua_pop(L, 1);
		json_object_set_new(c, "quorum", json_integer(quorum));
		json_t *who = json_array();
		if (lua_getfield(L, sub.t, "approvers") == LUA_TTABLE) {
			lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
			for (lua_Integer i = 1; i <= len && i <= 256; i++) {
				lua_rawgeti(L, -1, i);
				const char *v = lua_tostring(L, -1);
				if (lua_type(L, -1) != LUA_TSTRING || !drr_approver_name_ok(v))
					err(r, "confirm.approvers[%lld] must be a name (letters, digits, "
					       "'-', '_', '.')",
					    (long long)i);
				else
					json_array_append_new(who, json_string(v));
				lua_pop(L, 1);
			}
		} else if (lua_type(L, -1) != LUA_TNIL) {
			err(r, "confirm.approvers must be a list of names");
		}
		lua_pop(L, 1);
		if (json_array_size(who) && (size_t)quorum > json_array_size(who))
			err(r, "confirm.quorum %lld cannot be reached by %zu approvers",
			    (long long)quorum, json_array_size(who));
		json_object_set_new(c, "approvers", who);
	} else {
		json_object_set_new(c, "default", json_string("skip"));
		json_object_set_new(c, "quorum", json_integer(1));
		json_object_set_new(c, "approvers", json_array());
	}
	lua_pop(L, 1);
	ru->confirm = c;
}

static void read_rule(struct rd *r, struct serve_rule *ru)
{
	static const char *const known[] = { "source", "match",	 "match_re", "runbook",
					     "params", "mode",	 "confirm",  "dedupe",
					     "cooldown", "drill", NULL };
	check_fields(r, known);
	ru->name = drr_xstrdup(r->name);
	ru->line = r->line;
	char *src = get_str(r, "source", 1);
	ru->source = -1;
	for (int i = 0; src && i < SRC_SCHEDULE; i++)
		if (!strcmp(src, serve_source_names[i]))
			ru->source = i;
	if (src && ru->source < 0)
		err(r, "source '%s' is not alertmanager, pagerduty or generic", src);
	free(src);
	add_match(r, ru, "match", 0);
	add_match(r, ru, "match_re", 1);
	get_runbook(r, &ru->runbook, &ru->path);
	ru->params_ref = get_params(r);
	char *mode = get_str(r, "mode", 0);
	if (mode && strcmp(mode, "auto") && strcmp(mode, "confirm"))
		err(r, "mode '%s': \"auto\" runs at once, \"confirm\" asks a human first", mode);
	read_confirm(r, ru, mode && !strcmp(mode, "confirm"));
	free(mode);
	ru->dedupe = get_str(r, "dedupe", 0);
	if (!ru->dedupe)
		ru->dedupe = drr_xstrdup("{rule}/{fingerprint}");
	ru->cooldown = get_duration(r, "cooldown");
	ru->drill = get_bool(r, "drill");
}

static void read_sched(struct rd *r, struct serve_sched *s)
{
	static const char *const known[] = { "cron", "tz", "runbook", "params", "drill", NULL };
	check_fields(r, known);
	s->name = drr_xstrdup(r->name);
	s->line = r->line;
	s->cron = get_str(r, "cron", 1);
	const char *why;
	if (s->cron && serve_cron_parse(s->cron, &s->c, &why) < 0)
		err(r, "cron '%s': %s", s->cron, why);
	char *tz = get_str(r, "tz", 0);
	if (tz && strcmp(tz, "UTC"))
		err(r, "tz '%s': only \"UTC\" (or no tz: the server's time zone)", tz);
	s->utc = tz != NULL;
	free(tz);
	get_runbook(r, &s->runbook, &s->path);
	s->params_ref = get_params(r);
	s->drill = get_bool(r, "drill");
}

static int read_all(lua_State *L)
{
	struct rd *base = lua_touserdata(L, 1);
	struct serve_rules *rs = base->rs;
	luaL_getsubtable(L, LUA_REGISTRYINDEX, K_DECLS);
	int decls = lua_gettop(L);
	lua_Integer n = (lua_Integer)lua_rawlen(L, decls);
	rs->rules = drr_xcalloc((size_t)n + 1, sizeof *rs->rules);
	rs->scheds = drr_xcalloc((size_t)n + 1, sizeof *rs->scheds);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, decls, i);
		int e = lua_gettop(L);
		lua_getfield(L, e, "kind");
		lua_getfield(L, e, "name");
		lua_getfield(L, e, "line");
		lua_getfield(L, e, "t");
		struct rd r = { rs, base->d, lua_tostring(L, e + 1), lua_tostring(L, e + 2),
				(int)lua_tointeger(L, e + 3), e + 4 };
		int dup = 0;
		if (!strcmp(r.kind, "rule")) {
			for (int k = 0; k < rs->nrules; k++)
				dup |= !strcmp(rs->rules[k].name, r.name);
			if (dup)
				err(&r, "declared twice");
			read_rule(&r, &rs->rules[rs->nrules++]);
		} else {
			for (int k = 0; k < rs->nscheds; k++)
				dup |= !strcmp(rs->scheds[k].name, r.name);
			if (dup)
				err(&r, "declared twice");
			read_sched(&r, &rs->scheds[rs->nscheds++]);
		}
		lua_settop(L, decls);
	}
	return 0;
}

struct serve_rules *serve_rules_load(const char *file, struct drr_diag *d)
{
	static const luaL_Reg decls[] = { { "rule", l_rule }, { "schedule", l_schedule },
					  { NULL, NULL } };
	struct serve_rules *rs = drr_xcalloc(1, sizeof *rs);
	rs->file = drr_xstrdup(file);
	const char *slash = strrchr(file, '/');
	rs->dir = slash ? drr_xasprintf("%.*s", (int)(slash == file ? 1 : slash - file), file)
			: drr_xstrdup(".");
	rs->L = drr_sandbox_load(file, decls, rs, d);
	if (!rs->L) {
		serve_rules_free(rs);
		return NULL;
	}
	lua_State *L = rs->L;
	struct rd base = { rs, d, "", "", 0, 0 };
	lua_pushcfunction(L, read_all);
	lua_pushlightuserdata(L, &base);
	if (drr_sandbox_pcall(L, 1, 0) != LUA_OK) {
		drr_diag_add(d, file, 0, "while reading the rules: %s", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	if (d->n == 0 && rs->nrules == 0 && rs->nscheds == 0)
		drr_diag_add(d, file, 0, "declares no rule and no schedule");
	return rs;
}

void serve_rules_free(struct serve_rules *rs)
{
	if (!rs)
		return;
	for (int i = 0; i < rs->nrules; i++) {
		struct serve_rule *r = &rs->rules[i];
		for (int k = 0; k < r->nmatch; k++) {
			free(r->match[k].key);
			free(r->match[k].value);
			if (r->match[k].re)
				pcre2_code_free(r->match[k].re);
		}
		free(r->match);
		free(r->name);
		free(r->runbook);
		free(r->path);
		free(r->dedupe);
		json_decref(r->confirm);
	}
	for (int i = 0; i < rs->nscheds; i++) {
		struct serve_sched *s = &rs->scheds[i];
		free(s->name);
		free(s->cron);
		free(s->runbook);
		free(s->path);
	}
	free(rs->rules);
	free(rs->scheds);
	if (rs->L)
		lua_close(rs->L);
	free(rs->file);
	free(rs->dir);
	free(rs);
}

int serve_is_rules_file(const char *file)
{
	char e[256];
	size_t len;
	char *text = drr_slurp(file, (size_t)64 << 20, &len, e, sizeof e);
	if (!text)
		return 0;
	int yes = 0;
	/* a declaration at the start of a line: rule "x" / schedule "x" / rule("x") */
	for (const char *p = text; p && *p && !yes; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *q = p;
		while (*q == ' ' || *q == '\t')
			q++;
		for (int k = 0; k < 2 && !yes; k++) {
			const char *w = k ? "schedule" : "rule";
			size_t wl = strlen(w);
			if (!strncmp(q, w, wl)) {
				const char *a = q + wl;
				while (*a == ' ' || *a == '\t')
					a++;
				yes = *a == '"' || *a == '\'' || *a == '(';
			}
		}
	}
	free(text);
	return yes;
}

/* ---- matching ----------------------------------------------------------------- */

static const char *label(const struct serve_alert *a, const char *k)
{
	json_t *v = json_object_get(a->labels, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

int serve_rule_matches(const struct serve_rule *r, int source, const struct serve_alert *a)
{
	if (r->source != source)
		return 0;
	for (int i = 0; i < r->nmatch; i++) {
		const struct serve_match *m = &r->match[i];
		const char *v = label(a, m->key);
		if (!v)
			return 0;
		if (!m->re) {
			if (strcmp(v, m->value))
				return 0;
			continue;
		}
		pcre2_match_data *md = pcre2_match_data_create_from_pattern(m->re, NULL);
		pcre2_match_context *mc = pcre2_match_context_create(NULL);
		pcre2_set_match_limit(mc, RE_MATCH_LIMIT);
		pcre2_set_depth_limit(mc, RE_DEPTH_LIMIT);
		int rc = pcre2_match(m->re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, mc);
		pcre2_match_data_free(md);
		pcre2_match_context_free(mc);
		if (rc < 0) /* no match, and a match limit reached, are both "no" */
			return 0;
	}
	return 1;
}

char *serve_template(const char *tmpl, const char *rule, int source, const struct serve_alert *a)
{
	struct drr_buf b = { 0 };
	for (const char *p = tmpl; *p; p++) {
		const char *e = *p == '{' ? strchr(p, '}') : NULL;
		if (!e) {
			drr_buf_add(&b, p, 1);
			continue;
		}
		char name[256];
		size_t n = (size_t)(e - p - 1);
		if (n >= sizeof name) {
			drr_buf_add(&b, p, 1);
			continue;
		}
		memcpy(name, p + 1, n);
		name[n] = '\0';
		const char *v = NULL;
		if (!strncmp(name, "labels.", 7))
			v = label(a, name + 7);
		else if (!strncmp(name, "annotations.", 12)) {
			json_t *j = json_object_get(a->annotations, name + 12);
			v = json_is_string(j) ? json_string_value(j) : NULL;
		} else if (!strcmp(name, "fingerprint"))
			v = a->fingerprint;
		else if (!strcmp(name, "rule"))
			v = rule;
		else if (!strcmp(name, "source"))
			v = serve_source_names[source];
		else {
			drr_buf_add(&b, p, 1);
			continue;
		}
		if (v)
			drr_buf_adds(&b, v);
		p = e;
	}
	drr_buf_add(&b, "", 1);
	return b.data;
}

/* One param value: a string, number or boolean, without control
 * characters: it becomes one argv word `--param k=v`, never shell text. */
static int param_value(lua_State *L, int idx, const char *k, json_t *out, char *e, size_t el)
{
	int ty = lua_type(L, idx);
	if (ty != LUA_TSTRING && ty != LUA_TNUMBER && ty != LUA_TBOOLEAN) {
		snprintf(e, el, "params.%s is a %s (a string, number or boolean is needed)", k,
			 lua_typename(L, ty));
		return -1;
	}
	const char *s = ty == LUA_TBOOLEAN ? (lua_toboolean(L, idx) ? "true" : "false")
					   : lua_tostring(L, idx);
	size_t n = strlen(s);
	if (n > PARAM_VALUE_MAX) {
		snprintf(e, el, "params.%s is longer than %d bytes", k, PARAM_VALUE_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(e, el, "params.%s holds a control character", k);
			return -1;
		}
	json_object_set_new(out, k, json_string(s));
	return 0;
}

json_t *serve_rule_params(struct serve_rules *rs, int ref, const json_t *trigger, char *e,
			  size_t el)
{
	json_t *out = json_object();
	if (ref == LUA_NOREF)
		return out;
	lua_State *L = rs->L;
	int top = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	if (lua_isfunction(L, -1)) {
		drr_json_to_lua(L, trigger);
		if (drr_sandbox_pcall(L, 1, 1) != LUA_OK) {
			char *r = drr_redact(lua_tostring(L, -1));
			snprintf(e, el, "params function failed: %s", r);
			free(r);
			goto fail;
		}
	}
	if (!lua_istable(L, -1)) {
		snprintf(e, el, "params gave a %s, not a table", luaL_typename(L, -1));
		goto fail;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING) {
			snprintf(e, el, "params: a key is not a string");
			goto fail;
		}
		const char *k = lua_tostring(L, -2);
		int bad = !*k || strlen(k) > 128;
		for (const char *c = k; *c && !bad; c++)
			bad = !(isalnum((unsigned char)*c) || *c == '_');
		if (bad) {
			snprintf(e, el, "params: a key is not a name");
			goto fail;
		}
		if (param_value(L, -1, k, out, e, el) < 0)
			goto fail;
		lua_pop(L, 1);
	}
	lua_settop(L, top);
	return out;
fail:
	lua_settop(L, top);
	json_decref(out);
	return NULL;
}

/* ---- cron ----------------------------------------------------------------------- */

/* One field: comma list of *, N, N-M, each with an optional /STEP. */
static int cron_field(const char *s, size_t n, int lo, int hi, uint64_t *bits, int *any)
{
	*bits = 0;
	*any = n == 1 && s[0] == '*';
	const char *p = s, *end = s + n;
	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		const char *q = c ? c : end;
		int a = lo, b = hi, step = 1;
		const char *x = p;
		if (x < q && *x == '*') {
			x++;
		} else {
			if (x >= q || !isdigit((unsigned char)*x))
				return -1;
			for (a = 0; x < q && isdigit((unsigned char)*x); x++)
				a = a * 10 + (*x - '0');
			b = a;
			if (x < q && *x == '-') {
				x++;
				if (x >= q || !isdigit((unsigned char)*x))
					return -1;
				for (b = 0; x < q && isdigit((unsigned char)*x); x++)
					b = b * 10 + (*x - '0');
			}
		}
		if (x < q && *x == '/') {
			x++;
			if (x >= q || !isdigit((unsigned char)*x))
				return -1;
			for (step = 0; x < q && isdigit((unsigned char)*x); x++)
				step = step * 10 + (*x - '0');
			if (step == 0)
				return -1;
			if (a == b && p[0] != '*')
				b = hi;
		}
		if (x != q || a < lo || b > hi || a > b)
			return -1;
		for (int v = a; v <= b; v += step)
			*bits |= (uint64_t)1 << v;
		p = c ? c + 1 : end;
	}
	return 0;
}

int serve_cron_parse(const char *s, struct serve_cron *c, const char **why)
{
	const char *f[5];
	size_t fl[5];
	int n = 0;
	const char *p = s;
	memset(c, 0, sizeof *c);
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		const char *q = p;
		while (*q && *q != ' ' && *q != '\t')
			q++;
		if (n == 5) {
			*why = "more than 5 fields (minute hour day-of-month month day-of-week)";
			return -1;
		}
		f[n] = p;
		fl[n++] = (size_t)(q - p);
		p = q;
	}
	if (n != 5) {
		*why = "fewer than 5 fields (minute hour day-of-month month day-of-week)";
		return -1;
	}
	static const int lo[5] = { 0, 0, 1, 1, 0 }, hi[5] = { 59, 23, 31, 12, 7 };
	static const char *const names[5] = { "the minute field (0-59)", "the hour field (0-23)",
					      "the day-of-month field (1-31)",
					      "the month field (1-12)",
					      "the day-of-week field (0-7, 0 and 7 are Sunday)" };
	uint64_t bits[5];
	int any[5];
	for (int i = 0; i < 5; i++)
		if (cron_field(f[i], fl[i], lo[i], hi[i], &bits[i], &any[i]) < 0) {
			*why = names[i];
			return -1;
		}
	c->min = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->mon = (uint32_t)bits[3];
	c->dow = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f);
	c->dom_any = any[2];
	c->dow_any = any[4];
	return 0;
}

static int day_matches(const struct serve_cron *c, const struct tm *tm)
{
	int dom = (c->dom >> tm->tm_mday) & 1, dow = (c->dow >> tm->tm_wday) & 1;
	if (!((c->mon >> (tm->tm_mon + 1)) & 1))
		return 0;
	/* cron's rule: with both restricted, either may match */
	if (!c->dom_any && !c->dow_any)
		return dom || dow;
	return dom && dow;
}

time_t serve_cron_next(const struct serve_cron *c, time_t after, int utc)
{
	time_t t = after - after % 60 + 60;
	for (int guard = 0; guard < 600000; guard++) {
		struct tm tm;
		if (utc)
			gmtime_r(&t, &tm);
		else
			localtime_r(&t, &tm);
		if (!day_matches(c, &tm)) { /* to the next day's midnight */
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			tm.tm_isdst = -1;
			time_t n = utc ? timegm(&tm) : mktime(&tm);
			t = n > t ? n : t + 60;
			continue;
		}
		if (!((c->hour >> tm.tm_hour) & 1)) {
			t += 3600 - tm.tm_min * 60 - tm.tm_sec;
			continue;
		}
		if ((c->min >> tm.tm_min) & 1)
			return t;
		t += 60;
	}
	return (time_t)-1;
}
