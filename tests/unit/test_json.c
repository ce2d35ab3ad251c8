/* Unit tests for src/core/json.{h,c}. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/json.h"

/* Parses s, which must succeed, into an object. */
static json_t *parse_ok(const char *s)
{
	json_t *o = (json_t *)0x1;
	struct api_error e;
	memset(&e, 0, sizeof(e));
	int rc = json_parse_body(s, strlen(s), &o, &e);
	if (rc != 0)
		fail_msg("parse of %s failed: %d %s %s", s, e.status, e.slug ? e.slug : "?", e.detail);
	assert_non_null(o);
	assert_true(json_is_object(o));
	return o;
}

/* Parses s, which must fail, and returns the error. */
static struct api_error parse_fail(const char *s, size_t len)
{
	json_t *o = (json_t *)0x1;
	struct api_error e;
	memset(&e, 0, sizeof(e));
	int rc = json_parse_body(s, len, &o, &e);
	if (rc != -1)
		fail_msg("parse of %.*s unexpectedly succeeded", (int)len, s);
	assert_null(o); /* *out is cleared on failure */
	return e;
}

static void expect_malformed(const char *s)
{
	struct api_error e = parse_fail(s, strlen(s));
	if (e.status != 400 || strcmp(e.slug, "malformed-json"))
		fail_msg("%s: got %d %s, want 400 malformed-json", s, e.status, e.slug);
	assert_string_equal(e.field, "");
	assert_true(e.detail[0] != '\0');
}

static void test_parse_valid_object(void **state)
{
	(void)state;
	json_t *o = parse_ok("{\"amount\": 1000, \"note\": \"hi\", \"ok\": true, \"n\": null, \"x\": {\"y\": [1,2]}}");
	assert_int_equal(json_integer_value(json_object_get(o, "amount")), 1000);
	assert_string_equal(json_string_value(json_object_get(o, "note")), "hi");
	json_decref(o);

	o = parse_ok("{}");
	assert_int_equal(json_object_size(o), 0);
	json_decref(o);

	/* len bounds the input: trailing garbage past len is not read. */
	const char *s = "{\"a\":1}GARBAGE";
	json_t *p = NULL;
	struct api_error e;
	assert_int_equal(json_parse_body(s, 7, &p, &e), 0);
	assert_int_equal(json_integer_value(json_object_get(p, "a")), 1);
	json_decref(p);
}

static void test_parse_empty_body(void **state)
{
	(void)state;
	struct api_error e = parse_fail("", 0);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.slug, "malformed-json");
	/* A non-empty pointer with length 0 is still empty. */
	e = parse_fail("{}", 0);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.slug, "malformed-json");
}

static void test_parse_not_object(void **state)
{
	(void)state;
	static const char *const arrays[] = { "[1]", "[]", "[{\"a\": 1}]" };
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		struct api_error e = parse_fail(arrays[i], strlen(arrays[i]));
		if (e.status != 422)
			fail_msg("%s: status %d", arrays[i], e.status);
		assert_string_equal(e.slug, "validation");
		assert_string_equal(e.field, "body");
	}
	/* Top-level scalars are refused too (jansson without JSON_DECODE_ANY
	 * reports them as malformed, so the status is 400 here, not 422). */
	static const char *const scalars[] = { "1", "\"s\"", "null", "true" };
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		struct api_error e = parse_fail(scalars[i], strlen(scalars[i]));
		assert_true(e.status == 400 || e.status == 422);
	}
}

static void test_parse_malformed(void **state)
{
	(void)state;
	expect_malformed("{\"amount\": NaN}");
	expect_malformed("{\"amount\": Infinity}");
	expect_malformed("{\"amount\": 1, \"amount\": 2}"); /* duplicate keys */
	expect_malformed("{\"a\": 1,}");
	expect_malformed("{'a': 1}");
	expect_malformed("{\"a\": 1} {}");
	expect_malformed("{\"a\": 01}");
	expect_malformed("{\"a\"}");
	expect_malformed("   ");
	expect_malformed("{\"a\": \"x\\u0000y\"}"); /* NUL in strings is refused */
	expect_malformed("{\"a\": \"\xff\"}");       /* invalid UTF-8 */
	/* A body shorter than the text: "{\"a\":" is incomplete. */
	struct api_error e = parse_fail("{\"a\":1}", 5);
	assert_int_equal(e.status, 400);
	assert_string_equal(e.slug, "malformed-json");
}

