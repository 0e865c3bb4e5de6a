/*
 * gate.c - approvals answered from elsewhere: an `approve = { ... }` table
 * opens a gate that waits, with or without a terminal, for the answers
 * that `drrun approve` and serve's /approve/<token> leave as files in the
 * run's directory (answer.c).  A gate needs `quorum` approvals from its
 * `approvers` (anyone when none are named); one deny declines it; its
 * timeout decides by its default.  The directory is read in the thread
 * pool, a few times a second while a gate is open, never on the loop.
 */
#include "run/sched.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define POLL_MS 250

struct drr_gatewait {
	struct run *r;
	struct drr_stepstate *s;
	char id[33]; /* names its answer files: <id>-<as>.json */
	uv_timer_t timer;
	char **yes; /* who approved, in the order they did */
	int nyes;
};

#define LINK_DEFAULT_TTL (24 * 3600) /* seconds a link lives when the gate has no timeout */

/* a gate's notify function, running as a task of its own */
struct note {
	struct drr_task *t;
	struct drr_stepstate *s;
	struct note *next;
};

/* the run's own gate, for serve's mode = "confirm": a step of no runbook */
#define CONFIRM_STEP "(activation)"
static struct drr_step confirm_def;
static struct drr_stepstate confirm_st;

static struct {
	struct note *notes;
	uv_timer_t poll;
	int poll_init, scanning;
	struct drr_gatewait **open;
	int nopen, cap;
	char *dir;    /* <run dir>/answers */
	json_t *seen; /* answer file names already read */
	int shutdown; /* the run ended: a scan coming back finds nothing to do */
} G;

/* --yes stands for one operator: it cannot answer for named approvers or a quorum */
int gate_yes_enough(const struct drr_stepstate *s)
{
	return !s->def->gate.napprovers && s->def->gate.quorum <= 1;
}

static void timer_freed(uv_handle_t *h)
{
	struct drr_gatewait *g = h->data;
	for (int i = 0; i < g->nyes; i++)
		free(g->yes[i]);
	free(g->yes);
	free(g);
}

static void gate_drop(struct drr_gatewait *g)
{
	for (int i = 0; i < G.nopen; i++)
		if (G.open[i] == g) {
			G.open[i] = G.open[--G.nopen];
			break;
		}
	g->s->gw = NULL;
	uv_timer_stop(&g->timer);
	uv_close((uv_handle_t *)&g->timer, timer_freed);
	if (!G.nopen && G.poll_init)
		uv_timer_stop(&G.poll);
}

static json_t *names_json(char **v, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, drr_json_str(v[i]));
	return a;
}

/* An approval record about g: step, question, status, by (NULL: null), gate. */
static json_t *gate_rec(struct drr_gatewait *g, const char *status, const char *by)
{
	json_t *rec = rec_step("approval", g->s);
	json_object_set_new(rec, "question", drr_json_str(step_question(g->s)));
	json_object_set_new(rec, "status", json_string(status));
	json_object_set_new(rec, "by", by ? drr_json_str(by) : json_null());
	json_object_set_new(rec, "gate", json_string(g->id));
	return rec;
}

/* Decide the gate: approved (yes) or declined, by `by`, and go on. */
static void gate_decide(struct drr_gatewait *g, int yes, const char *by, const json_t *ans)
{
	struct run *r = g->r;
	struct drr_stepstate *s = g->s;
	json_t *rec = gate_rec(g, yes ? "approved" : "declined", by);
	if (yes && g->nyes)
		json_object_set_new(rec, "approvers", names_json(g->yes, g->nyes));
	if (ans) /* the deny that decided it: who, from where */
		json_object_set_new(rec, "as", json_incref(json_object_get(ans, "as")));
	jrec(r, rec, 0);
	if (r->prompting && r->prompt_step == s)
		prompt_cancel(r, "answered elsewhere");
	gate_drop(g);
	if (s == &confirm_st) {
		drr_view_event(r->view, NULL, yes ? "confirmed" : "not confirmed", by);
		if (!yes) {
			char *why = drr_xasprintf(
				"the activation was not confirmed (%s)",
				!strcmp(by, "timeout") ? "no answer before the timeout" : "denied");
			set_stop(r, STOP_ABORTED, why);
			free(why);
		}
		kick();
		return;
	}
	if (yes) {
		s->approved = 1;
		s->state = DRR_PENDING;
		r->rescan = 1;
		drr_view_event(r->view, s, "approved", by);
	} else {
		approval_declined(r, s, by);
	}
	kick();
}

