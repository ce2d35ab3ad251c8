#include "session.h"

#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/xalloc.h"
#include "../store/cache.h"
#include "auth.h"
#include "../core/banned.h"

/* KEYS: old token key, new token key, family-revoked key, revoked set.
 * ARGV: refresh ttl, access-revocation expiry, channel.
 * Returns {1, family, user, login ms} rotated; {0} unknown; {2, family} reused.
 * Values are "family|user|state|login ms" (tokens from before the login
 * time have three fields: their login counts as 0). */
static const char rotate_lua[] =
	"local v = redis.call('GET', KEYS[1])\n"
	"if not v then return {0} end\n"
	"local fam, uid, state, at = string.match(v, '^([^|]+)|([^|]+)|([^|]+)|?([0-9]*)$')\n"
	"if not fam then return {0} end\n"
	"if at == '' then at = '0' end\n"
	"if redis.call('EXISTS', KEYS[3] .. fam) == 1 then return {0} end\n"
	"if state ~= 'live' then\n"
	"  redis.call('SET', KEYS[3] .. fam, '1', 'EX', ARGV[1])\n"
	"  redis.call('ZADD', KEYS[4], ARGV[2], 'f:' .. fam)\n"
	"  redis.call('PUBLISH', ARGV[3], '!revoke f:' .. fam .. ' ' .. ARGV[2])\n"
	"  return {2, fam}\n"
	"end\n"
	"redis.call('SET', KEYS[1], fam .. '|' .. uid .. '|used|' .. at, 'KEEPTTL')\n"
	"redis.call('SET', KEYS[2], fam .. '|' .. uid .. '|live|' .. at, 'EX', ARGV[1])\n"
	"return {1, fam, uid, at}\n";

void session_keep_keys(void)
{
	cache_keep("rt:");
	cache_keep("famrevoked:");
	cache_keep("revoked");
}

static const char *token_key(struct arena *a, const char *token)
{
	unsigned char h[32];
	char hex[65];
	crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	return arena_printf(a, "%srt:%s", cache_prefix(), hex);
}

static const char *channel(struct arena *a)
{
	return arena_printf(a, "%sinvalidate", cache_prefix());
}

int session_create(struct redis *r, struct arena *a, int64_t user_id, char refresh[48], char fam[48])
{
	token_random(refresh);
	token_random(fam);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long login_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	redisReply *rep = redis_command(r, a, "SET %s %s|%lld|live|%lld EX %lld", token_key(a, refresh), fam,
					(long long)user_id, login_ms, (long long)auth_refresh_ttl());
	return rep ? 0 : -1;
}

enum session_result session_rotate(struct redis *r, struct arena *a, const char *old, char refresh[48],
				   int64_t *user_id, char fam[48], int64_t *login_ms)
{
	token_random(refresh);
	const char *revoked_until = arena_printf(a, "%lld", (long long)(time(NULL) + auth_access_ttl()));
	const char *argv[] = { "EVAL", rotate_lua, "4", token_key(a, old), token_key(a, refresh),
			       arena_printf(a, "%sfamrevoked:", cache_prefix()),
			       arena_printf(a, "%srevoked", cache_prefix()),
			       arena_printf(a, "%lld", (long long)auth_refresh_ttl()), revoked_until, channel(a) };
	redisReply *rep = redis_commandv(r, a, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1)
		return SESSION_UNAVAILABLE;
	long long code = rep->element[0]->integer;
	if (code == 2) {
		const char *f = rep->element[1]->str;
		char entry[64];
		snprintf(entry, sizeof(entry), "f:%s", f);
		revocation_add(entry, time(NULL) + auth_access_ttl());
		return SESSION_REUSED;
	}
	if (code != 1 || rep->elements != 4)
		return SESSION_UNKNOWN;
	snprintf(fam, 48, "%s", rep->element[1]->str);
	*user_id = atoll(rep->element[2]->str);
	*login_ms = atoll(rep->element[3]->str);
	return SESSION_OK;
}

int session_revoke(struct redis *r, struct arena *a, const char *fam, const char *jti, int64_t jti_exp)
{
	int64_t fam_until = time(NULL) + auth_access_ttl();
	const char *set = arena_printf(a, "%srevoked", cache_prefix());
	const char *ch = channel(a);
	char entry[64];
	/* Locally first: this instance refuses the tokens even if Redis fails now. */
	snprintf(entry, sizeof(entry), "f:%s", fam);
	revocation_add(entry, fam_until);
	snprintf(entry, sizeof(entry), "j:%s", jti);
	revocation_add(entry, jti_exp);
	int ok = redis_command(r, a, "SET %sfamrevoked:%s 1 EX %lld", cache_prefix(), fam,
			       (long long)auth_refresh_ttl()) &&
		 redis_command(r, a, "ZADD %s %lld f:%s %lld j:%s", set, (long long)fam_until, fam,
			       (long long)jti_exp, jti) &&
		 redis_command(r, a, "PUBLISH %s %s", ch, arena_printf(a, "!revoke f:%s %lld", fam, (long long)fam_until)) &&
		 redis_command(r, a, "PUBLISH %s %s", ch, arena_printf(a, "!revoke j:%s %lld", jti, (long long)jti_exp));
	redis_command(r, a, "ZREMRANGEBYSCORE %s -inf %lld", set, (long long)time(NULL));
	return ok ? 0 : -1;
}

