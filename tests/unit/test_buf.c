/* Unit tests for src/core/buf.{h,c}. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* Every buf must satisfy the header's invariants at all times. */
static void check_invariants(const struct buf *b)
{
	assert_non_null(b->ptr);
	assert_int_equal(b->ptr[b->len], '\0');
	if (b->cap)
		assert_true(b->len < b->cap);
	else
		assert_int_equal(b->len, 0);
}

static void test_init_invariants(void **state)
{
	(void)state;
	struct buf b;
	memset(&b, 0x5a, sizeof(b));
	buf_init(&b);
	check_invariants(&b);
	assert_ptr_equal(b.ptr, buf_empty);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_string_equal(b.ptr, "");

	struct buf s = BUF_INIT;
	check_invariants(&s);
	assert_ptr_equal(s.ptr, buf_empty);
	assert_int_equal(s.cap, 0);

	/* Releasing an untouched buf must not free the shared empty string. */
	buf_release(&s);
	check_invariants(&s);
	assert_ptr_equal(s.ptr, buf_empty);

	/* Adding zero bytes keeps it unallocated and valid. */
	buf_add(&b, "x", 0);
	check_invariants(&b);
	assert_int_equal(b.cap, 0);
	assert_string_equal(buf_empty, "");
}

static void test_add_basic(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "hello");
	check_invariants(&b);
	assert_int_equal(b.len, 5);
	assert_string_equal(b.ptr, "hello");
	assert_ptr_not_equal(b.ptr, buf_empty);

	buf_addch(&b, ' ');
	buf_add(&b, "worldXXX", 5);
	check_invariants(&b);
	assert_string_equal(b.ptr, "hello world");
	assert_int_equal(b.len, 11);

	/* Embedded NUL is kept and counted; terminator still present. */
	buf_add(&b, "a\0b", 3);
	check_invariants(&b);
	assert_int_equal(b.len, 14);
	assert_memory_equal(b.ptr + 11, "a\0b", 3);

	buf_reset(&b);
	check_invariants(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.ptr, "");
	assert_true(b.cap > 0); /* memory kept */
	buf_adds(&b, "again");
	assert_string_equal(b.ptr, "again");
	buf_release(&b);
	check_invariants(&b);
	assert_ptr_equal(b.ptr, buf_empty);
}

static void test_reset_on_empty(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_reset(&b); /* writes '\0' into the shared empty string: must stay "" */
	check_invariants(&b);
	assert_string_equal(buf_empty, "");
}

static void test_many_appends_growth(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	char expect[32];
	size_t total = 0;
	for (int i = 0; i < 20000; i++) {
		int n = snprintf(expect, sizeof(expect), "%d,", i);
		if (i % 3 == 0)
			buf_addf(&b, "%d,", i);
		else if (i % 3 == 1)
			buf_add(&b, expect, (size_t)n);
		else {
			buf_add_i64(&b, i);
			buf_addch(&b, ',');
		}
		total += (size_t)n;
		assert_int_equal(b.len, total);
		assert_int_equal(b.ptr[b.len], '\0');
		assert_true(b.cap > b.len);
	}
	/* Verify the whole content. */
	const char *p = b.ptr;
	for (int i = 0; i < 20000; i++) {
		char *end;
		long v = strtol(p, &end, 10);
		assert_int_equal(v, i);
		assert_int_equal(*end, ',');
		p = end + 1;
	}
	assert_ptr_equal(p, b.ptr + b.len);
	buf_release(&b);
}

static void test_addf_exact_fit_boundaries(void **state)
{
	(void)state;
	/* Formatting strings of every length around the growth boundaries
	 * exercises both vsnprintf passes in buf_vaddf. */
	for (size_t pre = 0; pre < 70; pre++) {
		for (size_t n = 0; n < 140; n += 7) {
			struct buf b = BUF_INIT;
			char *s = malloc(n + 1);
			memset(s, 'q', n);
			s[n] = '\0';
			for (size_t i = 0; i < pre; i++)
				buf_addch(&b, 'p');
			buf_addf(&b, "<%s>", s);
			check_invariants(&b);
			assert_int_equal(b.len, pre + n + 2);
			assert_int_equal(b.ptr[pre], '<');
			assert_int_equal(b.ptr[pre + n + 1], '>');
			for (size_t i = 0; i < n; i++)
				assert_int_equal(b.ptr[pre + 1 + i], 'q');
			free(s);
			buf_release(&b);
		}
	}
}

static void test_addf_large(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_addf(&b, "%s", "");
	check_invariants(&b);
	assert_int_equal(b.len, 0);
	buf_addf(&b, "%05d|%s|%c", 42, "x", 'z');
	assert_string_equal(b.ptr, "00042|x|z");
	buf_addf(&b, "%*s", 100000, "end");
	check_invariants(&b);
	assert_int_equal(b.len, 9 + 100000);
	assert_string_equal(b.ptr + b.len - 3, "end");
	assert_int_equal(b.ptr[9], ' ');
	buf_release(&b);
}

static void test_grow_keeps_content(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "abc");
	buf_grow(&b, 10000);
	check_invariants(&b);
	assert_true(b.cap >= 3 + 10000 + 1);
	assert_string_equal(b.ptr, "abc");
	size_t cap = b.cap;
	char *p = b.ptr;
	for (int i = 0; i < 10000; i++)
		buf_addch(&b, 'x');
	/* grow reserved the space: no reallocation */
	assert_int_equal(b.cap, cap);
	assert_ptr_equal(b.ptr, p);
	assert_int_equal(b.len, 10003);
	buf_release(&b);
}

