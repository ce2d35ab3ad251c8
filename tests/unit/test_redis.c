/* Unit tests for src/store/redis.c: the circuit breaker in front of Redis.
 *
 * The file is included to reach the breaker's static functions, with its
 * monotonic clock replaced by one the tests move by hand (the macro below is
 * the only seam: redis.c reads time through clock_gettime alone), so no
 * test waits for a window or a cool-down to pass. The last tests go through
 * the public calls against sockets of their own: a port nobody listens on
 * (Redis down) and a listener that never answers (Redis slow). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t fake_ms = 1000000;

static int fake_clock_gettime(clockid_t id, struct timespec *ts)
{
	(void)id;
	ts->tv_sec = (time_t)(fake_ms / 1000);
	ts->tv_nsec = (long)(fake_ms % 1000) * 1000000L;
	return 0;
}

#define clock_gettime fake_clock_gettime
#include "store/redis.c"
#undef clock_gettime

#define WINDOW_MS 1000

/* Each test starts closed, with no failure counted, at a fresh instant. */
static int reset(void **state)
{
	(void)state;
	breaker.failures = 0;
	breaker.first_ms = 0;
	breaker.open_until_ms = 0;
	breaker.probing = 0;
	fake_ms += 100000;
	redis_breaker_configure(REDIS_BREAKER_FAILURES, WINDOW_MS);
	return 0;
}

static void fail_once(void)
{
	breaker_record(0, 0);
}

static int allowed(int *probe)
{
	return breaker_allow(probe);
}

/* Opens the breaker the way a dead Redis does; returns when it opened. */
static uint64_t open_breaker(void)
{
	for (int i = 0; i < REDIS_BREAKER_FAILURES; i++)
		fail_once();
	fake_ms += WINDOW_MS;
	fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
	return fake_ms;
}

/* A burst of failures, however many, does not open it: they must also span the window. */
static void test_burst_does_not_open(void **state)
{
	(void)state;
	unsigned long opened = redis_breaker_opened_total();
	for (int i = 0; i < 10 * REDIS_BREAKER_FAILURES; i++)
		fail_once();
	fake_ms += WINDOW_MS - 1;
	fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
	assert_int_equal(redis_breaker_opened_total(), opened);
	int probe;
	assert_true(allowed(&probe));
	assert_false(probe);
}

/* Failures that last the window but are fewer than the threshold do not open it. */
static void test_few_slow_failures_do_not_open(void **state)
{
	(void)state;
	for (int i = 0; i < REDIS_BREAKER_FAILURES - 1; i++) {
		fail_once();
		fake_ms += 10 * WINDOW_MS;
	}
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
}

/* The threshold-th failure in a row, once the first is a window old, opens it. */
static void test_opens_on_threshold_across_window(void **state)
{
	(void)state;
	unsigned long opened = redis_breaker_opened_total();
	unsigned long failed = redis_failures_total();
	for (int i = 0; i < REDIS_BREAKER_FAILURES - 1; i++)
		fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
	fake_ms += WINDOW_MS;
	fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
	assert_int_equal(redis_breaker_opened_total(), opened + 1);
	assert_int_equal(redis_failures_total(), failed + REDIS_BREAKER_FAILURES);
	/* While open, nobody goes to Redis. */
	int probe;
	assert_false(allowed(&probe));
	assert_false(allowed(&probe));
}

/* A success in between starts the count again, and the window with it. */
static void test_success_resets_the_streak(void **state)
{
	(void)state;
	for (int i = 0; i < REDIS_BREAKER_FAILURES - 1; i++)
		fail_once();
	breaker_record(1, 0);
	fake_ms += WINDOW_MS;
	fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
	/* The new streak's window runs from its own first failure. */
	for (int i = 0; i < REDIS_BREAKER_FAILURES; i++)
		fail_once();
	fake_ms += WINDOW_MS - 1;
	fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
	fake_ms += 1;
	fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
}

