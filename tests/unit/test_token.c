/* Unit tests for src/auth/token.c: which JWT secrets are refused, the
 * header check in front of libjwt, what verification refuses (expiry,
 * signature, algorithm, malformed segments, missing or wrong claims), and
 * the memo of verified tokens. The file is included so that the memo's
 * answer can be compared with a fresh verification (verify_signed). */
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
#include <pthread.h>
#include <unistd.h>

#include "auth/token.c"
#include "core/buf.h"

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

/* Tokens made by hand, to say exactly what a client may send. */
#define SECRET "test-secret-Qm9Yx3Lk8Zp2Wv7Rt5Nc1Hs6Jd4Fg0BaE"
#define OTHER_SECRET "other-secret-Vb3Nq8Rw1Ty6Ui9Op2As5Df7Gh4Jk0Lz"

static void configure(int ttl)
{
	static struct config c;
	memset(&c, 0, sizeof(c));
	c.jwt_secret = SECRET;
	c.access_token_ttl_s = ttl;
	char err[256];
	assert_int_equal(auth_configure(&c, err, sizeof(err)), 0);
	revocation_clear();
	revocation_set_current(1);
}

/* Verified tokens are remembered by a digest of their bytes: a second
 * verification agrees with the first, any other bytes are verified afresh
 * (a forged signature stays forged), and a remembered token is still
 * checked for expiry and against the revocation list. */
static void test_verified_tokens_remembered(void **state)
{
	(void)state;
	configure(600);
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
	configure(1);
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


static void b64url(struct buf *b, const void *raw, size_t n)
{
	char out[1024];
	assert_true(sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING) <= sizeof(out));
	sodium_bin2base64(out, sizeof(out), raw, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	buf_adds(b, out);
}

/* header.payload.signature, the signature HMAC-SHA256 (or -512) under
 * secret; a NULL secret leaves the signature empty. Caller frees. */
static char *forge(const char *header, const char *payload, const char *secret, int sha512)
{
	struct buf b = BUF_INIT;
	b64url(&b, header, strlen(header));
	buf_addch(&b, '.');
	b64url(&b, payload, strlen(payload));
	buf_addch(&b, '.');
	if (secret) {
		size_t signed_len = b.len - 1;
		if (sha512) {
			unsigned char mac[crypto_auth_hmacsha512_BYTES];
			crypto_auth_hmacsha512_state st;
			crypto_auth_hmacsha512_init(&st, (const unsigned char *)secret, strlen(secret));
			crypto_auth_hmacsha512_update(&st, (const unsigned char *)b.ptr, signed_len);
			crypto_auth_hmacsha512_final(&st, mac);
			b64url(&b, mac, sizeof(mac));
		} else {
			unsigned char mac[crypto_auth_hmacsha256_BYTES];
			crypto_auth_hmacsha256_state st;
			crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
			crypto_auth_hmacsha256_update(&st, (const unsigned char *)b.ptr, signed_len);
			crypto_auth_hmacsha256_final(&st, mac);
			b64url(&b, mac, sizeof(mac));
		}
	}
	return buf_detach(&b, NULL);
}

#define HS256 "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define JTI "jti-0123456789abcdefghijklmnopqrstuvwxyzABCDE"
#define FAM "fam-0123456789abcdefghijklmnopqrstuvwxyzABCDE"

/* The claims transitd issues; extra is spliced in before the closing brace
 * (a later duplicate of a claim is refused by the parser, not taken). */
static char *claims(long long exp_from_now, const char *extra)
{
	long long now = (long long)time(NULL);
	struct buf b = BUF_INIT;
	buf_addf(&b, "{\"sub\":\"77\",\"role\":\"rider\",\"iat\":%lld,\"exp\":%lld,\"jti\":\"" JTI "\",\"fam\":\"" FAM
		 "\",\"ims\":%lld%s}", now, now + exp_from_now, now * 1000, extra ? extra : "");
	return buf_detach(&b, NULL);
}

static enum token_result verify_forged(const char *header, const char *payload, const char *secret, int sha512)
{
	char *tok = forge(header, payload, secret, sha512);
	struct principal p;
	enum token_result rc = token_verify(tok, &p);
	free(tok);
	return rc;
}

/* The payload without one claim, or with one claim's value replaced (nbf, absent
 * by default, is added). */
static char *claims_with(const char *name, const char *value)
{
	long long now = (long long)time(NULL);
	char iat[24], exp[24], ims[24];
	snprintf(iat, sizeof(iat), "%lld", now);
	snprintf(exp, sizeof(exp), "%lld", now + 600);
	snprintf(ims, sizeof(ims), "%lld", now * 1000);
	const char *names[] = { "sub", "role", "iat", "exp", "jti", "fam", "ims", "nbf" };
	const char *values[] = { "\"77\"", "\"rider\"", iat, exp, "\"" JTI "\"", "\"" FAM "\"", ims, NULL };
	struct buf b = BUF_INIT;
	buf_addch(&b, '{');
	int first = 1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = strcmp(names[i], name) ? values[i] : value;
		if (!v)
			continue;
		buf_addf(&b, "%s\"%s\":%s", first ? "" : ",", names[i], v);
		first = 0;
	}
	buf_addch(&b, '}');
	return buf_detach(&b, NULL);
}

