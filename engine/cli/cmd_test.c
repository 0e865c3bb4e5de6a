/*
 * cmd_test.c - `drrun test TESTFILE.lua|DIR ...`: run a runbook's test
 * cases and check what their journals say.
 *
 * Each case runs in a child drrun (`drrun test --case N`, test/case.c) with a
 * state dir of its own, so the real loader and scheduler run it, the case
 * cannot disturb the next one, and a crash in one is one failed case.  The
 * parent reads the child's journal through drrun.test (t.journal), checks
 * expect and check, and prints TAP (or writes JUnit XML with --junit F).
 * The last line is "N passed, N failed"; exit 0 only when nothing failed.
 */
#include "cli/cli.h"
#include "test/test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lualib.h>

#define CASE_TIMEOUT 60.0 /* real seconds a case may take */
#define OUTPUT_MAX (16u << 20)

static const char USAGE[] =
	"usage: drrun test [--junit FILE] [--keep] [--jobs N] [--timeout SECONDS] "
	"TESTFILE.lua|DIR...\n";

/* One case's outcome, for TAP and JUnit. */
struct outcome {
	char *file, *name, *failure; /* failure: NULL when it passed */
	double secs;
};

struct suite {
	struct outcome *v;
	int n, cap, failed;
	const char *root; /* the cases' state dirs live under it */
	int keep;
	int jobs; /* cases run at once */
	double timeout;
	char self[4096];
};

static void add_outcome(struct suite *s, const char *file, const char *name, char *failure,
			double secs)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 16;
		s->v = drr_xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
	}
	struct outcome *o = &s->v[s->n++];
	o->file = drr_xstrdup(file);
	o->name = drr_xstrdup(name);
	o->failure = failure;
	o->secs = secs;
	if (failure)
		s->failed++;
	printf("%s %d - %s: %s\n", failure ? "not ok" : "ok", s->n, file, name);
	if (failure) {
		/* TAP diagnostics: every line behind a '#' */
		for (char *p = failure; *p;) {
			size_t len = strcspn(p, "\n");
			printf("#   %.*s\n", (int)len, p);
			p += len;
			if (*p)
				p++;
		}
	}
	fflush(stdout);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static double real_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A case's child process. */
struct job {
	int index;
	char *name, *dir, *out_path;
	pid_t pid; /* 0: not started, or reaped */
	double t0, secs;
	int done, rc; /* rc -1: it did not run to an exit (err says why) */
	char err[512];
};

/* Start job j's child: `drrun test --case N ...`, stdout and stderr to
 * j->out_path.  -1 (j->err) when it cannot start. */
