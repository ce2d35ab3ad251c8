/* Unit tests for src/core/arena.{h,c}. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"

static void test_init_and_empty_release(void **state)
{
	(void)state;
	struct arena a;
	memset(&a, 0x77, sizeof(a));
	arena_init(&a);
	assert_null(a.chunk);
	assert_null(a.cleanups);
	assert_int_equal(a.bytes, 0);
	arena_release(&a); /* nothing allocated: harmless */
	assert_null(a.chunk);
	assert_int_equal(a.bytes, 0);
}

static void test_small_allocations_aligned_distinct(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	enum { N = 5000 };
	unsigned char **ptrs = calloc(N, sizeof(*ptrs));
	size_t *sizes = calloc(N, sizeof(*sizes));
	for (size_t i = 0; i < N; i++) {
		sizes[i] = 1 + (i * 37) % 61; /* 1..61 bytes */
		ptrs[i] = arena_alloc(&a, sizes[i]);
		assert_non_null(ptrs[i]);
		assert_int_equal((uintptr_t)ptrs[i] % 16, 0);
		memset(ptrs[i], (int)(i & 0xff), sizes[i]);
	}
	/* No allocation overlapped another: every byte still holds its tag. */
	for (size_t i = 0; i < N; i++)
		for (size_t j = 0; j < sizes[i]; j++)
			assert_int_equal(ptrs[i][j], (unsigned char)(i & 0xff));
	/* bytes counts at least what was asked for. */
	size_t asked = 0;
	for (size_t i = 0; i < N; i++)
		asked += sizes[i];
	assert_true(a.bytes >= asked);
	free(ptrs);
	free(sizes);
	arena_release(&a);
	assert_int_equal(a.bytes, 0);
	assert_null(a.chunk);
}

static void test_zero_and_odd_sizes_aligned(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	void *p0 = arena_alloc(&a, 0);
	void *p1 = arena_alloc(&a, 1);
	void *p17 = arena_alloc(&a, 17);
	void *p2 = arena_alloc(&a, 3);
	assert_int_equal((uintptr_t)p0 % 16, 0);
	assert_int_equal((uintptr_t)p1 % 16, 0);
	assert_int_equal((uintptr_t)p17 % 16, 0);
	assert_int_equal((uintptr_t)p2 % 16, 0);
	assert_ptr_not_equal(p1, p17);
	assert_ptr_not_equal(p17, p2);
	/* 17 bytes round to 32: the next allocation starts after them. */
	memset(p17, 0xAB, 17);
	memset(p2, 0xCD, 3);
	assert_int_equal(((unsigned char *)p17)[16], 0xAB);
	arena_release(&a);
}

static void test_zalloc(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	/* Dirty some memory, release, and check zalloc zeroes what it returns. */
	for (int round = 0; round < 3; round++) {
		unsigned char *d = arena_alloc(&a, 3000);
		memset(d, 0xff, 3000);
		unsigned char *z = arena_zalloc(&a, 5000);
		for (size_t i = 0; i < 5000; i++)
			assert_int_equal(z[i], 0);
		arena_release(&a);
	}
}

static void test_huge_allocation(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	char *small = arena_strdup(&a, "before");
	size_t big_n = 8u << 20; /* 8 MiB: bigger than any chunk */
	unsigned char *big = arena_alloc(&a, big_n);
	assert_non_null(big);
	assert_int_equal((uintptr_t)big % 16, 0);
	big[0] = 1;
	big[big_n - 1] = 2;
	memset(big, 0x11, big_n);
	char *after = arena_strdup(&a, "after");
	assert_string_equal(small, "before");
	assert_string_equal(after, "after");
	assert_int_equal(big[big_n - 1], 0x11);
	assert_true(a.bytes >= big_n);
	/* A second big one and more small ones keep working. */
	unsigned char *big2 = arena_alloc(&a, 2u << 20);
	memset(big2, 0x22, 2u << 20);
	for (int i = 0; i < 1000; i++) {
		char *s = arena_printf(&a, "s%d", i);
		char want[32];
		snprintf(want, sizeof(want), "s%d", i);
		assert_string_equal(s, want);
	}
	assert_int_equal(big[0], 0x11);
	assert_int_equal(big2[(2u << 20) - 1], 0x22);
	assert_string_equal(small, "before");
	arena_release(&a);
	assert_int_equal(a.bytes, 0);
}

/* Regression (src/core/arena.c arena_alloc, the "big one-off allocation must
 * not strand a partly used chunk" branch): that branch is only reached when
 * ch->size - ch->used < need, yet it requires ch->size - ch->used > need, so
 * it never runs. A big allocation always becomes the current chunk and the
 * rest of the partly used chunk is wasted: the next small allocation comes
 * from a fresh 1 MiB chunk instead of continuing the old one. */
