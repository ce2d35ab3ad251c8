#include <jansson.h>
#include <jwt.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/json.h"
#include "auth.h"
#include "../core/banned.h"

static const struct config *cfg;      /* set once the secret is accepted */
static unsigned char memo_key[crypto_generichash_KEYBYTES]; /* keys the digests of verified tokens */
static const struct config *ttl_cfg;  /* token lifetimes, also known to commands */
static size_t secret_len;

void auth_configure_ttls(const struct config *c)
{
	ttl_cfg = c;
}

/* Pieces of the placeholders people paste from examples and never change. */
static const char *const placeholders[] = {
	"change-me", "change_me", "changeme", "replace-me", "replace_me", "replaceme", "placeholder",
	"example", "your-secret", "your_secret", "yoursecret", "insecure", "do-not-use", "dont-use",
	"not-a-secret", "password", "passw0rd", "qwerty", "letmein", "secretkey", "secret-key", "secret_key",
	"jwt-secret", "jwt_secret", "jwtsecret", "default", "development", "testing123",
};

/* Bits a secret can hold at most if every character were drawn at random
 * with the frequencies it shows: its length times the Shannon entropy of
 * its characters. A text of a few distinct characters scores low. */
static double shannon_bits(const unsigned char *s, size_t n)
{
	unsigned count[256] = { 0 };
	for (size_t i = 0; i < n; i++)
		count[s[i]]++;
	double h = 0;
	for (int c = 0; c < 256; c++) {
		if (!count[c])
			continue;
		double p = (double)count[c] / (double)n;
		h -= p * log2(p);
	}
	return h * (double)n;
}

/* Most of it repeats itself at some period ("abcabc…", a word twice), or
 * runs in steps ("0123456789abcdef…", "aaaa"). Random text does neither. */
static int patterned(const unsigned char *s, size_t n)
{
	for (size_t period = 1; period <= n / 2; period++) {
		size_t same = 0;
		for (size_t i = 0; i + period < n; i++)
			same += s[i] == s[i + period];
		if (same * 2 >= n - period)
			return 1;
	}
	size_t steps = 0;
	for (size_t i = 2; i < n; i++)
		steps += s[i] - s[i - 1] == s[i - 1] - s[i - 2] && (s[i] - s[i - 1] == 1 || s[i - 1] - s[i] == 1);
	return n > 2 && steps * 3 >= n - 2;
}

int auth_secret_check(const char *secret, char *err, size_t errlen)
{
	size_t n = strlen(secret);
	if (n < AUTH_SECRET_MIN_BYTES) {
		snprintf(err, errlen, "JWT_SECRET must be at least %d bytes (got %zu); generate one with: "
			 "head -c 48 /dev/urandom | base64", AUTH_SECRET_MIN_BYTES, n);
		return -1;
	}
	char lower[AUTH_SECRET_SCAN_BYTES + 1];
	size_t m = n < AUTH_SECRET_SCAN_BYTES ? n : AUTH_SECRET_SCAN_BYTES;
	for (size_t i = 0; i < m; i++)
		lower[i] = (char)((secret[i] >= 'A' && secret[i] <= 'Z') ? secret[i] + 32 : secret[i]);
	lower[m] = '\0';
	for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++) {
		if (strstr(lower, placeholders[i])) {
			snprintf(err, errlen, "JWT_SECRET looks like a placeholder (it contains \"%s\"); generate one "
				 "with: head -c 48 /dev/urandom | base64", placeholders[i]);
			return -1;
		}
	}
	const unsigned char *u = (const unsigned char *)secret;
	double bits = shannon_bits(u, n);
	if (bits < AUTH_SECRET_MIN_BITS || patterned(u, m)) {
		snprintf(err, errlen, "JWT_SECRET has too little entropy (about %.0f bits%s; %d needed); generate one "
			 "with: head -c 48 /dev/urandom | base64", bits, patterned(u, m) ? ", and a pattern" : "",
			 AUTH_SECRET_MIN_BITS);
		return -1;
	}
	return 0;
}

