/*
 * main.c - the command line: a dispatch table of verbs.  Each verb lives in
 * engine/cli/cmd_<verb>.c; `drrun RUNBOOK.lua` is `drrun run RUNBOOK.lua`.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} verbs[] = {
	{ "run", cmd_run },	  { "plan", cmd_plan },		{ "check", cmd_check },
	{ "resume", cmd_resume }, { "rollback", cmd_rollback }, { "status", cmd_status },
	{ "log", cmd_log },	  { "audit", cmd_audit },	{ "test", cmd_test },
	{ "serve", cmd_serve },	  { "drill", cmd_drill },
	{ "report", cmd_report }, { "approve", cmd_approve },
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

int main(int argc, char **argv)
{
	/* a child that stops reading its stdin must not kill us */
	signal(SIGPIPE, SIG_IGN);
	/* a file-size limit must fail the write (EFBIG), not kill the run */
	signal(SIGXFSZ, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		drr_cli_help(stderr, NULL);
		return DRR_EXIT_USAGE;
	}
	const char *v = argv[1];
	if (!strcmp(v, "--help") || !strcmp(v, "-h")) {
		drr_cli_help(stdout, NULL);
		return 0;
	}
	if (!strcmp(v, "--version") || !strcmp(v, "version")) {
		printf("drrun %s (%s, libuv %s)\n", DRRUN_VERSION, LUA_RELEASE,
		       uv_version_string());
		return 0;
	}
	if (!strcmp(v, "help")) {
		if (argc > 2) {
			if (!strcmp(argv[2], "serve")) { /* its flags are its own */
				char *a[] = { "serve", "--help", NULL };
				return cmd_serve(2, a);
			}
			for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
				if (!strcmp(verbs[i].name, argv[2])) {
					/* every verb has its text in cli.c */
					drr_cli_help(stdout, argv[2]);
					return 0;
				}
			fprintf(stderr, "drrun: no help for unknown verb '%s'\n", argv[2]);
			return DRR_EXIT_USAGE;
		}
		drr_cli_help(stdout, NULL);
		return 0;
	}
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (!strcmp(verbs[i].name, v))
			return verbs[i].fn(argc - 1, argv + 1);
	if (ends_with(v, ".lua") || strchr(v, '/'))
		return cmd_run(argc, argv); /* argv[0] stands in for the verb */
	fprintf(stderr, "drrun: unknown verb '%s' (try 'drrun --help')\n", v);
	return DRR_EXIT_USAGE;
}
