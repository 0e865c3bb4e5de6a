/*
 * cmd_report.c - `drrun report RUN_ID [--format md|json|html|pdf] [-o FILE]`:
 * a run's evidence from its journal alone (report/evidence.c, rendered by
 * report/render.c); pdf is the html printed by headless Chromium.  And
 * `drrun report --history [RUNBOOK]`: the past runs and drills of a
 * runbook (report/history.c).
 */
#include "cli/cli.h"
#include "report/report.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CHROMIUM_TIMEOUT 60 /* seconds for one print to PDF */

static const char USAGE[] =
	"usage: drrun report [--format md|json|html|pdf] [-o FILE] [--key-file F] "
	"[--state-dir DIR] RUN_ID\n"
	"       drrun report --history [--format md|json|html] [-o FILE] [RUNBOOK]\n";

/* Write n bytes to path through a temporary file renamed over it, so a
 * reader never sees half a report.  0, or -1 with a message. */
static int write_file(const char *path, const void *p, size_t n)
{
	char *tmp = drr_xasprintf("%s.tmp-%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd < 0 || drr_write_all(fd, p, n) < 0 ? -1 : 0;
	int e = errno;
	if (fd >= 0 && close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -1;
		e = errno;
	}
	if (rc < 0) {
		unlink(tmp);
		drr_term_line(stderr, "drrun report: cannot write %s: %s", path, strerror(e));
	}
	free(tmp);
	return rc;
}

static int emit(const char *out, const void *p, size_t n)
{
	if (out)
		return write_file(out, p, n);
	if (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0) {
		fprintf(stderr, "drrun report: cannot write the report to stdout\n");
		return -1;
	}
	return 0;
}

/* Run argv with stdout and stderr to /dev/null, for at most CHROMIUM_TIMEOUT
 * seconds; 0 when it exited 0. */
static int run_bounded(char **argv, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_t at;
	posix_spawnattr_init(&at);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&at, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc) {
		snprintf(err, errlen, "cannot run %s: %s (set DRRUN_CHROMIUM)", argv[0],
			 strerror(rc));
		return -1;
	}
	int status = 0;
	struct timespec nap = { 0, 50 * 1000 * 1000 };
	for (int i = 0; i < CHROMIUM_TIMEOUT * 20; i++) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				return 0;
			snprintf(err, errlen, "%s failed (%s %d)", argv[0],
				 WIFEXITED(status) ? "exit" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	kill(-pid, SIGKILL); /* chromium's whole process group */
	waitpid(pid, &status, 0);
	snprintf(err, errlen, "%s took more than %ds; killed", argv[0], CHROMIUM_TIMEOUT);
	return -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)f;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* The HTML, printed to PDF by headless Chromium, into out (or stdout). */
static int to_pdf(const struct drr_buf *html, const char *out)
{
	const char *tmpd = getenv("TMPDIR");
	char err[512], *dir = drr_xasprintf("%s/drrun-report-XXXXXX", tmpd && *tmpd ? tmpd : "/tmp");
	if (!mkdtemp(dir)) {
		free(dir);
		fprintf(stderr, "drrun report: cannot make a temporary directory: %s\n",
			strerror(errno));
		return DRR_EXIT_CANTSTART;
	}
	char *hp = drr_xasprintf("%s/report.html", dir), *pp = drr_xasprintf("%s/report.pdf", dir);
	char *url = drr_xasprintf("file://%s", hp), *pdfarg = drr_xasprintf("--print-to-pdf=%s", pp);
	char *prof = drr_xasprintf("--user-data-dir=%s/profile", dir);
	const char *bin = getenv("DRRUN_CHROMIUM");
	char *argv[] = { (char *)(bin && *bin ? bin : "chromium"),
			 "--headless",
			 "--disable-gpu",
			 "--no-first-run",
			 "--no-pdf-header-footer",
			 prof,
			 pdfarg,
			 geteuid() == 0 ? "--no-sandbox" : "--disable-extensions",
			 url,
			 NULL };
	int rc = DRR_EXIT_CANTSTART;
	if (write_file(hp, html->data, html->len) == 0) {
		if (run_bounded(argv, err, sizeof err) < 0) {
			drr_term_line(stderr, "drrun report: pdf: %s", err);
		} else {
			size_t n;
			char *pdf = drr_slurp(pp, (size_t)1 << 30, &n, err, sizeof err);
			if (!pdf || n < 5 || memcmp(pdf, "%PDF-", 5))
				drr_term_line(stderr, "drrun report: pdf: Chromium wrote no PDF");
			else
				rc = emit(out, pdf, n) == 0 ? 0 : DRR_EXIT_CANTSTART;
			free(pdf);
		}
	}
	/* the temporary directory and Chromium's profile in it */
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(hp);
	free(pp);
	free(url);
	free(pdfarg);
	free(prof);
	free(dir);
	return rc;
}

enum {
	F_MD,
	F_JSON,
	F_HTML,
	F_PDF
};

static int to_buf(const char *p, size_t n, void *b)
{
	drr_buf_add(b, p, n);
	return 0;
}

static int render(json_t *rep, int fmt, const char *out, int history)
{
	struct drr_buf b = { 0 };
	int rc = 0;
	if (fmt == F_JSON) {
		/* straight into the buffer: no copy of a report of megabytes */
		json_dump_callback(rep, to_buf, &b,
				   JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
		drr_buf_adds(&b, "\n");
	} else if (fmt == F_MD) {
		(history ? drr_history_md : drr_report_md)(&b, rep);
	} else {
		(history ? drr_history_html : drr_report_html)(&b, rep);
	}
	if (fmt == F_PDF)
		rc = to_pdf(&b, out);
	else if (emit(out, b.data ? b.data : "", b.len) < 0)
		rc = DRR_EXIT_CANTSTART;
	drr_buf_free(&b);
	return rc;
}

int cmd_report(int argc, char **argv)
{
	enum {
		O_FORMAT = 256,
		O_HISTORY,
		O_STATE,
		O_KEYFILE,
		O_HELP
	};
	static const struct option lo[] = {
		{ "format", required_argument, NULL, O_FORMAT },
		{ "output", required_argument, NULL, 'o' },
		{ "history", no_argument, NULL, O_HISTORY },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "key-file", required_argument, NULL, O_KEYFILE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const formats[] = { "md", "json", "html", "pdf" };
	int fmt = F_MD, history = 0;
	const char *out = NULL, *state = NULL, *key_file = NULL, *what = NULL;
	optind = 1;
	opterr = 0;
	for (;;) {
		int c = getopt_long(argc, argv, "+:o:", lo, NULL);
		if (c == -1) {
			if (optind < argc && !what) {
				what = argv[optind++];
				continue;
			}
			break;
		}
		switch (c) {
		case O_FORMAT:
			fmt = -1;
			for (int i = 0; i < 4; i++)
				if (!strcmp(optarg, formats[i]))
					fmt = i;
			if (fmt < 0) {
				fprintf(stderr,
					"drrun report: --format wants md, json, html or pdf, not "
					"'%s'\n",
					optarg);
				return DRR_EXIT_USAGE;
			}
			break;
		case 'o':
			out = optarg;
			break;
		case O_HISTORY:
			history = 1;
			break;
		case O_STATE:
			state = optarg;
			break;
		case O_KEYFILE:
			key_file = optarg;
			break;
		case O_HELP:
			fputs(USAGE, stdout);
			return 0;
		case ':':
			fprintf(stderr, "drrun report: %s needs a value\n%s", argv[optind - 1],
				USAGE);
			return DRR_EXIT_USAGE;
		default:
			fprintf(stderr, "drrun report: unknown flag '%s'\n%s", argv[optind - 1],
				USAGE);
			return DRR_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "drrun report: unexpected argument '%s'\n%s", argv[optind], USAGE);
		return DRR_EXIT_USAGE;
	}
	if ((!history && (!what || !*what)) || (out && !*out) || (state && !*state)) {
		fprintf(stderr, "drrun report: %s\n%s",
			out && !*out	   ? "-o is empty"
			: state && !*state ? "--state-dir is empty"
					   : "which run? (give its RUN_ID; drrun status lists them)",
			USAGE);
		return DRR_EXIT_USAGE;
	}
	if (history && fmt == F_PDF) {
		fprintf(stderr, "drrun report: --history renders md, json or html\n");
		return DRR_EXIT_USAGE;
	}
	struct drr_opts o;
	if (drr_cli_state_and_key(&o, "report", state, key_file))
		return DRR_EXIT_USAGE;
#ifdef __GLIBC__
	/* A report parses every record of the journal and frees them all at
	 * the end: hundreds of thousands of small blocks.  Kept in glibc's
	 * fastbins, each free that merges into a block of 64 KiB or more walks
	 * them all again (malloc_consolidate), a fifth of a big report's time.
	 * Without fastbins a free merges its block at once. */
	mallopt(M_MXFAST, 0);
#endif
	char dir[4096], err[512];
	int rc = 0;
	json_t *rep = NULL;
	if (history) {
		rep = drr_history_build(o.state_dir, what, err, sizeof err);
		if (!rep) {
			drr_term_line(stderr, "drrun report: %s", err);
			rc = 66;
		}
	} else if (drr_run_find(o.state_dir, what, dir, sizeof dir, err, sizeof err) < 0) {
		drr_term_line(stderr, "drrun report: %s", err);
		rc = 66;
	} else if (!(rep = drr_report_build(dir, o.state_dir, o.key, o.klen, err, sizeof err))) {
		drr_term_line(stderr, "drrun report: %s", err);
		rc = DRR_EXIT_INVALID;
	}
	if (rep) {
		rc = render(rep, fmt, out, history);
		json_t *a = json_object_get(rep, "audit");
		if (!rc && a && !json_is_true(json_object_get(a, "ok"))) {
			drr_term_line(stderr, "drrun report: the journal does not verify: %s",
				      json_string_value(json_object_get(a, "reason")));
			rc = 1; /* rendered, but the evidence is damaged: as audit verify */
		}
	}
	json_decref(rep);
	drr_redact_clear();
	drr_cli_free_opts(&o);
	return rc;
}