static int listed(const struct drr_gate *gd, const char *as)
{
	if (!gd->napprovers)
		return 1;
	for (int i = 0; i < gd->napprovers; i++)
		if (!strcmp(gd->approvers[i], as))
			return 1;
	return 0;
}

static void ignored(struct drr_gatewait *g, const char *file, const char *why)
{
	json_t *rec = gate_rec(g, "ignored", NULL);
	json_object_set_new(rec, "file", drr_json_str(file));
	json_object_set_new(rec, "reason", json_string(why));
	jrec(g->r, rec, 0);
}

static struct drr_gatewait *gate_by_id(const char *id)
{
	for (int i = 0; id && i < G.nopen; i++)
		if (!strcmp(G.open[i]->id, id))
			return G.open[i];
	return NULL;
}

/* One answer file read back: count it, or say why not. */
static void take_answer(const char *file, const json_t *a)
{
	size_t idlen = strcspn(file, "-");
	char id[33] = "";
	if (idlen < sizeof id)
		memcpy(id, file, idlen), id[idlen] = '\0';
	struct drr_gatewait *g = gate_by_id(id);
	if (!g)
		return; /* a gate closed already, or of an earlier session */
	const struct drr_gate *gd = &g->s->def->gate;
	const char *ans = json_string_value(json_object_get(a, "answer"));
	const char *as = json_string_value(json_object_get(a, "as"));
	const char *via = json_string_value(json_object_get(a, "via"));
	const char *gid = json_string_value(json_object_get(a, "gate"));
	if (!json_is_object(a) || !ans || !as || !via || !gid || strcmp(gid, g->id) ||
	    (strcmp(ans, "approve") && strcmp(ans, "deny"))) {
		ignored(g, file, "not an answer drrun wrote");
		return;
	}
	if (!listed(gd, as)) {
		ignored(g, file, "not one of the step's approvers");
		return;
	}
	for (int i = 0; i < g->nyes; i++)
		if (!strcmp(g->yes[i], as))
			return; /* counted once */
	int yes = !strcmp(ans, "approve");
	if (yes) {
		g->yes = drr_xrealloc(g->yes, (size_t)(g->nyes + 1) * sizeof *g->yes);
		g->yes[g->nyes++] = drr_xstrdup(as);
	}
	json_t *rec = gate_rec(g, "answered", via);
	json_object_set_new(rec, "answer", json_string(ans));
	static const char *const copied[] = { "as",   "who",	 "host", "tty",
					      "from", "comment", "at",	 NULL };
	for (const char *const *k = copied; *k; k++) {
		const json_t *v = json_object_get(a, *k);
		if (json_is_string(v))
			json_object_set_new(rec, *k, drr_json_str(json_string_value(v)));
	}
	json_object_set_new(rec, "count", json_integer(g->nyes));
	json_object_set_new(rec, "quorum", json_integer(gd->quorum));
	jrec(g->r, rec, 0);
	char *d = drr_xasprintf("%s by %s (%s), %d of %d", yes ? "approved" : "denied", as, via,
				g->nyes, gd->quorum);
	drr_view_event(g->r->view, g->s, "answer", d);
	free(d);
	if (!yes)
		gate_decide(g, 0, via, a);
	else if (g->nyes >= gd->quorum)
		gate_decide(g, 1, "quorum", NULL);
}

/* ---- reading the answers directory, in the thread pool ------------------- */

struct scan {
	uv_work_t w;
	char *dir;
	json_t *seen;  /* a copy: the thread owns it */
	json_t *found; /* [ [file, answer-or-null], ... ] */
};

static json_t *read_answer(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	struct stat st;
	char buf[DRR_ANSWER_MAX + 1];
	ssize_t n = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= DRR_ANSWER_MAX)
		n = read(fd, buf, sizeof buf);
	close(fd);
	if (n <= 0 || n > DRR_ANSWER_MAX)
		return NULL;
	return json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
}

