/* Unit tests for src/http/cached.c: single flight (flight_join,
 * flight_land, and reply_cached around a fill), lease names, near-cache TTLs.
 *
 * The file is included to reach its static functions. Whether every
 * invalidation that reached this instance is applied
 * (cache_invalidations_settled, which needs a live Redis subscription) is
 * replaced by a flag the tests set; the macro below is the only seam.
 *
 * Not here, because they run in Redis: the lease scripts (take, fill only
 * while the lease holds, release only one's own) and the hedged read. The
 * end-to-end suite covers them against a real Redis: a read racing a write
 * never caches the old value (tests/e2e/test_cards_concurrency.py:
 * test_cached_balance_not_stale_after_racing_reads), reads after writes on
 * two instances (test_card_reads.py), X-Cache HIT/MISS (test_cards.py), and
 * a dead Redis read through as BYPASS (test_resilience.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int settled; /* what cache_invalidations_settled answers */

static int fake_settled(void)
{
	return __atomic_load_n(&settled, __ATOMIC_SEQ_CST);
}

#define cache_invalidations_settled fake_settled
#include "http/cached.c"
#undef cache_invalidations_settled

struct caller {
	struct request req;
	const char *key;
	uint64_t gen;
	int strict;
	int joined;          /* flight_join's answer */
	struct flight *lead; /* flight_join's *out */
	pthread_t thread;
};

static void caller_init(struct caller *c, const char *key, uint64_t gen, int strict)
{
	memset(c, 0, sizeof(*c));
	arena_init(&c->req.arena);
	buf_init(&c->req.res.body);
	c->key = key;
	c->gen = gen;
	c->strict = strict;
}

static void caller_release(struct caller *c)
{
	buf_release(&c->req.res.body);
	arena_release(&c->req.arena);
}

static void *join_thread(void *arg)
{
	struct caller *c = arg;
	c->joined = flight_join(&c->req, c->key, c->gen, c->strict, &c->lead);
	return NULL;
}

static void join_in_thread(struct caller *c)
{
	assert_int_equal(pthread_create(&c->thread, NULL, join_thread, c), 0);
}

static struct flight *find_flight(const char *key)
{
	struct flight *f = flights;
	while (f && strcmp(f->key, key))
		f = f->next;
	return f;
}

/* Waits until n callers share key's flight (the leader and n-1 waiters). */
static void wait_for_refs(const char *key, int n)
{
	for (;;) {
		pthread_mutex_lock(&flights_lock);
		struct flight *f = find_flight(key);
		int refs = f ? f->refs : 0;
		pthread_mutex_unlock(&flights_lock);
		if (refs >= n)
			return;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
}

static int no_flights(void)
{
	pthread_mutex_lock(&flights_lock);
	int none = flights == NULL;
	pthread_mutex_unlock(&flights_lock);
	return none;
}

static void land(struct flight *f, int status, const char *body)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, body);
	flight_land(f, status, &b);
	buf_release(&b);
}

static int reset(void **state)
{
	(void)state;
	settled = 1;
	assert_true(no_flights());
	return 0;
}

/* The first caller for a key leads; a second waits and gets its answer. */
static void test_waiter_gets_leaders_answer(void **state)
{
	(void)state;
	struct caller leader, waiter;
	caller_init(&leader, "card:1", 0, 0);
	caller_init(&waiter, "card:1", 0, 0);
	assert_int_equal(flight_join(&leader.req, "card:1", 0, 0, &leader.lead), 0);
	assert_non_null(leader.lead);
	join_in_thread(&waiter);
	wait_for_refs("card:1", 2);
	land(leader.lead, 200, "{\"balance\":500}");
	pthread_join(waiter.thread, NULL);
	assert_int_equal(waiter.joined, 1);
	assert_null(waiter.lead);
	assert_int_equal(waiter.req.res.status, 200);
	assert_int_equal(waiter.req.res.body.len, strlen("{\"balance\":500}"));
	assert_memory_equal(waiter.req.res.body.ptr, "{\"balance\":500}", waiter.req.res.body.len);
	assert_true(no_flights());
	caller_release(&leader);
	caller_release(&waiter);
}

