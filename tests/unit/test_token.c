/* Unit tests for src/auth/token.c: which JWT secrets are refused, the
 * header check in front of libjwt, and the memo of verified tokens. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* Verified tokens are remembered by a digest of their bytes: a second
 * verification agrees with the first, any other bytes are verified afresh
 * (a forged signature stays forged), and a remembered token is still
 * checked for expiry and against the revocation list. */
static void test_verified_tokens_remembered(void **state)
{
	(void)state;
	static struct config c;
	memset(&c, 0, sizeof(c));
	c.jwt_secret = "test-secret-Qm9Yx3Lk8Zp2Wv7Rt5Nc1Hs6Jd4Fg0BaE";
	c.access_token_ttl_s = 600;
	char err[256];
	assert_int_equal(auth_configure(&c, err, sizeof(err)), 0);
	revocation_clear();
	revocation_set_current(1);
	char fam[48], jti[48];
	int64_t exp;
	token_random(fam);
	char *tok = token_issue(77, ROLE_RIDER, fam, jti, &exp);
	assert_non_null(tok);
	for (int i = 0; i < 3; i++) {
		struct principal p;
		memset(&p, 0, sizeof(p));
		assert_int_equal(token_verify(tok, &p), TOKEN_OK);
		assert_int_equal(p.user_id, 77);
		assert_int_equal(p.role, ROLE_RIDER);
		assert_string_equal(p.jti, jti);
		assert_int_equal(p.exp, exp);
	}
	/* One byte of the signature changed: refused, though the token is remembered. */
	char *forged = strdup(tok);
	size_t n = strlen(forged);
	forged[n - 2] = forged[n - 2] == 'A' ? 'B' : 'A';
	struct principal p;
	assert_int_equal(token_verify(forged, &p), TOKEN_INVALID);
	assert_int_equal(token_verify(forged, &p), TOKEN_INVALID);
	/* Revoked after it was remembered: refused from then on. */
	char entry[64];
	snprintf(entry, sizeof(entry), "j:%s", jti);
	revocation_add(entry, exp + 60);
	assert_int_equal(token_verify(tok, &p), TOKEN_REVOKED);
	/* Not current (Redis unreachable): unverifiable, remembered or not. */
	revocation_clear();
	revocation_set_current(0);
	assert_int_equal(token_verify(tok, &p), TOKEN_UNVERIFIABLE);
	revocation_set_current(1);
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	free(forged);
	free(tok);
}

/* A remembered token expires at its exp like any other. */
static void test_remembered_token_expires(void **state)
{
	(void)state;
	static struct config c;
	memset(&c, 0, sizeof(c));
	c.jwt_secret = "test-secret-Qm9Yx3Lk8Zp2Wv7Rt5Nc1Hs6Jd4Fg0BaE";
	c.access_token_ttl_s = 1;
	char err[256];
	assert_int_equal(auth_configure(&c, err, sizeof(err)), 0);
	revocation_clear();
	revocation_set_current(1);
	char fam[48], jti[48];
	int64_t exp;
	token_random(fam);
	char *tok = token_issue(78, ROLE_OPERATOR, fam, jti, &exp);
	struct principal p;
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	while (time(NULL) < exp)
		usleep(50 * 1000);
	assert_int_equal(token_verify(tok, &p), TOKEN_EXPIRED);
	free(tok);
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
		cmocka_unit_test(test_verified_tokens_remembered),
		cmocka_unit_test(test_remembered_token_expires),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