static void scan_work(uv_work_t *w)
{
	struct scan *sc = w->data;
	DIR *d = opendir(sc->dir);
	if (!d)
		return; /* no answer yet */
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		size_t len = strlen(n);
		if (n[0] == '.' || len < 6 || strcmp(n + len - 5, ".json") ||
		    json_object_get(sc->seen, n))
			continue;
		json_t *a = read_answer(dirfd(d), n);
		json_array_append_new(sc->found, json_pack("[so]", n, a ? a : json_null()));
	}
	closedir(d);
}

static void scan_done(uv_work_t *w, int status)
{
	(void)status;
	struct scan *sc = w->data;
	G.scanning = 0;
	size_t i;
	json_t *f;
	json_array_foreach(sc->found, i, f) {
		const char *name = json_string_value(json_array_get(f, 0));
		json_object_set_new(G.seen, name, json_true());
		if (G.shutdown)
			continue;
		const json_t *a = json_array_get(f, 1);
		if (json_is_null(a)) {
			char id[33] = "";
			size_t idlen = strcspn(name, "-");
			if (idlen < sizeof id)
				memcpy(id, name, idlen), id[idlen] = '\0';
			struct drr_gatewait *g = gate_by_id(id);
			if (g)
				ignored(g, name, "unreadable or not JSON");
			continue;
		}
		take_answer(name, a);
	}
	json_decref(sc->found);
	json_decref(sc->seen);
	free(sc->dir);
	free(sc);
}

static void poll_cb(uv_timer_t *t)
{
	(void)t;
	if (G.scanning || !G.nopen)
		return;
	struct scan *sc = drr_xcalloc(1, sizeof *sc);
	sc->w.data = sc;
	sc->dir = drr_xstrdup(G.dir);
	sc->seen = json_deep_copy(G.seen);
	sc->found = json_array();
	G.scanning = 1;
	uv_queue_work(t->loop, &sc->w, scan_work, scan_done);
}

static void timeout_cb(uv_timer_t *t)
{
	struct drr_gatewait *g = t->data;
	gate_decide(g, g->s->def->gate.on_timeout, "timeout", NULL);
}

/* ---- opening and closing ---------------------------------------------------- */

static void hex_id(char out[33])
{
	unsigned char rnd[16];
	if (uv_random(NULL, NULL, rnd, sizeof rnd, 0, NULL) != 0)
		for (size_t i = 0; i < sizeof rnd; i++)
			rnd[i] = (unsigned char)(drr_now_us() >> (i % 8));
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(out + 2 * i, 3, "%02x", rnd[i]);
}

/* ---- telling the approvers: signed links and the notify function --------- */

static void note_done(struct drr_task *t, int status, void *ud)
{
	struct note *n = ud;
	if (status == DRR_TASK_ERROR || status == DRR_TASK_ABORT) {
		char *m = drr_xasprintf("approve: notify failed: %s", t->error ? t->error : "?");
		step_log(n->s, m);
		free(m);
	}
	for (struct note **p = &G.notes; *p; p = &(*p)->next)
		if (*p == n) {
			*p = n->next;
			break;
		}
	drr_task_free(t);
	free(n);
}

/* The request notify gets: what is asked of whom, until when, and how to
 * answer (the command, and a signed link per approver when serve's
 * approval URL and secret are set: DRRUN_APPROVAL_URL, DRRUN_APPROVAL_SECRET). */
