/*
 * test_vclock.c - virtual time (lua/vclock.c), what `drrun test` runs on:
 * when only timers are pending the clocks jump to the next deadline and the
 * timer fires at once, in deadline order; while real work is in flight (a
 * thread-pool request, an active handle) time does not jump past it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lua/task.h"

static double real_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct fired {
	int order[4];
	double at[4]; /* drr_mono() when each fired */
	int n;
	int work_done, async_done;
};
static struct fired F;

static void on_timer(uv_timer_t *t)
{
	int id = (int)(intptr_t)t->data;
	F.order[F.n] = id;
	F.at[F.n] = drr_mono();
	F.n++;
	if (id == 9)
		assert_true(F.work_done || F.async_done); /* never before the real work */
	uv_close((uv_handle_t *)t, NULL);
}

static void close_all(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void finish(uv_loop_t *loop, lua_State *L)
{
	drr_engine_shutdown();
	uv_walk(loop, close_all, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
	lua_close(L);
}

static void test_jumps_to_each_deadline_in_order(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	drr_vclock_enable();
	uv_loop_t loop;
	uv_loop_init(&loop);
	lua_State *L = luaL_newstate();
	drr_engine_init(L, &loop);
	uv_timer_t a, b, c;
	uv_timer_init(&loop, &a);
	uv_timer_init(&loop, &b);
	uv_timer_init(&loop, &c);
	a.data = (void *)1, b.data = (void *)2, c.data = (void *)3;
	uv_update_time(&loop); /* timers count from the loop's cached time */
	double v0 = drr_mono(), r0 = real_now();
	uv_timer_start(&b, on_timer, 30 * 60 * 1000, 0); /* 30 minutes */
	uv_timer_start(&a, on_timer, 5 * 1000, 0);	  /* 5 seconds */
	uv_timer_start(&c, on_timer, 2 * 3600 * 1000, 0); /* 2 hours */
	uv_run(&loop, UV_RUN_DEFAULT);
	double real = real_now() - r0;
	assert_int_equal(F.n, 3);
	assert_int_equal(F.order[0], 1);
	assert_int_equal(F.order[1], 2);
	assert_int_equal(F.order[2], 3);
	/* the virtual clock reads each deadline, give or take the real time
	 * spent and libuv's millisecond */
	static const double want[] = { 5.0, 1800.0, 7200.0 };
	for (int i = 0; i < 3; i++)
		if (!(F.at[i] - v0 >= want[i] - 0.002 && F.at[i] - v0 < want[i] + real + 0.002))
			fail_msg("timer %d fired at +%.4f s, want %.0f s (real %.4f s)", i + 1,
				 F.at[i] - v0, want[i], real);
	/* and two hours did not pass for real (without the jump this hangs) */
	assert_true(real < 60.0);
	finish(&loop, L);
}

static void slow_work(uv_work_t *w)
{
	(void)w;
	usleep(100 * 1000); /* real work: 100 ms */
}

static void work_done(uv_work_t *w, int status)
{
	(void)w, (void)status;
	F.work_done = 1;
}

static void test_no_jump_while_a_request_is_in_flight(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	drr_vclock_enable();
	uv_loop_t loop;
	uv_loop_init(&loop);
	lua_State *L = luaL_newstate();
	drr_engine_init(L, &loop);
	uv_work_t w;
	uv_queue_work(&loop, &w, slow_work, work_done);
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	t.data = (void *)9;
	uv_timer_start(&t, on_timer, 10 * 60 * 1000, 0); /* asserts work_done */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(F.n, 1);
	assert_true(F.work_done);
	finish(&loop, L);
}

static uv_async_t async;

static void on_async(uv_async_t *h)
{
	F.async_done = 1;
	uv_close((uv_handle_t *)h, NULL);
}

static void send_later(void *arg)
{
	(void)arg;
	usleep(100 * 1000);
	uv_async_send(&async);
}

static void test_no_jump_while_a_handle_is_active(void **state)
{
	(void)state;
	memset(&F, 0, sizeof F);
	drr_vclock_enable();
	uv_loop_t loop;
	uv_loop_init(&loop);
	lua_State *L = luaL_newstate();
	drr_engine_init(L, &loop);
	uv_async_init(&loop, &async, on_async); /* active and referenced until closed */
	uv_timer_t t;
	uv_timer_init(&loop, &t);
	t.data = (void *)9;
	uv_timer_start(&t, on_timer, 10 * 60 * 1000, 0); /* asserts async_done */
	uv_thread_t th;
	uv_thread_create(&th, send_later, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_thread_join(&th);
	assert_int_equal(F.n, 1);
	assert_true(F.async_done);
	finish(&loop, L);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jumps_to_each_deadline_in_order),
		cmocka_unit_test(test_no_jump_while_a_request_is_in_flight),
		cmocka_unit_test(test_no_jump_while_a_handle_is_active),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
