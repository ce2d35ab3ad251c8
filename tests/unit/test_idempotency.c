/* Unit tests for src/api/idempotency.c: what needs no database. Which keys
 * are accepted, the scope a key lives in, the fingerprint that tells a
 * replay from another request under the same key, the advisory lock id,
 * and the answers given without a transaction. The file is included to
 * reach valid_key and lock_id.
 *
 * The rest runs in PostgreSQL (the lock, the stored answer, its replay, 409
 * and 422 on a mismatch): the end-to-end suite covers it against the real
 * database (tests/e2e/test_cards.py: test_recharge_idempotent_replay,
 * ..._mismatch, test_idempotency_keys_are_per_caller;
 * test_cards_concurrency.py: test_100_concurrent_requests_one_idempotency_key). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Before cmocka.h, whose fail() macro would rename the file's own fail(). */
#include "api/idempotency.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static struct route recharge = { .method = METHOD_POST, .pattern = "/api/v1/cards/recharge" };
static struct route block = { .method = METHOD_POST, .pattern = "/api/v1/cards/{card_id}/block" };

static void request_init(struct request *req, const char *key, int64_t user, const char *path, const char *body)
{
	static struct principal callers[8];
	static int next;
	memset(req, 0, sizeof(*req));
	arena_init(&req->arena);
	buf_init(&req->body);
	buf_init(&req->res.body);
	req->route = &recharge;
	req->method = METHOD_POST;
	req->method_name = "POST";
	req->path = path;
	req->idempotency_key = key;
	if (user) {
		struct principal *p = &callers[next++ % 8];
		memset(p, 0, sizeof(*p));
		p->user_id = user;
		req->auth = p;
	}
	buf_adds(&req->body, body);
}

static void request_release(struct request *req)
{
	buf_release(&req->body);
	buf_release(&req->res.body);
	arena_release(&req->arena);
}

/* 1 to 255 visible ASCII characters. */
static void test_key_validation(void **state)
{
	(void)state;
	char k[300];
	assert_true(valid_key("a"));
	assert_true(valid_key("!"));
	assert_true(valid_key("~"));
	assert_true(valid_key("9b2e4c1a-7d3f-4e8a-b6c5-0f1e2d3c4b5a"));
	assert_true(valid_key("key:with/all#sorts?of=punctuation&\"quotes\""));
	memset(k, 'x', 255);
	k[255] = '\0';
	assert_true(valid_key(k));
	k[255] = 'x';
	k[256] = '\0';
	assert_false(valid_key(k));
	assert_false(valid_key(""));
	assert_false(valid_key(" "));
	assert_false(valid_key("two words"));
	assert_false(valid_key("tab\there"));
	assert_false(valid_key("new\nline"));
	assert_false(valid_key("del\x7f"));
	assert_false(valid_key("caf\xc3\xa9"));
	assert_false(valid_key("\x01"));
}

/* A bad key is a 422 naming the header, before anything runs. */
static void test_bad_key_is_422_naming_the_header(void **state)
{
	(void)state;
	const char *bad[] = { "", "a b", "caf\xc3\xa9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct request req;
		request_init(&req, bad[i], 42, "/api/v1/cards/recharge", "{}");
		const char *scope = NULL, *hash = NULL;
		struct api_error e;
		memset(&e, 0, sizeof(e));
		assert_int_equal(idem_identify(&req, &scope, &hash, &e), -1);
		assert_int_equal(e.status, 422);
		assert_string_equal(e.field, "Idempotency-Key");
		/* The money writes' form answers the client itself. */
		struct write_key k;
		assert_int_equal(idem_key_or_reply(&req, &k), -1);
		assert_int_equal(req.res.status, 422);
		assert_string_equal(req.res.content_type, "application/problem+json");
		assert_non_null(strstr(req.res.body.ptr, "Idempotency-Key"));
		/* And so does the transaction form, without touching a database. */
		struct idem im;
		buf_reset(&req.res.body);
		req.res.status = 0;
		assert_int_equal(idem_begin_or_reply(&im, &req, NULL, 0), -1);
		assert_int_equal(req.res.status, 422);
		assert_int_equal(im.tx, 0);
		request_release(&req);
	}
}