static int start_case(struct suite *s, struct job *j, const char *file, const char *runbook)
{
	char idx[16];
	snprintf(idx, sizeof idx, "%d", j->index);
	j->t0 = real_now();
	int fd = open(j->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(j->err, sizeof j->err, "%s: %s", j->out_path, strerror(errno));
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(j->err, sizeof j->err, "fork: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		signal(SIGPIPE, SIG_DFL);
		char *argv[] = { s->self,	    "test",	  "--case", idx, "--runbook", (char *)runbook,
				 "--state-dir", j->dir, (char *)file, NULL };
		execv(s->self, argv);
		dprintf(2, "drrun test: cannot run %s: %s\n", s->self, strerror(errno));
		_exit(127);
	}
	close(fd);
	j->pid = pid;
	return 0;
}

static void job_exited(struct job *j, int st)
{
	j->pid = 0;
	j->done = 1;
	j->secs = real_now() - j->t0;
	if (WIFEXITED(st)) {
		j->rc = WEXITSTATUS(st);
		return;
	}
	j->rc = -1;
	snprintf(j->err, sizeof j->err, "the case's drrun was killed by signal %d (%s)",
		 WTERMSIG(st), strsignal(WTERMSIG(st)));
}

/* Reap the children that ended; kill those past the timeout.  Naps a little
 * (0.2 ms, doubling to 20 ms) while none ended. */
static void reap(struct suite *s, struct job *jobs, int n, struct timespec *nap)
{
	int any = 0;
	for (int i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		if (!j->pid)
			continue;
		int st;
		pid_t w = waitpid(j->pid, &st, WNOHANG);
		if (w == j->pid) {
			job_exited(j, st);
			any = 1;
		} else if (real_now() - j->t0 > s->timeout) {
			kill(j->pid, SIGKILL);
			waitpid(j->pid, &st, 0);
			j->pid = 0;
			j->done = 1;
			j->rc = -1;
			j->secs = real_now() - j->t0;
			snprintf(j->err, sizeof j->err,
				 "the case ran for more than %.0fs of real time and was killed "
				 "(waiting on something that is not a timer?)",
				 s->timeout);
			any = 1;
		}
	}
	if (any) {
		nap->tv_nsec = 200000;
		return;
	}
	nanosleep(nap, NULL);
	if (nap->tv_nsec < 20000000)
		nap->tv_nsec *= 2;
}

/* The journal a case's run wrote: <dir>/runs/<id>/journal.jsonl, or NULL. */
static char *find_journal(const char *dir)
{
	char *runs = drr_xasprintf("%s/runs", dir);
	DIR *d = opendir(runs);
	char *found = NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char *p = drr_xasprintf("%s/%s/journal.jsonl", runs, e->d_name);
		if (access(p, R_OK) == 0 && !found)
			found = p;
		else
			free(p);
	}
	if (d)
		closedir(d);
	free(runs);
	return found;
}

static char *slurp_text(const char *path)
{
	char err[256];
	size_t len;
	char *t = drr_slurp(path, OUTPUT_MAX, &len, err, sizeof err);
	return t ? t : drr_xstrdup("");
}

/* The last lines of the child's output, to show why a case did not run. */
static const char *tail_lines(const char *text, int lines)
{
	const char *p = text + strlen(text);
	while (p > text && (p[-1] == '\n'))
		p--;
	while (p > text) {
		if (p[-1] == '\n' && --lines == 0)
			break;
		p--;
	}
	return p;
}

static void buf_line(struct drr_buf *b, const char *a, const char *c)
{
	drr_buf_add(b, a, strlen(a));
	drr_buf_add(b, c, strlen(c));
	drr_buf_add(b, "\n", 1);
}

/* Push require "drrun.test" (in the parent's state).  [-0, +1, e] */
static void push_test_module(lua_State *L)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "drrun.test");
	lua_call(L, 1, 1);
}

/* Check case c (the table on top of the stack) against its journal: the
 * failures as one text, or NULL. */
static char *check_case(lua_State *L, const char *journal, int rc, const char *text,
			const char *dir, const char *unfaked)
{
	int top = lua_gettop(L);
	push_test_module(L);
	int mod = lua_gettop(L);
	lua_getfield(L, mod, "_journal");
	lua_pushvalue(L, top);
	if (journal)
		lua_pushstring(L, journal);
	else
		lua_pushnil(L);
	lua_pushinteger(L, rc);
	lua_pushstring(L, text);
	lua_pushstring(L, dir);
	lua_call(L, 5, 1);
	lua_getfield(L, mod, "_check");
	lua_pushvalue(L, top);
	lua_pushvalue(L, -3);
	char *failure = NULL;
	struct drr_buf b = { 0 };
	if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
		buf_line(&b, "checking the case raised: ", drr_lua_safe_tostring(L, -1));
	} else {
		lua_Integer n = luaL_len(L, -1);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, i);
			buf_line(&b, "", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
			lua_pop(L, 1);
		}
	}
	if (unfaked && *unfaked)
		drr_buf_add(&b, unfaked, strlen(unfaked));
	if (b.len) {
		while (b.len && b.data[b.len - 1] == '\n')
			b.data[--b.len] = '\0';
		failure = drr_xstrdup(b.data);
	}
	drr_buf_free(&b);
	lua_settop(L, top);
	return failure;
}

