/*
 * test_journal.c - the hash-chained journal (journal.c): record layout,
 * seq/prev/hash chain as read back from disk, tamper detection with
 * drr_journal_line_hash, the --json tee, and redaction of secrets.
 * Each test works in its own mkdtemp directory under $TMPDIR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal/journal.h"

#define RUN_ID "20261122T051022.123Z-unit-test-3f9a"
#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

struct fixture {
	char dir[256];
	struct drr_buf tee; /* lines received by the tee, '\n'-separated */
	int tee_calls;
};

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof *fx);
	const char *tmp = getenv("TMPDIR");
	snprintf(fx->dir, sizeof fx->dir, "%s/drrun-journal-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fx->dir)) {
		free(fx);
		return -1;
	}
	drr_redact_clear();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	drr_buf_free(&fx->tee);
	drr_redact_clear();
	free(fx);
	return 0;
}

static void collect_line(const char *line, void *ud)
{
	struct fixture *fx = ud;
	drr_buf_adds(&fx->tee, line);
	drr_buf_adds(&fx->tee, "\n");
	fx->tee_calls++;
}

static struct drr_journal *open_journal(struct fixture *fx)
{
	char err[256] = "";
	struct drr_journal *j = drr_journal_create(fx->dir, RUN_ID, err, sizeof err);
	if (!j)
		fail_msg("drr_journal_create: %s", err);
	return j;
}

static void append(struct drr_journal *j, json_t *rec)
{
	if (drr_journal_append(j, rec, 1) != 0)
		fail_msg("drr_journal_append: %s", drr_journal_error(j));
}

/* Read a whole file; *len gets its size.  Caller frees. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	struct drr_buf b = { 0 };
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		drr_buf_add(&b, chunk, n);
	fclose(f);
	*len = b.len;
	return b.data ? b.data : drr_xstrdup("");
}

static void write_file(const char *path, const char *data)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static void append_sample(struct drr_journal *j)
{
	append(j, json_pack("{s:s, s:s, s:i}", "type", "run_start", "runbook", "unit", "steps", 2));
	append(j, json_pack("{s:s, s:s, s:s, s:i}", "type", "step_start", "step", "a", "phase",
			    "main", "attempt", 1));
	append(j, json_pack("{s:s, s:s, s:s}", "type", "step_log", "step", "a", "msg",
			    "quotes \" and \\ and \n newline and \xc3\xa9"));
	append(j, json_pack("{s:s, s:s, s:s, s:i, s:f, s:{s:[i,i]}}", "type", "step_end", "step",
			    "a", "status", "completed", "attempts", 1, "duration", 0.25, "output",
			    "list", 1, 2));
	append(j,
	       json_pack("{s:s, s:s, s:i}", "type", "run_end", "status", "completed", "exit", 0));
}

/* Check every line of a journal; returns the number of lines. */
static int verify(const char *data, size_t len)
{
	char prev[65] = ZERO64;
	int n = 0;
	const char *p = data;
	assert_true(len > 0);
	assert_int_equal(data[len - 1], '\n');
	while (p < data + len) {
		const char *nl = memchr(p, '\n', (size_t)(data + len - p));
		assert_non_null(nl);
		size_t ll = (size_t)(nl - p);
		char *line = drr_xmalloc(ll + 1);
		memcpy(line, p, ll);
		line[ll] = '\0';
		n++;

		char hex[65], found[65];
		if (drr_journal_line_hash(line, ll, hex, found) != 0)
			fail_msg("line %d has no hash member: %s", n, line);
		if (strcmp(hex, found) != 0)
			fail_msg("line %d: hash %s does not recompute (%s)", n, found, hex);

		/* independent recomputation: body = line minus ,"hash":"..." plus '}' */
		const char *hk = strstr(line, ",\"hash\":\"");
		assert_non_null(hk);
		assert_int_equal(strlen(hk), strlen(",\"hash\":\"") + 64 + 2);
		struct drr_buf body = { 0 };
		drr_buf_add(&body, line, (size_t)(hk - line));
		drr_buf_adds(&body, "}");
		char want[65];
		drr_sha256_hex(body.data, body.len, want);
		assert_string_equal(want, found);
		drr_buf_free(&body);

		json_error_t jerr;
		json_t *rec = json_loads(line, 0, &jerr);
		if (!rec)
			fail_msg("line %d is not JSON: %s", n, jerr.text);
		assert_int_equal(json_integer_value(json_object_get(rec, "seq")), n);
		assert_string_equal(json_string_value(json_object_get(rec, "prev")), prev);
		assert_string_equal(json_string_value(json_object_get(rec, "run")), RUN_ID);
		const char *ts = json_string_value(json_object_get(rec, "ts"));
		assert_non_null(ts);
		assert_int_equal(strlen(ts), 27); /* 2026-11-22T05:10:22.123456Z */
		assert_int_equal(ts[10], 'T');
		assert_int_equal(ts[19], '.');
		assert_int_equal(ts[26], 'Z');

		/* member order: seq, ts, run, type first; prev, hash last */
		char pat[80];
		snprintf(pat, sizeof pat, "{\"seq\":%d,\"ts\":\"", n);
		assert_int_equal(strncmp(line, pat, strlen(pat)), 0);
		const char *run = strstr(line, ",\"run\":\"");
		const char *type = strstr(line, ",\"type\":\"");
		const char *pv = strstr(line, ",\"prev\":\"");
		assert_non_null(run);
		assert_non_null(type);
		assert_non_null(pv);
		assert_ptr_equal(run, line + strlen(pat) + 28); /* ts is 27 chars + quote */
		assert_ptr_equal(type, run + strlen(",\"run\":\"") + strlen(RUN_ID) + 1);
		assert_ptr_equal(pv + strlen(",\"prev\":\"") + 64 + 1, hk);

		json_decref(rec);
		memcpy(prev, found, sizeof prev);
		free(line);
		p = nl + 1;
	}
	return n;
}

