/* Unit tests for src/core/text.{h,c}: names fold alike whatever their case,
 * accents and blanks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/text.h"

static void test_fold(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	assert_string_equal(text_fold(&a, "Facatativá"), "facatativa");
	assert_string_equal(text_fold(&a, "FACATATIVÁ"), "facatativa");
	assert_string_equal(text_fold(&a, "Estación de la SABANA"), "estacion de la sabana");
	assert_string_equal(text_fold(&a, "Kennedy "), "kennedy ");
	assert_string_equal(text_fold(&a, "Ñuñoa Çà Øre Ÿ ÿ"), "nunoa ca ore Ÿ y");
	assert_string_equal(text_fold(&a, "Straße Æble ×"), "straße Æble ×");
	assert_string_equal(text_fold(&a, ""), "");
	assert_string_equal(text_fold(&a, " \t"), " \t");
	/* A lone lead byte at the end is kept, not read past. */
	assert_string_equal(text_fold(&a, "ab\xc3"), "ab\xc3");
	assert_string_equal(text_fold(&a, "\xc3" "A"), "\xc3" "a");
	arena_release(&a);
}

static void test_utf8(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
		{ "", 1 }, { "Bogotá", 1 }, { "\xe2\x82\xac", 1 }, { "\xf0\x9f\x9a\x87", 1 },
		{ "\xff", 0 }, { "\xc3", 0 }, { "\xc0\xaf", 0 },          /* overlong '/' */
		{ "\xe0\x80\xaf", 0 }, { "\xed\xa0\x80", 0 },           /* overlong, surrogate */
		{ "\xf4\x90\x80\x80", 0 }, { "\xf5\x80\x80\x80", 0 }, /* past U+10FFFF */
		{ "a\x80", 0 }, { "\xe2\x82", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (text_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
			fail_msg("case %zu", i);
	assert_false(text_utf8_valid("a\0b", 3)); /* NUL */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold),
		cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