static void test_huge_allocation_keeps_current_chunk(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	unsigned char *p1 = arena_alloc(&a, 16);
	(void)arena_alloc(&a, 1u << 20);
	unsigned char *p2 = arena_alloc(&a, 16);
	assert_ptr_equal(p2, p1 + 16);
	arena_release(&a);
}

static void test_strdup_strndup_printf(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	char src[] = "mutable source";
	char *d = arena_strdup(&a, src);
	assert_string_equal(d, "mutable source");
	assert_ptr_not_equal(d, src);
	src[0] = 'X';
	assert_string_equal(d, "mutable source"); /* a copy, not an alias */

	char *e = arena_strdup(&a, "");
	assert_string_equal(e, "");

	char *n = arena_strndup(&a, "abcdef", 3);
	assert_string_equal(n, "abc");
	char *n0 = arena_strndup(&a, "abcdef", 0);
	assert_string_equal(n0, "");

	char *p = arena_printf(&a, "%s-%d-%05.1f-%c", "route", -42, 3.14159, 'z');
	assert_string_equal(p, "route--42-003.1-z");
	char *pe = arena_printf(&a, "%s", "");
	assert_string_equal(pe, "");

	/* Long printf output spanning more than one chunk. */
	char *longp = arena_printf(&a, "%*d", 20000, 7);
	assert_int_equal(strlen(longp), 20000);
	assert_int_equal(longp[19999], '7');
	assert_int_equal(longp[0], ' ');
	assert_string_equal(d, "mutable source");
	arena_release(&a);
}

/* Deferred callbacks record their order in a shared log. */
struct log {
	int order[64];
	int n;
};

struct tag {
	struct log *log;
	int id;
};

static void record(void *p)
{
	struct tag *t = p;
	assert_true(t->log->n < 64);
	t->log->order[t->log->n++] = t->id;
}

static int freed_count;
static void counting_free(void *p)
{
	freed_count++;
	free(p);
}

static void test_defer_reverse_order_once(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	struct log log = { { 0 }, 0 };
	struct tag tags[10];
	for (int i = 0; i < 10; i++) {
		tags[i].log = &log;
		tags[i].id = i;
		void *r = arena_defer(&a, record, &tags[i]);
		assert_ptr_equal(r, &tags[i]); /* returns p for chaining */
		/* Interleave allocations so cleanups land in several chunks. */
		arena_alloc(&a, 3000);
	}
	assert_int_equal(log.n, 0); /* nothing runs before release */
	arena_release(&a);
	assert_int_equal(log.n, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(log.order[i], 9 - i);
	/* A second release must not run them again. */
	arena_release(&a);
	assert_int_equal(log.n, 10);
}

static void test_defer_frees_heap_memory(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	freed_count = 0;
	for (int i = 0; i < 100; i++) {
		char *heap = malloc(32);
		snprintf(heap, 32, "heap %d", i);
		char *same = arena_defer(&a, counting_free, heap);
		assert_ptr_equal(same, heap);
	}
	arena_release(&a);
	assert_int_equal(freed_count, 100);
}

static void test_reusable_after_release(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	struct log log = { { 0 }, 0 };
	struct tag t1 = { &log, 1 }, t2 = { &log, 2 };
	for (int round = 0; round < 5; round++) {
		log.n = 0;
		char *s = arena_printf(&a, "round %d", round);
		arena_defer(&a, record, &t1);
		unsigned char *big = arena_alloc(&a, 100000);
		memset(big, round, 100000);
		arena_defer(&a, record, &t2);
		char want[32];
		snprintf(want, sizeof(want), "round %d", round);
		assert_string_equal(s, want);
		assert_true(a.bytes >= 100000);
		arena_release(&a);
		assert_int_equal(log.n, 2);
		assert_int_equal(log.order[0], 2);
		assert_int_equal(log.order[1], 1);
		assert_null(a.chunk);
		assert_null(a.cleanups);
		assert_int_equal(a.bytes, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_and_empty_release),
		cmocka_unit_test(test_small_allocations_aligned_distinct),
		cmocka_unit_test(test_zero_and_odd_sizes_aligned),
		cmocka_unit_test(test_zalloc),
		cmocka_unit_test(test_huge_allocation),
		cmocka_unit_test(test_huge_allocation_keeps_current_chunk),
		cmocka_unit_test(test_strdup_strndup_printf),
		cmocka_unit_test(test_defer_reverse_order_once),
		cmocka_unit_test(test_defer_frees_heap_memory),
		cmocka_unit_test(test_reusable_after_release),
	};
	return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