/* <dir of file>/<rel>, unless rel is absolute; "a/b/../c" reads "a/c". */
static char *beside(const char *file, const char *rel)
{
	const char *slash = strrchr(file, '/');
	char *p = rel[0] == '/' || !slash ? drr_xstrdup(rel)
					  : drr_xasprintf("%.*s/%s", (int)(slash - file), file, rel);
	/* collapse "name/.." and "./" in place, never past a leading ".." or "/" */
	char *out = drr_xcalloc(strlen(p) + 2, 1);
	size_t n = 0;
	int depth = 0; /* names in out that a ".." may remove */
	for (char *seg = p; *seg;) {
		size_t len = strcspn(seg, "/");
		if (len == 1 && seg[0] == '.') {
			/* skip */
		} else if (len == 2 && seg[0] == '.' && seg[1] == '.' && depth > 0) {
			n--; /* the '/' after the last name */
			while (n > 0 && out[n - 1] != '/')
				n--;
			depth--;
		} else if (len > 0) {
			memcpy(out + n, seg, len);
			n += len;
			out[n++] = '/';
			depth += !(len == 2 && seg[0] == '.' && seg[1] == '.');
		} else if (seg == p) {
			out[n++] = '/'; /* absolute */
		}
		seg += len;
		if (*seg == '/')
			seg++;
	}
	if (n > 1 && out[n - 1] == '/')
		n--;
	out[n] = '\0';
	if (!n)
		out[0] = '.', out[1] = '\0';
	free(p);
	return out;
}

/* A job that ended: check its case (the table on top of L) against its
 * journal, print the outcome, drop its state dir unless kept. */
static void finish_case(struct suite *s, lua_State *L, const char *file, struct job *j)
{
	char *failure = NULL;
	char *text = slurp_text(j->out_path);
	if (j->rc < 0) {
		failure = drr_xasprintf("%s\n%s", j->err, tail_lines(text, 10));
	} else {
		char *journal = find_journal(j->dir);
		char *upath = drr_xasprintf("%s/unfaked.txt", j->dir);
		char *unfaked = access(upath, R_OK) == 0 ? slurp_text(upath) : NULL;
		free(upath);
		failure = check_case(L, journal, j->rc, text, j->dir, unfaked);
		if (!journal && failure) { /* it did not run: say why */
			char *f = drr_xasprintf("%s\nthe runbook did not run (exit %d):\n%s",
						failure, j->rc, tail_lines(text, 10));
			free(failure);
			failure = f;
		}
		free(journal);
		free(unfaked);
	}
	free(text);
	if (failure) {
		char *f = drr_xasprintf("%s\nstate dir: %s", failure, j->dir);
		free(failure);
		failure = f;
	} else if (!s->keep) {
		rm_tree(j->dir);
	}
	add_outcome(s, file, j->name, failure, j->secs);
}

/* Run the n cases of the file (the list on top of L), s->jobs at a time,
 * and report them in their order. */
