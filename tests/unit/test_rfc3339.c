/* Unit tests for rfc3339_valid (src/core/json.h): the check every time
 * parameter and field passes before PostgreSQL sees it. A file of its own,
 * named after the function, so that it stays one file wherever the
 * function lives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/json.h"

static void all(const char *const *times, size_t n, int want)
{
	for (size_t i = 0; i < n; i++)
		if (!rfc3339_valid(times[i]) != !want)
			fail_msg("%s \"%s\"", want ? "refused" : "accepted", times[i]);
}

#define ALL(times, want) all(times, sizeof(times) / sizeof(times[0]), want)

static void test_accepted(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"2026-11-26T10:00:00Z",
		"2026-11-26T05:00:00-05:00",
		"2026-11-26T15:30:00+05:30",
		"2026-01-01T00:00:00Z",
		"2026-12-31T23:59:59Z",
		"1900-01-01T00:00:00Z",
		"9999-12-31T23:59:59Z",
		/* Fractions of any length. */
		"2026-11-26T05:00:00.5-05:00",
		"2026-11-26T10:00:00.123Z",
		"2026-11-26T10:00:00.123456789Z",
		/* The widest offsets. */
		"2026-11-26T10:00:00+23:59",
		"2026-11-26T10:00:00-23:59",
		"2026-11-26T10:00:00+00:00",
		"2026-11-26T10:00:00-00:00",
	};
	ALL(ok, 1);
}

/* The 29th of February in leap years only: every 4th year, but not
 * centuries, but every 400th. */
static void test_leap_years(void **state)
{
	(void)state;
	static const char *const leap[] = {
		"2024-02-29T12:00:00Z", "2028-02-29T12:00:00Z", "2000-02-29T12:00:00Z", "2400-02-29T12:00:00Z",
		"1904-02-29T12:00:00Z",
	};
	static const char *const not_leap[] = {
		"2026-02-29T12:00:00Z", "2025-02-29T12:00:00Z", "1900-02-29T12:00:00Z", "2100-02-29T12:00:00Z",
		"2200-02-29T12:00:00Z", "2300-02-29T12:00:00Z",
	};
	ALL(leap, 1);
	ALL(not_leap, 0);
	/* February never has a 30th. */
	static const char *const never[] = { "2024-02-30T12:00:00Z", "2000-02-31T12:00:00Z" };
	ALL(never, 0);
}

/* The last day of each month, and the day after it. */
static void test_month_lengths(void **state)
{
	(void)state;
	static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	for (int m = 1; m <= 12; m++) {
		char last[32], after[32];
		snprintf(last, sizeof(last), "2026-%02d-%02dT00:00:00Z", m, days[m - 1]);
		snprintf(after, sizeof(after), "2026-%02d-%02dT00:00:00Z", m, days[m - 1] + 1);
		if (!rfc3339_valid(last))
			fail_msg("refused \"%s\"", last);
		if (rfc3339_valid(after))
			fail_msg("accepted \"%s\"", after);
	}
}

static void test_out_of_range_fields(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"2026-00-10T10:00:00Z", "2026-13-10T10:00:00Z", "2026-11-00T10:00:00Z", "2026-11-31T10:00:00Z",
		"2026-11-26T24:00:00Z", "2026-11-26T10:60:00Z",
		/* No leap second: PostgreSQL would not take it either. */
		"2026-12-31T23:59:60Z",
		"2026-11-26T10:00:99Z", "1899-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
		/* Offsets out of range or cut short. */
		"2026-11-26T10:00:00+24:00", "2026-11-26T10:00:00+05:60", "2026-11-26T10:00:00+5:00",
		"2026-11-26T10:00:00+05", "2026-11-26T10:00:00+0500", "2026-11-26T10:00:00+05:00:00",
		"2026-11-26T10:00:00+", "2026-11-26T10:00:00-",
	};
	ALL(bad, 0);
}

/* A fraction has at least one digit, and the zone comes after it. */
static void test_fractions(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"2026-11-26T10:00:00.Z", "2026-11-26T10:00:00.", "2026-11-26T10:00:00.5", "2026-11-26T10:00:00,5Z",
		"2026-11-26T10:00:00.5.5Z", "2026-11-26T10:00:00.x5Z", "2026-11-26T10:00:00Z.5",
	};
	ALL(bad, 0);
}

/* A zone is required: a time without one means a different instant on
 * every server. Other shapes PostgreSQL would take are refused too. */
static void test_garbage_and_empty(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "Z", "T", "2026", "2026-11-26", "2026-11-26T10:00", "2026-11-26T10:00Z", "2026-11-26T10:00:00",
		"2026-11-26 10:00:00Z", "2026-11-26t10:00:00Z", "2026/11/26T10:00:00Z", "26-11-26T10:00:00Z",
		"2026-1-26T10:00:00Z", "2026-11-6T10:00:00Z", "2026-11-26T1:00:00Z", "+2026-11-26T10:00:00Z",
		" 2026-11-26T10:00:00Z", "2026-11-26T10:00:00Z ", "2026-11-26T10:00:00Z\n", "2026-11-26T10:00:00ZZ",
		"2026-11-26T10:00:00UTC", "2026-11-26T10:00:00 +01:00", "now", "today", "tomorrow", "infinity",
		"-infinity", "epoch", "allballs", "2026-11-26T10:00:00Z'; --", "２０２６-11-26T10:00:00Z",
		"2026-11-26T10:00:00+01:00x", "2026-11-26T10:0a:00Z", "abcd-ef-ghTij:kl:mnZ",
	};
	ALL(bad, 0);
}

/* Whatever the input is cut to, the check reads no further than its end
 * (the ASan build would see it). */
static void test_every_prefix(void **state)
{
	(void)state;
	const char *full = "2026-11-26T05:00:00.125-05:00";
	size_t n = strlen(full);
	for (size_t i = 0; i < n; i++) {
		char cut[64];
		memcpy(cut, full, i);
		cut[i] = '\0';
		if (rfc3339_valid(cut))
			fail_msg("accepted the prefix \"%s\"", cut);
	}
	assert_true(rfc3339_valid(full));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepted),
		cmocka_unit_test(test_leap_years),
		cmocka_unit_test(test_month_lengths),
		cmocka_unit_test(test_out_of_range_fields),
		cmocka_unit_test(test_fractions),
		cmocka_unit_test(test_garbage_and_empty),
		cmocka_unit_test(test_every_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