static void push_request(lua_State *L, struct run *r, struct drr_gatewait *g, int64_t exp)
{
	const struct drr_gate *gd = &g->s->def->gate;
	lua_createtable(L, 0, 9);
	lua_pushstring(L, g->s->def->name);
	lua_setfield(L, -2, "step");
	lua_pushstring(L, step_question(g->s));
	lua_setfield(L, -2, "question");
	lua_pushinteger(L, gd->quorum);
	lua_setfield(L, -2, "quorum");
	lua_pushstring(L, r->run_id);
	lua_setfield(L, -2, "run_id");
	lua_createtable(L, gd->napprovers, 0);
	for (int i = 0; i < gd->napprovers; i++) {
		lua_pushstring(L, gd->approvers[i]);
		lua_rawseti(L, -2, i + 1);
	}
	lua_setfield(L, -2, "approvers");
	if (gd->timeout > 0) {
		char ts[40];
		drr_rfc3339(exp * 1000000, ts, sizeof ts);
		lua_pushstring(L, ts);
		lua_setfield(L, -2, "expires");
	}
	lua_pushfstring(L, "drrun approve %s%s%s --as NAME", r->run_id,
			g->s == &confirm_st ? "" : " ", g->s == &confirm_st ? "" : g->s->def->name);
	lua_setfield(L, -2, "command");
	const char *secret = getenv("DRRUN_APPROVAL_SECRET"), *base = getenv("DRRUN_APPROVAL_URL");
	lua_newtable(L);
	if (secret && *secret && base && *base) {
		drr_redact_add(secret);
		size_t bl = strlen(base);
		while (bl > 0 && base[bl - 1] == '/')
			bl--;
		int n = gd->napprovers ? gd->napprovers : 1;
		for (int i = 0; i < n; i++) {
			const char *as = gd->napprovers ? gd->approvers[i] : "anyone";
			char *tok = drr_approval_token(secret, r->run_id, g->s->def->name, g->id,
						       as, exp);
			char *url = drr_xasprintf("%.*s/approve/%s", (int)bl, base, tok);
			lua_pushstring(L, url);
			lua_setfield(L, -2, as);
			free(url);
			free(tok);
		}
	}
	lua_setfield(L, -2, "links");
}

static void notify(struct run *r, struct drr_gatewait *g, int64_t exp)
{
	const struct drr_gate *gd = &g->s->def->gate;
	if (gd->notify_ref == LUA_NOREF || r->o->dry_run)
		return;
	lua_State *L = r->L;
	lua_rawgeti(L, LUA_REGISTRYINDEX, gd->notify_ref);
	push_ctx(r, g->s);
	push_request(L, r, g, exp);
	struct note *n = drr_xcalloc(1, sizeof *n);
	n->s = g->s;
	n->next = G.notes;
	G.notes = n;
	n->t = drr_task_spawn(L, 2, note_done, n);
}

/* Open s's gate: journal that it waits, for what and whom, then watch for
 * answers.  The step stays DRR_WAIT_APPROVAL until the gate decides. */
void gate_open(struct run *r, struct drr_stepstate *s)
{
	const struct drr_gate *gd = &s->def->gate;
	struct drr_gatewait *g = drr_xcalloc(1, sizeof *g);
	g->r = r;
	g->s = s;
	hex_id(g->id);
	s->gw = g;
	s->state = DRR_WAIT_APPROVAL;
	if (!G.dir) {
		char *jp = drr_xstrdup(drr_journal_path(r->j));
		char *slash = strrchr(jp, '/');
		if (slash)
			*slash = '\0';
		G.dir = drr_xasprintf("%s/answers", slash ? jp : ".");
		free(jp);
		G.seen = json_object();
	}
	if (G.nopen == G.cap) {
		G.cap = G.cap ? 2 * G.cap : 4;
		G.open = drr_xrealloc(G.open, (size_t)G.cap * sizeof *G.open);
	}
	G.open[G.nopen++] = g;

	json_t *rec = gate_rec(g, "waiting", NULL);
	json_object_set_new(rec, "quorum", json_integer(gd->quorum));
	json_object_set_new(rec, "approvers", names_json(gd->approvers, gd->napprovers));
	if (gd->timeout > 0) {
		char ts[40];
		drr_rfc3339(drr_now_us() + (int64_t)(gd->timeout * 1e6), ts, sizeof ts);
		json_object_set_new(rec, "expires", json_string(ts));
		json_object_set_new(rec, "default",
				    json_string(gd->on_timeout ? "approve" : "deny"));
	}
	jrec(r, rec, 0);

	notify(r, g,
	       (drr_now_us() / 1000000) +
		       (gd->timeout > 0 ? (int64_t)gd->timeout : LINK_DEFAULT_TTL));

	uv_timer_init(&r->loop, &g->timer);
	g->timer.data = g;
	if (gd->timeout > 0)
		uv_timer_start(&g->timer, timeout_cb, (uint64_t)(gd->timeout * 1000), 0);
	if (!G.poll_init) {
		uv_timer_init(&r->loop, &G.poll);
		G.poll_init = 1;
	}
	if (!uv_is_active((uv_handle_t *)&G.poll))
		uv_timer_start(&G.poll, poll_cb, POLL_MS / 5, POLL_MS);

	char *who = gd->napprovers ? NULL : drr_xstrdup("anyone");
	for (int i = 0; i < gd->napprovers; i++) {
		char *w = who ? drr_xasprintf("%s, %s", who, gd->approvers[i])
			      : drr_xstrdup(gd->approvers[i]);
		free(who);
		who = w;
	}
	int own = s == &confirm_st; /* the run's own gate: no step to name */
	char *d =
		drr_xasprintf("%d of %s; answer with: drrun approve %s%s%s [--deny] --as NAME",
			      gd->quorum, who, r->run_id, own ? "" : " ", own ? "" : s->def->name);
	char *q = drr_redact(step_question(s));
	if (own)
		drr_view_message(r->view, "drrun: the run awaits confirmation: \"%s\" (%s)", q, d);
	else
		drr_view_message(r->view, "drrun: step '%s' awaits approval: \"%s\" (%s)",
				 s->def->name, q, d);
	free(q);
	free(d);
	free(who);
}

