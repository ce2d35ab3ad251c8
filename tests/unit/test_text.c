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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
