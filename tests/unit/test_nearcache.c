/* Unit tests for src/store/nearcache.{h,c}. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/arena.h"
#include "store/nearcache.h"

#define SHARDS 64 /* src/store/nearcache.c: capacity is split per shard */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts))
		;
}

static int setup_big(void **state)
{
	(void)state;
	nearcache_init(16384);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	nearcache_free();
	return 0;
}

/* Looks key up; returns 1 and checks the value when found. */
static int has(const char *key, const char *want)
{
	struct arena a;
	arena_init(&a);
	const char *val = NULL;
	size_t len = 12345;
	int rc = nearcache_get(key, &a, &val, &len);
	if (rc == 0) {
		assert_non_null(val);
		assert_int_equal(val[len], '\0');
		if (want) {
			assert_int_equal(len, strlen(want));
			assert_memory_equal(val, want, len);
		}
	} else {
		assert_int_equal(rc, -1);
	}
	arena_release(&a);
	return rc == 0;
}

static void test_not_ready(void **state)
{
	(void)state;
	/* Before init (and after free) everything is a harmless no-op. */
	nearcache_put("k", "v", 1, 1000);
	assert_false(has("k", NULL));
	assert_int_equal(nearcache_count(), 0);
	nearcache_drop_variants("k");
	nearcache_drop_prefix("k");
	nearcache_clear();
	nearcache_free();
}

