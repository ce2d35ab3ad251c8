/* Unit tests for the webhook signature and the secret check (src/domain/payments.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "domain/payments.h"

#define KEY "unit-test-webhook-secret-0123456789abcdef"
#define BODY "{\"event_id\":\"evt_1\",\"type\":\"payment.approved\",\"payment_id\":42,\"amount\":20000}"
/* HMAC-SHA256(KEY, "1700000000." BODY), computed outside this code (Python's hmac). */
#define MAC "771d96ac717e0150e36e13f9da65aa5fe5390463c4f708ff082dc28b7b6d0c67"
#define T0 1700000000

static enum payment_sig verify(const char *header, const char *body, int64_t now)
{
	int64_t t = -1;
	return payment_signature_verify(KEY, header, body, strlen(body), now, &t);
}

static void test_known_vector(void **state)
{
	(void)state;
	char sig[PAYMENT_SIGNATURE_MAX];
	payment_signature_make(KEY, T0, BODY, strlen(BODY), sig, sizeof(sig));
	assert_string_equal(sig, "t=1700000000,v1=" MAC);
	int64_t t = 0;
	assert_int_equal(payment_signature_verify(KEY, sig, BODY, strlen(BODY), T0, &t), PAYMENT_SIG_OK);
	assert_int_equal(t, T0);
}

static void test_tolerance_is_300_seconds_either_way(void **state)
{
	(void)state;
	const char *h = "t=1700000000,v1=" MAC;
	assert_int_equal(verify(h, BODY, T0 + 300), PAYMENT_SIG_OK);
	assert_int_equal(verify(h, BODY, T0 - 300), PAYMENT_SIG_OK);
	assert_int_equal(verify(h, BODY, T0 + 301), PAYMENT_SIG_STALE);
	assert_int_equal(verify(h, BODY, T0 - 301), PAYMENT_SIG_STALE);
}

static void test_any_change_breaks_it(void **state)
{
	(void)state;
	/* another body, another time, another key, one digit of the MAC */
	assert_int_equal(verify("t=1700000000,v1=" MAC, BODY " ", T0), PAYMENT_SIG_MISMATCH);
	assert_int_equal(verify("t=1700000001,v1=" MAC, BODY, T0), PAYMENT_SIG_MISMATCH);
	assert_int_equal(verify("t=01700000000,v1=" MAC, BODY, T0), PAYMENT_SIG_MISMATCH);
	int64_t t;
	assert_int_equal(payment_signature_verify("another-key-0123456789abcdefghijklmnop", "t=1700000000,v1=" MAC, BODY,
						  strlen(BODY), T0, &t),
			 PAYMENT_SIG_MISMATCH);
	char h[128];
	snprintf(h, sizeof(h), "t=1700000000,v1=%s", MAC);
	h[sizeof("t=1700000000,v1=") - 1] ^= 1; /* '7' -> '6' */
	assert_int_equal(verify(h, BODY, T0), PAYMENT_SIG_MISMATCH);
	/* Upper-case hex is the same MAC. */
	char upper[128];
	snprintf(upper, sizeof(upper), "t=1700000000,v1=%s", MAC);
	for (char *p = upper + 16; *p; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	assert_int_equal(verify(upper, BODY, T0), PAYMENT_SIG_OK);
}

static void test_binary_body(void **state)
{
	(void)state;
	static const char body[] = { 'a', '\0', 'b' };
	char sig[PAYMENT_SIGNATURE_MAX];
	int64_t t;
	payment_signature_make(KEY, T0, body, sizeof(body), sig, sizeof(sig));
	assert_int_equal(payment_signature_verify(KEY, sig, body, sizeof(body), T0, &t), PAYMENT_SIG_OK);
	/* the NUL and what follows it are signed too */
	assert_int_equal(payment_signature_verify(KEY, sig, body, 1, T0, &t), PAYMENT_SIG_MISMATCH);
}

static void test_header_shapes(void **state)
{
	(void)state;
	const char *zero = "0000000000000000000000000000000000000000000000000000000000000000";
	char h[1024]; /* holds the nine v1 entries below whole (ASan saw them overrun 512) */
	/* order, spaces and several v1 (a rotated secret) */
	assert_int_equal(verify("v1=" MAC ",t=1700000000", BODY, T0), PAYMENT_SIG_OK);
	assert_int_equal(verify(" t=1700000000 , v1=" MAC " ", BODY, T0), PAYMENT_SIG_OK);
	snprintf(h, sizeof(h), "t=1700000000,v1=%s,v1=%s,v0=whatever", zero, MAC);
	assert_int_equal(verify(h, BODY, T0), PAYMENT_SIG_OK);
	snprintf(h, sizeof(h), "t=1700000000,v1=%s", zero);
	assert_int_equal(verify(h, BODY, T0), PAYMENT_SIG_MISMATCH);

	assert_int_equal(verify(NULL, BODY, T0), PAYMENT_SIG_MISSING);
	assert_int_equal(verify("", BODY, T0), PAYMENT_SIG_MISSING);
	static const char *const malformed[] = {
		"t=1700000000",
		"v1=" MAC,
		"t=,v1=" MAC,
		"t=17e8,v1=" MAC,
		"t=-1700000000,v1=" MAC,
		"t=1700000000000,v1=" MAC, /* 13 digits */
		"t=1700000000,t=1700000000,v1=" MAC,
		"t=1700000000,v1=" MAC "00",
		"t=1700000000,v1=771d96",
		"t=1700000000,v1=zz1d96ac717e0150e36e13f9da65aa5fe5390463c4f708ff082dc28b7b6d0c67",
		"t=1700000000;v1=" MAC,
		"sha256=" MAC,
		",,,",
	};
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		if (verify(malformed[i], BODY, T0) != PAYMENT_SIG_MALFORMED)
			fail_msg("accepted as well-formed: %s", malformed[i]);
	/* more than 8 v1 entries (8 are well-formed), and an oversized header */
	int n = snprintf(h, sizeof(h), "t=1700000000");
	for (int i = 0; i < 8; i++)
		n += snprintf(h + n, sizeof(h) - (size_t)n, ",v1=%s", zero);
	assert_true((size_t)n < sizeof(h));
	assert_int_equal(verify(h, BODY, T0), PAYMENT_SIG_MISMATCH);
	n += snprintf(h + n, sizeof(h) - (size_t)n, ",v1=%s", zero);
	assert_true((size_t)n < sizeof(h));
	assert_int_equal(verify(h, BODY, T0), PAYMENT_SIG_MALFORMED);
	char big[2048];
	memset(big, ' ', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "t=1700000000,v1=" MAC, strlen("t=1700000000,v1=" MAC));
	assert_int_equal(verify(big, BODY, T0), PAYMENT_SIG_MALFORMED);
}

static void test_reasons_name_no_secret(void **state)
{
	(void)state;
	for (int s = PAYMENT_SIG_OK; s <= PAYMENT_SIG_STALE; s++) {
		const char *r = payment_sig_reason((enum payment_sig)s);
		assert_non_null(r);
		assert_true(strlen(r) > 5);
		assert_null(strstr(r, KEY));
	}
}

static void test_secret_strength(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(payment_secret_check(KEY, err, sizeof(err)), 0);
	assert_int_equal(payment_secret_check("0123456789abcdef0123456789abcdef", err, sizeof(err)), 0);
	static const char *const weak[] = {
		"",
		"short-secret",
		"0123456789abcdef0123456789abcde", /* 31 bytes */
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"abababababababababababababababababababab",
		"abcdefghiabcdefghiabcdefghiabcdefghi", /* 9 different */
	};
	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
		memset(err, 0, sizeof(err));
		if (payment_secret_check(weak[i], err, sizeof(err)) != -1)
			fail_msg("accepted as a secret: \"%s\"", weak[i]);
		assert_non_null(strstr(err, "PAYMENT_WEBHOOK_SECRET"));
		assert_null(strchr(err, '\n'));
		if (*weak[i])
			assert_null(strstr(err, weak[i]));
	}
}