int auth_configure(const struct config *c, char *err, size_t errlen)
{
	if (auth_secret_check(c->jwt_secret, err, errlen))
		return -1;
	cfg = c;
	ttl_cfg = c;
	secret_len = strlen(c->jwt_secret);
	randombytes_buf(memo_key, sizeof(memo_key));
	return 0;
}

int64_t auth_access_ttl(void)
{
	return ttl_cfg ? ttl_cfg->access_token_ttl_s : 1800;
}

int64_t auth_refresh_ttl(void)
{
	return ttl_cfg ? ttl_cfg->refresh_token_ttl_s : 604800;
}

const char *role_name(enum role r)
{
	switch (r) {
	case ROLE_RIDER: return "rider";
	case ROLE_OPERATOR: return "operator";
	case ROLE_ADMIN: return "admin";
	}
	return "?";
}

enum role role_parse(const char *s)
{
	if (!s)
		return 0;
	if (!strcmp(s, "rider"))
		return ROLE_RIDER;
	if (!strcmp(s, "operator"))
		return ROLE_OPERATOR;
	if (!strcmp(s, "admin"))
		return ROLE_ADMIN;
	return 0;
}

void token_random(char out[48])
{
	unsigned char raw[32];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(out, 48, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

char *token_issue(int64_t user_id, enum role role, const char *fam, char jti_out[48], int64_t *exp_out)
{
	jwt_t *jwt;
	char sub[24], jti[48];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t now = ts.tv_sec;
	long ims = (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (jwt_new(&jwt))
		return NULL;
	token_random(jti);
	snprintf(jti_out, 48, "%s", jti);
	snprintf(sub, sizeof(sub), "%lld", (long long)user_id);
	*exp_out = (int64_t)now + auth_access_ttl();
	char *out = NULL;
	if (!jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)cfg->jwt_secret, (int)secret_len) &&
	    !jwt_add_grant(jwt, "sub", sub) && !jwt_add_grant(jwt, "role", role_name(role)) &&
	    !jwt_add_grant_int(jwt, "iat", (long)now) && !jwt_add_grant_int(jwt, "exp", (long)*exp_out) &&
	    !jwt_add_grant(jwt, "jti", jti_out) && !jwt_add_grant(jwt, "fam", fam) &&
	    !jwt_add_grant_int(jwt, "ims", ims))
		out = jwt_encode_str(jwt);
	jwt_free(jwt);
	return out;
}

/* The header must say HS256 before libjwt sees the token: "none" or any
 * other algorithm is refused whatever the library would do with it. */
int token_header_is_hs256(const char *token)
{
	const char *dot = strchr(token, '.');
	if (!dot || dot == token || dot - token > 512)
		return 0;
	unsigned char raw[400];
	size_t len;
	if (sodium_base642bin(raw, sizeof(raw) - 1, token, (size_t)(dot - token), NULL, &len, NULL,
			      sodium_base64_VARIANT_URLSAFE_NO_PADDING))
		return 0;
	json_t *h = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
	const char *alg = h ? json_string_value(json_object_get(h, "alg")) : NULL;
	int ok = alg && !strcmp(alg, "HS256");
	json_decref(h);
	return ok;
}

static int copy_claim(json_t *claims, const char *name, char *out, size_t len)
{
	const char *v = json_string_value(json_object_get(claims, name));
	if (!v || !*v || strlen(v) >= len)
		return -1;
	snprintf(out, len, "%s", v);
	return 0;
}

/* Instances' clocks may differ by this much: a token issued by one is not
 * refused by another as issued in the future. */
#define CLOCK_SKEW_S 60

/* Signature, algorithm, claims and expiry: what depends only on the token's
 * bytes (and the clock). */
static enum token_result verify_signed(const char *token, struct principal *p)
{
	jwt_t *jwt = NULL;
	if (!token_header_is_hs256(token))
		return TOKEN_INVALID;
	if (jwt_decode(&jwt, token, (const unsigned char *)cfg->jwt_secret, (int)secret_len) || !jwt)
		return TOKEN_INVALID;
	enum token_result rc = TOKEN_INVALID;
	char *text = jwt_get_alg(jwt) == JWT_ALG_HS256 ? jwt_get_grants_json(jwt, NULL) : NULL;
	json_t *claims = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
	free(text);
	int64_t now = (int64_t)time(NULL), iat, nbf;
	int has_ims;
	struct api_error e; /* which claim is wrong is not told to the client */
	char sub[24], role[16];
	/* Times are integers (libjwt alone reads a string or a fraction as 0);
	 * iat, ims and nbf at most CLOCK_SKEW_S ahead. */
	if (!json_is_object(claims) || copy_claim(claims, "sub", sub, sizeof(sub)) ||
	    copy_claim(claims, "role", role, sizeof(role)) || copy_claim(claims, "jti", p->jti, sizeof(p->jti)) ||
	    copy_claim(claims, "fam", p->fam, sizeof(p->fam)) ||
	    json_get_int(claims, "iat", 1, 0, now + CLOCK_SKEW_S, &iat, NULL, &e) ||
	    json_get_int(claims, "nbf", 0, INT64_MIN, now + CLOCK_SKEW_S, &nbf, NULL, &e) ||
	    json_get_int(claims, "exp", 1, INT64_MIN, INT64_MAX, &p->exp, NULL, &e) ||
	    json_get_int(claims, "ims", 0, 0, (now + CLOCK_SKEW_S) * 1000, &p->issued_ms, &has_ims, &e))
		goto out;
	if (!has_ims) /* tokens from before the "ims" claim: issued at iat, in ms */
		p->issued_ms = iat * 1000;
	if (parse_int64(sub, 1, INT64_MAX, &p->user_id) || !(p->role = role_parse(role)))
		goto out;
	rc = p->exp <= now ? TOKEN_EXPIRED : TOKEN_OK;
out:
	json_decref(claims);
	jwt_free(jwt);
	return rc;
}

/*
 * Tokens verified on this thread, by a keyed digest of their bytes: a
 * client sends the same token with every request, and checking its
 * signature and parsing its claims (base64, two JSON documents, HMAC) costs
 * more than answering a near-cached read. A hit has passed that check for
 * these exact bytes (the digest is BLAKE2b under a random key of this
 * process, compared in constant time), so it is only checked again for
 * expiry and against the revocation list, as every verification is.
 */
#define MEMO_SLOTS 128
struct memo {
	unsigned char digest[16];
	int valid;
	struct principal p;
};
static __thread struct memo memos[MEMO_SLOTS];

enum token_result token_verify(const char *token, struct principal *p)
{
	size_t n = token ? strlen(token) : 0;
	if (!cfg || n > 2048)
		return TOKEN_INVALID;
	unsigned char digest[16];
	crypto_generichash(digest, sizeof(digest), (const unsigned char *)token, n, memo_key, sizeof(memo_key));
	struct memo *m = &memos[(digest[0] | digest[1] << 8) % MEMO_SLOTS];
	enum token_result rc;
	if (m->valid && sodium_memcmp(m->digest, digest, sizeof(digest)) == 0) {
		*p = m->p;
		rc = p->exp <= time(NULL) ? TOKEN_EXPIRED : TOKEN_OK;
	} else {
		rc = verify_signed(token, p);
		if (rc == TOKEN_OK) {
			memcpy(m->digest, digest, sizeof(digest));
			m->p = *p;
			m->valid = 1;
		}
	}
	if (rc != TOKEN_OK)
		return rc;
	char jti_entry[64], fam_entry[64];
	snprintf(jti_entry, sizeof(jti_entry), "j:%s", p->jti);
	snprintf(fam_entry, sizeof(fam_entry), "f:%s", p->fam);
	int jti = revocation_has(jti_entry), fam = revocation_has(fam_entry);
	if (jti == 1 || fam == 1 || p->issued_ms < revocation_user_cutoff(p->user_id))
		return TOKEN_REVOKED;
	if (jti < 0 || fam < 0)
		return TOKEN_UNVERIFIABLE;
	return TOKEN_OK;
}
