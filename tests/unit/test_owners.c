/* Unit tests for src/store/owners.{h,c}: the card -> owner map the I/O
 * threads read to answer a rider's own-card reads from memory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>

#include "store/owners.h"

static int setup(void **state)
{
	(void)state;
	owners_init(4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	owners_free();
	return 0;
}

static void test_put_get(void **state)
{
	(void)state;
	int64_t owner = -1;
	assert_int_equal(owners_get(7, &owner), -1);
	owners_put(7, 42, owners_generation(7));
	assert_int_equal(owners_get(7, &owner), 0);
	assert_int_equal(owner, 42);
	/* An anonymous card is known too: owner 0. */
	owners_put(8, 0, owners_generation(8));
	assert_int_equal(owners_get(8, &owner), 0);
	assert_int_equal(owner, 0);
	assert_int_equal(owners_get(9, &owner), -1);
	assert_int_equal(owners_get(0, &owner), -1);
	assert_int_equal(owners_get(-3, &owner), -1);
}

/* A lookup that raced with a transfer's invalidation is not kept. */
static void test_generation(void **state)
{
	(void)state;
	int64_t owner;
	uint64_t g = owners_generation(11);
	owners_drop(11);
	owners_put(11, 5, g);
	assert_int_equal(owners_get(11, &owner), -1);
	owners_put(11, 6, owners_generation(11));
	assert_int_equal(owners_get(11, &owner), 0);
	assert_int_equal(owner, 6);
	g = owners_generation(11);
	owners_clear();
	owners_put(11, 5, g);
	assert_int_equal(owners_get(11, &owner), -1);
}

/* Invalidation messages: "<prefix>card:<id>:owner" drops one card, "*"
 * everything; other keys nothing. */
static void test_invalidated(void **state)
{
	(void)state;
	int64_t owner;
	for (int64_t c = 1; c <= 3; c++)
		owners_put(c, 100 + c, owners_generation(c));
	owners_invalidated("transitd:card:2:balance", "transitd:");
	owners_invalidated("transitd:card:2", "transitd:");
	owners_invalidated("other:card:2:owner", "transitd:");
	owners_invalidated("transitd:card:2:ownerx", "transitd:");
	owners_invalidated("transitd:card:x:owner", "transitd:");
	assert_int_equal(owners_get(2, &owner), 0);
	owners_invalidated("transitd:card:2:owner", "transitd:");
	assert_int_equal(owners_get(2, &owner), -1);
	assert_int_equal(owners_get(1, &owner), 0);
	assert_int_equal(owner, 101);
	owners_invalidated("*", "transitd:");
	assert_int_equal(owners_get(1, &owner), -1);
	assert_int_equal(owners_get(3, &owner), -1);
}

/* Two cards on one slot: the later one takes it, the earlier is unknown
 * (never another card's owner). */
static void test_collisions_never_lie(void **state)
{
	(void)state;
	for (int64_t c = 1; c <= 100000; c++)
		owners_put(c, c * 3, owners_generation(c));
	int known = 0;
	for (int64_t c = 1; c <= 100000; c++) {
		int64_t owner;
		if (owners_get(c, &owner) == 0) {
			assert_int_equal(owner, c * 3);
			known++;
		}
	}
	assert_true(known > 0 && known <= 4096);
}

#define THREADS 4

static void *hammer(void *arg)
{
	intptr_t id = (intptr_t)arg;
	for (int i = 0; i < 200000; i++) {
		int64_t c = 1 + (i * 13 + id) % 5000, owner;
		switch (i % 5) {
		case 0:
			owners_put(c, c + 1, owners_generation(c));
			break;
		case 1:
			owners_drop(c);
			break;
		default:
			if (owners_get(c, &owner) == 0 && owner != c + 1)
				return (void *)1;
		}
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	pthread_t t[THREADS];
	for (intptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, (void *)i), 0);
	for (int i = 0; i < THREADS; i++) {
		void *rc;
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_null(rc);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_put_get), T(test_generation), T(test_invalidated), T(test_collisions_never_lie), T(test_concurrent),
	};
	return cmocka_run_group_tests_name("owners", tests, NULL, NULL);
}