/* Many waiters share one answer; the last to leave frees the flight (the
 * ASan build reports it otherwise). */
#define WAITERS 6
static void test_many_waiters(void **state)
{
	(void)state;
	struct caller leader, waiters[WAITERS];
	caller_init(&leader, "stations", 0, 0);
	assert_int_equal(flight_join(&leader.req, "stations", 0, 0, &leader.lead), 0);
	for (int i = 0; i < WAITERS; i++) {
		caller_init(&waiters[i], "stations", 0, 0);
		join_in_thread(&waiters[i]);
	}
	wait_for_refs("stations", WAITERS + 1);
	land(leader.lead, 200, "[1,2,3]");
	for (int i = 0; i < WAITERS; i++) {
		pthread_join(waiters[i].thread, NULL);
		assert_int_equal(waiters[i].joined, 1);
		assert_int_equal(waiters[i].req.res.status, 200);
		assert_memory_equal(waiters[i].req.res.body.ptr, "[1,2,3]", 7);
		caller_release(&waiters[i]);
	}
	assert_true(no_flights());
	caller_release(&leader);
}

/* A leader that failed shares nothing: each waiter reads for itself, and
 * none of them becomes a leader (no flight is left behind). */
static void test_failed_flight_not_shared(void **state)
{
	(void)state;
	int statuses[] = { 404, 503, 500 };
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct caller leader, waiter;
		caller_init(&leader, "card:2", 0, 0);
		caller_init(&waiter, "card:2", 0, 0);
		assert_int_equal(flight_join(&leader.req, "card:2", 0, 0, &leader.lead), 0);
		join_in_thread(&waiter);
		wait_for_refs("card:2", 2);
		land(leader.lead, statuses[i], "{\"status\":0}");
		pthread_join(waiter.thread, NULL);
		assert_int_equal(waiter.joined, 0);
		assert_null(waiter.lead);
		assert_int_equal(waiter.req.res.status, 0);
		assert_true(no_flights());
		caller_release(&leader);
		caller_release(&waiter);
	}
}

/* Once landed, a flight is gone: the next caller leads a new one and is
 * not handed the old answer. Other keys never share a flight. */
static void test_landed_flight_not_joined(void **state)
{
	(void)state;
	struct caller a, b, c;
	caller_init(&a, "card:3", 0, 0);
	caller_init(&b, "card:3", 0, 0);
	caller_init(&c, "card:30", 0, 0);
	assert_int_equal(flight_join(&a.req, "card:3", 0, 0, &a.lead), 0);
	assert_non_null(a.lead);
	/* Another key: its own leader, at once. */
	assert_int_equal(flight_join(&c.req, "card:30", 0, 0, &c.lead), 0);
	assert_non_null(c.lead);
	assert_ptr_not_equal(a.lead, c.lead);
	land(a.lead, 200, "\"old\"");
	assert_int_equal(flight_join(&b.req, "card:3", 0, 0, &b.lead), 0);
	assert_non_null(b.lead);
	assert_int_equal(b.req.res.status, 0);
	land(b.lead, 200, "\"new\"");
	land(c.lead, 200, "\"other\"");
	assert_true(no_flights());
	caller_release(&a);
	caller_release(&b);
	caller_release(&c);
}

/* A strict read (one that must see the caller's own writes) that began
 * after an invalidation does not join a flight that began before it: the
 * leader may have read the old value. It reads for itself, at once. */
