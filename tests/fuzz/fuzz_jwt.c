/* libFuzzer harness: bearer tokens through the header check and full
 * verification. Half the inputs are taken as they are; the other half
 * become the claims of a token carrying a valid HS256 signature, so the
 * claim checks after the signature are reached too. Invariant: only a
 * signed token whose claims are complete and unexpired is TOKEN_OK. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/config.h"

static const char secret[] = "fuzz-secret-4mT9qLz2Xw8RkVb1Nc6Hs3Jd7Fg0Pa5Ye";
static struct config cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[256];
	if (sodium_init() < 0)
		abort();
	cfg.jwt_secret = secret;
	cfg.access_token_ttl_s = 1800;
	cfg.refresh_token_ttl_s = 3600;
	if (auth_configure(&cfg, err, sizeof(err)))
		abort();
	revocation_set_current(1);
	return 0;
}

static char *b64url(const unsigned char *in, size_t len)
{
	size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	char *out = malloc(cap);
	sodium_bin2base64(out, cap, in, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 3000)
		return 0;
	char *token;
	int signed_token = data[0] & 1;
	if (signed_token) {
		static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
		char *h = b64url((const unsigned char *)header, strlen(header));
		char *p = b64url(data + 1, size - 1);
		size_t n = strlen(h) + 1 + strlen(p);
		token = malloc(n + 1 + 64);
		memcpy(token, h, strlen(h));
		token[strlen(h)] = '.';
		memcpy(token + strlen(h) + 1, p, strlen(p));
		token[n] = '\0';
		unsigned char mac[crypto_auth_hmacsha256_BYTES];
		crypto_auth_hmacsha256_state st;
		crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret, strlen(secret));
		crypto_auth_hmacsha256_update(&st, (const unsigned char *)token, n);
		crypto_auth_hmacsha256_final(&st, mac);
		char *sig = b64url(mac, sizeof(mac));
		token[n] = '.';
		memcpy(token + n + 1, sig, strlen(sig) + 1);
		free(h);
		free(p);
		free(sig);
	} else {
		token = malloc(size);
		memcpy(token, data + 1, size - 1);
		token[size - 1] = '\0';
	}
	token_header_is_hs256(token);
	struct principal pr;
	memset(&pr, 0, sizeof(pr));
	enum token_result r = token_verify(token, &pr);
	if (r == TOKEN_OK && (!signed_token || pr.user_id < 1 || !pr.role || !pr.jti[0] || !pr.fam[0]))
		abort();
	free(token);
	return 0;
}