static void test_parse_huge_integer_names_field(void **state)
{
	(void)state;
	const char *s = "{\"amount\": 99999999999999999999}";
	struct api_error e = parse_fail(s, strlen(s));
	assert_int_equal(e.status, 422);
	assert_string_equal(e.slug, "validation");
	assert_string_equal(e.field, "amount");
	assert_non_null(strstr(e.detail, "amount"));

	s = "{\"note\": \"x\", \"fare\": -99999999999999999999}";
	e = parse_fail(s, strlen(s));
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "fare");

	/* Nested: the innermost member is named. */
	s = "{\"trip\": {\"stops\": 3, \"distance_m\": 123456789012345678901234}}";
	e = parse_fail(s, strlen(s));
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "distance_m");

	/* Inside an array: the array's member is named. */
	s = "{\"ids\": [1, 2, 18446744073709551616]}";
	e = parse_fail(s, strlen(s));
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "ids");

	/* 2^63 - 1 itself fits. */
	json_t *o = parse_ok("{\"amount\": 9223372036854775807, \"min\": -9223372036854775808}");
	assert_true(json_integer_value(json_object_get(o, "amount")) == INT64_MAX);
	assert_true(json_integer_value(json_object_get(o, "min")) == INT64_MIN);
	json_decref(o);
	/* 2^63 does not. */
	s = "{\"amount\": 9223372036854775808}";
	e = parse_fail(s, strlen(s));
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "amount");
}

/* Regression (src/core/json.c json_parse_body): when jansson's first error is
 * "too big integer", the body is reported as a 422 validation error even if
 * the document is not valid JSON at all (the JSON_DECODE_INT_AS_REAL re-parse
 * fails and the field falls back to "body"). A truncated/malformed document
 * should be 400 malformed-json. */
static void test_parse_huge_integer_in_malformed_body(void **state)
{
	(void)state;
	const char *s = "{\"amount\": 99999999999999999999,";
	struct api_error e = parse_fail(s, strlen(s));
	assert_int_equal(e.status, 400);
	assert_string_equal(e.slug, "malformed-json");
}

/* Regression (src/core/json.c find_huge): the field is found by looking for
 * any real >= 9.2e18 in the JSON_DECODE_INT_AS_REAL re-parse, so a legitimate
 * large real that comes earlier is named instead of the integer that
 * overflowed: this reports "lat", not "amount". */
static void test_parse_huge_integer_names_right_field(void **state)
{
	(void)state;
	const char *s = "{\"lat\": 1e19, \"amount\": 99999999999999999999}";
	struct api_error e = parse_fail(s, strlen(s));
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "amount");
}

/* Issue 14: 1e309 is valid JSON syntax whose value overflows a double. It
 * used to be answered 400 malformed-json; it is an out-of-range field. */
static void test_parse_real_overflow_names_field(void **state)
{
	(void)state;
	const char *ok_cases[][2] = {
		{ "{\"amount\": 1e309}", "amount" },
		{ "{\"card_id\": 1, \"amount\": -1.5e400}", "amount" },
		{ "{\"seat_ids\": [1, 2e999]}", "seat_ids" },
		{ "{\"a\": {\"b\": 1E+309}, \"c\": 1}", "b" },
		{ "{\"x\\\"y\": 1e309}", "x\"y" },
		{ "{\"amount\": 1e309, \"big\": 99999999999999999999}", "amount" },
	};
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		struct api_error e = parse_fail(ok_cases[i][0], strlen(ok_cases[i][0]));
		assert_int_equal(e.status, 422);
		assert_string_equal(e.slug, "validation");
		assert_string_equal(e.field, ok_cases[i][1]);
	}
	/* Outside any object there is no field to name. */
	struct api_error e = parse_fail("[1e309]", 7);
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "body");
	/* Well-formed numbers, broken document: malformed. */
	const char *bad = "{\"amount\": 1e309,";
	e = parse_fail(bad, strlen(bad));
	assert_int_equal(e.status, 400);
	assert_string_equal(e.slug, "malformed-json");
	/* Underflow is just a small real (refused later as not an integer). */
	json_t *o = parse_ok("{\"amount\": 1e-400}");
	assert_true(json_is_real(json_object_get(o, "amount")));
	json_decref(o);
}