static void run_cases(struct suite *s, lua_State *L, const char *file, const char *runbook,
		      int n)
{
	struct job *jobs = drr_xcalloc((size_t)n + 1, sizeof *jobs);
	for (int i = 0; i < n; i++) {
		struct job *j = &jobs[i];
		j->index = i + 1;
		lua_rawgeti(L, -1, i + 1);
		lua_getfield(L, -1, "name");
		j->name = drr_xstrdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 2);
		j->dir = drr_xasprintf("%s/case-XXXXXX", s->root);
		j->out_path = drr_xasprintf("%s/output.txt", j->dir);
	}
	int next = 0, report = 0, running = 0;
	struct timespec nap = { 0, 200000 };
	while (report < n) {
		while (next < n && running < s->jobs) {
			struct job *j = &jobs[next++];
			if (!mkdtemp(j->dir)) {
				snprintf(j->err, sizeof j->err, "cannot make a state dir under %s: %s",
					 s->root, strerror(errno));
				j->rc = -1;
				j->done = 1;
			} else {
				free(j->out_path);
				j->out_path = drr_xasprintf("%s/output.txt", j->dir);
				if (start_case(s, j, file, runbook) < 0) {
					j->rc = -1;
					j->done = 1;
				} else {
					running++;
				}
			}
		}
		while (report < n && jobs[report].done) {
			lua_rawgeti(L, -1, report + 1);
			finish_case(s, L, file, &jobs[report]);
			lua_pop(L, 1);
			report++;
		}
		if (report < n && !jobs[report].done) {
			int before = 0;
			for (int i = 0; i < n; i++)
				before += jobs[i].pid != 0;
			reap(s, jobs, next, &nap);
			int after = 0;
			for (int i = 0; i < n; i++)
				after += jobs[i].pid != 0;
			running -= before - after;
		}
	}
	for (int i = 0; i < n; i++) {
		free(jobs[i].name);
		free(jobs[i].dir);
		free(jobs[i].out_path);
	}
	free(jobs);
}

/* One test file: read it, run every case. */
static void run_file(struct suite *s, const char *file)
{
	lua_State *L = luaL_newstate();
	luaL_openlibs(L);
	drr_modules_preload(L);
	if (drr_test_load_file(L, file) != LUA_OK) {
		add_outcome(s, file, "(test file)", drr_xstrdup(drr_lua_safe_tostring(L, -1)), 0);
		lua_close(L);
		return;
	}
	push_test_module(L);
	lua_getfield(L, -1, "_state");
	lua_getfield(L, -1, "runbook");
	const char *rel = lua_tostring(L, -1);
	if (!rel) {
		add_outcome(s, file, "(test file)",
			    drr_xstrdup("no t.runbook \"PATH\": which runbook do the cases run?"),
			    0);
		lua_close(L);
		return;
	}
	char *runbook = beside(file, rel);
	lua_pop(L, 1);
	struct stat st;
	if (stat(runbook, &st) < 0 || !S_ISREG(st.st_mode)) {
		add_outcome(s, file, "(test file)",
			    drr_xasprintf("t.runbook: %s: %s", runbook,
					  errno ? strerror(errno) : "not a regular file"),
			    0);
		free(runbook);
		lua_close(L);
		return;
	}
	lua_getfield(L, -1, "cases");
	lua_Integer n = luaL_len(L, -1);
	printf("# %s: %lld case%s of %s\n", file, (long long)n, n == 1 ? "" : "s", runbook);
	if (n == 0)
		add_outcome(s, file, "(test file)", drr_xstrdup("no t.case: nothing to test"), 0);
	run_cases(s, L, file, runbook, (int)n);
	free(runbook);
	lua_close(L);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *_test.lua under dir, sorted, appended to *v. */
static void collect(const char *dir, char ***v, int *n, int *cap)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		size_t dl = strlen(dir);
		while (dl > 1 && dir[dl - 1] == '/')
			dl--;
		char *p = drr_xasprintf("%.*s/%s", (int)dl, dir, e->d_name);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			collect(p, v, n, cap);
			free(p);
			continue;
		}
		size_t len = strlen(e->d_name);
		if (len > 9 && !strcmp(e->d_name + len - 9, "_test.lua")) {
			if (*n == *cap) {
				*cap = *cap ? 2 * *cap : 16;
				*v = drr_xrealloc(*v, (size_t)*cap * sizeof **v);
			}
			(*v)[(*n)++] = p;
		} else {
			free(p);
		}
	}
	closedir(d);
}