static enum token_result verify_claims_with(const char *name, const char *value)
{
	char *payload = claims_with(name, value);
	enum token_result rc = verify_forged(HS256, payload, SECRET, 0);
	free(payload);
	return rc;
}

/* The hand-made token is what token_issue makes: accepted, claims read. */
static void test_forged_with_the_secret_accepted(void **state)
{
	(void)state;
	configure(600);
	char *payload = claims(600, NULL);
	char *tok = forge(HS256, payload, SECRET, 0);
	struct principal p;
	memset(&p, 0, sizeof(p));
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	assert_int_equal(p.user_id, 77);
	assert_int_equal(p.role, ROLE_RIDER);
	assert_string_equal(p.jti, JTI);
	assert_string_equal(p.fam, FAM);
	assert_int_equal(p.issued_ms, (int64_t)time(NULL) * 1000);
	/* Without "ims" (older tokens) issued_ms is iat in ms. */
	char *old = claims_with("ims", NULL);
	char *old_tok = forge(HS256, old, SECRET, 0);
	memset(&p, 0, sizeof(p));
	assert_int_equal(token_verify(old_tok, &p), TOKEN_OK);
	assert_int_equal(p.issued_ms % 1000, 0);
	assert_true(p.issued_ms > 0);
	free(old_tok);
	free(old);
	free(tok);
	free(payload);
}

/* Expired at exp, not a second later. */
static void test_expired_refused(void **state)
{
	(void)state;
	configure(600);
	char *past = claims(-10, NULL);
	char *now = claims(0, NULL);
	assert_int_equal(verify_forged(HS256, past, SECRET, 0), TOKEN_EXPIRED);
	assert_int_equal(verify_forged(HS256, now, SECRET, 0), TOKEN_EXPIRED);
	/* An expired token is not remembered as verified. */
	assert_int_equal(verify_forged(HS256, past, SECRET, 0), TOKEN_EXPIRED);
	/* Forged and expired: the signature is refused first, so an attacker
	 * learns nothing of the claims. */
	assert_int_equal(verify_forged(HS256, past, OTHER_SECRET, 0), TOKEN_INVALID);
	free(past);
	free(now);
}