static void test_get_int_accepts(void **state)
{
	(void)state;
	json_t *o = parse_ok("{\"a\": 1000, \"lo\": -5, \"hi\": 5, \"z\": 0, \"neg0\": -0}");
	struct api_error e;
	int64_t v = -1;
	int present = -1;
	assert_int_equal(json_get_int(o, "a", 1, 0, 1000000, &v, &present, &e), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(present, 1);
	/* Bounds are inclusive. */
	assert_int_equal(json_get_int(o, "lo", 1, -5, 5, &v, NULL, &e), 0);
	assert_true(v == -5);
	assert_int_equal(json_get_int(o, "hi", 1, -5, 5, &v, NULL, &e), 0);
	assert_int_equal(v, 5);
	assert_int_equal(json_get_int(o, "z", 1, 0, 0, &v, NULL, &e), 0);
	assert_int_equal(v, 0);
	assert_int_equal(json_get_int(o, "neg0", 1, 0, 10, &v, NULL, &e), 0);
	assert_int_equal(v, 0);
	json_decref(o);

	o = parse_ok("{\"max\": 9223372036854775807, \"min\": -9223372036854775808}");
	assert_int_equal(json_get_int(o, "max", 1, INT64_MIN, INT64_MAX, &v, NULL, &e), 0);
	assert_true(v == INT64_MAX);
	assert_int_equal(json_get_int(o, "min", 1, INT64_MIN, INT64_MAX, &v, NULL, &e), 0);
	assert_true(v == INT64_MIN);
	json_decref(o);
}

static void expect_int_refused(json_t *o, const char *field, int64_t lo, int64_t hi)
{
	struct api_error e;
	memset(&e, 0, sizeof(e));
	int64_t v = 424242;
	if (json_get_int(o, field, 1, lo, hi, &v, NULL, &e) != -1)
		fail_msg("field %s was accepted as %lld", field, (long long)v);
	assert_int_equal(v, 424242); /* *out untouched */
	assert_int_equal(e.status, 422);
	assert_string_equal(e.slug, "validation");
	assert_string_equal(e.field, field);
	assert_non_null(strstr(e.detail, field));
}

static void test_get_int_refuses(void **state)
{
	(void)state;
	json_t *o = parse_ok("{\"real\": 1000.0, \"str\": \"1000\", \"bool\": true, \"exp\": 1e3, "
			     "\"arr\": [1000], \"obj\": {\"v\": 1000}, \"neg\": -1, \"big\": 1001, "
			     "\"frac\": 0.5, \"f\": false}");
	expect_int_refused(o, "real", 0, 100000);
	expect_int_refused(o, "str", 0, 100000);
	expect_int_refused(o, "bool", 0, 100000);
	expect_int_refused(o, "f", 0, 100000);
	expect_int_refused(o, "exp", 0, 100000);
	expect_int_refused(o, "arr", 0, 100000);
	expect_int_refused(o, "obj", 0, 100000);
	expect_int_refused(o, "frac", 0, 100000);
	/* Out of range, one past each bound. */
	expect_int_refused(o, "neg", 0, 1000);
	expect_int_refused(o, "big", 0, 1000);

	struct api_error e;
	int64_t v;
	json_get_int(o, "big", 1, 0, 1000, &v, NULL, &e);
	assert_non_null(strstr(e.message, "1000"));
	json_decref(o);
}

static void test_get_int_required_and_null(void **state)
{
	(void)state;
	json_t *o = parse_ok("{\"n\": null, \"a\": 3}");
	struct api_error e;
	int64_t v = 77;
	int present = -1;

	/* Missing and required. */
	memset(&e, 0, sizeof(e));
	assert_int_equal(json_get_int(o, "missing", 1, 0, 10, &v, &present, &e), -1);
	assert_int_equal(present, 0);
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "missing");
	assert_string_equal(e.message, "is required");
	assert_int_equal(v, 77);

	/* null counts as absent. */
	memset(&e, 0, sizeof(e));
	assert_int_equal(json_get_int(o, "n", 1, 0, 10, &v, &present, &e), -1);
	assert_int_equal(present, 0);
	assert_string_equal(e.field, "n");
	assert_string_equal(e.message, "is required");

	/* Optional: success, not present, *out untouched. */
	present = -1;
	assert_int_equal(json_get_int(o, "missing", 0, 0, 10, &v, &present, &e), 0);
	assert_int_equal(present, 0);
	assert_int_equal(v, 77);
	present = -1;
	assert_int_equal(json_get_int(o, "n", 0, 0, 10, &v, &present, &e), 0);
	assert_int_equal(present, 0);
	assert_int_equal(v, 77);

	/* present may be NULL. */
	assert_int_equal(json_get_int(o, "a", 0, 0, 10, &v, NULL, &e), 0);
	assert_int_equal(v, 3);
	json_decref(o);
}