static void test_create_path(void **state)
{
	struct fixture *fx = *state;
	struct drr_journal *j = open_journal(fx);
	char want[512];
	snprintf(want, sizeof want, "%s/runs/%s/journal.jsonl", fx->dir, RUN_ID);
	assert_string_equal(drr_journal_path(j), want);
	/* the journal appears under its name only with its first record on disk */
	struct stat st;
	assert_int_not_equal(stat(want, &st), 0);
	json_t *rec = json_pack("{s:s}", "type", "run_start");
	assert_int_equal(drr_journal_append(j, rec, 1), 0);
	assert_int_equal(stat(want, &st), 0);
	assert_true(st.st_size > 0);
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.new", want);
	assert_int_not_equal(stat(tmp, &st), 0);
	drr_journal_close(j);
}

static void test_no_record_no_journal(void **state)
{
	struct fixture *fx = *state;
	struct drr_journal *j = open_journal(fx);
	char dir[512];
	snprintf(dir, sizeof dir, "%s/runs/%s", fx->dir, RUN_ID);
	drr_journal_close(j); /* closed before its first record: nothing stays */
	struct stat st;
	assert_int_not_equal(stat(dir, &st), 0);
}

static void test_chain_roundtrip(void **state)
{
	struct fixture *fx = *state;
	struct drr_journal *j = open_journal(fx);
	append_sample(j);
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);

	size_t len;
	char *data = slurp(path, &len);
	assert_int_equal(verify(data, len), 5);
	/* the first record's prev is all zeros */
	assert_non_null(strstr(data, ",\"prev\":\"" ZERO64 "\",\"hash\":\""));
	/* type-specific members survive, in the order given */
	assert_non_null(strstr(data, "\"type\":\"step_start\",\"step\":\"a\",\"phase\":\"main\","
				     "\"attempt\":1,\"prev\""));
	free(data);
	free(path);
}

static void test_tamper_detected(void **state)
{
	struct fixture *fx = *state;
	struct drr_journal *j = open_journal(fx);
	append_sample(j);
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);
	size_t len;
	char *data = slurp(path, &len);

	/* change "completed" to "completeD" on the step_end line */
	char *hit = strstr(data, "\"status\":\"completed\",\"attempts\"");
	assert_non_null(hit);
	char *line = hit;
	while (line > data && line[-1] != '\n')
		line--;
	size_t ll = (size_t)(strchr(line, '\n') - line);
	hit[strlen("\"status\":\"completed") - 1] = 'D';
	char hex[65], found[65];
	assert_int_equal(drr_journal_line_hash(line, ll, hex, found), 0);
	assert_string_not_equal(hex, found);

	/* a truncated line (hash member cut) is reported, not misread */
	assert_int_equal(drr_journal_line_hash(line, ll - 3, hex, found), -1);
	assert_int_equal(drr_journal_line_hash("{\"seq\":1}", 9, hex, found), -1);
	assert_int_equal(drr_journal_line_hash("", 0, hex, found), -1);
	free(data);
	free(path);
}