static void test_wrong_signature_refused(void **state)
{
	(void)state;
	configure(600);
	char *payload = claims(600, NULL);
	assert_int_equal(verify_forged(HS256, payload, OTHER_SECRET, 0), TOKEN_INVALID);
	/* The secret with a byte less or more. */
	assert_int_equal(verify_forged(HS256, payload, SECRET "x", 0), TOKEN_INVALID);
	char shorter[] = SECRET;
	shorter[sizeof(shorter) - 2] = '\0';
	assert_int_equal(verify_forged(HS256, payload, shorter, 0), TOKEN_INVALID);
	/* No signature at all. */
	assert_int_equal(verify_forged(HS256, payload, NULL, 0), TOKEN_INVALID);
	/* The signature cut short, or with bytes after it. */
	char *tok = forge(HS256, payload, SECRET, 0);
	size_t n = strlen(tok);
	struct principal p;
	char *cut = strndup(tok, n - 4);
	assert_int_equal(token_verify(cut, &p), TOKEN_INVALID);
	char *longer = malloc(n + 5);
	snprintf(longer, n + 5, "%sAAAA", tok);
	assert_int_equal(token_verify(longer, &p), TOKEN_INVALID);
	/* Another token's signature on these claims. */
	char *other_payload = claims(601, NULL);
	char *other = forge(HS256, other_payload, SECRET, 0);
	char *spliced = strdup(tok);
	const char *other_sig = strrchr(other, '.');
	char *sig = strrchr(spliced, '.');
	assert_int_equal(strlen(sig), strlen(other_sig));
	memcpy(sig, other_sig, strlen(other_sig));
	assert_int_equal(token_verify(spliced, &p), TOKEN_INVALID);
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	free(spliced);
	free(other);
	free(other_payload);
	free(longer);
	free(cut);
	free(tok);
	free(payload);
}

/* Only HS256: "none", another HMAC, a public-key algorithm, another
 * spelling, or a header that says two things are all refused. */