struct identity {
	const char *scope, *hash;
	char lock[24];
};

static void identify(struct request *req, struct identity *id)
{
	struct api_error e;
	assert_int_equal(idem_identify(req, &id->scope, &id->hash, &e), 0);
	snprintf(id->lock, sizeof(id->lock), "%lld", lock_id(id->scope, req->idempotency_key));
}

/* A key lives in the scope of method, route and caller: two users (or two
 * routes) never collide on one key. */
static void test_scope(void **state)
{
	(void)state;
	struct request a, b, anon, other_route;
	struct identity ia, ib, ianon, iroute;
	request_init(&a, "k1", 42, "/api/v1/cards/recharge", "{}");
	request_init(&b, "k1", 43, "/api/v1/cards/recharge", "{}");
	request_init(&anon, "k1", 0, "/api/v1/cards/recharge", "{}");
	request_init(&other_route, "k1", 42, "/api/v1/cards/7/block", "{}");
	other_route.route = &block;
	identify(&a, &ia);
	identify(&b, &ib);
	identify(&anon, &ianon);
	identify(&other_route, &iroute);
	assert_string_equal(ia.scope, "POST /api/v1/cards/recharge 42");
	assert_string_equal(ib.scope, "POST /api/v1/cards/recharge 43");
	assert_string_equal(ianon.scope, "POST /api/v1/cards/recharge 0");
	/* The route's pattern, not the path: one key per route, whichever card. */
	assert_string_equal(iroute.scope, "POST /api/v1/cards/{card_id}/block 42");
	/* Different scopes, different advisory locks. */
	assert_string_not_equal(ia.lock, ib.lock);
	assert_string_not_equal(ia.lock, ianon.lock);
	assert_string_not_equal(ia.lock, iroute.lock);
	/* The same request's hash does not depend on the caller. */
	assert_string_equal(ia.hash, ib.hash);
	request_release(&a);
	request_release(&b);
	request_release(&anon);
	request_release(&other_route);
}

/* The fingerprint: the same method, path and body give the same hash (a
 * replay); any other gives another (422 mismatch). */