static void test_get_str(void **state)
{
	(void)state;
	json_t *o = parse_ok("{\"s\": \"hello\", \"empty\": \"\", \"n\": null, \"num\": 5, \"t\": true, "
			     "\"a\": [\"x\"]}");
	struct api_error e;
	const char *out = "sentinel";

	assert_int_equal(json_get_str(o, "s", 1, 5, &out, &e), 0);
	assert_string_equal(out, "hello");
	/* Exactly max_len is fine; one less refuses. */
	memset(&e, 0, sizeof(e));
	assert_int_equal(json_get_str(o, "s", 1, 4, &out, &e), -1);
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "s");
	assert_non_null(strstr(e.message, "4"));

	assert_int_equal(json_get_str(o, "empty", 1, 0, &out, &e), 0);
	assert_string_equal(out, "");

	/* Wrong types. */
	static const char *const wrong[] = { "num", "t", "a" };
	for (size_t i = 0; i < 3; i++) {
		memset(&e, 0, sizeof(e));
		assert_int_equal(json_get_str(o, wrong[i], 1, 100, &out, &e), -1);
		assert_int_equal(e.status, 422);
		assert_string_equal(e.field, wrong[i]);
		assert_string_equal(e.message, "must be a string");
	}

	/* Missing / null: NULL out; error only when required. */
	out = "sentinel";
	assert_int_equal(json_get_str(o, "missing", 0, 10, &out, &e), 0);
	assert_null(out);
	out = "sentinel";
	assert_int_equal(json_get_str(o, "n", 0, 10, &out, &e), 0);
	assert_null(out);
	memset(&e, 0, sizeof(e));
	assert_int_equal(json_get_str(o, "n", 1, 10, &out, &e), -1);
	assert_string_equal(e.field, "n");
	assert_string_equal(e.message, "is required");
	json_decref(o);
}

static void test_get_time(void **state)
{
	(void)state;
	json_t *o = parse_ok("{\"t\": \"2026-11-26T10:00:00Z\", \"local\": \"2026-11-26T10:00:00\","
			     " \"day\": \"2026-02-29T10:00:00Z\", \"n\": null, \"num\": 5}");
	struct api_error e;
	const char *v = NULL;
	assert_int_equal(json_get_time(o, "t", 1, &v, &e), 0);
	assert_string_equal(v, "2026-11-26T10:00:00Z");
	assert_int_equal(json_get_time(o, "n", 0, &v, &e), 0);
	assert_null(v);
	const char *bad[] = { "local", "day", "num" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&e, 0, sizeof(e));
		assert_int_equal(json_get_time(o, bad[i], 0, &v, &e), -1);
		assert_int_equal(e.status, 422);
		assert_string_equal(e.field, bad[i]);
	}
	memset(&e, 0, sizeof(e));
	assert_int_equal(json_get_time(o, "missing", 1, &v, &e), -1);
	assert_string_equal(e.message, "is required");
	json_decref(o);
}

