/*
 * approve.c - serve's /approve/<token>: the signed links a waiting run
 * sends its approvers (run/token.c).  GET shows what the link would answer
 * and asks to confirm (link previews in chat fetch it: it changes nothing);
 * POST answers, approve unless the body says answer=deny.  The token is
 * checked with DRRUN_APPROVAL_SECRET (unset: every link is refused, 401),
 * then the answer is left for the run like `drrun approve` leaves it,
 * reading the journal and writing the answer in the thread pool.
 */
#include "serve/internal.h"
#include "run/run.h"

#include <errno.h>

#include <stdlib.h>
#include <string.h>

#define COMMENT_MAX 1000

struct apw {
	uv_work_t w;
	struct srv *s;
	struct serve_req *r;
	char *state_dir;
	char *run, *step, *gate, *as, *comment;
	char peer[64];
	int approve, form;
	int code;
	char msg[512];
	const char *result; /* the metric's label */
};

static const char *approval_secret(void)
{
	const char *v = getenv("DRRUN_APPROVAL_SECRET");
	if (!v || !*v)
		return NULL;
	drr_redact_add(v);
	return v;
}

static int run_id_ok(const char *id)
{
	if (!*id || strlen(id) > 150 || *id == '.')
		return 0;
	for (const char *p = id; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && !strchr("._-", *p))
			return 0;
	return 1;
}

static void html_add(struct drr_buf *b, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '<':
			drr_buf_adds(b, "&lt;");
			break;
		case '>':
			drr_buf_adds(b, "&gt;");
			break;
		case '&':
			drr_buf_adds(b, "&amp;");
			break;
		case '"':
			drr_buf_adds(b, "&quot;");
			break;
		case '\'':
			drr_buf_adds(b, "&#39;");
			break;
		default:
			drr_buf_add(b, s, 1);
		}
}

static void reply_page(struct serve_req *r, int code, const char *title, const char *text)
{
	struct drr_buf b = { 0 };
	drr_buf_adds(&b, "<!doctype html><meta charset=utf-8><title>drrun: ");
	html_add(&b, title);
	drr_buf_adds(&b, "</title><h1>");
	html_add(&b, title);
	drr_buf_adds(&b, "</h1><p>");
	html_add(&b, text);
	drr_buf_adds(&b, "</p>\n");
	serve_req_reply(r, code, "text/html; charset=utf-8", b.data, b.len);
	drr_buf_free(&b);
}

static void refuse(struct srv *s, struct serve_req *r, int code, const char *result,
		   const char *why)
{
	char *l = srv_plabel("result", result);
	srv_metric(s, "drrun_approvals_total", l, 1);
	free(l);
	char peer[64];
	serve_req_peer(r, peer, sizeof peer);
	srv_log(s, "warn", "approval link refused", "result", result, "why", why, "peer", peer,
		NULL);
	srv_reply_json(r, code, json_pack("{s:s,s:s}", "error", result, "why", why));
}

/* The page a GET shows: what the link answers, and the two buttons. */
static void confirm_page(struct serve_req *r, const json_t *t, const char *tok)
{
	struct drr_buf b = { 0 };
	drr_buf_adds(&b, "<!doctype html><meta charset=utf-8><title>drrun: approval</title>"
			 "<h1>Approval of step ");
	html_add(&b, json_string_value(json_object_get(t, "step")));
	drr_buf_adds(&b, "</h1><p>Run ");
	html_add(&b, json_string_value(json_object_get(t, "run")));
	drr_buf_adds(&b, ", answering as ");
	html_add(&b, json_string_value(json_object_get(t, "as")));
	drr_buf_adds(&b, ". Nothing is recorded until you choose.</p>");
	for (int deny = 0; deny < 2; deny++) {
		drr_buf_adds(&b, "<form method=post action=\"/approve/");
		html_add(&b, tok);
		drr_buf_addf(&b,
			     "\"><input type=hidden name=answer value=%s>"
			     "<input name=comment placeholder=comment maxlength=%d> "
			     "<button>%s</button></form>",
			     deny ? "deny" : "approve", COMMENT_MAX, deny ? "Deny" : "Approve");
	}
	drr_buf_adds(&b, "\n");
	serve_req_reply(r, 200, "text/html; charset=utf-8", b.data, b.len);
	drr_buf_free(&b);
}

