#ifndef TRANSITD_AUTH_H
#define TRANSITD_AUTH_H
/*
 * Who is calling: passwords (Argon2id), access tokens (JWT HS256 via
 * libjwt), and the revocation list every instance keeps in memory.
 *
 * Access tokens carry sub, role, iat, exp, jti, fam (the login family
 * shared by every token of one login) and ims (issued at, in ms).
 * Verification is CPU only, so it runs on the I/O thread: algorithm,
 * signature, claims, expiry, then the local revocation list (the jti, the
 * family, and the user's cut-off for tokens issued before a role or
 * password change), which mirrors a Redis sorted set and is kept current
 * through the invalidation channel (session.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "../core/config.h"

enum role {
	ROLE_RIDER = 1,
	ROLE_OPERATOR = 2,
	ROLE_ADMIN = 4,
};
#define ROLE_ANY (ROLE_RIDER | ROLE_OPERATOR | ROLE_ADMIN)
#define ROLE_STAFF (ROLE_OPERATOR | ROLE_ADMIN)

struct principal {
	int64_t user_id;
	enum role role;
	int64_t exp;
	int64_t issued_ms; /* the "ims" claim (iat in ms for older tokens) */
	char jti[48];
	char fam[48];
};

const char *role_name(enum role r);
/* 0 for an unknown name. */
enum role role_parse(const char *s);

/* Start-up: keeps cfg (secret, TTLs). -1 with a message when the secret is
 * refused by auth_secret_check. */
int auth_configure(const struct config *cfg, char *err, size_t errlen);

/* Commands that sign nothing (migrate, seed) but publish revocations: the
 * token lifetimes of cfg. */
void auth_configure_ttls(const struct config *cfg);

#define AUTH_SECRET_MIN_BYTES 32
#define AUTH_SECRET_MIN_BITS 128
#define AUTH_SECRET_SCAN_BYTES 4096 /* placeholders and patterns are looked for in this much */
/* Whether a JWT secret may sign tokens: at least 32 bytes, no known
 * placeholder ("change-me", "example", …), no repeating or stepping
 * pattern, and at least 128 bits by the Shannon estimate of its characters
 * (48 random bytes in base64 show about 300). 0, or -1 with a message that
 * says how to generate one. CPU only. */
int auth_secret_check(const char *secret, char *err, size_t errlen);

/* Hashes with Argon2id (interactive limits). At most a few run at once, so a
 * burst of logins cannot exhaust memory. 0 or -1 (out of memory). */
int password_hash(const char *password, char out[128]);
/* Constant-time verification. A NULL hash still spends the time of a real
 * verification, so unknown emails answer as slowly as wrong passwords. */
int password_verify(const char *hash, const char *password);

/* 32 random bytes, base64url: a new jti, family id or refresh token. */
void token_random(char out[48]);

/* Signs an access token; returns a malloc'd string (caller frees) or NULL. */
char *token_issue(int64_t user_id, enum role role, const char *fam, char jti_out[48], int64_t *exp_out);

/* 1 when the token's header is a JSON object whose alg is "HS256"; checked
 * before libjwt sees a token, so "none" or another algorithm never reaches it. */
int token_header_is_hs256(const char *token);

enum token_result { TOKEN_OK, TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_REVOKED, TOKEN_UNVERIFIABLE };
/* Verifies a bearer token into *p. TOKEN_UNVERIFIABLE: the revocation list
 * is not current (Redis unreachable) and auth fails closed. */
enum token_result token_verify(const char *token, struct principal *p);

/* The local revocation list. Entries are "j:<jti>", "f:<family>" or
 * "u:<user>:<cut-off ms>" (every token of the user issued before the
 * cut-off), dropped after their expiry (unix seconds). */
void revocation_add(const char *entry, int64_t exp);
/* The latest cut-off (unix ms) of the user's tokens, 0 for none. */
int64_t revocation_user_cutoff(int64_t user_id);
int revocation_has(const char *entry);
/* Calls fn with each entry still in force, as its Redis member (a user's
 * with its latest cut-off), under the list's read lock. */
void revocation_each(void (*fn)(const char *member, int64_t exp, void *ctx), void *ctx);
/* Whether the list is known to be current (set by the subscriber). */
void revocation_set_current(int current);
int revocation_is_current(void);
/* AUTH_FAIL_OPEN: accept tokens while the list is not current. */
void revocation_fail_open(int open);
void revocation_clear(void);

int64_t auth_access_ttl(void);
int64_t auth_refresh_ttl(void);

#endif