static void test_reordered_lines_break_chain(void **state)
{
	struct fixture *fx = *state;
	struct drr_journal *j = open_journal(fx);
	append_sample(j);
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);
	size_t len;
	char *data = slurp(path, &len);

	/* drop line 3: each remaining line still hashes, but line 4's prev no
	 * longer names line 2's hash */
	char *l3 = data;
	for (int i = 0; i < 2; i++)
		l3 = strchr(l3, '\n') + 1;
	char *l4 = strchr(l3, '\n') + 1;
	memmove(l3, l4, strlen(l4) + 1);
	len = strlen(data);

	char h2[65], f2[65];
	char *l2 = strchr(data, '\n') + 1;
	assert_int_equal(drr_journal_line_hash(l2, (size_t)(strchr(l2, '\n') - l2), h2, f2), 0);
	char want_prev[80];
	snprintf(want_prev, sizeof want_prev, "\"prev\":\"%s\"", f2);
	char *next = strchr(l2, '\n') + 1;
	*strchr(next, '\n') = '\0';
	assert_null(strstr(next, want_prev));
	free(data);
	free(path);
}

static void test_tee_gets_every_line(void **state)
{
	struct fixture *fx = *state;
	struct drr_journal *j = open_journal(fx);
	drr_journal_set_tee(j, collect_line, fx);
	append_sample(j);
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);
	size_t len;
	char *data = slurp(path, &len);
	assert_int_equal(fx->tee_calls, 5);
	assert_string_equal(fx->tee.data, data);
	free(data);
	free(path);
}

static void test_secrets_never_reach_disk(void **state)
{
	struct fixture *fx = *state;
	drr_redact_add("hunter2-very-secret");
	drr_redact_add("s3cr3t");
	struct drr_journal *j = open_journal(fx);
	drr_journal_set_tee(j, collect_line, fx);
	append(j, json_pack("{s:s, s:s, s:s}", "type", "step_log", "step", "a", "msg",
			    "token=hunter2-very-secret and s3cr3ts3cr3t"));
	append(j,
	       json_pack("{s:s, s:s, s:s, s:s, s:{s:[s,{s:s}], s:i}}", "type", "step_end", "step",
			 "a", "status", "completed", "error", "bad s3cr3t", "output", "nested",
			 "x-hunter2-very-secret-y", "s3cr3t", "in a key", "s3cr3t", 1));
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);

	size_t len;
	char *data = slurp(path, &len);
	assert_null(strstr(data, "hunter2"));
	assert_null(strstr(data, "s3cr3t"));
	assert_non_null(strstr(data, "token=*** and ******"));
	assert_non_null(strstr(data, "x-***-y"));
	assert_non_null(strstr(data, "\"***\":"));
	assert_null(strstr(fx->tee.data, "s3cr3t"));
	/* the hash covers the redacted bytes, so the chain still verifies */
	assert_int_equal(verify(data, len), 2);
	free(data);
	free(path);
}

static void test_unwritable_state_dir(void **state)
{
	struct fixture *fx = *state;
	char file[300], err[256] = "";
	snprintf(file, sizeof file, "%s/plain-file", fx->dir);
	write_file(file, "not a directory\n");
	struct drr_journal *j = drr_journal_create(file, RUN_ID, err, sizeof err);
	assert_null(j);
	assert_true(strlen(err) > 0);
}

static void test_never_reuses_a_journal(void **state)
{
	struct fixture *fx = *state;
	struct drr_journal *j = open_journal(fx);
	append_sample(j);
	drr_journal_close(j);
	char err[256] = "";
	struct drr_journal *again = drr_journal_create(fx->dir, RUN_ID, err, sizeof err);
	if (again) {
		drr_journal_close(again);
		fail_msg("a second journal with the same run id was created");
	}
	assert_true(strlen(err) > 0);
}

static void write_bytes(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* The sample journal, closed; returns its path (caller frees). */
static char *sample_journal(struct fixture *fx)
{
	struct drr_journal *j = open_journal(fx);
	append_sample(j);
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);
	return path;
}