/* ---- the body: answer=approve|deny&comment=... or {"answer":..,"comment":..} */

static int hexval(int c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* The value of form field name in body (percent-decoded), or NULL. */
static char *form_field(const char *body, size_t n, const char *name)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && body[j] != '&')
			j++;
		if (j - i > nl && !strncmp(body + i, name, nl) && body[i + nl] == '=') {
			struct drr_buf v = { 0 };
			for (size_t k = i + nl + 1; k < j; k++) {
				char c = body[k];
				if (c == '+')
					c = ' ';
				else if (c == '%' && k + 2 < j && hexval(body[k + 1]) >= 0 &&
					 hexval(body[k + 2]) >= 0) {
					c = (char)(hexval(body[k + 1]) << 4 | hexval(body[k + 2]));
					k += 2;
				}
				drr_buf_add(&v, &c, 1);
			}
			drr_buf_add(&v, "", 1);
			return v.data;
		}
		i = j + 1;
	}
	return NULL;
}

/* -1 when the body says something else than an answer. */
static int parse_body(struct serve_req *r, int *approve, char **comment, int *form)
{
	const char *body = r->body.data ? r->body.data : "";
	size_t n = r->body.len;
	const char *ct = serve_req_header(r, "Content-Type");
	char *ans = NULL;
	*form = 0;
	if (n && ct && !strncmp(ct, "application/json", 16)) {
		json_t *o = json_loadb(body, n, JSON_REJECT_DUPLICATES, NULL);
		const char *a = json_string_value(json_object_get(o, "answer"));
		const char *c = json_string_value(json_object_get(o, "comment"));
		if (!json_is_object(o)) {
			json_decref(o);
			return -1;
		}
		ans = a ? drr_xstrdup(a) : NULL;
		*comment = c && *c ? drr_xstrdup(c) : NULL;
		json_decref(o);
	} else if (n) {
		*form = 1;
		ans = form_field(body, n, "answer");
		*comment = form_field(body, n, "comment");
		if (*comment && !**comment) {
			free(*comment);
			*comment = NULL;
		}
	}
	*approve = !ans || !strcmp(ans, "approve");
	int ok = !ans || !strcmp(ans, "approve") || !strcmp(ans, "deny");
	free(ans);
	if (ok && *comment &&
	    (strlen(*comment) > COMMENT_MAX || !drr_utf8_valid(*comment, strlen(*comment))))
		ok = 0;
	if (!ok) {
		free(*comment);
		*comment = NULL;
	}
	return ok ? 0 : -1;
}

/* ---- in the thread pool: the journal read, the answer written ------------- */

static void answer_work(uv_work_t *w)
{
	struct apw *a = w->data;
	char *dir = drr_xasprintf("%s/runs/%s", a->state_dir, a->run);
	struct drr_past p;
	char err[512];
	a->code = 410;
	a->result = "closed";
	if (drr_past_load(dir, &p, err, sizeof err) < 0) {
		snprintf(a->msg, sizeof a->msg, "no such run");
		free(dir);
		return;
	}
	const json_t *g = drr_past_open_gate(&p, a->step, err, sizeof err);
	const char *gid = g ? json_string_value(json_object_get(g, "gate")) : NULL;
	const json_t *who = g ? json_object_get(g, "approvers") : NULL;
	int listed = !json_array_size(who) && !strcmp(a->as, "anyone");
	size_t i;
	json_t *v;
	json_array_foreach(who, i, v)
		listed |= !strcmp(json_string_value(v), a->as);
	if (!gid || strcmp(gid, a->gate)) {
		snprintf(a->msg, sizeof a->msg,
			 "this approval is closed: the step no longer waits");
	} else if (strcmp(drr_past_state(&p, a->state_dir), "running")) {
		snprintf(a->msg, sizeof a->msg, "the run is not running");
	} else if (!listed) {
		a->code = 403;
		a->result = "not_approver";
		snprintf(a->msg, sizeof a->msg, "%s is not one of the step's approvers", a->as);
	} else {
		struct drr_answer ans = { .gate = a->gate,
					  .step = a->step,
					  .approve = a->approve,
					  .as = a->as,
					  .comment = a->comment,
					  .via = "link",
					  .from = a->peer };
		if (drr_answer_write(dir, &ans, err, sizeof err) < 0) {
			int dup = errno == EEXIST;
			a->code = dup ? 409 : 503;
			a->result = dup ? "duplicate" : "error";
			snprintf(a->msg, sizeof a->msg, "%s", err);
		} else {
			a->code = 202;
			a->result = "recorded";
			snprintf(a->msg, sizeof a->msg, "%s by %s for step %s of run %s",
				 a->approve ? "approval" : "denial", a->as, a->step, a->run);
		}
	}
	drr_past_free(&p);
	free(dir);
}