/* The member and expiry of a user-wide revocation: it must outlive every
 * access token issued before the cut-off. */
static int64_t user_revocation_expiry(int64_t cutoff_ms)
{
	return cutoff_ms / 1000 + auth_access_ttl() + 1;
}

int session_revoke_user(struct redis *r, struct arena *a, int64_t user_id, int64_t cutoff_ms)
{
	const char *member = arena_printf(a, "u:%lld:%lld", (long long)user_id, (long long)cutoff_ms);
	int64_t until = user_revocation_expiry(cutoff_ms);
	revocation_add(member, until);
	int ok = redis_command(r, a, "ZADD %srevoked %lld %s", cache_prefix(), (long long)until, member) &&
		 redis_command(r, a, "PUBLISH %s %s", channel(a),
			       arena_printf(a, "!revoke %s %lld", member, (long long)until));
	return ok ? 0 : -1;
}

int session_revoke_user_raw(struct redisContext *c, int64_t user_id, int64_t cutoff_ms)
{
	char member[64];
	snprintf(member, sizeof(member), "u:%lld:%lld", (long long)user_id, (long long)cutoff_ms);
	long long until = (long long)user_revocation_expiry(cutoff_ms);
	int ok = 1;
	redisReply *rep = redisCommand(c, "ZADD %srevoked %lld %s", cache_prefix(), until, member);
	ok &= rep && rep->type != REDIS_REPLY_ERROR;
	if (rep)
		freeReplyObject(rep);
	char msg[96];
	snprintf(msg, sizeof(msg), "!revoke %s %lld", member, until);
	rep = redisCommand(c, "PUBLISH %sinvalidate %s", cache_prefix(), msg);
	ok &= rep && rep->type != REDIS_REPLY_ERROR;
	if (rep)
		freeReplyObject(rep);
	return ok ? 0 : -1;
}

/* KEYS: the revocation set. ARGV: the channel, then member, expiry pairs.
 * Adds what the set lacks (or holds with an earlier expiry) and tells every
 * instance; returns how many it added. */
static const char restore_lua[] =
	"local n = 0\n"
	"for i = 2, #ARGV - 1, 2 do\n"
	"  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])\n"
	"  if not s or tonumber(s) < tonumber(ARGV[i + 1]) then\n"
	"    redis.call('ZADD', KEYS[1], ARGV[i + 1], ARGV[i])\n"
	"    redis.call('PUBLISH', ARGV[1], '!revoke ' .. ARGV[i] .. ' ' .. ARGV[i + 1])\n"
	"    n = n + 1\n"
	"  end\n"
	"end\n"
	"return n\n";

struct restore {
	const char **argv;
	size_t argc, cap;
};

static void restore_add(const char *member, int64_t exp, void *ctx)
{
	struct restore *r = ctx;
	if (r->argc + 2 > r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->argv = xrealloc(r->argv, r->cap * sizeof(*r->argv));
	}
	r->argv[r->argc++] = xstrdup(member);
	char when[24];
	snprintf(when, sizeof(when), "%lld", (long long)exp);
	r->argv[r->argc++] = xstrdup(when);
}

/* Gives Redis back the revocations this instance holds and Redis does not:
 * a Redis restarted empty (it keeps no snapshot) would otherwise forget
 * every logout, and an instance started after it would accept the tokens;
 * so would the other instances for a revocation made while Redis was down. */
static int restore_revocations(struct redisContext *c)
{
	struct restore r = { 0 };
	revocation_each(restore_add, &r);
	char set[128], ch[128];
	snprintf(set, sizeof(set), "%srevoked", cache_prefix());
	snprintf(ch, sizeof(ch), "%sinvalidate", cache_prefix());
	enum { CHUNK = 512 }; /* member, expiry pairs per script call */
	int ok = 1;
	for (size_t at = 0; at < r.argc && ok; at += 2 * CHUNK) {
		size_t n = r.argc - at < 2 * CHUNK ? r.argc - at : 2 * CHUNK;
		const char *argv[5 + 2 * CHUNK] = { "EVAL", restore_lua, "1", set, ch };
		memcpy(argv + 5, r.argv + at, n * sizeof(*argv));
		redisReply *rep = redisCommandArgv(c, (int)(5 + n), argv, NULL);
		ok = rep && rep->type == REDIS_REPLY_INTEGER;
		if (rep)
			freeReplyObject(rep);
	}
	for (size_t i = 0; i < r.argc; i++)
		free((char *)r.argv[i]);
	free(r.argv);
	return ok ? 0 : -1;
}

int session_load_revocations(struct redisContext *c)
{
	if (restore_revocations(c))
		return -1;
	redisReply *rep = redisCommand(c, "ZRANGEBYSCORE %srevoked %lld +inf WITHSCORES", cache_prefix(),
				       (long long)time(NULL));
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		if (rep)
			freeReplyObject(rep);
		return -1;
	}
	for (size_t i = 0; i + 1 < rep->elements; i += 2)
		revocation_add(rep->element[i]->str, atoll(rep->element[i + 1]->str));
	freeReplyObject(rep);
	return 0;
}

void session_apply_message(const char *msg)
{
	char entry[64];
	long long exp;
	if (sscanf(msg, "!revoke %63s %lld", entry, &exp) == 2)
		revocation_add(entry, exp);
}