static void test_strict_read_after_invalidation_does_not_join(void **state)
{
	(void)state;
	nearcache_init(1024);
	const char *key = "card:4";
	uint64_t before = nearcache_generation(key);
	struct caller leader, late;
	caller_init(&leader, key, before, 1);
	assert_int_equal(flight_join(&leader.req, key, before, 1, &leader.lead), 0);
	assert_non_null(leader.lead);
	nearcache_drop_variants(key); /* a write's invalidation reaches this instance */
	uint64_t after = nearcache_generation(key);
	assert_true(after != before);
	caller_init(&late, key, after, 1);
	assert_int_equal(flight_join(&late.req, key, after, 1, &late.lead), 0);
	assert_null(late.lead);
	assert_int_equal(late.req.res.status, 0);
	pthread_mutex_lock(&flights_lock);
	assert_int_equal(find_flight(key)->refs, 1);
	pthread_mutex_unlock(&flights_lock);
	land(leader.lead, 200, "{\"balance\":1}");
	assert_int_equal(late.req.res.status, 0);
	caller_release(&leader);
	caller_release(&late);
	nearcache_free();
}

/* Nor does it join while an invalidation may still be on its way (not
 * settled), even one that began in the same generation. */
static void test_strict_read_unsettled_does_not_join(void **state)
{
	(void)state;
	struct caller leader, late;
	caller_init(&leader, "card:5", 7, 1);
	caller_init(&late, "card:5", 7, 1);
	assert_int_equal(flight_join(&leader.req, "card:5", 7, 1, &leader.lead), 0);
	settled = 0;
	assert_int_equal(flight_join(&late.req, "card:5", 7, 1, &late.lead), 0);
	assert_null(late.lead);
	land(leader.lead, 200, "{}");
	caller_release(&leader);
	caller_release(&late);
}

/* Settled and in the leader's generation: a strict read joins. A read that
 * is not strict joins whatever the generation. */
static void test_strict_read_same_generation_joins(void **state)
{
	(void)state;
	struct caller leader, strict, loose;
	caller_init(&leader, "card:6", 7, 1);
	caller_init(&strict, "card:6", 7, 1);
	caller_init(&loose, "card:6", 8, 0);
	assert_int_equal(flight_join(&leader.req, "card:6", 7, 1, &leader.lead), 0);
	join_in_thread(&strict);
	join_in_thread(&loose);
	wait_for_refs("card:6", 3);
	land(leader.lead, 200, "{\"balance\":6}");
	pthread_join(strict.thread, NULL);
	pthread_join(loose.thread, NULL);
	assert_int_equal(strict.joined, 1);
	assert_int_equal(loose.joined, 1);
	assert_memory_equal(strict.req.res.body.ptr, "{\"balance\":6}", 13);
	assert_memory_equal(loose.req.res.body.ptr, "{\"balance\":6}", 13);
	caller_release(&leader);
	caller_release(&strict);
	caller_release(&loose);
}

/* A leader that never lands does not hold its waiters for ever: after
 * FLIGHT_WAIT_S they read for themselves. */
static void test_waiter_gives_up(void **state)
{
	(void)state;
	struct caller leader, waiter;
	caller_init(&leader, "card:7", 0, 0);
	caller_init(&waiter, "card:7", 0, 0);
	assert_int_equal(flight_join(&leader.req, "card:7", 0, 0, &leader.lead), 0);
	assert_int_equal(flight_join(&waiter.req, "card:7", 0, 0, &waiter.lead), 0);
	assert_null(waiter.lead);
	assert_int_equal(waiter.req.res.status, 0);
	land(leader.lead, 200, "{}");
	assert_true(no_flights());
	caller_release(&leader);
	caller_release(&waiter);
}

/* reply_cached without Redis: concurrent reads of one key run one fill,
 * and every caller gets its answer (BYPASS: Redis was not used). */
static struct cache_family family = { .label = "test", .key = "card:{id}", .ttl_s = 30, .near = 1 };
static struct route route = { .method = METHOD_GET, .pattern = "/api/v1/cards/{card_id}", .cache = &family };
static int fills_running;
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open;

static int slow_fill(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	(void)req;
	(void)w;
	(void)err;
	__atomic_add_fetch(&fills_running, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&gate_lock);
	while (!gate_open)
		pthread_cond_wait(&gate_cond, &gate_lock);
	pthread_mutex_unlock(&gate_lock);
	buf_adds(out, "{\"filled\":true}");
	return 0;
}

struct reader {
	struct request req;
	struct worker w;
	pthread_t thread;
};

