/* /api/v1/auth/…: register, login, refresh, logout. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../auth/session.h"
#include "../core/json.h"
#include "../domain/users.h"
#include "../http/ratelimit.h"
#include "../http/worker.h"
#include "../store/cache.h"
#include "api.h"
#include "keys.h"
#include "../core/banned.h"

#define PASSWORD_MIN 10
#define PASSWORD_MAX 256

static const struct config *cfg;

void auth_api_configure(const struct config *c)
{
	cfg = c;
	/* Failed logins of an email and its turns (login_turn_or_reply) are not cache. */
	cache_keep("lf:");
	cache_keep("lg:");
}

/* What registration's first stage leaves for the second. */
struct registration {
	struct new_user user;
	char hash[128];
};

/* On the password pool: the per-address budget, the fields, the hash. The
 * worker that runs auth_register then only writes the row. Leaves
 * req->stage, or answers (ratelimit_check answers a 429 itself). */
void auth_register_prepare(struct request *req, struct worker *w)
{
	struct api_error e;
	const char *email, *password, *first, *last;
	if (ratelimit_check(req, &w->redis, "register-address", req->client, cfg->register_rate_per_address))
		return;
	if (json_get_str(req->json, "email", 1, 254, &email, &e) ||
	    json_get_str(req->json, "password", 1, PASSWORD_MAX, &password, &e) ||
	    json_get_str(req->json, "first_name", 1, 100, &first, &e) ||
	    json_get_str(req->json, "last_name", 1, 100, &last, &e))
		goto fail;
	struct registration *reg = arena_zalloc(&req->arena, sizeof(*reg));
	reg->user = (struct new_user){ user_email_normalize(&req->arena, email), first, last, NULL };
	if (!reg->user.email) {
		api_fail_field(&e, "email", "must be an email address");
		goto fail;
	}
	if (strlen(password) < PASSWORD_MIN) {
		api_fail_field(&e, "password", "must be at least %d characters", PASSWORD_MIN);
		goto fail;
	}
	if (password_hash(password, reg->hash)) {
		api_fail(&e, "unavailable", "the server is short of memory; retry shortly");
		e.retry_after = 1;
		goto fail;
	}
	reg->user.password_hash = reg->hash;
	req->stage = reg;
	return;
fail:
	reply_problem(req, &e);
}

void auth_register(struct request *req, struct worker *w)
{
	struct api_error e;
	struct registration *reg = req->stage;
	if (user_create(&w->primary, &req->arena, &reg->user, reply(req, 201), &e))
		goto fail;
	const char *keys[] = { family_key(&req->arena, &family_users_count, 0) };
	worker_invalidate(w, &req->arena, keys, 1);
	return;
fail:
	reply_problem(req, &e);
}

/* Writes the token pair of a login into req's answer (200). 0, or -1 with
 * err filled (500: the token could not be signed) and nothing written. */
static int reply_tokens(struct request *req, int64_t user_id, enum role role, const char *fam, const char *refresh,
			struct api_error *err)
{
	char jti[48];
	int64_t exp;
	char *access = token_issue(user_id, role, fam, jti, &exp);
	if (!access)
		return api_fail(err, "internal", "the token could not be signed");
	struct buf *b = reply(req, 200);
	buf_adds(b, "{\"access_token\":");
	buf_add_json_str(b, access);
	buf_adds(b, ",\"refresh_token\":");
	buf_add_json_str(b, refresh);
	buf_addf(b, ",\"token_type\":\"bearer\",\"expires_in\":%lld}", (long long)auth_access_ttl());
	reply_header(req, "Cache-Control", "no-store");
	free(access);
	return 0;
}

/*
 * Failed logins of one email from anywhere: past LOGIN_SLOWDOWN_AFTER in 15
 * minutes, attempts on that email take turns, one per turn, each turn
 * twice as long as the last up to LOGIN_SLOWDOWN_MAX. A distributed guesser
 * gets a handful of tries an hour; the owner waits at most one turn, and a
 * right password ends the slow-down. (Counting per email alone used to let
 * anyone lock an account for a minute at a time.)
 * KEYS: failures, turn. ARGV: now ms, after, longest turn ms. Returns the ms
 * to wait, 0 when this attempt may go on.
 */
static const char turn_lua[] =
	"local f = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
	"local after = tonumber(ARGV[2])\n"
	"if f < after then return 0 end\n"
	"local now = tonumber(ARGV[1])\n"
	"local gate = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
	"if now < gate then return gate - now end\n"
	"local wait = math.min(1000 * 2 ^ math.min(f - after, 20), tonumber(ARGV[3]))\n"
	"redis.call('SET', KEYS[2], tostring(now + wait), 'PX', math.floor(wait))\n"
	"return 0\n";

