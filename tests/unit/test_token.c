/* Unit tests for src/auth/token.c: which JWT secrets are refused, and the
 * header check in front of libjwt. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

static int refused(const char *secret)
{
	char err[256];
	return auth_secret_check(secret, err, sizeof(err)) != 0;
}

static void test_placeholders_and_weak_secrets_refused(void **state)
{
	(void)state;
	/* The example the Kubernetes manifests used to carry, and its kind. */
	assert_true(refused("CHANGE-ME-at-least-32-random-bytes"));
	assert_true(refused("change-me-local-only-0123456789abcdef0123456789"));
	assert_true(refused("please-replace-me-with-something-long-enough"));
	assert_true(refused("my-super-secret-key-for-jwt-tokens-2026"));
	assert_true(refused("example-jwt-signing-key-0000000000000000"));
	/* Long enough, but no entropy to speak of. */
	assert_true(refused("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_true(refused("abcabcabcabcabcabcabcabcabcabcabcabcabcabc"));
	assert_true(refused("0123456789abcdefghijklmnopqrstuvwxyzABCDEF"));
	assert_true(refused("another-secret-yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"));
	assert_true(refused("Tr4nsitd!Tr4nsitd!Tr4nsitd!Tr4nsitd!Tr4nsitd!"));
	/* Too short whatever it holds. */
	assert_true(refused("Zq8#kP2$wL9@"));
	assert_true(refused(""));
	char err[256];
	auth_secret_check("CHANGE-ME-at-least-32-random-bytes", err, sizeof(err));
	assert_non_null(strstr(err, "JWT_SECRET"));
	assert_non_null(strstr(err, "/dev/urandom"));
}

static void test_random_secrets_accepted(void **state)
{
	(void)state;
	/* What the README says to run, in base64 and in hex, many times over. */
	for (int i = 0; i < 2000; i++) {
		unsigned char raw[48];
		char b64[sodium_base64_ENCODED_LEN(48, sodium_base64_VARIANT_ORIGINAL)], hex[2 * 32 + 1];
		randombytes_buf(raw, sizeof(raw));
		sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
		sodium_bin2hex(hex, sizeof(hex), raw, 32);
		char err[256];
		if (auth_secret_check(b64, err, sizeof(err)) || auth_secret_check(hex, err, sizeof(err)))
			fail_msg("refused a random secret: %s", err);
	}
	/* The test setup's own form. */
	assert_false(refused("test-secret-Qm9Yx3Lk8Zp2Wv7Rt5Nc1Hs6Jd4Fg0BaE"));
}

static void test_configure_refuses_weak_secret(void **state)
{
	(void)state;
	struct config c;
	memset(&c, 0, sizeof(c));
	c.jwt_secret = "CHANGE-ME-at-least-32-random-bytes";
	char err[256];
	assert_int_equal(auth_configure(&c, err, sizeof(err)), -1);
}

/* The header must say HS256, whatever the rest says. */
static void test_header_check(void **state)
{
	(void)state;
	/* {"alg":"HS256","typ":"JWT"} */
	assert_true(token_header_is_hs256("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.x"));
	/* {"alg":"none"} */
	assert_false(token_header_is_hs256("eyJhbGciOiJub25lIn0.e30."));
	/* {"alg":"HS512"} */
	assert_false(token_header_is_hs256("eyJhbGciOiJIUzUxMiJ9.e30.x"));
	assert_false(token_header_is_hs256(".e30.x"));
	assert_false(token_header_is_hs256("no-dot-at-all"));
	assert_false(token_header_is_hs256("!!!!.e30.x"));
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placeholders_and_weak_secrets_refused),
		cmocka_unit_test(test_random_secrets_accepted),
		cmocka_unit_test(test_configure_refuses_weak_secret),
		cmocka_unit_test(test_header_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
