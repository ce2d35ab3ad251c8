/* /api/v1/auth/…: register, login, refresh, logout. */
#include <ctype.h>
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
#include "../core/banned.h"

#define PASSWORD_MIN 10
#define PASSWORD_MAX 256

static const struct config *cfg;

void auth_api_configure(const struct config *c)
{
	cfg = c;
}

/* Lower-cases a plausible address into the arena; NULL when it is not one. */
static const char *normalize_email(struct arena *a, const char *email)
{
	size_t n = strlen(email);
	const char *at = strchr(email, '@');
	if (n < 3 || n > 254 || !at || at == email || !at[1] || strchr(at + 1, '@') || !strchr(at + 1, '.'))
		return NULL;
	char *out = arena_strdup(a, email);
	for (char *p = out; *p; p++) {
		if ((unsigned char)*p <= ' ')
			return NULL;
		*p = (char)tolower((unsigned char)*p);
	}
	return out;
}

void auth_register(struct request *req, struct worker *w)
{
	struct api_error e;
	const char *email, *password, *first, *last;
	if (json_get_str(req->json, "email", 1, 254, &email, &e) ||
	    json_get_str(req->json, "password", 1, PASSWORD_MAX, &password, &e) ||
	    json_get_str(req->json, "first_name", 1, 100, &first, &e) ||
	    json_get_str(req->json, "last_name", 1, 100, &last, &e))
		goto fail;
	struct new_user u = { normalize_email(&req->arena, email), first, last, NULL };
	if (!u.email) {
		api_fail_field(&e, "email", "must be an email address");
		goto fail;
	}
	if (strlen(password) < PASSWORD_MIN) {
		api_fail_field(&e, "password", "must be at least %d characters", PASSWORD_MIN);
		goto fail;
	}
	char hash[128];
	if (password_hash(password, hash)) {
		api_fail(&e, "unavailable", "the server is short of memory; retry shortly");
		goto fail;
	}
	u.password_hash = hash;
	if (user_create(&w->primary, &req->arena, &u, reply(req, 201), &e))
		goto fail;
	const char *keys[] = { "analytics:users:count" };
	cache_invalidate(&w->redis, &req->arena, keys, 1);
	return;
fail:
	reply_problem(req, &e);
}

/* Writes the token pair of a login. */
static int reply_tokens(struct request *req, int64_t user_id, enum role role, const char *fam, const char *refresh)
{
	char jti[48];
	int64_t exp;
	char *access = token_issue(user_id, role, fam, jti, &exp);
	if (!access)
		return -1;
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

void auth_login(struct request *req, struct worker *w)
{
	struct api_error e;
	const char *email_in, *password;
	struct credentials c;
	if (json_get_str(req->json, "email", 1, 254, &email_in, &e) ||
	    json_get_str(req->json, "password", 1, PASSWORD_MAX, &password, &e)) {
		reply_problem(req, &e);
		return;
	}
	const char *email = normalize_email(&req->arena, email_in);
	/* Brute force: per address, and per email wherever it comes from. */
	if (ratelimit_check(req, &w->redis, "login-address", req->client, cfg->login_rate_per_address) ||
	    (email && ratelimit_check(req, &w->redis, "login-email", email, cfg->login_rate_per_email)))
		return;
	if (user_credentials(&w->primary, &req->arena, email ? email : "", &c, &e)) {
		reply_problem(req, &e);
		return;
	}
	if (!password_verify(c.password_hash, password)) {
		security_event(req, "login-failed", email ? email : "(not an email)");
		api_fail(&e, "unauthorized", "invalid email or password");
		reply_problem(req, &e);
		return;
	}
	char refresh[48], fam[48];
	if (session_create(&w->redis, &req->arena, c.user_id, refresh, fam)) {
		api_fail(&e, "unavailable", "sessions cannot be stored right now");
		e.retry_after = 1;
		reply_problem(req, &e);
		return;
	}
	user_touch_login(&w->primary, &req->arena, c.user_id, &e);
	if (reply_tokens(req, c.user_id, c.role, fam, refresh)) {
		api_fail(&e, "internal", "the token could not be signed");
		reply_problem(req, &e);
	}
}

void auth_refresh(struct request *req, struct worker *w)
{
	struct api_error e;
	const char *old;
	char refresh[48], fam[48];
	int64_t user_id = 0, login_ms = 0, valid_after_ms = 0;
	enum role role;
	if (json_get_str(req->json, "refresh_token", 1, 128, &old, &e)) {
		reply_problem(req, &e);
		return;
	}
	switch (session_rotate(&w->redis, &req->arena, old, refresh, &user_id, fam, &login_ms)) {
	case SESSION_OK:
		break;
	case SESSION_UNAVAILABLE:
		api_fail(&e, "unavailable", "sessions cannot be checked right now");
		e.retry_after = 1;
		reply_problem(req, &e);
		return;
	case SESSION_REUSED:
		security_event(req, "refresh-token-reuse", "login family revoked");
		/* fall through */
	default:
		api_fail(&e, "unauthorized", "the refresh token is invalid, expired or already used");
		reply_problem(req, &e);
		return;
	}
	/* A login from before a change of role or password is over: the family
	 * goes, and the user signs in again. */
	if (user_role(&w->primary, &req->arena, user_id, &role, &valid_after_ms, &e)) {
		reply_problem(req, &e);
		return;
	}
	if (login_ms < valid_after_ms) {
		session_revoke(&w->redis, &req->arena, fam, "-", time(NULL) + 1);
		security_event(req, "refresh-after-credentials-change", "login ended by a role or password change");
		api_fail(&e, "unauthorized", "this login ended when the account's role or password changed; log in again");
		reply_problem(req, &e);
		return;
	}
	if (reply_tokens(req, user_id, role, fam, refresh)) {
		api_fail(&e, "internal", "the token could not be signed");
		reply_problem(req, &e);
	}
}

void auth_logout(struct request *req, struct worker *w)
{
	struct api_error e;
	if (session_revoke(&w->redis, &req->arena, req->auth->fam, req->auth->jti, req->auth->exp)) {
		/* This instance already refuses the tokens; others must hear of it. */
		api_fail(&e, "unavailable", "the logout could not be shared with every server; retry");
		e.retry_after = 1;
		reply_problem(req, &e);
		return;
	}
	reply(req, 204);
}