static void test_short_secret_keeps_structure(void **state)
{
	struct fixture *fx = *state;
	/* one-byte secrets that occur in every hash, ts, run id and type */
	drr_redact_add("a");
	drr_redact_add("0");
	drr_redact_add("e");
	char *path = sample_journal(fx);
	size_t len;
	char *data = slurp(path, &len);
	assert_int_equal(verify(data, len), 5);
	assert_non_null(strstr(data, "\"type\":\"run_start\""));
	assert_non_null(
		strstr(data, "\"type\":\"step_end\",\"step\":\"a\",\"status\":\"completed\""));
	/* the runbook's values are still redacted */
	assert_non_null(strstr(data, "\"msg\":\"quot***s"));
	assert_non_null(strstr(data, "\"runbook\":\"unit\""));
	free(data);
	free(path);
}

static void test_short_key_keeps_structure(void **state)
{
	struct fixture *fx = *state;
	drr_redact_add("b"); /* as the CLI registers the audit key */
	struct drr_journal *j = open_journal(fx);
	drr_journal_set_key(j, "b", 1);
	append_sample(j);
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);
	struct drr_verify v;
	int r = drr_journal_verify(path, fx->dir, "b", 1, 0, &v);
	if (r)
		fail_msg("verify: seq %ld: %s", v.bad_seq, v.reason);
	assert_int_equal(v.records, 5);
	assert_int_equal(v.macs, 5);
	assert_string_equal(v.run, RUN_ID);
	free(path);
}

static void test_nul_in_output(void **state)
{
	struct fixture *fx = *state;
	drr_redact_add("tok-123456");
	static const char out[] = "env\0API_TOKEN=tok-123456\0HOME=/root";
	static const char want[] = "env\0API_TOKEN=***\0HOME=/root";
	struct drr_journal *j = open_journal(fx);
	append(j, json_pack("{s:s}", "type", "run_start"));
	append(j, json_pack("{s:s, s:s, s:s, s:{s:s%}}", "type", "step_end", "step", "a", "status",
			    "completed", "output", "stdout", out, sizeof out - 1));
	append(j, json_pack("{s:s, s:s}", "type", "run_end", "status", "completed"));
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);
	size_t len, good, torn;
	char *data = slurp(path, &len);
	assert_null(strstr(data, "tok-123456"));
	assert_non_null(strstr(data, "env\\u0000API_TOKEN=***\\u0000HOME=/root"));
	free(data);
	/* and it reads back whole: the run is not mistaken for interrupted */
	char err[256];
	json_t *recs = drr_journal_load(path, &good, &torn, err, sizeof err);
	if (!recs)
		fail_msg("load: %s", err);
	assert_int_equal(json_array_size(recs), 3);
	assert_int_equal(torn, 0);
	json_t *s = json_object_get(json_object_get(json_array_get(recs, 1), "output"), "stdout");
	assert_int_equal(json_string_length(s), sizeof want - 1);
	assert_memory_equal(json_string_value(s), want, sizeof want - 1);
	json_decref(recs);
	free(path);
}

static void test_invalid_utf8_kept(void **state)
{
	struct fixture *fx = *state;
	struct drr_journal *j = open_journal(fx);
	append(j, json_pack("{s:s}", "type", "run_start"));
	json_t *rec = json_pack("{s:s, s:s}", "type", "step_log", "step", "a");
	json_object_set_new(rec, "msg", drr_json_str("bad \xff and \xc3( and ok \xc3\xa9"));
	append(j, rec);
	char *path = drr_xstrdup(drr_journal_path(j));
	drr_journal_close(j);
	size_t len;
	char *data = slurp(path, &len);
	assert_non_null(strstr(data, "\"msg\":\"bad \\\\xff and \\\\xc3( and ok \xc3\xa9\""));
	free(data);
	free(path);
}

