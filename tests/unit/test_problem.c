/* Unit tests for src/core/problem.{h,c}. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/problem.h"

/* Renders e and parses it back; the document must be valid JSON. */
static json_t *render(const struct api_error *e, const char *instance, const char *request_id)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "");
	problem_render(&b, e, instance, request_id);
	json_error_t je;
	json_t *doc = json_loadb(b.ptr, b.len, JSON_REJECT_DUPLICATES, &je);
	if (!doc) {
		char shown[160];
		snprintf(shown, sizeof(shown), "%s", b.ptr);
		buf_release(&b);
		fail_msg("problem_render produced invalid JSON (%s): %s...", je.text, shown);
	}
	buf_release(&b);
	assert_true(json_is_object(doc));
	return doc;
}

static const char *str_member(json_t *doc, const char *name)
{
	json_t *v = json_object_get(doc, name);
	if (!json_is_string(v))
		fail_msg("member %s missing or not a string", name);
	return json_string_value(v);
}

static void test_api_fail_fills(void **state)
{
	(void)state;
	struct api_error e;
	memset(&e, 0x55, sizeof(e));
	assert_int_equal(api_fail(&e, "not-found", "station %d not found", 42), -1);
	assert_int_equal(e.status, 404);
	assert_string_equal(e.slug, "not-found");
	assert_string_equal(e.detail, "station 42 not found");
	assert_string_equal(e.field, "");
	assert_string_equal(e.message, "");
	assert_null(e.extra);
	assert_int_equal(e.retry_after, 0);
}

static void test_status_table(void **state)
{
	(void)state;
	static const struct {
		const char *slug;
		int status;
	} cases[] = {
		{ "malformed-json", 400 }, { "bad-request", 400 },	  { "unauthorized", 401 },
		{ "insufficient-balance", 402 }, { "forbidden", 403 }, { "not-found", 404 },
		{ "method-not-allowed", 405 }, { "conflict", 409 },	  { "payload-too-large", 413 },
		{ "unsupported-media-type", 415 }, { "validation", 422 }, { "rate-limited", 429 },
		{ "internal", 500 },	   { "unavailable", 503 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(problem_status(cases[i].slug), cases[i].status);
		struct api_error e;
		api_fail(&e, cases[i].slug, "x");
		assert_int_equal(e.status, cases[i].status);
		assert_string_equal(e.slug, cases[i].slug);
		assert_string_not_equal(problem_title(cases[i].slug), "");
	}
	assert_string_equal(problem_title("not-found"), "Not found");
	assert_string_equal(problem_title("validation"), "Validation failed");
	assert_int_equal(problem_status("no-such-slug"), 500);
	assert_string_equal(problem_title("no-such-slug"), "Internal error");
}

static void test_unknown_slug_falls_back_to_internal(void **state)
{
	(void)state;
	struct api_error e;
	assert_int_equal(api_fail(&e, "teapot", "short and stout"), -1);
	assert_int_equal(e.status, 500);
	assert_string_equal(e.slug, "internal");
	assert_string_equal(e.detail, "short and stout");

	json_t *doc = render(&e, "/x", "r1");
	assert_string_equal(str_member(doc, "type"), "/problems/internal");
	assert_string_equal(str_member(doc, "title"), "Internal error");
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), 500);
	json_decref(doc);
}

static void test_render_basic(void **state)
{
	(void)state;
	struct api_error e;
	api_fail(&e, "not-found", "card %d does not exist", 7);
	json_t *doc = render(&e, "/api/v1/cards/7", "req-123");
	assert_string_equal(str_member(doc, "type"), "/problems/not-found");
	assert_string_equal(str_member(doc, "title"), "Not found");
	assert_true(json_is_integer(json_object_get(doc, "status")));
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), 404);
	assert_string_equal(str_member(doc, "detail"), "card 7 does not exist");
	assert_string_equal(str_member(doc, "instance"), "/api/v1/cards/7");
	assert_string_equal(str_member(doc, "request_id"), "req-123");
	/* No field set: no errors array. */
	assert_null(json_object_get(doc, "errors"));
	assert_int_equal(json_object_size(doc), 6);
	json_decref(doc);
}

static void test_render_defaults(void **state)
{
	(void)state;
	struct api_error e;
	api_fail(&e, "conflict", "%s", "");
	/* Empty detail falls back to the title; NULL instance / request id
	 * render as empty strings. */
	json_t *doc = render(&e, NULL, NULL);
	assert_string_equal(str_member(doc, "detail"), "Conflict");
	assert_string_equal(str_member(doc, "instance"), "");
	assert_string_equal(str_member(doc, "request_id"), "");
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), 409);
	json_decref(doc);
}

static void test_render_escapes_detail(void **state)
{
	(void)state;
	struct api_error e;
	api_fail(&e, "bad-request", "bad \"value\" \\ here\nline2 \x01");
	json_t *doc = render(&e, "/p?q=\"x\"", "id\"1");
	assert_string_equal(str_member(doc, "detail"), "bad \"value\" \\ here\nline2 \x01");
	assert_string_equal(str_member(doc, "instance"), "/p?q=\"x\"");
	assert_string_equal(str_member(doc, "request_id"), "id\"1");
	json_decref(doc);
}