/* The terminal answered s: its gate stops waiting (the caller journals). */
void gate_answered(struct drr_stepstate *s)
{
	if (s->gw)
		gate_drop(s->gw);
}

int gate_is_remote(const struct drr_stepstate *s)
{
	return s->def->gate.table;
}

/* Gates still open: none once the run stops (their steps do not run). */
int gates_pending(struct run *r)
{
	if (r->stop)
		while (G.nopen) {
			struct drr_gatewait *g = G.open[0];
			jrec(r, gate_rec(g, "withdrawn", NULL), 0);
			g->s->state = DRR_NOT_RUN;
			if (r->prompting && r->prompt_step == g->s)
				prompt_cancel(r, "the run is stopping");
			gate_drop(g);
		}
	return G.nopen;
}

/* The run ends: no more polling.  A scan in flight comes back to nothing. */
void gates_close(struct run *r)
{
	(void)r;
	while (G.nopen)
		gate_drop(G.open[0]);
	for (struct note *n = G.notes, *next; n; n = next) {
		next = n->next; /* its done callback unlinks and frees it */
		drr_task_cancel(n->t, "the run ended");
	}
	G.shutdown = 1;
	if (G.poll_init) {
		uv_timer_stop(&G.poll);
		uv_close((uv_handle_t *)&G.poll, NULL);
		G.poll_init = 0;
	}
	free(G.open);
	G.open = NULL;
	G.cap = 0;
	free(G.dir);
	G.dir = NULL;
}

/* ---- serve's mode = "confirm" ----------------------------------------------- */

/* notify = "slack" | "pagerduty" of a confirmation: the credential comes
 * from the environment (SLACK_WEBHOOK_URL, PAGERDUTY_ROUTING_KEY), since the
 * runbook need not declare it; it is registered with the redactor. */
static const char CONFIRM_NOTIFY[] =
	"local kind, req, cred = ...\n"
	"local lines = { req.question, 'run ' .. req.run_id, req.command }\n"
	"local links = {}\n"
	"for name, url in pairs(req.links) do\n"
	"  lines[#lines + 1] = name .. ': ' .. url\n"
	"  links[#links + 1] = { href = url, text = 'answer as ' .. name }\n"
	"end\n"
	"local r, err\n"
	"if kind == 'slack' then\n"
	"  r, err = require('drrun.slack').post { url = cred, text = table.concat(lines, '\\n') }\n"
	"else\n"
	"  r, err = require('drrun.pagerduty').trigger { routing_key = cred,\n"
	"    summary = req.question, source = 'drrun serve', severity = 'critical', links = "
	"links,\n"
	"    custom_details = { run = req.run_id, command = req.command } }\n"
	"end\n"
	"if r == nil then error(err, 0) end\n";