static void test_put_get(void **state)
{
	(void)state;
	assert_false(has("transitd:station:1", NULL));
	nearcache_put("transitd:station:1", "{\"id\":1}", 8, 10000);
	assert_int_equal(nearcache_count(), 1);
	assert_true(has("transitd:station:1", "{\"id\":1}"));
	/* Lookups are exact. */
	assert_false(has("transitd:station:10", NULL));
	assert_false(has("transitd:station:", NULL));
	assert_false(has("TRANSITD:station:1", NULL));

	/* The value is copied: the caller's buffer may change. */
	char v[] = "abc";
	nearcache_put("copy", v, 3, 10000);
	v[0] = 'X';
	assert_true(has("copy", "abc"));

	/* len, not strlen: embedded NUL and partial buffers. */
	nearcache_put("bin", "a\0b", 3, 10000);
	struct arena a;
	arena_init(&a);
	const char *val;
	size_t len;
	assert_int_equal(nearcache_get("bin", &a, &val, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(val, "a\0b", 3);
	arena_release(&a);
	nearcache_put("part", "abcdef", 2, 10000);
	assert_true(has("part", "ab"));
	nearcache_put("empty", "", 0, 10000);
	assert_true(has("empty", ""));
	assert_int_equal(nearcache_count(), 5);
}

static void test_ttl_zero_not_stored(void **state)
{
	(void)state;
	nearcache_put("k", "v", 1, 0);
	assert_false(has("k", NULL));
	assert_int_equal(nearcache_count(), 0);
}

static void test_ttl_expiry(void **state)
{
	(void)state;
	nearcache_put("short", "s", 1, 1);
	nearcache_put("long", "l", 1, 60000);
	assert_int_equal(nearcache_count(), 2);
	sleep_ms(30);
	assert_false(has("short", NULL));
	assert_true(has("long", "l"));
	/* An expired entry found by get is removed. */
	assert_int_equal(nearcache_count(), 1);
	/* Putting it again makes it fresh. */
	nearcache_put("short", "s2", 2, 60000);
	assert_true(has("short", "s2"));
}

static void test_overwrite(void **state)
{
	(void)state;
	nearcache_put("k", "first", 5, 60000);
	nearcache_put("k", "second value", 12, 60000);
	assert_true(has("k", "second value"));
	assert_int_equal(nearcache_count(), 1);
	/* Overwriting also refreshes the TTL. */
	nearcache_put("t", "old", 3, 1);
	nearcache_put("t", "new", 3, 60000);
	sleep_ms(30);
	assert_true(has("t", "new"));
	/* ...and a short TTL on overwrite shortens it. */
	nearcache_put("k", "third", 5, 1);
	sleep_ms(30);
	assert_false(has("k", NULL));
}

static void test_drop(void **state)
{
	(void)state;
	nearcache_put("a", "1", 1, 60000);
	nearcache_put("b", "2", 1, 60000);
	nearcache_drop_variants("a");
	assert_false(has("a", NULL));
	assert_true(has("b", "2"));
	assert_int_equal(nearcache_count(), 1);
	nearcache_drop_variants("a");       /* absent: no-op */
	nearcache_drop_variants("nothing"); /* absent: no-op */
	assert_int_equal(nearcache_count(), 1);
}

static void test_drop_variants(void **state)
{
	(void)state;
	nearcache_put("transitd:card:1:balance", "base", 4, 60000);
	nearcache_put("transitd:card:1:balance#page=1", "v1", 2, 60000);
	nearcache_put("transitd:card:1:balance#page=2", "v2", 2, 60000);
	nearcache_put("transitd:card:1:balances", "other", 5, 60000);
	nearcache_put("transitd:card:10:balance", "ten", 3, 60000);
	nearcache_put("transitd:card:10:balance#page=1", "ten1", 4, 60000);
	assert_int_equal(nearcache_count(), 6);
	nearcache_drop_variants("transitd:card:1:balance");
	assert_false(has("transitd:card:1:balance", NULL));
	assert_false(has("transitd:card:1:balance#page=1", NULL));
	assert_false(has("transitd:card:1:balance#page=2", NULL));
	/* Keys merely sharing the prefix stay. */
	assert_true(has("transitd:card:1:balances", "other"));
	assert_true(has("transitd:card:10:balance", "ten"));
	assert_true(has("transitd:card:10:balance#page=1", "ten1"));
	assert_int_equal(nearcache_count(), 3);

	/* Variants without their base entry are dropped too. */
	nearcache_put("x#1", "1", 1, 60000);
	nearcache_put("x#2", "2", 1, 60000);
	nearcache_drop_variants("x");
	assert_false(has("x#1", NULL));
	assert_false(has("x#2", NULL));
	assert_int_equal(nearcache_count(), 3);
}

/* Finds a key base+suffix that lives in the same shard as base, black-box:
 * with one entry per shard, putting it evicts base. */
static void same_shard_key(const char *base, char *out, size_t outlen)
{
	nearcache_free();
	nearcache_init(SHARDS);
	for (int i = 0; i < 100000; i++) {
		snprintf(out, outlen, "%s%c%d", base, 'a' + i % 26, i);
		nearcache_clear();
		nearcache_put(base, "b", 1, 60000);
		nearcache_put(out, "o", 1, 60000);
		if (!has(base, NULL)) {
			nearcache_free();
			nearcache_init(16384);
			return;
		}
	}
	fail_msg("no key found in the shard of %s", base);
}

static void test_drop_variants_only_variants(void **state)
{
	(void)state;
	/* A key that extends the base (without '#') and shares its shard must
	 * survive dropping the base's variants. */
	const char *base = "transitd:card:7:balance";
	char other[96];
	same_shard_key(base, other, sizeof(other));
	nearcache_put(base, "b", 1, 60000);
	nearcache_put("transitd:card:7:balance#v=1", "v", 1, 60000);
	nearcache_put(other, "o", 1, 60000);
	nearcache_drop_variants(base);
	assert_false(has(base, NULL));
	assert_false(has("transitd:card:7:balance#v=1", NULL));
	assert_true(has(other, "o"));
	assert_int_equal(nearcache_count(), 1);
}

static void test_drop_prefix(void **state)
{
	(void)state;
	char key[64];
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "transitd:station:%d", i);
		nearcache_put(key, "s", 1, 60000);
		snprintf(key, sizeof(key), "transitd:line:%d", i);
		nearcache_put(key, "l", 1, 60000);
	}
	assert_int_equal(nearcache_count(), 400);
	nearcache_drop_prefix("transitd:station:");
	assert_int_equal(nearcache_count(), 200);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "transitd:station:%d", i);
		assert_false(has(key, NULL));
		snprintf(key, sizeof(key), "transitd:line:%d", i);
		assert_true(has(key, "l"));
	}
	nearcache_drop_prefix("transitd:line:1");
	/* 1, 10-19, 100-199: 1 + 10 + 100 gone */
	assert_int_equal(nearcache_count(), 200 - 111);
	assert_true(has("transitd:line:2", "l"));
	assert_false(has("transitd:line:150", NULL));
	nearcache_drop_prefix("nomatch");
	assert_int_equal(nearcache_count(), 89);
}