static void test_fingerprint(void **state)
{
	(void)state;
	struct { const char *method, *path, *body; } reqs[] = {
		{ "POST", "/api/v1/cards/recharge", "{\"card_id\":1,\"amount\":500}" },
		{ "POST", "/api/v1/cards/recharge", "{\"card_id\":1,\"amount\":501}" },
		{ "POST", "/api/v1/cards/recharge", "{\"card_id\":1,\"amount\":500} " },
		{ "POST", "/api/v1/cards/recharge", "{\"amount\":500,\"card_id\":1}" },
		{ "POST", "/api/v1/cards/recharge", "" },
		{ "PUT", "/api/v1/cards/recharge", "{\"card_id\":1,\"amount\":500}" },
		{ "POST", "/api/v1/cards/recharge/", "{\"card_id\":1,\"amount\":500}" },
		/* A byte moved from the path to the body. */
		{ "POST", "/api/v1/cards/recharg", "e{\"card_id\":1,\"amount\":500}" },
		{ "POST", "/api/v1/cards/recharge\n", "{\"card_id\":1,\"amount\":500}" },
	};
	size_t n = sizeof(reqs) / sizeof(reqs[0]);
	const char *hashes[16];
	struct request req[16];
	for (size_t i = 0; i < n; i++) {
		struct identity id;
		request_init(&req[i], "same-key", 42, reqs[i].path, reqs[i].body);
		req[i].method_name = reqs[i].method;
		identify(&req[i], &id);
		assert_int_equal(strlen(id.hash), 64);
		assert_int_equal(strspn(id.hash, "0123456789abcdef"), 64);
		hashes[i] = id.hash;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (!strcmp(hashes[i], hashes[j]))
				fail_msg("requests %zu and %zu have one fingerprint", i, j);
	/* The same request again: the same hash and lock. */
	struct request again;
	struct identity a1, a2;
	request_init(&again, "same-key", 42, reqs[0].path, reqs[0].body);
	identify(&again, &a1);
	assert_string_equal(a1.hash, hashes[0]);
	identify(&req[0], &a2);
	assert_string_equal(a1.lock, a2.lock);
	request_release(&again);
	for (size_t i = 0; i < n; i++)
		request_release(&req[i]);
}

/* A body with a NUL byte is hashed whole, not up to the NUL. */
static void test_fingerprint_whole_body(void **state)
{
	(void)state;
	struct request a, b;
	struct identity ia, ib;
	request_init(&a, "k", 1, "/api/v1/cards/recharge", "");
	request_init(&b, "k", 1, "/api/v1/cards/recharge", "");
	buf_add(&a.body, "{}\0a", 4);
	buf_add(&b.body, "{}\0b", 4);
	identify(&a, &ia);
	identify(&b, &ib);
	assert_string_not_equal(ia.hash, ib.hash);
	request_release(&a);
	request_release(&b);
}

/* The key fields the money writes pass to SQL. */
static void test_write_key(void **state)
{
	(void)state;
	struct request req;
	struct write_key k;
	request_init(&req, NULL, 42, "/api/v1/cards/recharge", "{}");
	assert_int_equal(idem_key_or_reply(&req, &k), 0);
	assert_null(k.key);
	assert_null(k.scope);
	assert_null(k.hash);
	assert_null(k.lock);
	assert_int_equal(req.res.status, 0);
	request_release(&req);

	request_init(&req, "key-1", 42, "/api/v1/cards/recharge", "{}");
	struct identity id;
	identify(&req, &id);
	assert_int_equal(idem_key_or_reply(&req, &k), 0);
	assert_string_equal(k.key, "key-1");
	assert_string_equal(k.scope, id.scope);
	assert_string_equal(k.hash, id.hash);
	assert_string_equal(k.lock, id.lock);
	char *end;
	strtoll(k.lock, &end, 10);
	assert_int_equal(*end, '\0');
	assert_int_equal(req.res.status, 0);
	request_release(&req);
}

/* Without a key and without a transaction nothing is done: no database. */
static void test_no_key_no_transaction(void **state)
{
	(void)state;
	struct request req;
	struct idem im;
	request_init(&req, NULL, 42, "/api/v1/cards/recharge", "{}");
	assert_int_equal(idem_begin_or_reply(&im, &req, NULL, 0), 0);
	assert_null(im.key);
	assert_int_equal(im.tx, 0);
	assert_int_equal(idem_finish_or_reply(&im, &req, 0, NULL), 0);
	assert_int_equal(req.res.status, 0);
	request_release(&req);
}

/* A replay says so in a header; a first answer does not. */
static void test_reply_outcome(void **state)
{
	(void)state;
	struct request req;
	request_init(&req, "k", 42, "/api/v1/cards/recharge", "{}");
	struct write_outcome o = { .status = 201, .body = "{\"balance\":500}", .len = 15 };
	reply_outcome(&req, &o);
	assert_int_equal(req.res.status, 201);
	assert_memory_equal(req.res.body.ptr, "{\"balance\":500}", 15);
	assert_int_equal(req.res.nheaders, 0);
	request_release(&req);

	request_init(&req, "k", 42, "/api/v1/cards/recharge", "{}");
	o.replayed = 1;
	reply_outcome(&req, &o);
	assert_int_equal(req.res.status, 201);
	assert_int_equal(req.res.nheaders, 1);
	assert_string_equal(req.res.headers[0][0], "Idempotent-Replayed");
	assert_string_equal(req.res.headers[0][1], "true");
	request_release(&req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_validation),
		cmocka_unit_test(test_bad_key_is_422_naming_the_header),
		cmocka_unit_test(test_scope),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_fingerprint_whole_body),
		cmocka_unit_test(test_write_key),
		cmocka_unit_test(test_no_key_no_transaction),
		cmocka_unit_test(test_reply_outcome),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