static void test_wrong_algorithm_refused(void **state)
{
	(void)state;
	configure(600);
	char *payload = claims(600, NULL);
	assert_int_equal(verify_forged("{\"alg\":\"none\",\"typ\":\"JWT\"}", payload, NULL, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":\"none\"}", payload, SECRET, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":\"None\"}", payload, NULL, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", payload, SECRET, 1), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload, SECRET, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":\"hs256\"}", payload, SECRET, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":\"HS256 \"}", payload, SECRET, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"typ\":\"JWT\"}", payload, SECRET, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":256}", payload, SECRET, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":[\"HS256\"]}", payload, SECRET, 0), TOKEN_INVALID);
	/* Two algs: whichever a parser would take, the header is refused. */
	assert_int_equal(verify_forged("{\"alg\":\"HS256\",\"alg\":\"none\"}", payload, SECRET, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("{\"alg\":\"none\",\"alg\":\"HS256\"}", payload, SECRET, 0), TOKEN_INVALID);
	assert_int_equal(verify_forged("[\"HS256\"]", payload, SECRET, 0), TOKEN_INVALID);
	/* The same claims with the right header pass: the header was the reason. */
	assert_int_equal(verify_forged("{\"alg\":\"HS256\"}", payload, SECRET, 0), TOKEN_OK);
	free(payload);
}

static void test_malformed_segments_refused(void **state)
{
	(void)state;
	configure(600);
	char *payload = claims(600, NULL);
	char *tok = forge(HS256, payload, SECRET, 0);
	const char *dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
	struct principal p;
	const char *shapes[] = { "", ".", "..", "...", "a", "a.b", "a.b.c", "a.b.c.d", "eyJhbGciOiJIUzI1NiJ9",
				 "eyJhbGciOiJIUzI1NiJ9.", "eyJhbGciOiJIUzI1NiJ9..", "eyJhbGciOiJIUzI1NiJ9.e30." };
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
		if (token_verify(shapes[i], &p) != TOKEN_INVALID)
			fail_msg("accepted \"%s\"", shapes[i]);
	struct buf b = BUF_INIT;
	/* A fourth segment. */
	buf_addf(&b, "%s.%s", tok, "e30");
	assert_int_equal(token_verify(b.ptr, &p), TOKEN_INVALID);
	/* Header or payload missing, signature kept. */
	buf_reset(&b);
	buf_addf(&b, "%s", dot1);
	assert_int_equal(token_verify(b.ptr, &p), TOKEN_INVALID);
	buf_reset(&b);
	buf_add(&b, tok, (size_t)(dot1 - tok) + 1);
	buf_adds(&b, dot2);
	assert_int_equal(token_verify(b.ptr, &p), TOKEN_INVALID);
	/* Base64 with padding, or the standard alphabet's characters. */
	buf_reset(&b);
	buf_add(&b, tok, (size_t)(dot1 - tok));
	buf_adds(&b, "=");
	buf_adds(&b, dot1);
	assert_int_equal(token_verify(b.ptr, &p), TOKEN_INVALID);
	buf_reset(&b);
	buf_adds(&b, tok);
	b.ptr[2] = '+';
	assert_int_equal(token_verify(b.ptr, &p), TOKEN_INVALID);
	/* Payloads that are not a JSON object, signed properly. */
	const char *bodies[] = { "", "null", "[]", "\"77\"", "{", "{\"sub\":\"77\"", "not json" };
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		if (verify_forged(HS256, bodies[i], SECRET, 0) != TOKEN_INVALID)
			fail_msg("accepted the payload '%s'", bodies[i]);
	/* A header longer than any alg needs is not decoded at all. */
	struct buf big_header = BUF_INIT;
	buf_adds(&big_header, "{\"alg\":\"HS256\",\"pad\":\"");
	for (int i = 0; i < 600; i++)
		buf_addch(&big_header, 'x');
	buf_adds(&big_header, "\"}");
	assert_int_equal(verify_forged(big_header.ptr, payload, SECRET, 0), TOKEN_INVALID);
	/* The same header a little shorter is taken. */
	buf_reset(&big_header);
	buf_adds(&big_header, "{\"alg\":\"HS256\",\"pad\":\"");
	for (int i = 0; i < 300; i++)
		buf_addch(&big_header, 'x');
	buf_adds(&big_header, "\"}");
	assert_int_equal(verify_forged(big_header.ptr, payload, SECRET, 0), TOKEN_OK);
	buf_release(&big_header);
	/* Longer than any token transitd issues. */
	buf_reset(&b);
	buf_adds(&b, tok);
	while (b.len <= 2048)
		buf_addch(&b, 'A');
	assert_int_equal(token_verify(b.ptr, &p), TOKEN_INVALID);
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	buf_release(&b);
	free(tok);
	free(payload);
}

/* Every claim transitd reads must be there, of the right type and range. */
static void test_wrong_claims_refused(void **state)
{
	(void)state;
	configure(600);
	const char *cases[][2] = {
		{ "sub", NULL },	  { "sub", "77" },	    { "sub", "\"\"" },
		{ "sub", "\"0\"" },	  { "sub", "\"-77\"" },	    { "sub", "\"77x\"" },
		{ "sub", "\"x77\"" },	  { "sub", "\"99999999999999999999\"" },
		{ "role", NULL },	  { "role", "\"root\"" },   { "role", "\"Rider\"" },
		{ "role", "\"\"" },	  { "role", "1" },	    { "role", "[\"rider\"]" },
		{ "exp", NULL },	  { "iat", NULL },	    { "jti", NULL },
		/* An issue time that is no time in milliseconds. */
		{ "iat", "-1" },	  { "iat", "9223372036854775807" },
		/* Times that are not whole numbers (libjwt alone reads them as 0). */
		{ "iat", "\"1700000000\"" }, { "iat", "1.5" },	    { "iat", "null" },
		{ "exp", "\"tomorrow\"" },   { "exp", "null" },	    { "exp", "1e12" },
		{ "ims", "\"0\"" },	  { "ims", "-1" },
		/* Issued, or valid from, more than a minute in the future. */
		{ "iat", "99999999999" }, { "ims", "99999999999000" }, { "nbf", "99999999999" },
		{ "jti", "\"\"" },
		{ "jti", "1" },		  { "fam", NULL },	    { "fam", "\"\"" },
		/* 48 characters: one more than a jti or family id can hold. */
		{ "jti", "\"0123456789abcdef0123456789abcdef0123456789abcdef\"" },
		{ "fam", "\"0123456789abcdef0123456789abcdef0123456789abcdef\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (verify_claims_with(cases[i][0], cases[i][1]) != TOKEN_INVALID)
			fail_msg("accepted %s = %s", cases[i][0], cases[i][1] ? cases[i][1] : "(missing)");
	/* Valid from a time past, or within the clocks' skew. */
	char soon[24];
	snprintf(soon, sizeof(soon), "%lld", (long long)time(NULL) + 30);
	assert_int_equal(verify_claims_with("nbf", "1"), TOKEN_OK);
	assert_int_equal(verify_claims_with("nbf", soon), TOKEN_OK);
	/* Each role transitd issues is read as itself. */
	const char *roles[] = { "\"rider\"", "\"operator\"", "\"admin\"" };
	enum role want[] = { ROLE_RIDER, ROLE_OPERATOR, ROLE_ADMIN };
	for (int i = 0; i < 3; i++) {
		char *payload = claims_with("role", roles[i]);
		char *tok = forge(HS256, payload, SECRET, 0);
		struct principal p;
		assert_int_equal(token_verify(tok, &p), TOKEN_OK);
		assert_int_equal(p.role, want[i]);
		free(tok);
		free(payload);
	}
}

/* Revocation of the user (every token issued before a cut-off), of the
 * family and of the token itself, memo or not. */
static void test_revocations_apply(void **state)
{
	(void)state;
	configure(600);
	char fam[48], jti[48];
	int64_t exp;
	token_random(fam);
	char *tok = token_issue(91, ROLE_ADMIN, fam, jti, &exp);
	struct principal p;
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	int64_t issued = p.issued_ms;
	char entry[80];
	/* A cut-off at or before the token's issue leaves it alone. */
	snprintf(entry, sizeof(entry), "u:91:%lld", (long long)issued);
	revocation_add(entry, exp + 60);
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	/* Another user's cut-off too. */
	snprintf(entry, sizeof(entry), "u:92:%lld", (long long)issued + 1000);
	revocation_add(entry, exp + 60);
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	/* A later one revokes it. */
	snprintf(entry, sizeof(entry), "u:91:%lld", (long long)issued + 1);
	revocation_add(entry, exp + 60);
	assert_int_equal(token_verify(tok, &p), TOKEN_REVOKED);
	revocation_clear();
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	snprintf(entry, sizeof(entry), "f:%s", fam);
	revocation_add(entry, exp + 60);
	assert_int_equal(token_verify(tok, &p), TOKEN_REVOKED);
	revocation_clear();
	/* Not current, but failing open (AUTH_FAIL_OPEN): accepted. */
	revocation_set_current(0);
	assert_int_equal(token_verify(tok, &p), TOKEN_UNVERIFIABLE);
	revocation_fail_open(1);
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	/* A revoked token stays revoked when failing open. */
	snprintf(entry, sizeof(entry), "j:%s", jti);
	revocation_add(entry, exp + 60);
	assert_int_equal(token_verify(tok, &p), TOKEN_REVOKED);
	revocation_fail_open(0);
	revocation_set_current(1);
	revocation_clear();
	free(tok);
}

/* The memo never answers for bytes it has not verified: every one-character
 * change of a remembered token gets the answer a fresh verification gives,
 * and is refused unless the change only touches base64 padding bits that
 * decode to the same bytes. */
static void test_memo_never_accepts_a_changed_token(void **state)
{
	(void)state;
	configure(600);
	char fam[48], jti[48];
	int64_t exp;
	token_random(fam);
	char *tok = token_issue(55, ROLE_OPERATOR, fam, jti, &exp);
	struct principal p, fresh;
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	size_t n = strlen(tok);
	const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
	char *mut = strdup(tok);
	for (size_t i = 0; i < n; i++) {
		for (const char *c = alphabet; *c; c++) {
			if (*c == tok[i])
				continue;
			mut[i] = *c;
			enum token_result memo = token_verify(mut, &p);
			enum token_result direct = verify_signed(mut, &fresh);
			if (memo != direct)
				fail_msg("memo says %d, verification %d, for a change at %zu", memo, direct, i);
			if (memo == TOKEN_OK) {
				/* Only the last character of a segment carries padding bits. */
				int last_of_segment = i + 1 == n || tok[i + 1] == '.';
				if (!last_of_segment)
					fail_msg("accepted a change at %zu ('%c' for '%c')", i, *c, tok[i]);
				assert_int_equal(p.user_id, 55);
				assert_string_equal(p.jti, jti);
			}
			/* The original is still remembered, and still right. */
			assert_int_equal(token_verify(tok, &p), TOKEN_OK);
			mut[i] = tok[i];
		}
	}
	/* Cut anywhere: refused. */
	for (size_t i = 1; i < n; i++) {
		mut[i] = '\0';
		assert_int_not_equal(token_verify(mut, &p), TOKEN_OK);
		mut[i] = tok[i];
	}
	free(mut);
	free(tok);
}

/* The memo is per thread and keyed per process (each auth_configure draws
 * a new key): another thread verifies afresh, and after a new secret a
 * remembered token signed with the old one is refused. */
static void *verify_on_thread(void *arg)
{
	struct principal p;
	return (void *)(intptr_t)token_verify(arg, &p);
}

static void test_memo_per_thread_and_secret(void **state)
{
	(void)state;
	configure(600);
	char fam[48], jti[48];
	int64_t exp;
	token_random(fam);
	char *tok = token_issue(56, ROLE_RIDER, fam, jti, &exp);
	struct principal p;
	assert_int_equal(token_verify(tok, &p), TOKEN_OK);
	/* This thread remembers it; a thread of its own has no memo of it. */
	int remembered = 0;
	for (int i = 0; i < MEMO_SLOTS; i++)
		remembered += memos[i].valid && !strcmp(memos[i].p.jti, jti);
	assert_int_equal(remembered, 1);
	pthread_t t;
	void *rc;
	char *forged = strdup(tok);
	size_t n = strlen(forged);
	forged[n - 3] = forged[n - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(pthread_create(&t, NULL, verify_on_thread, forged), 0);
	assert_int_equal(pthread_join(t, &rc), 0);
	assert_int_equal((intptr_t)rc, TOKEN_INVALID);
	assert_int_equal(pthread_create(&t, NULL, verify_on_thread, tok), 0);
	assert_int_equal(pthread_join(t, &rc), 0);
	assert_int_equal((intptr_t)rc, TOKEN_OK);
	/* A new secret: the remembered token is verified again, and refused. */
	static struct config c2;
	memset(&c2, 0, sizeof(c2));
	c2.jwt_secret = OTHER_SECRET;
	c2.access_token_ttl_s = 600;
	char err[256];
	assert_int_equal(auth_configure(&c2, err, sizeof(err)), 0);
	assert_int_equal(token_verify(tok, &p), TOKEN_INVALID);
	free(forged);
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
		cmocka_unit_test(test_forged_with_the_secret_accepted),
		cmocka_unit_test(test_expired_refused),
		cmocka_unit_test(test_wrong_signature_refused),
		cmocka_unit_test(test_wrong_algorithm_refused),
		cmocka_unit_test(test_malformed_segments_refused),
		cmocka_unit_test(test_wrong_claims_refused),
		cmocka_unit_test(test_revocations_apply),
		cmocka_unit_test(test_memo_never_accepts_a_changed_token),
		cmocka_unit_test(test_memo_per_thread_and_secret),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
