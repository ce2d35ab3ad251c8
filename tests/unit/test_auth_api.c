/* Unit tests for the token-issuing answers of POST /auth/login and
 * /auth/refresh (src/api/auth.c), with Redis, PostgreSQL and the signer
 * replaced by fakes: when the token cannot be signed, the client gets a 500
 * problem naming that, never a problem made of an unfilled error (the
 * handlers once rendered one) nor half a token pair. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

/* What auth.c calls beyond this process's memory, replaced below. */
#define token_issue fake_token_issue
#define session_rotate fake_session_rotate
#define session_create fake_session_create
#define user_role fake_user_role
#define user_credentials fake_user_credentials
#define user_touch_login fake_user_touch_login
#define password_verify fake_password_verify
#define ratelimit_check fake_ratelimit_check
#define redis_command fake_redis_command
#define redis_commandv fake_redis_commandv
#define security_event fake_security_event
/* auth.c's own entry points, beside the library's copy of them. */
#define auth_api_configure test_auth_api_configure
#define auth_register_prepare test_auth_register_prepare
#define auth_register test_auth_register
#define auth_login test_auth_login
#define auth_refresh test_auth_refresh
#define auth_logout test_auth_logout
#include "api/auth.c"

static int sign_fails; /* fake_token_issue fails */

char *fake_token_issue(int64_t user_id, enum role role, const char *fam, char jti_out[48], int64_t *exp_out)
{
	(void)user_id, (void)role, (void)fam;
	jti_out[0] = '\0';
	*exp_out = 0;
	return sign_fails ? NULL : strdup("signed.access.token");
}

enum session_result fake_session_rotate(struct redis *r, struct arena *a, const char *old, char refresh[48],
					int64_t *user_id, char fam[48], int64_t *login_ms)
{
	(void)r, (void)a, (void)old;
	memcpy(refresh, "new-refresh", 12);
	memcpy(fam, "family", 7);
	*user_id = 7;
	*login_ms = 1000;
	return SESSION_OK;
}

int fake_session_create(struct redis *r, struct arena *a, int64_t user_id, char refresh[48], char fam[48])
{
	(void)r, (void)a, (void)user_id;
	memcpy(refresh, "first-refresh", 14);
	memcpy(fam, "family", 7);
	return 0;
}

int fake_user_role(struct pg *db, struct arena *a, int64_t user_id, enum role *role, int64_t *valid_after_ms,
		   struct api_error *err)
{
	(void)db, (void)a, (void)user_id, (void)err;
	*role = ROLE_RIDER;
	*valid_after_ms = 0;
	return 0;
}

int fake_user_credentials(struct pg *db, struct arena *a, const char *email, struct credentials *creds,
			  struct api_error *err)
{
	(void)db, (void)a, (void)email, (void)err;
	creds->user_id = 7;
	creds->password_hash = "hash";
	creds->role = ROLE_RIDER;
	return 0;
}

int fake_user_touch_login(struct pg *db, struct arena *a, int64_t user_id, struct api_error *err)
{
	(void)db, (void)a, (void)user_id, (void)err;
	return 0;
}

int fake_password_verify(const char *hash, const char *password)
{
	(void)hash, (void)password;
	return 1;
}

int fake_ratelimit_check(struct request *req, struct redis *r, const char *policy, const char *subject, int limit)
{
	(void)req, (void)r, (void)policy, (void)subject, (void)limit;
	return 0;
}

redisReply *fake_redis_command(struct redis *r, struct arena *a, const char *fmt, ...)
{
	(void)r, (void)a, (void)fmt;
	return NULL; /* as with Redis down: the login counters are skipped */
}

redisReply *fake_redis_commandv(struct redis *r, struct arena *a, int argc, const char **argv, const size_t *lens)
{
	(void)r, (void)a, (void)argc, (void)argv, (void)lens;
	return NULL;
}

void fake_security_event(const struct request *req, const char *event, const char *detail)
{
	(void)req, (void)event, (void)detail;
}

static struct config settings;
static struct worker worker;

/* A request as the dispatcher hands it to a JSON route's handler. */
static struct request *make_request(const char *path, const char *body)
{
	struct request *req = calloc(1, sizeof(*req));
	assert_non_null(req);
	arena_init(&req->arena);
	buf_init(&req->body);
	buf_init(&req->res.body);
	req->path = path;
	req->request_id = "test-request";
	req->client = "127.0.0.1";
	req->json = json_loads(body, 0, NULL);
	assert_non_null(req->json);
	return req;
}

static void drop_request(struct request *req)
{
	json_decref(req->json);
	buf_release(&req->body);
	buf_release(&req->res.body);
	arena_release(&req->arena);
	free(req);
}

static const char *body_of(struct request *req)
{
	return arena_strndup(&req->arena, req->res.body.ptr, req->res.body.len);
}

static void expect_signing_problem(struct request *req)
{
	const char *body = body_of(req);
	assert_int_equal(req->res.status, 500);
	assert_string_equal(req->res.content_type, "application/problem+json");
	if (!strstr(body, "\"status\":500") || !strstr(body, "the token could not be signed"))
		fail_msg("not the signing problem: %s", body);
	if (strstr(body, "refresh_token") || strstr(body, "access_token"))
		fail_msg("a token in a failed answer: %s", body);
}

static void expect_tokens(struct request *req, const char *refresh)
{
	const char *body = body_of(req);
	assert_int_equal(req->res.status, 200);
	if (!strstr(body, "\"access_token\":\"signed.access.token\"") || !strstr(body, refresh))
		fail_msg("not the token pair: %s", body);
}

static void test_refresh_when_signing_fails(void **state)
{
	(void)state;
	sign_fails = 1;
	struct request *req = make_request("/api/v1/auth/refresh", "{\"refresh_token\": \"old-refresh\"}");
	test_auth_refresh(req, &worker);
	expect_signing_problem(req);
	drop_request(req);
}

static void test_login_when_signing_fails(void **state)
{
	(void)state;
	sign_fails = 1;
	struct request *req = make_request("/api/v1/auth/login", "{\"email\": \"Rider@Transitd.Local\", \"password\": \"x\"}");
	test_auth_login(req, &worker);
	expect_signing_problem(req);
	drop_request(req);
}

/* The same fakes with a signer that works: the failures above are the signer's. */
static void test_refresh_and_login_answer_tokens(void **state)
{
	(void)state;
	sign_fails = 0;
	struct request *req = make_request("/api/v1/auth/refresh", "{\"refresh_token\": \"old-refresh\"}");
	test_auth_refresh(req, &worker);
	expect_tokens(req, "new-refresh");
	drop_request(req);
	req = make_request("/api/v1/auth/login", "{\"email\": \"rider@transitd.local\", \"password\": \"x\"}");
	test_auth_login(req, &worker);
	expect_tokens(req, "first-refresh");
	drop_request(req);
}

int main(void)
{
	settings.login_rate_per_address = 30;
	settings.login_rate_per_email = 10;
	test_auth_api_configure(&settings);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refresh_when_signing_fails),
		cmocka_unit_test(test_login_when_signing_fails),
		cmocka_unit_test(test_refresh_and_login_answer_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