static void test_clear(void **state)
{
	(void)state;
	char key[32];
	for (int i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		nearcache_put(key, key, strlen(key), 60000);
	}
	assert_int_equal(nearcache_count(), 500);
	nearcache_clear();
	assert_int_equal(nearcache_count(), 0);
	assert_false(has("k0", NULL));
	assert_false(has("k499", NULL));
	/* Usable after clear. */
	nearcache_put("k1", "v", 1, 60000);
	assert_true(has("k1", "v"));
}

static void test_free_and_reinit(void **state)
{
	(void)state;
	nearcache_put("a", "1", 1, 60000);
	nearcache_free();
	assert_int_equal(nearcache_count(), 0);
	assert_false(has("a", NULL));
	nearcache_init(16384);
	assert_int_equal(nearcache_count(), 0);
	assert_false(has("a", NULL));
	nearcache_put("a", "2", 1, 60000);
	assert_true(has("a", "2"));
}

static void test_capacity_eviction(void **state)
{
	(void)state;
	nearcache_free();
	nearcache_init(2 * SHARDS); /* 2 entries per shard */
	char key[32], val[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "val:%d", i);
		nearcache_put(key, val, strlen(val), 60000);
		/* The newest entry always survives its own insertion. */
		assert_true(has(key, val));
		assert_true(nearcache_count() <= 2 * SHARDS);
	}
	/* Enough keys to fill every shard. */
	assert_int_equal(nearcache_count(), 2 * SHARDS);
	/* Survivors are recent: the first keys are long gone. */
	int old_alive = 0;
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		old_alive += has(key, NULL);
	}
	assert_int_equal(old_alive, 0);
	/* And the survivors hold their own values. */
	int alive = 0;
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key:%d", i);
		snprintf(val, sizeof(val), "val:%d", i);
		alive += has(key, val);
	}
	assert_int_equal(alive, 2 * SHARDS);
}

static void test_capacity_one_per_shard(void **state)
{
	(void)state;
	nearcache_free();
	nearcache_init(SHARDS);
	char key[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "one:%d", i);
		nearcache_put(key, "v", 1, 60000);
		assert_true(has(key, "v"));
	}
	assert_int_equal(nearcache_count(), SHARDS);
	/* Overwriting a present key does not evict anything else. */
	int present = -1;
	for (int i = 999; i >= 0 && present < 0; i--) {
		snprintf(key, sizeof(key), "one:%d", i);
		if (has(key, NULL))
			present = i;
	}
	assert_true(present >= 0);
	nearcache_put(key, "w", 1, 60000);
	assert_int_equal(nearcache_count(), SHARDS);
	assert_true(has(key, "w"));
}

#define THREADS 4
#define OPS 20000

struct worker_arg {
	int id;
	int errors;
};

static void *hammer(void *p)
{
	struct worker_arg *w = p;
	char key[32], val[48];
	struct arena a;
	arena_init(&a);
	for (int i = 0; i < OPS; i++) {
		int k = (i * 7 + w->id) % 300; /* keys shared between threads */
		snprintf(key, sizeof(key), "shared:%d", k);
		switch (i % 8) {
		case 0:
		case 1:
		case 2: {
			int n = snprintf(val, sizeof(val), "shared:%d=%d", k, i);
			nearcache_put(key, val, (size_t)n, 60000);
			break;
		}
		case 7:
			if (i % 64 == 7)
				nearcache_drop_variants(key);
			else if (i % 512 == 15)
				nearcache_drop_prefix("shared:1");
			else
				nearcache_drop_variants(key);
			break;
		default: {
			const char *got;
			size_t len;
			if (nearcache_get(key, &a, &got, &len) == 0) {
				/* Values always belong to their key and are whole. */
				size_t kl = strlen(key);
				if (len <= kl || strncmp(got, key, kl) || got[kl] != '=' || got[len] != '\0')
					w->errors++;
			}
		}
		}
		if (i % 1000 == 999) {
			arena_release(&a);
			(void)nearcache_count();
		}
	}
	arena_release(&a);
	return NULL;
}