static void test_open_refuses_damage(void **state)
{
	struct fixture *fx = *state;
	char *path = sample_journal(fx);
	size_t len;
	char *orig = slurp(path, &len);
	char err[512];
	size_t rep;
	int code;

	/* an edited record in the middle */
	char *edit = drr_xstrdup(orig);
	char *hit = strstr(edit, "\"phase\":\"main\"");
	assert_non_null(hit);
	hit[9] = 'M';
	write_bytes(path, edit, len);
	struct drr_journal *j =
		drr_journal_open(fx->dir, path, NULL, 0, &rep, &code, err, sizeof err);
	assert_null(j);
	assert_int_equal(code, 65);
	assert_non_null(strstr(err, "seq 2"));
	size_t l2;
	char *now = slurp(path, &l2);
	assert_int_equal(l2, len);
	assert_memory_equal(now, edit, len); /* untouched */
	free(now);
	free(edit);

	/* a deleted middle line */
	char *del = drr_xstrdup(orig);
	char *l3 = strchr(strchr(del, '\n') + 1, '\n') + 1;
	char *l4 = strchr(l3, '\n') + 1;
	memmove(l3, l4, strlen(l4) + 1);
	write_bytes(path, del, strlen(del));
	assert_null(drr_journal_open(fx->dir, path, NULL, 0, &rep, &code, err, sizeof err));
	assert_int_equal(code, 65);
	assert_non_null(strstr(err, "seq 3"));
	now = slurp(path, &l2);
	assert_int_equal(l2, strlen(del));
	free(now);
	free(del);

	/* the last two records cut off: the chain is whole, the ledger knows */
	char *cut = drr_xstrdup(orig);
	*(strrchr(cut, '\n')) = '\0';
	*(strrchr(cut, '\n') + 1) = '\0';
	*(strrchr(cut, '\n') + 1) = '\0';
	write_bytes(path, cut, strlen(cut));
	assert_null(drr_journal_open(fx->dir, path, NULL, 0, &rep, &code, err, sizeof err));
	assert_int_equal(code, 65);
	assert_non_null(strstr(err, "cut short"));
	struct drr_verify v;
	assert_int_equal(drr_journal_verify(path, NULL, NULL, 0, 0, &v), 0);
	assert_int_equal(drr_journal_verify(path, fx->dir, NULL, 0, 0, &v), 1);
	free(cut);

	/* emptied */
	write_bytes(path, "", 0);
	assert_null(drr_journal_open(fx->dir, path, NULL, 0, &rep, &code, err, sizeof err));
	assert_int_equal(code, 65);
	assert_int_equal(drr_journal_verify(path, NULL, NULL, 0, 0, &v), 1);

	/* a key given, but the records carry no mac */
	write_bytes(path, orig, len);
	assert_null(drr_journal_open(fx->dir, path, "k3y", 3, &rep, &code, err, sizeof err));
	assert_int_equal(code, 65);
	assert_non_null(strstr(err, "mac"));
	free(orig);
	free(path);
}

static void test_open_cuts_only_a_torn_tail(void **state)
{
	struct fixture *fx = *state;
	char *path = sample_journal(fx);
	size_t len;
	char *orig = slurp(path, &len);
	struct drr_buf b = { 0 };
	drr_buf_add(&b, orig, len);
	drr_buf_adds(&b, "{\"seq\":6,\"ts\":\"2026-");
	write_bytes(path, b.data, b.len);
	char err[512];
	size_t rep;
	int code = -1;
	struct drr_journal *j =
		drr_journal_open(fx->dir, path, NULL, 0, &rep, &code, err, sizeof err);
	if (!j)
		fail_msg("open: %s", err);
	assert_int_equal(code, 0);
	assert_int_equal(rep, b.len - len);
	append(j, json_pack("{s:s, s:s}", "type", "run_resume", "mode", "continue"));
	drr_journal_close(j);
	size_t l2;
	char *now = slurp(path, &l2);
	assert_true(l2 > len);
	assert_memory_equal(now, orig, len); /* every record kept */
	assert_int_equal(verify(now, l2), 6);
	struct drr_verify v;
	int r = drr_journal_verify(path, fx->dir, NULL, 0, 0, &v);
	if (r)
		fail_msg("verify: seq %ld: %s", v.bad_seq, v.reason);
	assert_int_equal(v.ledger_entries, 3); /* run_start, run_end, run_resume */
	free(now);
	free(orig);
	drr_buf_free(&b);
	free(path);
}