static void test_outcome_names(void **state)
{
	(void)state;
	static const char *const names[] = { "credited", "declined", "expired", "no-effect", "unknown-payment",
					     "amount-mismatch" };
	for (int o = PAYMENT_CREDITED; o <= PAYMENT_AMOUNT_MISMATCH; o++)
		assert_string_equal(payment_outcome_name((enum payment_outcome)o), names[o]);
}

static void test_sandbox_signs_only_in_sandbox(void **state)
{
	(void)state;
	/* Before payments_configure the provider is the sandbox. */
	char sig[PAYMENT_SIGNATURE_MAX];
	assert_int_equal(payment_provider()->sandbox, 1);
	assert_string_equal(payment_provider()->checkout_template, "/checkout/{payment_id}");
	assert_int_equal(payment_sandbox_signature(BODY, strlen(BODY), sig, sizeof(sig)), 0);
	assert_int_equal(strncmp(sig, "t=", 2), 0);

	struct config cfg;
	char err[256];
	memset(&cfg, 0, sizeof(cfg));
	cfg.payment_provider = "external";
	cfg.payment_webhook_secret = KEY;
	cfg.payment_ttl_s = 60;
	cfg.payment_checkout_url = "https://pay.example/{payment_id}";
	assert_int_equal(payments_configure(&cfg, err, sizeof(err)), 0);
	assert_int_equal(payment_provider()->sandbox, 0);
	assert_string_equal(payment_provider()->checkout_template, "https://pay.example/{payment_id}");
	memset(sig, 'x', sizeof(sig));
	assert_int_equal(payment_sandbox_signature(BODY, strlen(BODY), sig, sizeof(sig)), -1);
	assert_int_equal(sig[0], 'x');

	cfg.payment_webhook_secret = "weak";
	assert_int_equal(payments_configure(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "PAYMENT_WEBHOOK_SECRET"));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_vector),
		cmocka_unit_test(test_tolerance_is_300_seconds_either_way),
		cmocka_unit_test(test_any_change_breaks_it),
		cmocka_unit_test(test_binary_body),
		cmocka_unit_test(test_header_shapes),
		cmocka_unit_test(test_reasons_name_no_secret),
		cmocka_unit_test(test_secret_strength),
		cmocka_unit_test(test_outcome_names),
		cmocka_unit_test(test_sandbox_signs_only_in_sandbox),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