/* A window of 0 (REDIS_BREAKER_WINDOW_MS=0) opens on the count alone. */
static void test_zero_window_counts_alone(void **state)
{
	(void)state;
	redis_breaker_configure(2, 0);
	fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
	fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
}

/* Open for the cool-down, then half-open: one caller probes, the others
 * still stay away until the probe is done. */
static void test_cooldown_then_single_probe(void **state)
{
	(void)state;
	uint64_t opened_at = open_breaker();
	int probe;
	fake_ms = opened_at + REDIS_BREAKER_COOLDOWN_MS - 1;
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
	assert_false(allowed(&probe));
	fake_ms = opened_at + REDIS_BREAKER_COOLDOWN_MS;
	assert_int_equal(redis_breaker_state(), BREAKER_HALF_OPEN);
	assert_true(allowed(&probe));
	assert_true(probe);
	for (int i = 0; i < 5; i++) {
		assert_false(allowed(&probe));
		assert_false(probe);
	}
	assert_int_equal(redis_breaker_state(), BREAKER_HALF_OPEN);
}

/* The probe's success closes the breaker for everyone. */
static void test_probe_success_closes(void **state)
{
	(void)state;
	uint64_t opened_at = open_breaker();
	int probe;
	fake_ms = opened_at + REDIS_BREAKER_COOLDOWN_MS;
	assert_true(allowed(&probe));
	assert_true(probe);
	breaker_record(1, probe);
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
	for (int i = 0; i < 3; i++) {
		assert_true(allowed(&probe));
		assert_false(probe);
	}
	/* And the count starts from nothing: a burst does not reopen it. */
	for (int i = 0; i < REDIS_BREAKER_FAILURES; i++)
		fail_once();
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
}

/* The probe's failure reopens it at once, whatever the count, for a whole
 * new cool-down; the next half-open lets one probe through again. */
static void test_probe_failure_reopens(void **state)
{
	(void)state;
	uint64_t opened_at = open_breaker();
	unsigned long opened = redis_breaker_opened_total();
	int probe;
	fake_ms = opened_at + REDIS_BREAKER_COOLDOWN_MS + 500;
	assert_true(allowed(&probe));
	assert_true(probe);
	breaker_record(0, probe);
	uint64_t reopened_at = fake_ms;
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
	assert_false(allowed(&probe));
	/* Still the same outage: not counted as another opening. */
	assert_int_equal(redis_breaker_opened_total(), opened);
	fake_ms = reopened_at + REDIS_BREAKER_COOLDOWN_MS - 1;
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
	fake_ms = reopened_at + REDIS_BREAKER_COOLDOWN_MS;
	assert_int_equal(redis_breaker_state(), BREAKER_HALF_OPEN);
	assert_true(allowed(&probe));
	assert_true(probe);
	assert_false(allowed(&probe));
}

/* A probe that fails even below the threshold reopens it: the breaker was
 * open a moment ago, and one failure is enough to keep it so. */
static void test_probe_failure_reopens_below_threshold(void **state)
{
	(void)state;
	uint64_t opened_at = open_breaker();
	breaker.failures = 0; /* as after a success that raced the opening */
	fake_ms = opened_at + REDIS_BREAKER_COOLDOWN_MS;
	int probe;
	assert_true(allowed(&probe));
	breaker_record(0, probe);
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
}

/* The public calls: a Redis nobody answers on counts as failed, and the
 * open breaker answers NULL without trying to connect. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd); /* bound once, now nobody listens on it */
	return ntohs(a.sin_port);
}