static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '<')
			fputs("&lt;", f);
		else if (c == '>')
			fputs("&gt;", f);
		else if (c == '&')
			fputs("&amp;", f);
		else if (c == '"')
			fputs("&quot;", f);
		else if (c < 0x20 && c != '\n' && c != '\t')
			fprintf(f, "&#x%x;", 0xfffd); /* not allowed in XML 1.0 */
		else
			fputc(c, f);
	}
}

static int write_junit(const struct suite *s, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "drrun test: --junit %s: %s\n", path, strerror(errno));
		return -1;
	}
	double total = 0;
	for (int i = 0; i < s->n; i++)
		total += s->v[i].secs;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(f, "<testsuites name=\"drrun test\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n",
		s->n, s->failed, total);
	for (int i = 0; i < s->n;) {
		int j = i, fails = 0;
		double secs = 0;
		while (j < s->n && !strcmp(s->v[j].file, s->v[i].file)) {
			fails += s->v[j].failure != NULL;
			secs += s->v[j].secs;
			j++;
		}
		fputs("  <testsuite name=\"", f);
		xml_text(f, s->v[i].file);
		fprintf(f, "\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n", j - i, fails, secs);
		for (int k = i; k < j; k++) {
			fputs("    <testcase classname=\"", f);
			xml_text(f, s->v[k].file);
			fputs("\" name=\"", f);
			xml_text(f, s->v[k].name);
			fprintf(f, "\" time=\"%.3f\"", s->v[k].secs);
			if (!s->v[k].failure) {
				fputs("/>\n", f);
				continue;
			}
			fputs(">\n      <failure message=\"", f);
			char first[512];
			snprintf(first, sizeof first, "%.*s",
				 (int)strcspn(s->v[k].failure, "\n"), s->v[k].failure);
			xml_text(f, first);
			fputs("\">", f);
			xml_text(f, s->v[k].failure);
			fputs("</failure>\n    </testcase>\n", f);
		}
		fputs("  </testsuite>\n", f);
		i = j;
	}
	fputs("</testsuites>\n", f);
	if (fclose(f) != 0) {
		fprintf(stderr, "drrun test: --junit %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* The child: `drrun test --case N --runbook RB --state-dir D TESTFILE`. */
static int child(const char *index, const char *runbook, const char *dir, const char *file)
{
	char *end;
	long i = strtol(index, &end, 10);
	if (!runbook || !dir || !file || *end || i < 1) {
		fputs("drrun test: --case needs N >= 1, --runbook, --state-dir and the test file\n",
		      stderr);
		return DRR_EXIT_USAGE;
	}
	return drr_test_case_run(file, (int)i, runbook, dir);
}

int cmd_test(int argc, char **argv)
{
	enum {
		O_JUNIT = 256,
		O_KEEP,
		O_TIMEOUT,
		O_JOBS,
		O_CASE,
		O_RUNBOOK,
		O_STATE,
		O_HELP
	};
	static const struct option lo[] = {
		{ "junit", required_argument, NULL, O_JUNIT },
		{ "keep", no_argument, NULL, O_KEEP },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "case", required_argument, NULL, O_CASE },
		{ "runbook", required_argument, NULL, O_RUNBOOK },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *junit = NULL, *case_index = NULL, *runbook = NULL, *state_dir = NULL;
	struct suite s;
	memset(&s, 0, sizeof s);
	s.timeout = CASE_TIMEOUT;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	s.jobs = ncpu > 0 ? (int)(ncpu < 8 ? ncpu : 8) : 1;
	optind = 1;
	opterr = 0;
	for (;;) {
		int c = getopt_long(argc, argv, ":", lo, NULL);
		if (c == -1)
			break;
		switch (c) {
		case O_JUNIT:
			junit = optarg;
			break;
		case O_KEEP:
			s.keep = 1;
			break;
		case O_TIMEOUT: {
			char *end;
			s.timeout = strtod(optarg, &end);
			if (*end || !(s.timeout > 0)) {
				fprintf(stderr, "drrun test: --timeout %s: give seconds, e.g. 60\n",
					optarg);
				return DRR_EXIT_USAGE;
			}
			break;
		}
		case O_JOBS: {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 256) {
				fprintf(stderr, "drrun test: --jobs %s: give a number from 1 to 256\n",
					optarg);
				return DRR_EXIT_USAGE;
			}
			s.jobs = (int)v;
			break;
		}
		case O_CASE:
			case_index = optarg;
			break;
		case O_RUNBOOK:
			runbook = optarg;
			break;
		case O_STATE:
			state_dir = optarg;
			break;
		case O_HELP:
			drr_cli_help(stdout, "test");
			return 0;
		default:
			fprintf(stderr, "drrun test: %s %s\n%s",
				c == ':' ? "missing value for" : "unknown flag", argv[optind - 1],
				USAGE);
			return DRR_EXIT_USAGE;
		}
	}
	if (case_index)
		return child(case_index, runbook, state_dir, optind < argc ? argv[optind] : NULL);
	if (optind >= argc) {
		fputs(USAGE, stderr);
		return DRR_EXIT_USAGE;
	}
	ssize_t len = readlink("/proc/self/exe", s.self, sizeof s.self - 1);
	if (len <= 0) {
		fprintf(stderr, "drrun test: cannot find its own binary: %s\n", strerror(errno));
		return DRR_EXIT_CANTSTART;
	}
	s.self[len] = '\0';

	char **files = NULL;
	int nfiles = 0, cap = 0;
	for (int i = optind; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "drrun test: %s: %s\n", argv[i], strerror(errno));
			for (int k = 0; k < nfiles; k++)
				free(files[k]);
			free(files);
			return 66;
		}
		if (S_ISDIR(st.st_mode)) {
			int from = nfiles;
			collect(argv[i], &files, &nfiles, &cap);
			qsort(files + from, (size_t)(nfiles - from), sizeof *files, cmp_str);
			continue;
		}
		if (nfiles == cap) {
			cap = cap ? 2 * cap : 16;
			files = drr_xrealloc(files, (size_t)cap * sizeof *files);
		}
		files[nfiles++] = drr_xstrdup(argv[i]);
	}

	/* the cases' journals are scratch: on a tmpfs their fdatasyncs cost nothing */
	const char *tmp = getenv("TMPDIR");
	if (!tmp || !*tmp)
		tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
	char *root = drr_xasprintf("%s/drrun-test-XXXXXX", tmp);
	if (!mkdtemp(root)) {
		fprintf(stderr, "drrun test: cannot make a directory for the cases: %s: %s\n", root,
			strerror(errno));
		free(root);
		for (int k = 0; k < nfiles; k++)
			free(files[k]);
		free(files);
		return DRR_EXIT_CANTSTART;
	}
	s.root = root;
	printf("TAP version 13\n");
	for (int i = 0; i < nfiles; i++)
		run_file(&s, files[i]);
	if (nfiles == 0)
		add_outcome(&s, argv[optind], "(no test files)",
			    drr_xstrdup("no *_test.lua file found"), 0);
	printf("1..%d\n", s.n);
	int rc = s.failed ? 1 : 0;
	if (junit && write_junit(&s, junit) < 0)
		rc = DRR_EXIT_CANTSTART;
	printf("%d passed, %d failed\n", s.n - s.failed, s.failed);
	if (!s.keep && !s.failed)
		rm_tree(root);
	else if (s.keep)
		fprintf(stderr, "drrun test: the cases' state dirs are under %s\n", root);
	for (int i = 0; i < s.n; i++) {
		free(s.v[i].file);
		free(s.v[i].name);
		free(s.v[i].failure);
	}
	free(s.v);
	for (int k = 0; k < nfiles; k++)
		free(files[k]);
	free(files);
	free(root);
	return rc;
}