static void test_date_valid(void **state)
{
	(void)state;
	assert_true(date_valid("2026-12-05", 2000, 2100));
	assert_true(date_valid("2028-02-29", 2000, 2100));
	assert_true(date_valid("2000-02-29", 2000, 2100));
	const char *bad[] = { "2026-02-29", "2100-02-29", "2026-13-01", "2026-00-10", "2026-04-31", "2026-1-011",
			      "2026-+1-01", "2026-01- 1", "2026-01-01 ", "2026-01-01T00:00:00Z", "1999-12-31",
			      "2101-01-01", "", "20260101" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (date_valid(bad[i], 2000, 2100))
			fail_msg("\"%s\" should be refused", bad[i]);
}

static void expect_int64(const char *s, int64_t lo, int64_t hi, int64_t want)
{
	int64_t v = 12345;
	if (parse_int64(s, lo, hi, &v) != 0)
		fail_msg("parse_int64(\"%s\") refused", s);
	if (v != want)
		fail_msg("parse_int64(\"%s\") = %lld, want %lld", s, (long long)v, (long long)want);
}

static void expect_int64_refused(const char *s, int64_t lo, int64_t hi)
{
	int64_t v = 12345;
	if (parse_int64(s, lo, hi, &v) != -1)
		fail_msg("parse_int64(\"%s\") accepted as %lld", s ? s : "(null)", (long long)v);
	assert_int_equal(v, 12345);
}

static void test_parse_int64(void **state)
{
	(void)state;
	expect_int64("0", INT64_MIN, INT64_MAX, 0);
	expect_int64("1", 1, 1, 1);
	expect_int64("42", 0, 100, 42);
	expect_int64("-42", -100, 100, -42);
	expect_int64("9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX);
	expect_int64("-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN);
	/* Documented current behaviour: leading zeros and "-0" are accepted. */
	expect_int64("01", 0, 100, 1);
	expect_int64("007", 0, 100, 7);
	expect_int64("-0", 0, 100, 0);

	expect_int64_refused(NULL, INT64_MIN, INT64_MAX);
	expect_int64_refused("", INT64_MIN, INT64_MAX);
	expect_int64_refused("-", INT64_MIN, INT64_MAX);
	expect_int64_refused(" 1", INT64_MIN, INT64_MAX);
	expect_int64_refused("1 ", INT64_MIN, INT64_MAX);
	expect_int64_refused("+1", INT64_MIN, INT64_MAX);
	expect_int64_refused("--1", INT64_MIN, INT64_MAX);
	expect_int64_refused("1-", INT64_MIN, INT64_MAX);
	expect_int64_refused("1.0", INT64_MIN, INT64_MAX);
	expect_int64_refused("1e3", INT64_MIN, INT64_MAX);
	expect_int64_refused("0x10", INT64_MIN, INT64_MAX);
	expect_int64_refused("abc", INT64_MIN, INT64_MAX);
	expect_int64_refused("12\n", INT64_MIN, INT64_MAX);
	expect_int64_refused("\t1", INT64_MIN, INT64_MAX);
	expect_int64_refused("9223372036854775808", INT64_MIN, INT64_MAX);
	expect_int64_refused("-9223372036854775809", INT64_MIN, INT64_MAX);
	expect_int64_refused("99999999999999999999", INT64_MIN, INT64_MAX);
	/* Range. */
	expect_int64_refused("0", 1, INT64_MAX);
	expect_int64_refused("-1", 1, INT64_MAX);
	expect_int64_refused("101", 0, 100);
	expect_int64_refused("-101", -100, 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid_object),
		cmocka_unit_test(test_parse_empty_body),
		cmocka_unit_test(test_parse_not_object),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_huge_integer_names_field),
		cmocka_unit_test(test_parse_huge_integer_in_malformed_body),
		cmocka_unit_test(test_parse_huge_integer_names_right_field),
		cmocka_unit_test(test_parse_real_overflow_names_field),
		cmocka_unit_test(test_get_int_accepts),
		cmocka_unit_test(test_get_int_refuses),
		cmocka_unit_test(test_get_int_required_and_null),
		cmocka_unit_test(test_get_str),
		cmocka_unit_test(test_get_time),
		cmocka_unit_test(test_date_valid),
		cmocka_unit_test(test_parse_int64),
	};
	return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
