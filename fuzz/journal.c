/*
 * fuzz/journal.c - libFuzzer harness: reading and verifying a journal
 * (drr_journal_load, drr_journal_verify) from arbitrary bytes, with and
 * without an audit key.  Never a crash or a leak; verify must answer
 * intact, bad or unreadable.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "journal/journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/drrun-fuzz-journal-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	size_t good = 0, torn = 0;
	char err[512];
	json_t *recs = drr_journal_load(path, &good, &torn, err, sizeof err);
	if (recs) {
		if (good + torn > size)
			abort();
		json_decref(recs);
	}
	struct drr_verify v;
	/* no state dir: the journal alone (the ledger is not what is fuzzed) */
	int rc = drr_journal_verify(path, NULL, size & 1 ? "key" : NULL, size & 1 ? 3 : 0,
				    size & 2 ? DRR_VERIFY_TORN_OK : 0, &v);
	if (rc < -1 || rc > 1)
		abort();
	unlink(path);
	return 0;
}