static void answer_done(uv_work_t *w, int status)
{
	(void)status;
	struct apw *a = w->data;
	struct srv *s = a->s;
	char *l = srv_plabel("result", a->result);
	srv_metric(s, "drrun_approvals_total", l, 1);
	free(l);
	srv_log(s, a->code == 202 ? "info" : "warn", "approval link", "result", a->result, "run",
		a->run, "step", a->step, "as", a->as, "answer", a->approve ? "approve" : "deny",
		"peer", a->peer, NULL);
	if (a->form)
		reply_page(a->r, a->code, a->code == 202 ? "Answer recorded" : "Not recorded",
			   a->msg);
	else if (a->code == 202)
		srv_reply_json(a->r, 202,
			       json_pack("{s:b,s:s,s:s,s:s,s:s}", "recorded", 1, "run", a->run,
					 "step", a->step, "as", a->as, "answer",
					 a->approve ? "approve" : "deny"));
	else
		srv_reply_json(a->r, a->code,
			       json_pack("{s:s,s:s}", "error", a->result, "why", a->msg));
	free(a->state_dir);
	free(a->run);
	free(a->step);
	free(a->gate);
	free(a->as);
	free(a->comment);
	free(a);
}

void srv_on_approve(struct srv *s, struct serve_req *r, const char *tok)
{
	int get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
	if (!get && strcmp(r->method, "POST")) {
		srv_reply_json(r, 405, json_pack("{s:s}", "error", "method"));
		return;
	}
	if (r->too_big) {
		srv_reply_json(r, 413, json_pack("{s:s}", "error", "too_large"));
		return;
	}
	const char *secret = approval_secret();
	if (!secret) {
		refuse(s, r, 401, "not_configured", "DRRUN_APPROVAL_SECRET is not set");
		return;
	}
	const char *why = NULL;
	json_t *t = drr_approval_token_check(secret, tok, drr_now_us(), &why);
	if (!t) {
		refuse(s, r, 403, why,
		       !strcmp(why, "expired")	? "the link has expired"
		       : !strcmp(why, "forged") ? "the link's signature is wrong"
						: "not an approval link");
		return;
	}
	const char *run = json_string_value(json_object_get(t, "run"));
	if (!run_id_ok(run) || !drr_approver_name_ok(json_string_value(json_object_get(t, "as")))) {
		json_decref(t);
		refuse(s, r, 400, "malformed", "not an approval link");
		return;
	}
	if (get) {
		confirm_page(r, t, tok);
		json_decref(t);
		return;
	}
	struct apw *a = drr_xcalloc(1, sizeof *a);
	if (parse_body(r, &a->approve, &a->comment, &a->form) < 0) {
		json_decref(t);
		free(a);
		refuse(s, r, 400, "bad_body",
		       "the body is answer=approve|deny and an optional comment (at most 1000 "
		       "bytes of UTF-8)");
		return;
	}
	a->w.data = a;
	a->s = s;
	a->r = r;
	a->state_dir = drr_xstrdup(s->state_dir);
	a->run = drr_xstrdup(run);
	a->step = drr_xstrdup(json_string_value(json_object_get(t, "step")));
	a->gate = drr_xstrdup(json_string_value(json_object_get(t, "gate")));
	a->as = drr_xstrdup(json_string_value(json_object_get(t, "as")));
	serve_req_peer(r, a->peer, sizeof a->peer);
	json_decref(t);
	serve_req_defer(r);
	uv_queue_work(s->loop, &a->w, answer_work, answer_done);
}
