/*
 * answer.c - answers to a run's approval gates, left where the run looks
 * for them (gate.c): one small JSON file per approver and gate, under the
 * run's directory.  `drrun approve` and serve's /approve/<token> write
 * them; the run, which may be on another machine sharing the state
 * directory, reads them and journals each one.
 */
#include "run/run.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int drr_approver_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (!n || n > 64 || !isalnum((unsigned char)*s))
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

static int gate_id_ok(const char *g)
{
	size_t n = strlen(g);
	if (n != 32)
		return 0;
	for (; *g; g++)
		if (!isxdigit((unsigned char)*g))
			return 0;
	return 1;
}

int drr_answer_write(const char *run_dir, const struct drr_answer *a, char *err, size_t errlen)
{
	if (!gate_id_ok(a->gate) || !drr_approver_name_ok(a->as)) {
		snprintf(err, errlen, "not a gate id or not an approver's name");
		errno = EINVAL;
		return -1;
	}
	char host[256] = "", ts[40];
	gethostname(host, sizeof host - 1);
	drr_rfc3339(drr_now_us(), ts, sizeof ts);
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s}", "gate", a->gate, "step",
			      a->step, "answer", a->approve ? "approve" : "deny", "as", a->as,
			      "via", a->via, "who", drr_json_str(drr_operator_name()), "host",
			      drr_json_str(host), "at", ts);
	if (a->comment)
		json_object_set_new(o, "comment", drr_json_str(a->comment));
	if (a->from)
		json_object_set_new(o, "from", drr_json_str(a->from));
	const char *tty = isatty(0) ? ttyname(0) : NULL;
	if (tty && !a->from)
		json_object_set_new(o, "tty", drr_json_str(tty));
	char *text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text || strlen(text) + 1 > DRR_ANSWER_MAX) {
		free(text);
		snprintf(err, errlen, "the answer is too long (a shorter --comment?)");
		errno = E2BIG;
		return -1;
	}
	char *dir = drr_xasprintf("%s/answers", run_dir);
	char *tmp = drr_xasprintf("%s/.%s-%s.%ld", dir, a->gate, a->as, (long)getpid());
	char *path = drr_xasprintf("%s/%s-%s.json", dir, a->gate, a->as);
	int rc = -1, e = 0;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		e = errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(e));
		goto out;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || drr_write_all(fd, text, strlen(text)) < 0 || drr_write_all(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", tmp, strerror(e));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	/* link, not rename: a second answer by the same approver must not replace
	 * the first, which the run may have counted already */
	if (link(tmp, path) < 0) {
		e = errno;
		if (e == EEXIST)
			snprintf(err, errlen, "%s has answered this approval already", a->as);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		unlink(tmp);
		goto out;
	}
	unlink(tmp);
	if (drr_fsync_dir(dir) < 0) {
		e = errno;
		snprintf(err, errlen, "%s: fsync: %s", dir, strerror(e));
		goto out;
	}
	rc = 0;
out:
	free(text);
	free(dir);
	free(tmp);
	free(path);
	errno = e;
	return rc;
}

const json_t *drr_past_open_gate(const struct drr_past *p, const char *step, char *err,
				 size_t errlen)
{
	const json_t *found = NULL;
	int n = 0;
	for (int i = 0; i < p->nsteps; i++) {
		const struct drr_past_step *s = &p->steps[i];
		if (step && strcmp(s->name, step))
			continue;
		if (s->gate) {
			found = s->gate;
			n++;
		}
	}
	if (n == 1 && !p->end)
		return found;
	if (p->end || !n)
		snprintf(err, errlen, "%s%s%s waits for no approval", step ? "step '" : "run ",
			 step ? step : p->run_id, step ? "'" : "");
	else {
		char list[1024] = "";
		for (int i = 0; i < p->nsteps; i++)
			if (p->steps[i].gate)
				snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
					 *list ? ", " : "", p->steps[i].name);
		snprintf(err, errlen, "several steps wait for approval (%s): name one", list);
	}
	return NULL;
}