static void test_api_fail_detail_truncated(void **state)
{
	(void)state;
	struct api_error e;
	char longs[1000];
	memset(longs, 'd', sizeof(longs) - 1);
	longs[sizeof(longs) - 1] = '\0';
	api_fail(&e, "bad-request", "%s", longs);
	assert_int_equal(strlen(e.detail), sizeof(e.detail) - 1);
	json_t *doc = render(&e, "/", "r");
	assert_int_equal(strlen(str_member(doc, "detail")), sizeof(e.detail) - 1);
	json_decref(doc);
}

/* Regression (src/core/problem.c api_fail / api_fail_field): vsnprintf cuts
 * detail at 255 bytes without regard to UTF-8, so a long detail made of
 * multibyte characters (e.g. src/api/static.c puts the client's req->path in
 * it) ends in half a character and the rendered problem is not valid UTF-8:
 * jansson refuses it with "unable to decode byte 0xc3". */
static void test_detail_truncation_keeps_utf8_valid(void **state)
{
	(void)state;
	char s[401];
	for (int i = 0; i < 200; i++) {
		s[2 * i] = (char)0xc3; /* U+00E9 */
		s[2 * i + 1] = (char)0xa9;
	}
	s[400] = '\0';
	struct api_error e;
	api_fail(&e, "not-found", "%s", s);
	json_t *doc = render(&e, "/", "r");
	json_decref(doc);
}

static void test_api_fail_field(void **state)
{
	(void)state;
	struct api_error e;
	memset(&e, 0x33, sizeof(e));
	assert_int_equal(api_fail_field(&e, "amount", "must be between %d and %d", 1, 100), -1);
	assert_int_equal(e.status, 422);
	assert_string_equal(e.slug, "validation");
	assert_string_equal(e.field, "amount");
	assert_string_equal(e.message, "must be between 1 and 100");
	assert_string_equal(e.detail, "amount must be between 1 and 100");
	assert_null(e.extra);

	json_t *doc = render(&e, "/api/v1/cards/1/topups", "rid");
	assert_string_equal(str_member(doc, "type"), "/problems/validation");
	assert_string_equal(str_member(doc, "title"), "Validation failed");
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), 422);
	assert_string_equal(str_member(doc, "detail"), "amount must be between 1 and 100");
	json_t *errors = json_object_get(doc, "errors");
	assert_true(json_is_array(errors));
	assert_int_equal(json_array_size(errors), 1);
	json_t *first = json_array_get(errors, 0);
	assert_string_equal(str_member(first, "field"), "amount");
	assert_string_equal(str_member(first, "message"), "must be between 1 and 100");
	json_decref(doc);
}

static void test_field_with_quotes_escaped(void **state)
{
	(void)state;
	struct api_error e;
	api_fail_field(&e, "we\"ird", "is \"bad\"");
	json_t *doc = render(&e, "/", "r");
	json_t *first = json_array_get(json_object_get(doc, "errors"), 0);
	assert_string_equal(str_member(first, "field"), "we\"ird");
	assert_string_equal(str_member(first, "message"), "is \"bad\"");
	json_decref(doc);
}

static void test_extra_members(void **state)
{
	(void)state;
	struct api_error e;
	api_fail(&e, "insufficient-balance", "balance too low");
	e.extra = "\"balance\":150,\"required\":{\"amount\":300}";
	json_t *doc = render(&e, "/api/v1/trips", "r9");
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), 402);
	assert_int_equal(json_integer_value(json_object_get(doc, "balance")), 150);
	json_t *req = json_object_get(doc, "required");
	assert_true(json_is_object(req));
	assert_int_equal(json_integer_value(json_object_get(req, "amount")), 300);
	assert_null(json_object_get(doc, "errors"));
	assert_int_equal(json_object_size(doc), 8);
	json_decref(doc);

	/* Extra together with a field error: both present. */
	api_fail_field(&e, "seat", "is taken");
	e.extra = "\"seat_no\":12";
	doc = render(&e, "/", "r");
	assert_true(json_is_array(json_object_get(doc, "errors")));
	assert_int_equal(json_integer_value(json_object_get(doc, "seat_no")), 12);
	json_decref(doc);

	/* Empty extra string adds nothing (and stays valid JSON). */
	api_fail(&e, "forbidden", "no");
	e.extra = "";
	doc = render(&e, "/", "r");
	assert_int_equal(json_object_size(doc), 6);
	json_decref(doc);
}

static void test_render_appends(void **state)
{
	(void)state;
	struct buf b = BUF_INIT;
	buf_adds(&b, "PREFIX");
	struct api_error e;
	api_fail(&e, "unavailable", "down");
	problem_render(&b, &e, "/", "r");
	assert_memory_equal(b.ptr, "PREFIX{", 7);
	assert_int_equal(b.ptr[b.len - 1], '}');
	json_t *doc = json_loads(b.ptr + 6, 0, NULL);
	assert_non_null(doc);
	assert_int_equal(json_integer_value(json_object_get(doc, "status")), 503);
	json_decref(doc);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_fail_fills),
		cmocka_unit_test(test_status_table),
		cmocka_unit_test(test_unknown_slug_falls_back_to_internal),
		cmocka_unit_test(test_render_basic),
		cmocka_unit_test(test_render_defaults),
		cmocka_unit_test(test_render_escapes_detail),
		cmocka_unit_test(test_api_fail_detail_truncated),
		cmocka_unit_test(test_detail_truncation_keeps_utf8_valid),
		cmocka_unit_test(test_api_fail_field),
		cmocka_unit_test(test_field_with_quotes_escaped),
		cmocka_unit_test(test_extra_members),
		cmocka_unit_test(test_render_appends),
	};
	return cmocka_run_group_tests_name("problem", tests, NULL, NULL);
}