static void *read_thread(void *arg)
{
	struct reader *r = arg;
	reply_cached(&r->req, &r->w, slow_fill);
	return NULL;
}

static void test_reply_cached_one_fill(void **state)
{
	(void)state;
	nearcache_init(1024);
	unsigned long fills = family.fills;
	struct reader readers[4];
	for (int i = 0; i < 4; i++) {
		memset(&readers[i], 0, sizeof(readers[i]));
		arena_init(&readers[i].req.arena);
		buf_init(&readers[i].req.res.body);
		readers[i].req.route = &route;
		readers[i].req.near_key = "card:8";
		assert_int_equal(pthread_create(&readers[i].thread, NULL, read_thread, &readers[i]), 0);
	}
	wait_for_refs("card:8", 4);
	pthread_mutex_lock(&gate_lock);
	gate_open = 1;
	pthread_cond_broadcast(&gate_cond);
	pthread_mutex_unlock(&gate_lock);
	for (int i = 0; i < 4; i++) {
		pthread_join(readers[i].thread, NULL);
		assert_int_equal(readers[i].req.res.status, 200);
		assert_string_equal(readers[i].req.res.x_cache, "BYPASS");
		assert_memory_equal(readers[i].req.res.body.ptr, "{\"filled\":true}", 15);
		buf_release(&readers[i].req.res.body);
		arena_release(&readers[i].req.arena);
	}
	assert_int_equal(fills_running, 1);
	assert_int_equal(family.fills, fills + 1);
	/* Without Redis no invalidation can reach this instance: nothing is
	 * kept in the near-cache. */
	struct arena a;
	arena_init(&a);
	const char *val;
	size_t len;
	assert_int_not_equal(nearcache_get("card:8", &a, &val, &len), 0);
	arena_release(&a);
	assert_true(no_flights());
	nearcache_free();
}

/* Lease names: the key's lease hash sits beside it under "lease:", and a
 * plain key's lease field is "_". */
static void test_lease_names(void **state)
{
	(void)state;
	struct request req;
	memset(&req, 0, sizeof(req));
	arena_init(&req.arena);
	req.cache_key = arena_printf(&req.arena, "%scard:9", cache_prefix());
	assert_string_equal(lease_key(&req), arena_printf(&req.arena, "%slease:card:9", cache_prefix()));
	assert_string_equal(lease_field(&req), "_");
	req.cache_field = "limit=20";
	assert_string_equal(lease_field(&req), "limit=20");
	arena_release(&req.arena);
}

/* The near-cache keeps a family's value no longer than NEAR_CACHE_TTL_MS
 * nor the family's own TTL, and nothing of a family it may not hold. */
static void test_near_ttl(void **state)
{
	(void)state;
	struct cache_family f = { .ttl_s = 30, .near = 1 };
	cached_set_near_ttl(1000);
	assert_int_equal(near_ttl_ms(&f), 1000);
	f.ttl_s = 0;
	assert_int_equal(near_ttl_ms(&f), 0);
	f.ttl_s = 1;
	cached_set_near_ttl(5000);
	assert_int_equal(near_ttl_ms(&f), 1000);
	f.near = 0;
	assert_int_equal(near_ttl_ms(&f), 0);
	cached_set_near_ttl(1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_waiter_gets_leaders_answer, reset),
		cmocka_unit_test_setup(test_many_waiters, reset),
		cmocka_unit_test_setup(test_failed_flight_not_shared, reset),
		cmocka_unit_test_setup(test_landed_flight_not_joined, reset),
		cmocka_unit_test_setup(test_strict_read_after_invalidation_does_not_join, reset),
		cmocka_unit_test_setup(test_strict_read_unsettled_does_not_join, reset),
		cmocka_unit_test_setup(test_strict_read_same_generation_joins, reset),
		cmocka_unit_test_setup(test_waiter_gives_up, reset),
		cmocka_unit_test_setup(test_reply_cached_one_fill, reset),
		cmocka_unit_test_setup(test_lease_names, reset),
		cmocka_unit_test_setup(test_near_ttl, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
