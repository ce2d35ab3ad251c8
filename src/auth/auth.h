#ifndef TRANSITD_AUTH_H
#define TRANSITD_AUTH_H
/*
 * Who is calling: passwords (Argon2id), access tokens (JWT HS256 via
 * libjwt), and the revocation list every instance keeps in memory.
 *
 * Access tokens carry sub, role, iat, exp, jti and fam (the login family
 * shared by every token of one login). Verification is CPU only, so it runs
 * on the I/O thread: signature, algorithm, claims, expiry, then the local
 * revocation list (jti and family), which mirrors a Redis sorted set and is
 * kept current through the invalidation channel.
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
	char jti[48];
	char fam[48];
};

const char *role_name(enum role r);
/* 0 for an unknown name. */
enum role role_parse(const char *s);

/* Start-up: keeps cfg (secret, TTLs). -1 with a message when the secret is too short. */
int auth_configure(const struct config *cfg, char *err, size_t errlen);

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

enum token_result { TOKEN_OK, TOKEN_INVALID, TOKEN_EXPIRED, TOKEN_REVOKED, TOKEN_UNVERIFIABLE };
/* Verifies a bearer token into *p. TOKEN_UNVERIFIABLE: the revocation list
 * is not current (Redis unreachable) and auth fails closed. */
enum token_result token_verify(const char *token, struct principal *p);

/* The local revocation list. Entries are "j:<jti>" or "f:<family>", dropped
 * after their expiry (unix seconds). */
void revocation_add(const char *entry, int64_t exp);
int revocation_has(const char *entry);
/* Whether the list is known to be current (set by the subscriber). */
void revocation_set_current(int current);
int revocation_is_current(void);
/* AUTH_FAIL_OPEN: accept tokens while the list is not current. */
void revocation_fail_open(int open);
void revocation_clear(void);

int64_t auth_access_ttl(void);
int64_t auth_refresh_ttl(void);

#endif
