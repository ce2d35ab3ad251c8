/* Unit tests for the key-building part of src/store/cache.{h,c}:
 * cache_prefix, cache_key, cache_field, cache_count and the keys declared
 * not cache (no Redis needed). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/config.h"
#include "store/cache.h"

static struct arena arena;

static int setup(void **state)
{
	(void)state;
	arena_init(&arena);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_release(&arena);
	return 0;
}

static const struct cache_family balance = {
	.label = "card_balance", .key = "card:{}:balance", .ttl_s = 30, .near = 1,
};
static const char *const trip_query[] = { "from", "to", NULL };
static const struct cache_family stops = {
	.label = "line_stops", .key = "line:{}:stop:{}", .ttl_s = 60, .query = trip_query,
};
static const struct cache_family stations = {
	.label = "stations", .key = "stations", .ttl_s = 60, .near = 1,
};

/* Runs first: before cache_configure the default prefix applies. */
static void test_default_prefix(void **state)
{
	(void)state;
	assert_string_equal(cache_prefix(), "transitd:");
	int64_t id = 5;
	assert_string_equal(cache_key(&arena, &balance, &id, 1), "transitd:card:5:balance");
}

static void test_configured_prefix(void **state)
{
	(void)state;
	static struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.cache_prefix = "t2:";
	cache_configure(&cfg);
	assert_string_equal(cache_prefix(), "t2:");
	int64_t id = 5;
	assert_string_equal(cache_key(&arena, &balance, &id, 1), "t2:card:5:balance");
	/* Back to the default prefix for the other tests. */
	static struct config dflt;
	memset(&dflt, 0, sizeof(dflt));
	dflt.cache_prefix = "transitd:";
	cache_configure(&dflt);
	assert_string_equal(cache_prefix(), "transitd:");
}

static void test_key_ids(void **state)
{
	(void)state;
	int64_t ids[3] = { 3, 17, 99 };
	assert_string_equal(cache_key(&arena, &stops, ids, 2), "transitd:line:3:stop:17");
	assert_string_equal(cache_key(&arena, &stations, NULL, 0), "transitd:stations");
	int64_t big = INT64_MAX;
	assert_string_equal(cache_key(&arena, &balance, &big, 1), "transitd:card:9223372036854775807:balance");
	int64_t one = 1, ten = 10;
	/* Different ids, different keys (no prefix ambiguity). */
	assert_string_not_equal(cache_key(&arena, &balance, &one, 1), cache_key(&arena, &balance, &ten, 1));
	/* The key lives in the arena: a copy independent of later calls. */
	const char *k1 = cache_key(&arena, &balance, &one, 1);
	const char *k2 = cache_key(&arena, &balance, &ten, 1);
	assert_ptr_not_equal(k1, k2);
	assert_string_equal(k1, "transitd:card:1:balance");
	assert_string_equal(k2, "transitd:card:10:balance");
}

static void test_field_plain(void **state)
{
	(void)state;
	const char *v[] = { "12", "34" };
	assert_string_equal(cache_field(&arena, v, 2), "12:34");
	const char *one[] = { "abc" };
	assert_string_equal(cache_field(&arena, one, 1), "abc");
	/* NULL values count as "". */
	const char *withnull[] = { NULL, "x", NULL };
	assert_string_equal(cache_field(&arena, withnull, 3), ":x:");
	const char *empties[] = { "", "x", "" };
	assert_string_equal(cache_field(&arena, empties, 3), ":x:");
	assert_string_equal(cache_field(&arena, NULL, 0), "");
}