#define LOGIN_FAILURE_WINDOW_S 900

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 0: this attempt may go on (also when Redis cannot tell); -1: answered 429. */
static int login_turn_or_reply(struct request *req, struct worker *w, const char *email)
{
	const char *argv[] = { "EVAL", turn_lua, "2", arena_printf(&req->arena, "%slf:%s", cache_prefix(), email),
			       arena_printf(&req->arena, "%slg:%s", cache_prefix(), email),
			       arena_printf(&req->arena, "%lld", (long long)wall_ms()),
			       arena_printf(&req->arena, "%d", cfg->login_slowdown_after),
			       arena_printf(&req->arena, "%d", cfg->login_slowdown_max_s * 1000) };
	redisReply *rep = redis_commandv(&w->redis, &req->arena, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
	if (!rep || rep->type != REDIS_REPLY_INTEGER || rep->integer <= 0)
		return 0;
	struct api_error e;
	int wait_s = (int)((rep->integer + 999) / 1000);
	security_event(req, "login-slowed", email);
	api_fail(&e, "rate-limited", "too many failed logins for this account; retry in %d s", wait_s);
	e.retry_after = wait_s;
	reply_problem(req, &e);
	reply_header(req, "RateLimit-Policy", "\"login-email-turns\"");
	return -1;
}

static void login_failed(struct request *req, struct worker *w, const char *email)
{
	const char *key = arena_printf(&req->arena, "%slf:%s", cache_prefix(), email);
	redisReply *rep = redis_command(&w->redis, &req->arena, "INCR %s", key);
	if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
		redis_command(&w->redis, &req->arena, "EXPIRE %s %d", key, LOGIN_FAILURE_WINDOW_S);
}

static void login_succeeded(struct request *req, struct worker *w, const char *email)
{
	redis_command(&w->redis, &req->arena, "DEL %slf:%s %slg:%s", cache_prefix(), email, cache_prefix(), email);
}

void auth_login(struct request *req, struct worker *w)
{
	struct api_error e;
	const char *email_in, *password;
	struct credentials c;
	if (json_get_str(req->json, "email", 1, 254, &email_in, &e) ||
	    json_get_str(req->json, "password", 1, PASSWORD_MAX, &password, &e))
		goto fail;
	const char *email = user_email_normalize(&req->arena, email_in);
	/* Brute force: per address; per email from one address, so a stranger
	 * elsewhere cannot lock the owner out; per email from anywhere, slowed
	 * down in turns rather than locked. (ratelimit_check answers a 429.) */
	if (ratelimit_check(req, &w->redis, "login-address", req->client, cfg->login_rate_per_address) ||
	    (email && ratelimit_check(req, &w->redis, "login-email",
				      arena_printf(&req->arena, "%s|%s", email, req->client), cfg->login_rate_per_email)) ||
	    (email && login_turn_or_reply(req, w, email)))
		return;
	if (user_credentials(&w->primary, &req->arena, email ? email : "", &c, &e))
		goto fail;
	if (!password_verify(c.password_hash, password)) {
		security_event(req, "login-failed", email ? email : "(not an email)");
		if (email)
			login_failed(req, w, email);
		api_fail(&e, "unauthorized", "invalid email or password");
		goto fail;
	}
	char refresh[48], fam[48];
	if (session_create(&w->redis, &req->arena, c.user_id, refresh, fam)) {
		api_fail(&e, "unavailable", "sessions cannot be stored right now");
		e.retry_after = 1;
		goto fail;
	}
	struct api_error ignored; /* the last login's time is a courtesy */
	user_touch_login(&w->primary, &req->arena, c.user_id, &ignored);
	login_succeeded(req, w, email);
	if (reply_tokens(req, c.user_id, c.role, fam, refresh, &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

void auth_refresh(struct request *req, struct worker *w)
{
	struct api_error e;
	const char *old;
	char refresh[48], fam[48];
	int64_t user_id = 0, login_ms = 0, valid_after_ms = 0;
	enum role role;
	if (json_get_str(req->json, "refresh_token", 1, 128, &old, &e))
		goto fail;
	switch (session_rotate(&w->redis, &req->arena, old, refresh, &user_id, fam, &login_ms)) {
	case SESSION_OK:
		break;
	case SESSION_UNAVAILABLE:
		api_fail(&e, "unavailable", "sessions cannot be checked right now");
		e.retry_after = 1;
		goto fail;
	case SESSION_REUSED:
		security_event(req, "refresh-token-reuse", "login family revoked");
		/* fall through */
	default:
		api_fail(&e, "unauthorized", "the refresh token is invalid, expired or already used");
		goto fail;
	}
	/* A login from before a change of role or password is over: the family
	 * goes, and the user signs in again. */
	if (user_role(&w->primary, &req->arena, user_id, &role, &valid_after_ms, &e))
		goto fail;
	if (login_ms < valid_after_ms) {
		session_revoke(&w->redis, &req->arena, fam, "-", time(NULL) + 1);
		security_event(req, "refresh-after-credentials-change", "login ended by a role or password change");
		api_fail(&e, "unauthorized", "this login ended when the account's role or password changed; log in again");
		goto fail;
	}
	if (reply_tokens(req, user_id, role, fam, refresh, &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

void auth_logout(struct request *req, struct worker *w)
{
	struct api_error e;
	if (session_revoke(&w->redis, &req->arena, req->auth->fam, req->auth->jti, req->auth->exp)) {
		/* This instance already refuses the tokens; others must hear of it. */
		api_fail(&e, "unavailable", "the logout could not be shared with every server; retry");
		e.retry_after = 1;
		goto fail;
	}
	reply(req, 204);
	return;
fail:
	reply_problem(req, &e);
}
