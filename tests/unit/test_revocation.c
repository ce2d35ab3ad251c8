/* Unit tests for src/auth/revocation.c: the in-memory revocation list.
 *
 * The file is included with its clock (time) replaced by one the tests set,
 * so entries expire without waiting; the macro below is the only seam. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static time_t fake_now = 2000000000;

static time_t fake_time(time_t *t)
{
	if (t)
		*t = fake_now;
	return fake_now;
}

#define time fake_time
#include "auth/revocation.c"
#undef time

static int reset(void **state)
{
	(void)state;
	revocation_clear();
	revocation_set_current(1);
	revocation_fail_open(0);
	fake_now += 100000;
	return 0;
}

static void test_added_entries_found(void **state)
{
	(void)state;
	revocation_add("j:abc", fake_now + 60);
	revocation_add("f:fam1", fake_now + 60);
	assert_int_equal(revocation_has("j:abc"), 1);
	assert_int_equal(revocation_has("f:fam1"), 1);
	/* Names are whole: no prefix, suffix or other kind matches. */
	assert_int_equal(revocation_has("j:ab"), 0);
	assert_int_equal(revocation_has("j:abcd"), 0);
	assert_int_equal(revocation_has("f:abc"), 0);
	assert_int_equal(revocation_has("abc"), 0);
	assert_int_equal(revocation_has(""), 0);
}

/* An entry lives until its expiry, not a second more; one already expired
 * is not added at all. */
static void test_entries_expire(void **state)
{
	(void)state;
	revocation_add("j:old", fake_now);
	revocation_add("j:older", fake_now - 5);
	assert_int_equal(revocation_has("j:old"), 0);
	assert_int_equal(revocation_has("j:older"), 0);
	revocation_add("j:soon", fake_now + 10);
	fake_now += 9;
	assert_int_equal(revocation_has("j:soon"), 1);
	fake_now += 1;
	assert_int_equal(revocation_has("j:soon"), 0);
}

/* Added again, an entry keeps the later expiry of the two. */
static void test_later_expiry_wins(void **state)
{
	(void)state;
	revocation_add("f:x", fake_now + 100);
	revocation_add("f:x", fake_now + 10);
	fake_now += 50;
	assert_int_equal(revocation_has("f:x"), 1);
	revocation_add("f:x", fake_now + 200);
	fake_now += 150;
	assert_int_equal(revocation_has("f:x"), 1);
	fake_now += 50;
	assert_int_equal(revocation_has("f:x"), 0);
}

/* Not current (Redis unreachable): an entry it has is still revoked, one
 * it does not have is unknown, unless auth fails open. */
static void test_not_current_fails_closed(void **state)
{
	(void)state;
	revocation_add("j:known", fake_now + 60);
	revocation_set_current(0);
	assert_false(revocation_is_current());
	assert_int_equal(revocation_has("j:known"), 1);
	assert_int_equal(revocation_has("j:unknown"), -1);
	revocation_fail_open(1);
	assert_int_equal(revocation_has("j:known"), 1);
	assert_int_equal(revocation_has("j:unknown"), 0);
	revocation_fail_open(0);
	revocation_set_current(1);
	assert_true(revocation_is_current());
	assert_int_equal(revocation_has("j:unknown"), 0);
}

/* "u:<user>:<ms>" keeps the latest cut-off per user, until its expiry. */
static void test_user_cutoff(void **state)
{
	(void)state;
	assert_int_equal(revocation_user_cutoff(5), 0);
	revocation_add("u:5:1000", fake_now + 60);
	assert_int_equal(revocation_user_cutoff(5), 1000);
	revocation_add("u:5:500", fake_now + 60);
	assert_int_equal(revocation_user_cutoff(5), 1000);
	revocation_add("u:5:2000", fake_now + 30);
	assert_int_equal(revocation_user_cutoff(5), 2000);
	/* Other users, whatever their ids share with this one. */
	assert_int_equal(revocation_user_cutoff(55), 0);
	assert_int_equal(revocation_user_cutoff(50), 0);
	revocation_add("u:55:7", fake_now + 60);
	assert_int_equal(revocation_user_cutoff(5), 2000);
	assert_int_equal(revocation_user_cutoff(55), 7);
	/* The user entry is not a jti or family entry. */
	assert_int_equal(revocation_has("u:5:2000"), 0);
	/* It lives as long as the longest of its additions. */
	fake_now += 59;
	assert_int_equal(revocation_user_cutoff(5), 2000);
	fake_now += 1;
	assert_int_equal(revocation_user_cutoff(5), 0);
}