static void test_concurrent(void **state)
{
	(void)state;
	nearcache_free();
	nearcache_init(256); /* small: eviction races with everything else */
	pthread_t t[THREADS];
	struct worker_arg args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i].id = i;
		args[i].errors = 0;
		assert_int_equal(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(args[i].errors, 0);
	}
	assert_true(nearcache_count() <= 256);
	/* Still consistent: clear leaves nothing behind. */
	nearcache_clear();
	assert_int_equal(nearcache_count(), 0);
}

static int get_or_refresh(const char *key)
{
	struct arena a;
	arena_init(&a);
	const char *val;
	size_t len;
	int rc = nearcache_get_or_refresh(key, &a, &val, &len);
	arena_release(&a);
	return rc == 0;
}

/* An entry just past its TTL is served to all but one reader, who refreshes it;
 * another reader is sent after NEARCACHE_REFRESH_WAIT_MS; past one more TTL it is gone. */
static void test_stale_while_revalidate(void **state)
{
	(void)state;
	nearcache_put("hot", "v1", 2, 400);
	assert_true(get_or_refresh("hot"));
	sleep_ms(450);
	assert_false(get_or_refresh("hot")); /* the refresher */
	for (int i = 0; i < 10; i++)
		assert_true(get_or_refresh("hot")); /* the others: the stale value */
	sleep_ms(NEARCACHE_REFRESH_WAIT_MS + 20);
	assert_false(get_or_refresh("hot")); /* the refresh did not come: another tries */
	assert_true(get_or_refresh("hot"));
	sleep_ms(400);
	assert_false(get_or_refresh("hot")); /* past a second TTL: a miss for everyone */
	assert_false(get_or_refresh("hot"));
	nearcache_put("hot", "v2", 2, 400);
	assert_true(has("hot", "v2"));
	/* an invalidated entry is never served stale */
	sleep_ms(450);
	nearcache_drop_variants("hot");
	assert_false(get_or_refresh("hot"));
	assert_false(get_or_refresh("hot"));
}

static void test_plain_get_ignores_stale(void **state)
{
	(void)state;
	nearcache_put("k", "v", 1, 100);
	sleep_ms(150);
	assert_false(has("k", NULL));
}

/* A value read before an invalidation must not be stored after it: a put
 * that carries the generation taken before the read is refused once a drop
 * reached the key's shard, kept otherwise. */
static void test_put_since_generation(void **state)
{
	(void)state;
	uint64_t g = nearcache_generation("card:1:balance");
	nearcache_put_since("card:1:balance", "old", 3, 60000, g);
	assert_true(has("card:1:balance", "old"));

	g = nearcache_generation("card:1:balance");
	nearcache_drop_variants("card:1:balance"); /* the write's invalidation */
	nearcache_put_since("card:1:balance", "stale", 5, 60000, g);
	assert_false(has("card:1:balance", NULL));

	/* Read after the drop: kept. */
	g = nearcache_generation("card:1:balance");
	nearcache_put_since("card:1:balance", "fresh", 5, 60000, g);
	assert_true(has("card:1:balance", "fresh"));

	/* A variant shares its base key's shard and generation. */
	g = nearcache_generation("card:1:history#20:");
	nearcache_drop_variants("card:1:history");
	nearcache_put_since("card:1:history#20:", "h", 1, 60000, g);
	assert_false(has("card:1:history#20:", NULL));

	/* Clearing moves every shard on. */
	g = nearcache_generation("other");
	nearcache_clear();
	nearcache_put_since("other", "v", 1, 60000, g);
	assert_false(has("other", NULL));
	/* A plain put is not checked. */
	nearcache_put("other", "v", 1, 60000);
	assert_true(has("other", "v"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_big, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_ready),
		T(test_put_get),
		T(test_ttl_zero_not_stored),
		T(test_ttl_expiry),
		T(test_overwrite),
		T(test_drop),
		T(test_drop_variants),
		T(test_drop_variants_only_variants),
		T(test_drop_prefix),
		T(test_clear),
		T(test_free_and_reinit),
		T(test_capacity_eviction),
		T(test_capacity_one_per_shard),
		T(test_concurrent),
		T(test_stale_while_revalidate),
		T(test_plain_get_ignores_stale),
		T(test_put_since_generation),
	};
	return cmocka_run_group_tests_name("nearcache", tests, NULL, NULL);
}
