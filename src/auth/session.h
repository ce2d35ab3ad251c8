#ifndef TRANSITD_SESSION_H
#define TRANSITD_SESSION_H
/*
 * Logins (families of tokens) and refresh tokens, kept in Redis.
 *
 * A refresh token is 32 random bytes; Redis holds only its BLAKE2b digest
 * ("rt:<digest>" → "family|user_id|live|used", REFRESH_TOKEN_TTL). Rotation
 * is one Lua script, so of many concurrent refreshes of one token exactly
 * one succeeds; presenting a token already rotated revokes its family,
 * which "famrevoked:<family>" then marks for REFRESH_TOKEN_TTL.
 * Revocations go to the sorted set "revoked" (member "j:<jti>" or
 * "f:<family>", score = expiry) and are published on the invalidation
 * channel as "!revoke <member> <expiry>" for every instance's in-memory list.
 * Calls that take a Redis connection block on it (worker threads; the
 * subscriber hooks run on the subscriber thread); Redis down means -1/503.
 */
#include <stdint.h>

#include "../store/redis.h"

/* Declares the keys above (rt:, famrevoked:, revoked) as not cache
 * (cache_keep), so that clearing the cache ends no login. Start-up. */
void session_keep_keys(void);

enum session_result { SESSION_OK, SESSION_UNKNOWN, SESSION_REUSED, SESSION_UNAVAILABLE };

/* A new family with its first refresh token. 0 or -1 (Redis unavailable). */
int session_create(struct redis *r, struct arena *a, int64_t user_id, char refresh[48], char fam[48]);
/* Rotates old into a new token of the same family; fills *user_id, fam and
 * *login_ms, when the family began (unix ms; 0 for tokens from before). */
enum session_result session_rotate(struct redis *r, struct arena *a, const char *old, char refresh[48],
				   int64_t *user_id, char fam[48], int64_t *login_ms);
/* Revokes a family (every refresh and access token of the login) and one
 * access token. 0 or -1. */
int session_revoke(struct redis *r, struct arena *a, const char *fam, const char *jti, int64_t jti_exp);

/* Ends every login of a user from before cutoff_ms (a role or password
 * change): access tokens through the revocation list of every instance;
 * refresh tokens are refused by the refresh path, which compares the login
 * time with users.sessions_valid_after. 0 or -1 (Redis unavailable: this
 * instance refuses the tokens already). */
int session_revoke_user(struct redis *r, struct arena *a, int64_t user_id, int64_t cutoff_ms);
struct redisContext;
/* The same from a command (migrate, seed) on a plain connection. */
int session_revoke_user_raw(struct redisContext *c, int64_t user_id, int64_t cutoff_ms);

/* Subscriber hooks: on (re)connect, give Redis the revocations this instance
 * holds that it lacks, then load the set; apply a message. */
struct redisContext;
int session_load_revocations(struct redisContext *c);
void session_apply_message(const char *msg);

#endif