int gate_confirming(void)
{
	return confirm_st.gw != NULL;
}

void gate_confirm_open(struct run *r)
{
	const json_t *c = r->o->trigger ? json_object_get(r->o->trigger, "confirm") : NULL;
	if (!json_is_object(c))
		return;
	struct drr_gate *gd = &confirm_def.gate;
	memset(&confirm_def, 0, sizeof confirm_def);
	memset(&confirm_st, 0, sizeof confirm_st);
	confirm_def.name = drr_xstrdup(CONFIRM_STEP);
	const char *q = json_string_value(json_object_get(c, "question"));
	confirm_def.approve = drr_xstrdup(q && *q ? q : "Start this runbook?");
	gd->table = 1;
	gd->question_ref = gd->notify_ref = LUA_NOREF;
	json_int_t quorum = json_integer_value(json_object_get(c, "quorum"));
	gd->quorum = quorum >= 1 && quorum <= 64 ? (int)quorum : 1;
	const json_t *who = json_object_get(c, "approvers");
	gd->approvers = drr_xcalloc(json_array_size(who) + 1, sizeof(char *));
	size_t i;
	json_t *v;
	json_array_foreach(who, i, v)
		if (json_is_string(v) && drr_approver_name_ok(json_string_value(v)))
			gd->approvers[gd->napprovers++] = drr_xstrdup(json_string_value(v));
	double t = json_number_value(json_object_get(c, "timeout"));
	gd->timeout = t > 0 && t < 1e7 ? t : 0;
	const char *d = json_string_value(json_object_get(c, "default"));
	gd->on_timeout = d && !strcmp(d, "run");
	confirm_st.def = &confirm_def;
	confirm_st.state = DRR_WAIT_APPROVAL;
	confirm_st.output_ref = LUA_NOREF;
	if (r->o->yes && gate_yes_enough(&confirm_st)) {
		json_t *rec = rec_step("approval", &confirm_st);
		json_object_set_new(rec, "question", drr_json_str(confirm_def.approve));
		json_object_set_new(rec, "status", json_string("approved"));
		json_object_set_new(rec, "by", json_string("--yes"));
		jrec(r, rec, 0);
		return;
	}
	gate_open(r, &confirm_st);
	const char *kind = json_string_value(json_object_get(c, "notify"));
	if (!kind || r->o->dry_run || (strcmp(kind, "slack") && strcmp(kind, "pagerduty")))
		return;
	lua_State *L = r->L;
	if (luaL_loadbufferx(L, CONFIRM_NOTIFY, sizeof CONFIRM_NOTIFY - 1, "=confirm notify",
			     "t")) {
		lua_pop(L, 1);
		return;
	}
	lua_pushstring(L, kind);
	const char *cred =
		getenv(!strcmp(kind, "slack") ? "SLACK_WEBHOOK_URL" : "PAGERDUTY_ROUTING_KEY");
	if (cred && *cred)
		drr_redact_add(cred);
	int64_t exp = drr_now_us() / 1000000 +
		      (gd->timeout > 0 ? (int64_t)gd->timeout : LINK_DEFAULT_TTL);
	push_request(L, r, confirm_st.gw, exp);
	if (cred && *cred)
		lua_pushstring(L, cred);
	else
		lua_pushnil(L);
	struct note *n = drr_xcalloc(1, sizeof *n);
	n->s = &confirm_st;
	n->next = G.notes;
	G.notes = n;
	n->t = drr_task_spawn(L, 3, note_done, n);
}

/* Free what a scan still in flight would have used (after the loop ran). */
void gates_free(void)
{
	if (confirm_def.name) {
		free(confirm_def.name);
		free(confirm_st.last_log);
		free(confirm_def.approve);
		for (int i = 0; i < confirm_def.gate.napprovers; i++)
			free(confirm_def.gate.approvers[i]);
		free(confirm_def.gate.approvers);
		memset(&confirm_def, 0, sizeof confirm_def);
		memset(&confirm_st, 0, sizeof confirm_st);
	}
	json_decref(G.seen);
	G.seen = NULL;
	G.shutdown = 0; /* drrun test runs many cases in one process */
}
