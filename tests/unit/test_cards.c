/* Unit tests for card numbers (src/domain/cards.c) and the strict reading of
 * a recharge amount (json_parse_body + json_get_int with the recharge bounds). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "domain/cards.h"

/* Independent Luhn check (not the code under test). */
static int luhn_ok(const char *s)
{
	size_t n = strlen(s);
	int sum = 0;
	for (size_t i = 0; i < n; i++) {
		int d = s[n - 1 - i] - '0';
		if (i % 2 == 1) {
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
	}
	return sum % 10 == 0;
}

static void assert_card_number_shape(const char *s)
{
	if (strlen(s) != 16)
		fail_msg("%s: length %zu, want 16", s, strlen(s));
	for (int i = 0; i < 16; i++)
		if (s[i] < '0' || s[i] > '9')
			fail_msg("%s: non-digit at %d", s, i);
	if (s[0] == '0')
		fail_msg("%s: leading zero", s);
	if (!luhn_ok(s))
		fail_msg("%s: Luhn check digit wrong", s);
}

static void test_generate_one(void **state)
{
	(void)state;
	char n[17];
	memset(n, 'x', sizeof(n));
	card_number_generate(n);
	assert_int_equal(n[16], '\0');
	assert_card_number_shape(n);
}

static int cmp16(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

static void test_generate_many_valid_and_distinct(void **state)
{
	(void)state;
	enum { N = 10000 };
	char(*all)[17] = calloc(N, sizeof(*all));
	assert_non_null(all);
	int first_digit[10] = { 0 };
	int check_digit[10] = { 0 };
	for (int i = 0; i < N; i++) {
		card_number_generate(all[i]);
		assert_card_number_shape(all[i]);
		first_digit[all[i][0] - '0']++;
		check_digit[all[i][15] - '0']++;
	}
	/* 10^15 possible numbers: a duplicate among 10,000 has probability ~5e-8. */
	qsort(all, N, sizeof(*all), cmp16);
	for (int i = 1; i < N; i++)
		if (!memcmp(all[i - 1], all[i], 16))
			fail_msg("duplicate card number %s", all[i]);
	/* Every leading digit 1..9 and every check digit 0..9 shows up. */
	assert_int_equal(first_digit[0], 0);
	for (int d = 1; d <= 9; d++)
		if (first_digit[d] == 0)
			fail_msg("leading digit %d never generated", d);
	for (int d = 0; d <= 9; d++)
		if (check_digit[d] == 0)
			fail_msg("check digit %d never generated", d);
	free(all);
}

/* ------------------------------------------------------------------------
 * Amount parsing, as POST /cards/recharge does it. */

struct amount_case {
	const char *body;
	int status;        /* 0 = accepted */
	const char *field; /* for 422 */
	int64_t value;     /* for accepted */
};

/* Runs body through json_parse_body and, when that succeeds, json_get_int for
 * "amount"; returns 0 with *value, or the error. */
static int read_amount(const char *body, int64_t *value, struct api_error *e)
{
	json_t *o = NULL;
	memset(e, 0, sizeof(*e));
	if (json_parse_body(body, strlen(body), &o, e))
		return -1;
	int present = -1;
	int64_t v = -12345;
	int rc = json_get_int(o, "amount", 1, RECHARGE_MIN, RECHARGE_MAX, &v, &present, e);
	json_decref(o);
	if (rc == 0)
		*value = v;
	return rc;
}

static void check_cases(const struct amount_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct amount_case *c = &cases[i];
		struct api_error e;
		int64_t v = -1;
		int rc = read_amount(c->body, &v, &e);
		if (c->status == 0) {
			if (rc != 0)
				fail_msg("%s: refused (%d %s %s), want accepted", c->body, e.status, e.slug, e.field);
			if (v != c->value)
				fail_msg("%s: got %lld, want %lld", c->body, (long long)v, (long long)c->value);
			continue;
		}
		if (rc != -1)
			fail_msg("%s: accepted as %lld, want %d", c->body, (long long)v, c->status);
		if (e.status != c->status)
			fail_msg("%s: status %d (%s), want %d", c->body, e.status, e.slug ? e.slug : "?", c->status);
		if (c->status == 422) {
			if (strcmp(e.slug, "validation"))
				fail_msg("%s: slug %s, want validation", c->body, e.slug);
			if (strcmp(e.field, c->field))
				fail_msg("%s: field \"%s\", want \"%s\"", c->body, e.field, c->field);
			if (!e.message[0])
				fail_msg("%s: no message for the field", c->body);
		} else if (c->status == 400) {
			if (strcmp(e.slug, "malformed-json"))
				fail_msg("%s: slug %s, want malformed-json", c->body, e.slug);
			if (e.field[0])
				fail_msg("%s: a 400 names field %s", c->body, e.field);
		}
	}
}

static void test_amount_accepted(void **state)
{
	(void)state;
	static const struct amount_case cases[] = {
		{ "{\"card_id\": 1, \"amount\": 1000}", 0, NULL, 1000 },
		{ "{\"card_id\": 1, \"amount\": 500000}", 0, NULL, 500000 },
		{ "{\"amount\": 1001}", 0, NULL, 1001 },
		{ "{\"amount\": 499999}", 0, NULL, 499999 },
		{ " {\"amount\":\n 20000 } \n", 0, NULL, 20000 },
		{ "{\"amount\": 5000, \"unknown\": [1, {\"x\": 2.5}]}", 0, NULL, 5000 }, /* unknown fields ignored */
	};
	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_amount_refused_422(void **state)
{
	(void)state;
	static const struct amount_case cases[] = {
		{ "{\"amount\": 999}", 422, "amount", 0 },
		{ "{\"amount\": 500001}", 422, "amount", 0 },
		{ "{\"amount\": 0}", 422, "amount", 0 },
		{ "{\"amount\": -1000}", 422, "amount", 0 },
		{ "{\"amount\": -1}", 422, "amount", 0 },
		{ "{\"amount\": 1000.0}", 422, "amount", 0 },
		{ "{\"amount\": 1000.5}", 422, "amount", 0 },
		{ "{\"amount\": \"1000\"}", 422, "amount", 0 },
		{ "{\"amount\": 1e3}", 422, "amount", 0 },
		{ "{\"amount\": 1E3}", 422, "amount", 0 },
		{ "{\"amount\": true}", 422, "amount", 0 },
		{ "{\"amount\": false}", 422, "amount", 0 },
		{ "{\"amount\": null}", 422, "amount", 0 },
		{ "{\"amount\": [1000]}", 422, "amount", 0 },
		{ "{\"amount\": {\"value\": 1000}}", 422, "amount", 0 },
		{ "{}", 422, "amount", 0 },
		{ "{\"card_id\": 1}", 422, "amount", 0 },
		{ "{\"Amount\": 1000}", 422, "amount", 0 }, /* names are case-sensitive */
		{ "{\"amount\": 9223372036854775807}", 422, "amount", 0 },
		{ "{\"amount\": -9223372036854775808}", 422, "amount", 0 },
		/* Beyond 64 bits: jansson refuses it; the error still names the field. */
		{ "{\"amount\": 99999999999999999999}", 422, "amount", 0 },
		{ "{\"card_id\": 1, \"amount\": 99999999999999999999}", 422, "amount", 0 },
		{ "{\"amount\": -99999999999999999999}", 422, "amount", 0 },
		{ "{\"amount\": 1000, \"other\": 99999999999999999999}", 422, "other", 0 },
		/* A body that is JSON but not an object. */
		{ "[1000]", 422, "body", 0 },
		{ "[{\"amount\": 1000}]", 422, "body", 0 },
	};
	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_amount_malformed_400(void **state)
{
	(void)state;
	static const struct amount_case cases[] = {
		{ "{\"amount\": NaN}", 400, NULL, 0 },
		{ "{\"amount\": nan}", 400, NULL, 0 },
		{ "{\"amount\": Infinity}", 400, NULL, 0 },
		{ "{\"amount\": -Infinity}", 400, NULL, 0 },
		{ "{\"amount\": 1000} x", 400, NULL, 0 },
		{ "{\"amount\": 1000}}", 400, NULL, 0 },
		{ "{\"amount\": 1000}{}", 400, NULL, 0 },
		{ "{\"amount\": 1000", 400, NULL, 0 },
		{ "{\"amount\": 01000}", 400, NULL, 0 },
		{ "{\"amount\": +1000}", 400, NULL, 0 },
		{ "{\"amount\": 0x3e8}", 400, NULL, 0 },
		{ "{\"amount\": 1000,}", 400, NULL, 0 },
		{ "{'amount': 1000}", 400, NULL, 0 },
		{ "{amount: 1000}", 400, NULL, 0 },
		{ "{\"amount\": 1000, \"amount\": 2000}", 400, NULL, 0 }, /* duplicate keys refused */
		{ "not json", 400, NULL, 0 },
		{ "", 400, NULL, 0 },
	};
	check_cases(cases, sizeof(cases) / sizeof(cases[0]));
}

static void test_other_recharge_fields(void **state)
{
	(void)state;
	/* card_id and recharge_point_id as cards_recharge reads them. */
	const char *body = "{\"card_id\": \"1; DROP TABLE cards\", \"amount\": 1000, \"recharge_point_id\": 0}";
	json_t *o = NULL;
	struct api_error e;
	memset(&e, 0, sizeof(e));
	assert_int_equal(json_parse_body(body, strlen(body), &o, &e), 0);
	int64_t v = 0;
	int present = 0;
	assert_int_equal(json_get_int(o, "card_id", 1, 1, INT64_MAX, &v, NULL, &e), -1);
	assert_int_equal(e.status, 422);
	assert_string_equal(e.field, "card_id");
	assert_int_equal(json_get_int(o, "recharge_point_id", 0, 1, INT32_MAX, &v, &present, &e), -1);
	assert_string_equal(e.field, "recharge_point_id");
	assert_int_equal(present, 1);
	json_decref(o);

	/* recharge_point_id absent or null: optional, not present. */
	const char *b2 = "{\"amount\": 1000, \"recharge_point_id\": null}";
	assert_int_equal(json_parse_body(b2, strlen(b2), &o, &e), 0);
	v = 77;
	present = 1;
	assert_int_equal(json_get_int(o, "recharge_point_id", 0, 1, INT32_MAX, &v, &present, &e), 0);
	assert_int_equal(present, 0);
	assert_int_equal(v, 77); /* untouched */
	assert_int_equal(json_get_int(o, "card_id", 1, 1, INT64_MAX, &v, &present, &e), -1);
	assert_string_equal(e.field, "card_id");
	assert_int_equal(present, 0);
	json_decref(o);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_one),
		cmocka_unit_test(test_generate_many_valid_and_distinct),
		cmocka_unit_test(test_amount_accepted),
		cmocka_unit_test(test_amount_refused_422),
		cmocka_unit_test(test_amount_malformed_400),
		cmocka_unit_test(test_other_recharge_fields),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
