/* Unit tests for src/core/metrics.{h,c}.
 * metrics_init has no matching free (the server's table lives as long as
 * the process): the file is included so that each test can free the
 * previous table before it initialises again (reinit, below), and the ASan
 * build sees no leak. Its own "labels" is renamed, not to clash with ours. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#define labels metrics_c_labels
#include "core/metrics.c"
#undef labels

static const char *const labels[] = { "GET /api/v1/stations", "POST /api/v1/cards/{card_id}/topups" };
#define NL (sizeof(labels) / sizeof(labels[0]))

/* A fresh table; the previous one is freed. */
static void reinit(void)
{
	free(m);
	m = NULL;
	metrics_init(labels, NL);
}

static int free_table(void **state)
{
	(void)state;
	free(m);
	m = NULL;
	return 0;
}

static const char *const les[] = { "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
				   "0.05",    "0.1",    "0.25",  "0.5",    "1",	    "2.5",  "+Inf" };
#define NLE (sizeof(les) / sizeof(les[0]))

static char *render(void)
{
	struct buf b = BUF_INIT;
	metrics_render(&b);
	return buf_detach(&b, NULL);
}

/* The value on the line that starts with exactly `series` followed by a
 * space, or -1 when there is no such line. Fails on duplicates. */
static double value_of(const char *text, const char *series)
{
	size_t n = strlen(series);
	double v = -1;
	int found = 0;
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		assert_non_null(eol); /* every line is terminated */
		if ((size_t)(eol - p) > n && !strncmp(p, series, n) && p[n] == ' ') {
			char *end;
			v = strtod(p + n + 1, &end);
			assert_ptr_equal(end, eol);
			found++;
		}
		p = eol + 1;
	}
	assert_true(found <= 1);
	return v;
}

static double counter(const char *text, const char *route, const char *status)
{
	char series[256];
	snprintf(series, sizeof(series), "transitd_http_requests_total{route=\"%s\",status=\"%s\"}", route, status);
	return value_of(text, series);
}

static double bucket(const char *text, const char *route, const char *le)
{
	char series[256];
	snprintf(series, sizeof(series), "transitd_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"}",
		 route, le);
	return value_of(text, series);
}

static double hist(const char *text, const char *suffix, const char *route)
{
	char series[256];
	snprintf(series, sizeof(series), "transitd_http_request_duration_seconds_%s{route=\"%s\"}", suffix, route);
	return value_of(text, series);
}

static void test_render_before_init(void **state)
{
	(void)state;
	/* Must run first: nothing initialised, nothing rendered, no crash. */
	metrics_observe(0, 200, 10);
	char *t = render();
	assert_string_equal(t, "");
	free(t);
}

static void test_empty(void **state)
{
	(void)state;
	reinit();
	char *t = render();
	assert_non_null(strstr(t, "# TYPE transitd_http_requests_total counter\n"));
	assert_non_null(strstr(t, "# TYPE transitd_http_request_duration_seconds histogram\n"));
	assert_non_null(strstr(t, "# HELP transitd_http_requests_total "));
	/* No observations: no series at all. */
	assert_null(strstr(t, "transitd_http_requests_total{"));
	assert_null(strstr(t, "_bucket{"));
	assert_null(strstr(t, "_count{"));
	free(t);
}

static void test_counters(void **state)
{
	(void)state;
	reinit();
	metrics_observe(0, 200, 100);
	metrics_observe(0, 200, 300);
	metrics_observe(0, 404, 5000000);
	metrics_observe(1, 201, 250);
	metrics_observe(1, 422, 700);
	metrics_observe(1, 422, 800);
	metrics_observe(1, 422, 900);
	metrics_observe(NL, 404, 50);	   /* unmatched */
	metrics_observe(NL + 7, 404, 50);  /* beyond: clamped to unmatched */
	metrics_observe(0, 418, 10);	   /* not in the table: "other" */
	metrics_observe(0, 0, 10);	   /* nor is 0 */
	char *t = render();
	assert_int_equal(counter(t, labels[0], "200"), 2);
	assert_int_equal(counter(t, labels[0], "404"), 1);
	assert_int_equal(counter(t, labels[0], "other"), 2);
	assert_int_equal(counter(t, labels[1], "201"), 1);
	assert_int_equal(counter(t, labels[1], "422"), 3);
	assert_int_equal(counter(t, "unmatched", "404"), 2);
	/* Zero counts are not rendered. */
	assert_int_equal(counter(t, labels[0], "201"), -1);
	assert_int_equal(counter(t, labels[1], "200"), -1);
	assert_int_equal(counter(t, "unmatched", "200"), -1);
	assert_null(strstr(t, "status=\"418\""));
	free(t);
}