static void test_field_escaping(void **state)
{
	(void)state;
	const char *colon[] = { "a:b" };
	assert_string_equal(cache_field(&arena, colon, 1), "a%3Ab");
	const char *pct[] = { "50%" };
	assert_string_equal(cache_field(&arena, pct, 1), "50%25");
	const char *hash[] = { "x#y" };
	assert_string_equal(cache_field(&arena, hash, 1), "x%23y");
	const char *space[] = { "a b" };
	assert_string_equal(cache_field(&arena, space, 1), "a%20b");
	const char *ctl[] = { "a\tb\nc\x01" };
	assert_string_equal(cache_field(&arena, ctl, 1), "a%09b%0Ac%01");
	/* UTF-8 and other printable characters pass through. */
	const char *utf8[] = { "Gare du Nord \xc3\xa9" };
	assert_string_equal(cache_field(&arena, utf8, 1), "Gare%20du%20Nord%20\xc3\xa9");
	const char *other[] = { "a*b/c?d=e&f" };
	const char *f = cache_field(&arena, other, 1);
	assert_non_null(f);
	assert_null(strchr(f, ':'));
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Checks that a field never holds a raw separator or unsafe byte. */
static void check_clean(const char *f, int nvalues)
{
	int colons = 0;
	for (const char *p = f; *p; p++) {
		unsigned char c = (unsigned char)*p;
		assert_true(c >= 0x21);
		assert_int_not_equal(c, '#');
		if (c == ':')
			colons++;
		if (c == '%') {
			/* Every '%' starts a two-digit uppercase hex escape. */
			assert_non_null(strchr("0123456789ABCDEF", p[1]));
			assert_non_null(strchr("0123456789ABCDEF", p[2]));
			assert_true(p[1] && p[2]);
		}
	}
	assert_int_equal(colons, nvalues - 1);
}

static void test_field_injective(void **state)
{
	(void)state;
	/* Pairs of different inputs that a naive join would confuse. */
	static const char *const inputs[][2] = {
		{ "a:b", "c" },	 { "a", "b:c" },   { "a", "b" },   { "a%3Ab", "c" }, { "a%", "3Ab" },
		{ "a%25", "" },	 { "a%", "25" },   { "a b", "" },  { "a%20b", "" },  { "a", " b" },
		{ "a#b", "" },	 { "a%23b", "" },  { "", "a:b" },  { ":", ":" },     { "%", "%" },
		{ "::", "" },	 { "", "::" },	   { "%3A", "" },  { "", "" },	     { "*", "" },
		{ "a*", "" },	 { "a", "*" },	   { "\t", "" },   { "%09", "" },    { "a\nb", "" },
		{ "a%0Ab", "" }, { "%%", "" },	   { "%25%25", "" }, { "x", "" },    { "", "x" },
	};
	size_t n = sizeof(inputs) / sizeof(inputs[0]);
	const char **fields = calloc(n, sizeof(*fields));
	for (size_t i = 0; i < n; i++) {
		const char *v[2] = { inputs[i][0], inputs[i][1] };
		fields[i] = cache_field(&arena, v, 2);
		assert_non_null(fields[i]);
		check_clean(fields[i], 2);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (!strcmp(fields[i], fields[j]))
				fail_msg("inputs %zu [\"%s\",\"%s\"] and %zu [\"%s\",\"%s\"] share field \"%s\"", i,
					 inputs[i][0], inputs[i][1], j, inputs[j][0], inputs[j][1], fields[i]);
	free(fields);
}

static void test_field_injective_exhaustive(void **state)
{
	(void)state;
	/* Every pair of values over a small alphabet of separators and escape
	 * characters, up to length 2 each: all fields must be distinct. */
	static const char alpha[] = { 'a', ':', '%', '#', ' ', '3', 'A', '*' };
	enum { NA = sizeof(alpha) };
	char vals[1 + NA + NA * NA][3];
	size_t nv = 0;
	vals[nv++][0] = '\0';
	for (size_t i = 0; i < NA; i++) {
		vals[nv][0] = alpha[i];
		vals[nv++][1] = '\0';
	}
	for (size_t i = 0; i < NA; i++)
		for (size_t j = 0; j < NA; j++) {
			vals[nv][0] = alpha[i];
			vals[nv][1] = alpha[j];
			vals[nv++][2] = '\0';
		}
	size_t total = nv * nv;
	char **fields = calloc(total, sizeof(*fields));
	for (size_t i = 0; i < nv; i++)
		for (size_t j = 0; j < nv; j++) {
			const char *v[2] = { vals[i], vals[j] };
			const char *f = cache_field(&arena, v, 2);
			assert_non_null(f);
			check_clean(f, 2);
			fields[i * nv + j] = (char *)f;
		}
	qsort(fields, total, sizeof(*fields), cmp_str);
	for (size_t i = 1; i < total; i++)
		if (!strcmp(fields[i - 1], fields[i]))
			fail_msg("two different inputs share field \"%s\"", fields[i]);
	free(fields);
}

static void test_field_too_long(void **state)
{
	(void)state;
	char v[CACHE_KEY_MAX + 2];
	/* Exactly CACHE_KEY_MAX bytes fit. */
	memset(v, 'x', CACHE_KEY_MAX);
	v[CACHE_KEY_MAX] = '\0';
	const char *one[] = { v };
	const char *f = cache_field(&arena, one, 1);
	assert_non_null(f);
	assert_int_equal(strlen(f), CACHE_KEY_MAX);
	/* One more byte does not. */
	v[CACHE_KEY_MAX] = 'x';
	v[CACHE_KEY_MAX + 1] = '\0';
	assert_null(cache_field(&arena, one, 1));
	/* Escaping counts: 134 ':' become 402 bytes. */
	char colons[135];
	memset(colons, ':', 134);
	colons[134] = '\0';
	const char *c1[] = { colons };
	assert_null(cache_field(&arena, c1, 1));
	colons[133] = '\0'; /* 133 * 3 = 399 */
	f = cache_field(&arena, c1, 1);
	assert_non_null(f);
	assert_int_equal(strlen(f), 399);
	/* Separators count too: 200 + 1 + 200 = 401. */
	char a[201], b[201];
	memset(a, 'a', 200);
	a[200] = '\0';
	memset(b, 'b', 200);
	b[200] = '\0';
	const char *two[] = { a, b };
	assert_null(cache_field(&arena, two, 2));
	b[199] = '\0';
	f = cache_field(&arena, two, 2);
	assert_non_null(f);
	assert_int_equal(strlen(f), 400);
}

static void test_count(void **state)
{
	(void)state;
	struct cache_family f = { .label = "fam", .key = "fam", .ttl_s = 10 };
	cache_count(&f, "HIT");
	cache_count(&f, "HIT");
	cache_count(&f, "MISS");
	cache_count(&f, "BYPASS");
	cache_count(&f, NULL); /* not counted */
	cache_count(NULL, "HIT"); /* no family: ignored */
	assert_int_equal(f.hits, 2);
	assert_int_equal(f.misses, 1);
	assert_int_equal(f.bypasses, 1);
}

/* What cache_clear_all leaves: only what an owner declared, and a name
 * ending in ':' is a namespace, any other one key. */
static void test_kept(void **state)
{
	(void)state;
	cache_keep("rt:");
	cache_keep("revoked");
	cache_keep("rt:"); /* twice: once */
	assert_true(cache_kept("transitd:rt:abc"));
	assert_true(cache_kept("transitd:revoked"));
	assert_false(cache_kept("transitd:revoked:x"));
	assert_false(cache_kept("transitd:revokedx"));
	assert_false(cache_kept("transitd:card:5:rt:")); /* a cache key that holds the text */
	assert_false(cache_kept("other:rt:abc"));         /* another prefix's */
	assert_false(cache_kept("transitd:rl:default:x:1")); /* not declared */
	cache_keep("rl:");
	assert_true(cache_kept("transitd:rl:default:x:1"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_default_prefix),
		T(test_configured_prefix),
		T(test_key_ids),
		T(test_field_plain),
		T(test_field_escaping),
		T(test_field_injective),
		T(test_field_injective_exhaustive),
		T(test_field_too_long),
		T(test_count),
		T(test_kept),
	};
	return cmocka_run_group_tests_name("cache_key", tests, NULL, NULL);
}
