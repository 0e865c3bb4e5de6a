/*
 * state.c - the one name of each step state (run/state.h).  The live view,
 * the summary and `status` all print these words; RUNBOOKS.md ("Step
 * states") documents the same list.
 */
#include "run/state.h"

const char *drr_state_word(enum drr_step_state st)
{
	switch (st) {
	case DRR_PENDING:
		return "waiting";
	case DRR_WAIT_APPROVAL:
		return "awaiting approval";
	case DRR_RUNNING:
		return "running";
	case DRR_RETRY_WAIT:
		return "retrying";
	case DRR_COMPLETED:
		return "completed";
	case DRR_FAILED:
		return "failed";
	case DRR_SKIPPED:
		return "skipped";
	case DRR_NOT_RUN:
		return "not run";
	case DRR_ROLLING_BACK:
		return "rolling back";
	case DRR_ROLLED_BACK:
		return "rolled back";
	case DRR_ROLLBACK_FAILED:
		return "rollback failed";
	case DRR_ABORTED:
		return "aborted";
	case DRR_CANCELLED:
		return "cancelled";
	case DRR_INTERRUPTED:
		return "interrupted";
	}
	return "?";
}