static void test_histogram(void **state)
{
	(void)state;
	reinit();
	/* Route 0: 100us, 250us (on the first bound: le is inclusive), 251us,
	 * 1s, 3s (beyond the last bound: +Inf only). */
	metrics_observe(0, 200, 100);
	metrics_observe(0, 200, 250);
	metrics_observe(0, 200, 251);
	metrics_observe(0, 500, 1000000);
	metrics_observe(0, 503, 3000000);
	char *t = render();
	static const int want[NLE] = { 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 5 };
	double prev = 0;
	for (size_t i = 0; i < NLE; i++) {
		double v = bucket(t, labels[0], les[i]);
		if (v != want[i])
			fail_msg("bucket le=%s: %g, want %d\n%s", les[i], v, want[i], t);
		assert_true(v >= prev); /* cumulative */
		prev = v;
	}
	/* +Inf equals the count, and the count all observations. */
	assert_int_equal(hist(t, "count", labels[0]), 5);
	assert_int_equal(bucket(t, labels[0], "+Inf"), hist(t, "count", labels[0]));
	double sum = hist(t, "sum", labels[0]);
	assert_true(sum > 4.000600 && sum < 4.000602); /* 4000601us */
	/* Routes without observations have no histogram. */
	assert_int_equal(hist(t, "count", labels[1]), -1);
	assert_int_equal(bucket(t, labels[1], "+Inf"), -1);
	assert_int_equal(hist(t, "count", "unmatched"), -1);
	/* Bucket lines come in increasing le order, +Inf last. */
	const char *p0 = strstr(t, "le=\"0.00025\"");
	const char *p1 = strstr(t, "le=\"2.5\"");
	const char *p2 = strstr(t, "le=\"+Inf\"");
	assert_non_null(p0);
	assert_true(p0 < p1 && p1 < p2);
	free(t);
}

static void test_histogram_each_route(void **state)
{
	(void)state;
	reinit();
	for (int i = 0; i < 10; i++)
		metrics_observe(1, 201, 2000);
	metrics_observe(NL, 404, 40);
	char *t = render();
	assert_int_equal(bucket(t, labels[1], "0.001"), 0);
	assert_int_equal(bucket(t, labels[1], "0.0025"), 10);
	assert_int_equal(bucket(t, labels[1], "+Inf"), 10);
	assert_int_equal(hist(t, "count", labels[1]), 10);
	assert_int_equal(bucket(t, "unmatched", "0.00025"), 1);
	assert_int_equal(hist(t, "count", "unmatched"), 1);
	double sum = hist(t, "sum", labels[1]);
	assert_true(sum > 0.019999 && sum < 0.020001);
	/* Route 0 saw nothing. */
	assert_int_equal(hist(t, "count", labels[0]), -1);
	/* Rendering is repeatable and does not reset anything. */
	char *t2 = render();
	assert_string_equal(t, t2);
	free(t2);
	free(t);
}

static void test_reinit_resets(void **state)
{
	(void)state;
	reinit();
	metrics_observe(0, 200, 1);
	reinit();
	char *t = render();
	assert_int_equal(counter(t, labels[0], "200"), -1);
	free(t);
}

#define THREADS 4
#define PER_THREAD 25000

static void *observer(void *p)
{
	size_t id = (size_t)(uintptr_t)p;
	for (int i = 0; i < PER_THREAD; i++)
		metrics_observe(id % 2, (i % 2) ? 200 : 404, (uint64_t)(i % 4) * 1000);
	return NULL;
}

static void test_concurrent_observe(void **state)
{
	(void)state;
	reinit();
	pthread_t t[THREADS];
	for (size_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, observer, (void *)(uintptr_t)i), 0);
	for (size_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	char *text = render();
	/* Two threads per route, half 200 half 404: no increment lost. */
	for (size_t r = 0; r < NL; r++) {
		assert_int_equal(counter(text, labels[r], "200"), PER_THREAD);
		assert_int_equal(counter(text, labels[r], "404"), PER_THREAD);
		assert_int_equal(hist(text, "count", labels[r]), 2 * PER_THREAD);
		assert_int_equal(bucket(text, labels[r], "+Inf"), 2 * PER_THREAD);
		/* 0us and 1000us fall in le=0.001; 2000 and 3000 in 0.0025/0.005 */
		assert_int_equal(bucket(text, labels[r], "0.001"), PER_THREAD);
		assert_int_equal(bucket(text, labels[r], "0.0025"), PER_THREAD * 3 / 2);
		assert_int_equal(bucket(text, labels[r], "0.005"), 2 * PER_THREAD);
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_before_init),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_histogram_each_route),
		cmocka_unit_test(test_reinit_resets),
		cmocka_unit_test(test_concurrent_observe),
	};
	return cmocka_run_group_tests_name("metrics", tests, NULL, free_table);
}