/* Malformed user entries change nothing. */
static void test_malformed_user_entries_ignored(void **state)
{
	(void)state;
	revocation_add("u:8:100", fake_now + 60);
	const char *bad[] = { "u:8", "u:8:", "u:8:abc", "u:8:12x", "u:8:0", "u:8:-300", "u::900",
			      "u:8888888888888888888888888888888888888888888888:900" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		revocation_add(bad[i], fake_now + 60);
		if (revocation_user_cutoff(8) != 100)
			fail_msg("\"%s\" changed the cut-off", bad[i]);
	}
}

/* Clear empties the list; adding prunes expired entries as it goes (their
 * memory is freed: the ASan build would report a leak). */
static void collect(const char *member, int64_t exp, void *ctx)
{
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 512 - n, "%s%s=%lld", n ? " " : "", member, (long long)(exp - fake_now));
}

/* Each entry still in force, as the member Redis keeps: a user's with its
 * latest cut-off; the expired are left out. Chains are walked in hash
 * order, so the test sorts nothing and checks each entry on its own. */
static void test_each_gives_the_members_in_force(void **state)
{
	(void)state;
	revocation_add("j:abc", fake_now + 60);
	revocation_add("f:fam1", fake_now + 30);
	revocation_add("f:fam1", fake_now + 90);
	revocation_add("u:7:1000", fake_now + 40);
	revocation_add("u:7:2000", fake_now + 20);
	revocation_add("j:gone", fake_now + 5);
	fake_now += 10;
	char out[512] = "";
	revocation_each(collect, out);
	assert_non_null(strstr(out, "j:abc=50"));
	assert_non_null(strstr(out, "f:fam1=80"));
	assert_non_null(strstr(out, "u:7:2000=30"));
	assert_null(strstr(out, "j:gone"));
	assert_null(strstr(out, "u:7:1000"));
	assert_int_equal(strlen(out), strlen("j:abc=50 f:fam1=80 u:7:2000=30"));
}

static void test_clear_and_prune(void **state)
{
	(void)state;
	char name[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "j:%d", i);
		revocation_add(name, fake_now + 1 + i % 3);
	}
	assert_int_equal(revocation_has("j:4999"), 1);
	fake_now += 10;
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "f:%d", i);
		revocation_add(name, fake_now + 60);
	}
	assert_int_equal(revocation_has("j:4999"), 0);
	assert_int_equal(revocation_has("f:4999"), 1);
	revocation_clear();
	assert_int_equal(revocation_has("f:4999"), 0);
	assert_int_equal(revocation_has("f:0"), 0);
	for (int b = 0; b < BUCKETS; b++)
		assert_null(buckets[b]);
}

/* Writers (the subscriber) and readers (every I/O thread) at once. */
#define THREADS 4
#define PER_THREAD 2000

static void *writer(void *arg)
{
	int id = (int)(intptr_t)arg;
	char name[32];
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(name, sizeof(name), "j:%d:%d", id, i);
		revocation_add(name, fake_now + 60);
	}
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	char name[32];
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(name, sizeof(name), "j:%d:%d", i % THREADS, i);
		if (revocation_has(name) < 0)
			return (void *)1;
	}
	return NULL;
}

static void test_concurrent_writers_and_readers(void **state)
{
	(void)state;
	pthread_t t[2 * THREADS];
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i), 0);
		assert_int_equal(pthread_create(&t[THREADS + i], NULL, reader, NULL), 0);
	}
	for (int i = 0; i < 2 * THREADS; i++) {
		void *rc;
		pthread_join(t[i], &rc);
		assert_null(rc);
	}
	char name[32];
	for (int id = 0; id < THREADS; id++)
		for (int i = 0; i < PER_THREAD; i++) {
			snprintf(name, sizeof(name), "j:%d:%d", id, i);
			assert_int_equal(revocation_has(name), 1);
		}
}

static int teardown_all(void **state)
{
	(void)state;
	revocation_clear();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_added_entries_found, reset),
		cmocka_unit_test_setup(test_entries_expire, reset),
		cmocka_unit_test_setup(test_later_expiry_wins, reset),
		cmocka_unit_test_setup(test_not_current_fails_closed, reset),
		cmocka_unit_test_setup(test_user_cutoff, reset),
		cmocka_unit_test_setup(test_malformed_user_entries_ignored, reset),
		cmocka_unit_test_setup(test_each_gives_the_members_in_force, reset),
		cmocka_unit_test_setup(test_clear_and_prune, reset),
		cmocka_unit_test_setup(test_concurrent_writers_and_readers, reset),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