static void check_i64(int64_t v, const char *expect)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "[");
	buf_add_i64(&b, v);
	buf_adds(&b, "]");
	char want[40];
	snprintf(want, sizeof(want), "[%s]", expect);
	assert_string_equal(b.ptr, want);
	check_invariants(&b);
	buf_release(&b);
}

static void test_add_i64(void **state)
{
	(void)state;
	check_i64(0, "0");
	check_i64(1, "1");
	check_i64(-1, "-1");
	check_i64(9, "9");
	check_i64(10, "10");
	check_i64(-10, "-10");
	check_i64(1234567890, "1234567890");
	check_i64(-987654321012LL, "-987654321012");
	check_i64(INT64_MAX, "9223372036854775807");
	check_i64(INT64_MIN, "-9223372036854775808");
	check_i64(INT64_MIN + 1, "-9223372036854775807");
	/* Cross-check against printf over a spread of values. */
	for (int64_t v = -1000003; v <= 1000003; v += 7919) {
		char want[32];
		snprintf(want, sizeof(want), "%lld", (long long)v);
		check_i64(v, want);
	}
}

static void check_json(const char *in, const char *expect)
{
	struct buf b = BUF_INIT;
	buf_add_json_str(&b, in);
	assert_string_equal(b.ptr, expect);
	assert_int_equal(b.len, strlen(expect));
	check_invariants(&b);
	buf_release(&b);
}

static void test_json_str_escaping(void **state)
{
	(void)state;
	check_json("", "\"\"");
	check_json("plain", "\"plain\"");
	check_json("say \"hi\"", "\"say \\\"hi\\\"\"");
	check_json("back\\slash", "\"back\\\\slash\"");
	check_json("a\nb", "\"a\\nb\"");
	check_json("a\rb\tc", "\"a\\rb\\tc\"");
	check_json("\x01", "\"\\u0001\"");
	check_json("x\x1fy", "\"x\\u001fy\"");
	check_json("\b\f", "\"\\u0008\\u000c\"");
	/* DEL and "/" are not required to be escaped. */
	check_json("a/b\x7f", "\"a/b\x7f\"");
	/* UTF-8 passes through byte for byte. */
	check_json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x8c", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\x8c\"");
	/* Escapes at both ends and adjacent. */
	check_json("\"\"", "\"\\\"\\\"\"");
	check_json("\\\n\"", "\"\\\\\\n\\\"\"");
	/* NULL → null, without quotes. */
	check_json(NULL, "null");
}

static void test_json_strn_embedded_nul(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "pre:");
	buf_add_json_strn(&b, "a\0b\"", 4);
	assert_string_equal(b.ptr, "pre:\"a\\u0000b\\\"\"");
	/* n limits the input. */
	buf_reset(&b);
	buf_add_json_strn(&b, "abcdef", 3);
	assert_string_equal(b.ptr, "\"abc\"");
	buf_release(&b);
}

static void test_json_str_long(void **state)
{
	(void)state;
	/* A long string of characters that all need escaping grows the buf
	 * well beyond its initial reservation. */
	size_t n = 5000;
	char *in = malloc(n + 1);
	for (size_t i = 0; i < n; i++)
		in[i] = (i % 2) ? '"' : '\x02';
	in[n] = '\0';
	struct buf b = BUF_INIT;
	buf_add_json_str(&b, in);
	check_invariants(&b);
	assert_int_equal(b.len, 2 + (n / 2) * 2 + (n / 2) * 6);
	assert_int_equal(b.ptr[0], '"');
	assert_int_equal(b.ptr[b.len - 1], '"');
	assert_memory_equal(b.ptr + 1, "\\u0002\\\"", 8);
	free(in);
	buf_release(&b);
}

static void test_detach(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	size_t len = 99;
	/* Detaching an empty buf gives a fresh, freeable "" — not buf_empty. */
	char *p = buf_detach(&b, &len);
	assert_non_null(p);
	assert_ptr_not_equal(p, buf_empty);
	assert_string_equal(p, "");
	assert_int_equal(len, 0);
	free(p);
	check_invariants(&b);

	buf_adds(&b, "owned string");
	char *q = buf_detach(&b, &len);
	assert_string_equal(q, "owned string");
	assert_int_equal(len, 12);
	/* The buf is initialised again and independent of q. */
	check_invariants(&b);
	assert_ptr_equal(b.ptr, buf_empty);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	buf_adds(&b, "new");
	assert_string_equal(q, "owned string");
	assert_string_equal(b.ptr, "new");
	free(q);

	/* len may be NULL. */
	char *r = buf_detach(&b, NULL);
	assert_string_equal(r, "new");
	free(r);
	buf_release(&b);
}

static void test_release_then_reuse(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	for (int round = 0; round < 3; round++) {
		buf_addf(&b, "round %d", round);
		char want[32];
		snprintf(want, sizeof(want), "round %d", round);
		assert_string_equal(b.ptr, want);
		buf_release(&b);
		check_invariants(&b);
		assert_ptr_equal(b.ptr, buf_empty);
		assert_int_equal(b.len, 0);
		assert_int_equal(b.cap, 0);
	}
	buf_release(&b); /* double release is harmless */
	check_invariants(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_invariants),
		cmocka_unit_test(test_add_basic),
		cmocka_unit_test(test_reset_on_empty),
		cmocka_unit_test(test_many_appends_growth),
		cmocka_unit_test(test_addf_exact_fit_boundaries),
		cmocka_unit_test(test_addf_large),
		cmocka_unit_test(test_grow_keeps_content),
		cmocka_unit_test(test_add_i64),
		cmocka_unit_test(test_json_str_escaping),
		cmocka_unit_test(test_json_strn_embedded_nul),
		cmocka_unit_test(test_json_str_long),
		cmocka_unit_test(test_detach),
		cmocka_unit_test(test_release_then_reuse),
	};
	return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
