/*
 * fuzz/report.c - libFuzzer harness: `drrun report` over arbitrary journal
 * bytes (a journal edited by hand, cut short, or not a journal at all).
 * drr_report_build reads what parses and must never crash or leak; a built
 * report renders as Markdown and HTML; the first line is also read as an
 * RFC 3339 time (the alert's startsAt), which must parse or be refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char line[128];
	size_t n = size < sizeof line - 1 ? size : sizeof line - 1;
	memcpy(line, data, n);
	line[n] = '\0';
	int64_t us;
	if (drr_rfc3339_parse(line, &us) < -1)
		abort();

	char dir[] = "/tmp/drrun-fuzz-report-XXXXXX";
	if (!mkdtemp(dir))
		return 0;
	char path[sizeof dir + 20];
	snprintf(path, sizeof path, "%s/journal.jsonl", dir);
	FILE *f = fopen(path, "wb");
	if (f) {
		fwrite(data, 1, size, f);
		fclose(f);
		char err[512];
		json_t *rep = drr_report_build(dir, NULL, NULL, 0, err, sizeof err);
		if (rep) {
			struct drr_buf b = { 0 };
			drr_report_md(&b, rep);
			drr_report_html(&b, rep);
			drr_buf_free(&b);
			json_decref(rep);
		}
		unlink(path);
	}
	rmdir(dir);
	return 0;
}