static void test_copied_journal(void **state)
{
	struct fixture *fx = *state;
	char *path = sample_journal(fx);
	size_t len;
	char *data = slurp(path, &len);
	char dir[512], other[600];
	snprintf(dir, sizeof dir, "%s/runs/20261122T051022.123Z-unit-test-0000", fx->dir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(other, sizeof other, "%s/journal.jsonl", dir);
	write_bytes(other, data, len);
	struct drr_verify v;
	assert_int_equal(drr_journal_verify(other, NULL, NULL, 0, 0, &v), 1);
	assert_non_null(strstr(v.reason, "copied"));
	char err[512];
	size_t rep;
	int code;
	assert_null(drr_journal_open(fx->dir, other, NULL, 0, &rep, &code, err, sizeof err));
	assert_int_equal(code, 65);
	free(data);
	free(path);
}

static void test_ledger_concurrent_appends(void **state)
{
	struct fixture *fx = *state;
	enum {
		KIDS = 4,
		EACH = 40
	};
	char head[65];
	memset(head, 'a', 64);
	head[64] = '\0';
	for (int k = 0; k < KIDS; k++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			char id[64], err[256];
			snprintf(id, sizeof id, "run-%d", k);
			for (int i = 0; i < EACH; i++)
				if (drr_ledger_append(fx->dir, "run_start", id, i + 1, head, "k", 1,
						      err, sizeof err) < 0)
					_exit(1);
			_exit(0);
		}
	}
	for (int k = 0; k < KIDS; k++) {
		int st;
		assert_true(wait(&st) > 0);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	char path[400];
	snprintf(path, sizeof path, "%s/ledger.jsonl", fx->dir);
	size_t len;
	char *data = slurp(path, &len);
	char prev[65] = ZERO64;
	int n = 0;
	for (char *p = data; p < data + len; n++) {
		char *nl = strchr(p, '\n');
		assert_non_null(nl);
		struct drr_jline jl;
		assert_int_equal(drr_journal_parse_line(p, (size_t)(nl - p), "k", 1, &jl), 0);
		assert_string_equal(jl.hash, jl.found_hash);
		assert_true(jl.has_mac);
		assert_memory_equal(jl.mac, jl.want_mac, 64);
		json_t *o = json_loadb(p, (size_t)(nl - p), 0, NULL);
		assert_non_null(o);
		assert_int_equal(json_integer_value(json_object_get(o, "seq")), n + 1);
		assert_string_equal(json_string_value(json_object_get(o, "prev")), prev);
		json_decref(o);
		memcpy(prev, jl.found_hash, 65);
		p = nl + 1;
	}
	assert_int_equal(n, KIDS * EACH);
	free(data);
}

static void test_lock_refuses_symlink(void **state)
{
	struct fixture *fx = *state;
	char locks[300], target[300], link_path[400], err[256] = "";
	snprintf(locks, sizeof locks, "%s/locks", fx->dir);
	assert_int_equal(mkdir(locks, 0700), 0);
	snprintf(target, sizeof target, "%s/precious", fx->dir);
	write_file(target, "do not touch\n");
	snprintf(link_path, sizeof link_path, "%s/unit.lock", locks);
	assert_int_equal(symlink(target, link_path), 0);
	int fd = drr_lock_take(fx->dir, "unit", RUN_ID, err, sizeof err);
	if (fd >= 0) {
		drr_lock_release(fd);
		fail_msg("a symlinked lock was followed");
	}
	assert_non_null(strstr(err, "symbolic link"));
	size_t len;
	char *data = slurp(target, &len);
	assert_string_equal(data, "do not touch\n");
	free(data);
}

static void test_lock_long_run_id(void **state)
{
	struct fixture *fx = *state;
	char id[301], err[256] = "", path[400];
	memset(id, 'r', 300);
	id[300] = '\0';
	int fd = drr_lock_take(fx->dir, "unit", id, err, sizeof err);
	if (fd < 0)
		fail_msg("lock: %s", err);
	snprintf(path, sizeof path, "%s/locks/unit.lock", fx->dir);
	size_t len;
	char *data = slurp(path, &len);
	/* what was formatted, no byte past it */
	assert_true(len < 256);
	assert_int_equal(strspn(data, "r"), len);
	free(data);
	drr_lock_release(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chain_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reordered_lines_break_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tee_gets_every_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_secrets_never_reach_disk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwritable_state_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_record_no_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_reuses_a_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_secret_keeps_structure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_key_keeps_structure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_in_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_utf8_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refuses_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_cuts_only_a_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copied_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ledger_concurrent_appends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_refuses_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_long_run_id, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