static void test_commands_open_the_breaker_and_stop(void **state)
{
	(void)state;
	static struct config c;
	memset(&c, 0, sizeof(c));
	snprintf(c.redis_host, sizeof(c.redis_host), "127.0.0.1");
	c.redis_port = closed_port();
	c.redis_timeout_ms = 200;
	struct redis r;
	struct arena a;
	arena_init(&a);
	redis_init(&r, &c);
	unsigned long failed = redis_failures_total();
	for (int i = 0; i < REDIS_BREAKER_FAILURES; i++)
		assert_null(redis_command(&r, &a, "PING"));
	assert_int_equal(redis_failures_total(), failed + REDIS_BREAKER_FAILURES);
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
	fake_ms += WINDOW_MS;
	assert_null(redis_command(&r, &a, "PING"));
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
	/* Open: refused before any connection is tried, so nothing more fails. */
	failed = redis_failures_total();
	const char *argv[] = { "PING" };
	size_t lens[] = { 4 };
	int slow;
	assert_null(redis_command(&r, &a, "PING"));
	assert_null(redis_commandv(&r, &a, 1, argv, lens));
	assert_null(redis_command_within(&r, &a, 10, &slow, "PING"));
	assert_false(slow);
	assert_int_equal(redis_failures_total(), failed);
	/* Half-open: the probe tries, fails, and reopens. */
	fake_ms += REDIS_BREAKER_COOLDOWN_MS;
	assert_null(redis_command(&r, &a, "PING"));
	assert_int_equal(redis_failures_total(), failed + 1);
	assert_int_equal(redis_breaker_state(), BREAKER_OPEN);
	assert_int_equal(breaker.probing, 0);
	redis_close(&r);
	arena_release(&a);
}

/* A Redis that accepts and never answers: a hedged read gives up as slow,
 * which the breaker does not count, and a probe that was slow lets the
 * next caller probe. */
static void test_slow_is_not_failed(void **state)
{
	(void)state;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 16), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	static struct config c;
	memset(&c, 0, sizeof(c));
	snprintf(c.redis_host, sizeof(c.redis_host), "127.0.0.1");
	c.redis_port = ntohs(sa.sin_port);
	c.redis_timeout_ms = 200;
	struct redis r;
	struct arena a;
	arena_init(&a);
	redis_init(&r, &c);
	unsigned long failed = redis_failures_total(), hedged = redis_hedged_total();
	int slow;
	for (int i = 0; i < REDIS_BREAKER_FAILURES + 1; i++) {
		assert_null(redis_command_within(&r, &a, 20, &slow, "GET %s", "k"));
		assert_true(slow);
		fake_ms += WINDOW_MS;
	}
	assert_int_equal(redis_hedged_total(), hedged + REDIS_BREAKER_FAILURES + 1);
	assert_int_equal(redis_failures_total(), failed);
	assert_int_equal(redis_breaker_state(), BREAKER_CLOSED);
	/* A slow half-open probe gives the probe back. */
	open_breaker();
	fake_ms += REDIS_BREAKER_COOLDOWN_MS;
	assert_null(redis_command_within(&r, &a, 20, &slow, "GET %s", "k"));
	assert_true(slow);
	assert_int_equal(breaker.probing, 0);
	int probe;
	assert_true(allowed(&probe));
	assert_true(probe);
	redis_close(&r);
	arena_release(&a);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_burst_does_not_open, reset),
		cmocka_unit_test_setup(test_few_slow_failures_do_not_open, reset),
		cmocka_unit_test_setup(test_opens_on_threshold_across_window, reset),
		cmocka_unit_test_setup(test_success_resets_the_streak, reset),
		cmocka_unit_test_setup(test_zero_window_counts_alone, reset),
		cmocka_unit_test_setup(test_cooldown_then_single_probe, reset),
		cmocka_unit_test_setup(test_probe_success_closes, reset),
		cmocka_unit_test_setup(test_probe_failure_reopens, reset),
		cmocka_unit_test_setup(test_probe_failure_reopens_below_threshold, reset),
		cmocka_unit_test_setup(test_commands_open_the_breaker_and_stop, reset),
		cmocka_unit_test_setup(test_slow_is_not_failed, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
