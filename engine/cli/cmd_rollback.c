/*
 * cmd_rollback.c - `drrun rollback RUN_ID`: run the rollbacks of a past
 * run's completed steps, in reverse completion order, from its journal.
 */
#include "cli/cli.h"

int cmd_rollback(int argc, char **argv)
{
	return drr_cli_resume_or_rollback(argc, argv, "rollback", DRR_MODE_ROLLBACK);
}
