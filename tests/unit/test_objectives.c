/*
 * test_objectives.c - drr_rfc3339_parse and drr_objectives_compute
 * (report/objectives.c): RTO to the end of verify from the trigger or the
 * run's start, RPO from the last recovery point, phase budgets, and what
 * is not measured, over hand-written records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "report/report.h"

static int64_t t(const char *s)
{
	int64_t us = -1;
	if (drr_rfc3339_parse(s, &us) != 0)
		fail_msg("drr_rfc3339_parse(\"%s\") refused a valid time", s);
	return us;
}

static void test_rfc3339(void **state)
{
	(void)state;
	assert_int_equal(t("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(t("2026-11-30T10:00:00Z"), 1796032800LL * 1000000);
	assert_int_equal(t("2026-11-30T10:00:00.5Z"), 1796032800LL * 1000000 + 500000);
	/* Alertmanager's nanoseconds are cut to microseconds */
	assert_int_equal(t("2026-11-30T10:00:00.123456789Z"), 1796032800LL * 1000000 + 123456);
	assert_int_equal(t("2026-11-30T12:00:00+02:00"), t("2026-11-30T10:00:00Z"));
	assert_int_equal(t("2026-11-30T09:30:00-00:30"), t("2026-11-30T10:00:00Z"));
	assert_int_equal(t("2024-02-29T00:00:00z"), t("2024-02-28T00:00:00Z") + 86400000000LL);
	static const char *const bad[] = {
		"", "yesterday", "2026-11-30", "2026-11-30T10:00:00", "2026-11-30 10:00:00Z",
		"2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
		"2026-11-30T24:00:00Z", "2026-11-30T10:00:00.Z", "2026-11-30T10:00:00+2:00",
		"2026-11-30T10:00:00Zjunk", "2026-11-30T10:00:00+02:00 ", "１９７０-01-01T00:00:00Z",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int64_t us = 7;
		if (drr_rfc3339_parse(bad[i], &us) != -1)
			fail_msg("drr_rfc3339_parse(\"%s\") took an invalid time", bad[i]);
	}
	assert_int_equal(drr_rfc3339_parse(NULL, &(int64_t){ 0 }), -1);
}

static json_t *recs(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("bad test records: %s", e.text);
	return j;
}

static const char START[] =
	"{\"type\":\"run_start\",\"ts\":\"2026-11-30T10:00:10Z\",\"rto\":600,\"rpo\":3600,"
	"\"budgets\":{\"restore\":60,\"dns\":5}%s},";

static json_t *run(const char *trigger, const char *status)
{
	char start[512], text[4096];
	snprintf(start, sizeof start, START, trigger);
	snprintf(text, sizeof text,
		 "[%s"
		 "{\"type\":\"step_start\",\"step\":\"r\",\"phase\":\"restore\",\"ts\":\"2026-11-30T10:00:20Z\"},"
		 "{\"type\":\"recovery_point\",\"step\":\"r\",\"epoch\":1796025600},"
		 "{\"type\":\"recovery_point\",\"step\":\"r\",\"epoch\":1796029200},"
		 "{\"type\":\"step_end\",\"step\":\"r\",\"status\":\"completed\",\"ts\":\"2026-11-30T10:01:50Z\"},"
		 "{\"type\":\"step_start\",\"step\":\"v\",\"phase\":\"verify\",\"ts\":\"2026-11-30T10:01:50Z\"},"
		 "{\"type\":\"step_end\",\"step\":\"v\",\"status\":\"%s\",\"ts\":\"2026-11-30T10:02:00Z\"},"
		 "{\"type\":\"step_start\",\"step\":\"t\",\"phase\":\"teardown\",\"ts\":\"2026-11-30T10:02:00Z\"},"
		 "{\"type\":\"step_end\",\"step\":\"t\",\"status\":\"completed\",\"ts\":\"2026-11-30T11:00:00Z\"}]",
		 start, status);
	return recs(text);
}

static void test_from_run_start(void **state)
{
	(void)state;
	json_t *r = run("", "completed");
	struct drr_objectives ob;
	drr_objectives_compute(r, "completed", &ob);
	assert_string_equal(ob.from, "run_start");
	assert_string_equal(ob.rto_to, "verify");
	/* 10:00:10 -> end of verify 10:02:00, not the teardown's 11:00 */
	assert_true(fabs(ob.rto.achieved - 110) < 1e-6);
	assert_int_equal(ob.rto.met, 1);
	/* the last recovery point (09:00) counts, not the first (08:00) */
	assert_true(fabs(ob.rpo.achieved - 3610) < 1e-6);
	assert_int_equal(ob.rpo.met, 0);
	assert_int_equal(ob.nphases, 4); /* restore, verify, teardown, and dns's budget */
	assert_string_equal(ob.phases[0].phase, "restore");
	assert_true(fabs(ob.phases[0].secs - 90) < 1e-6);
	assert_int_equal(ob.phases[0].met, 0);
	assert_string_equal(ob.phases[3].phase, "dns");
	assert_int_equal(ob.phases[3].met, -1); /* nothing of it ran */
	assert_int_equal(ob.missed, 1);
	assert_string_equal(drr_objectives_verdict(&ob), "missed");
	drr_objectives_free(&ob);
	json_decref(r);
}

static void test_from_trigger(void **state)
{
	(void)state;
	json_t *r = run(",\"trigger\":{\"startsAt\":\"2026-11-30T09:59:00Z\"}", "completed");
	struct drr_objectives ob;
	drr_objectives_compute(r, "completed", &ob);
	assert_string_equal(ob.from, "trigger");
	assert_true(fabs(ob.rto.achieved - 180) < 1e-6);
	assert_true(fabs(ob.rpo.achieved - 3540) < 1e-6);
	assert_int_equal(ob.rpo.met, 1);
	drr_objectives_free(&ob);
	json_decref(r);
}

static void test_not_recovered(void **state)
{
	(void)state;
	json_t *r = run("", "failed");
	struct drr_objectives ob;
	drr_objectives_compute(r, "rolled-back", &ob);
	assert_int_equal(ob.rto.measured, 0);
	assert_int_equal(ob.rto.met, 0); /* a run that did not recover missed its RTO */
	drr_objectives_free(&ob);
	drr_objectives_compute(r, NULL, &ob); /* no end yet: not measured */
	assert_int_equal(ob.rto.measured, 0);
	assert_int_equal(ob.rto.met, -1);
	drr_objectives_free(&ob);
	json_decref(r);
}

static void test_nothing_declared(void **state)
{
	(void)state;
	json_t *r = recs("[{\"type\":\"run_start\",\"ts\":\"2026-11-30T10:00:10Z\",\"rto\":null}]");
	struct drr_objectives ob;
	drr_objectives_compute(r, "completed", &ob);
	assert_int_equal(ob.any, 0);
	assert_int_equal(ob.missed, 0);
	assert_int_equal(ob.rto.met, -1);
	assert_int_equal(ob.rpo.met, -1);
	assert_string_equal(drr_objectives_verdict(&ob), "none");
	json_t *j = drr_objectives_json(&ob);
	assert_true(json_is_null(json_object_get(json_object_get(j, "rpo"), "met")));
	json_decref(j);
	drr_objectives_free(&ob);
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_from_run_start),
		cmocka_unit_test(test_from_trigger),
		cmocka_unit_test(test_not_recovered),
		cmocka_unit_test(test_nothing_declared),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
