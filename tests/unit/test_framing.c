/* Unit tests for src/http/framing.{h,c}: whole requests, every split of the
 * input, pipelining, and the refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "http/framing.h"
#include "http/server.h"

struct outcome {
	enum framing_event ev;
	int status;            /* of the refusal, for FRAMING_ERROR */
	char method[16];
	char path[256];
	char query[256];
	char host[64];
	char body[256];
	size_t body_len;
	int keep_alive;
	int nheaders;
};

static void keep(struct outcome *o, enum framing_event ev, struct request *req)
{
	o->ev = ev;
	o->status = req->res.status;
	snprintf(o->method, sizeof(o->method), "%s", req->method_name ? req->method_name : "");
	snprintf(o->path, sizeof(o->path), "%s", req->path ? req->path : "");
	snprintf(o->query, sizeof(o->query), "%s", req->query_string ? req->query_string : "");
	const char *h = request_header(req, "host");
	snprintf(o->host, sizeof(o->host), "%s", h ? h : "");
	o->body_len = req->body.len;
	memcpy(o->body, req->body.ptr, req->body.len < sizeof(o->body) ? req->body.len : sizeof(o->body));
	o->keep_alive = req->keep_alive;
	o->nheaders = req->nheaders;
}

/* Feeds input in pieces of at most step bytes (0: all at once); collects up
 * to max outcomes. Returns the count. */
static int run(const char *input, size_t len, size_t step, struct outcome *out, int max)
{
	struct framing f;
	framing_init(&f, 1024);
	int n = 0;
	size_t at = 0;
	while (at < len && n < max) {
		size_t piece = step && len - at > step ? step : len - at;
		size_t used;
		enum framing_event ev = framing_feed(&f, input + at, piece, &used);
		at += used;
		if (ev == FRAMING_MORE)
			continue;
		struct request *req = framing_take(&f);
		keep(&out[n++], ev, req);
		request_free(req);
		if (ev == FRAMING_ERROR || ev == FRAMING_HEAD)
			break;
	}
	framing_release(&f);
	return n;
}

static void one_request_every_split(void **state)
{
	(void)state;
	const char *in = "POST /api/v1/a%20b/c?x=1&y=%41 HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\n"
			 "X-Long: aaa bbb ccc\r\n\r\nhello";
	for (size_t step = 0; step < strlen(in); step++) {
		struct outcome o[2];
		int n = run(in, strlen(in), step, o, 2);
		assert_int_equal(n, 1);
		assert_int_equal(o[0].ev, FRAMING_REQUEST);
		assert_string_equal(o[0].method, "POST");
		assert_string_equal(o[0].path, "/api/v1/a b/c");
		assert_string_equal(o[0].query, "x=1&y=%41");
		assert_string_equal(o[0].host, "example");
		assert_int_equal(o[0].body_len, 5);
		assert_memory_equal(o[0].body, "hello", 5);
		assert_true(o[0].keep_alive);
		assert_int_equal(o[0].nheaders, 3);
	}
}

static void chunked_body_every_split(void **state)
{
	(void)state;
	const char *in = "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n";
	for (size_t step = 0; step < strlen(in); step++) {
		struct outcome o[2];
		int n = run(in, strlen(in), step, o, 2);
		assert_int_equal(n, 1);
		assert_int_equal(o[0].ev, FRAMING_REQUEST);
		assert_int_equal(o[0].body_len, 5);
		assert_memory_equal(o[0].body, "abcde", 5);
		assert_int_equal(o[0].nheaders, 2); /* the trailer is read, not kept */
	}
}

static void pipelined_requests_in_order(void **state)
{
	(void)state;
	const char *in = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
			 "POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
			 "GET /3 HTTP/1.0\r\n\r\n";
	for (size_t step = 0; step < strlen(in); step += 3) {
		struct outcome o[4];
		int n = run(in, strlen(in), step, o, 4);
		assert_int_equal(n, 3);
		assert_string_equal(o[0].path, "/1");
		assert_string_equal(o[1].path, "/2");
		assert_int_equal(o[1].body_len, 2);
		assert_string_equal(o[2].path, "/3");
		assert_false(o[2].keep_alive); /* HTTP/1.0 without keep-alive */
	}
}

static void expect_refusal(const char *in, int status)
{
	for (size_t step = 0; step < strlen(in); step++) {
		struct outcome o[2];
		int n = run(in, strlen(in), step, o, 2);
		assert_int_equal(n, 1);
		if (o[0].ev != FRAMING_ERROR || o[0].status != status)
			fail_msg("split %zu of %s: event %d status %d, expected %d", step, in, o[0].ev, o[0].status,
				 status);
	}
}

static void refusals(void **state)
{
	(void)state;
	expect_refusal("GET / HTTP/1.1\r\n\r\n", 400);                                     /* no Host */
	expect_refusal("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);               /* two */
	expect_refusal("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);                        /* not a host */
	expect_refusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
		       "Transfer-Encoding: chunked\r\n\r\n", 400);                          /* CL + TE */
	expect_refusal("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		       "Content-Length: 1\r\n\r\n", 400);                                   /* TE + CL */
	expect_refusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400);
	expect_refusal("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400);
	expect_refusal("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400);
	expect_refusal("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400);            /* obs-fold */
	expect_refusal("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400);
	expect_refusal("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400);                          /* space before colon */
	expect_refusal("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
	expect_refusal("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_refusal("GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n", 417);
	expect_refusal("\x01GARBAGE\r\n\r\n", 400);
}

static void limits(void **state)
{
	(void)state;
	char big[FRAMING_MAX_HEAD + 256];
	int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + n, 'a', sizeof(big) - (size_t)n - 5);
	memcpy(big + sizeof(big) - 5, "\r\n\r\n", 5);
	struct outcome o[1];
	assert_int_equal(run(big, strlen(big), 0, o, 1), 1);
	assert_int_equal(o[0].status, 431);

	char target[FRAMING_MAX_TARGET + 64];
	n = snprintf(target, sizeof(target), "GET /");
	memset(target + n, 'b', sizeof(target) - (size_t)n - 1);
	target[sizeof(target) - 1] = '\0';
	assert_int_equal(run(target, strlen(target), 1000, o, 1), 1);
	assert_int_equal(o[0].status, 414);

	struct framing f;
	framing_init(&f, 4);
	const char *in = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
	size_t used;
	assert_int_equal(framing_feed(&f, in, strlen(in), &used), FRAMING_HEAD);
	assert_true(f.req->body_too_large);
	framing_release(&f);

	framing_init(&f, 4);
	in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n";
	assert_int_equal(framing_feed(&f, in, strlen(in), &used), FRAMING_HEAD);
	assert_true(f.req->body_too_large);
	framing_release(&f);
}

static void expect_continue_pauses_at_the_head(void **state)
{
	(void)state;
	struct framing f;
	framing_init(&f, 1024);
	const char *head = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n";
	size_t used;
	assert_int_equal(framing_feed(&f, head, strlen(head), &used), FRAMING_HEAD);
	assert_true(f.req->expect_continue);
	if (used < strlen(head))
		assert_int_equal(framing_feed(&f, head + used, strlen(head) - used, &used), FRAMING_MORE);
	assert_int_equal(framing_feed(&f, "ok", 2, &used), FRAMING_REQUEST);
	struct request *req = framing_take(&f);
	assert_int_equal(req->body.len, 2);
	request_free(req);
	framing_release(&f);
}

static void decode(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a);
	size_t n;
	assert_string_equal(framing_decode(&a, "a%20b+c", 7, 0, &n), "a b+c");
	assert_string_equal(framing_decode(&a, "a%20b+c", 7, 1, &n), "a b c");
	assert_string_equal(framing_decode(&a, "%zz%4", 5, 0, &n), "%zz%4"); /* invalid escapes stay */
	framing_decode(&a, "a%00b", 5, 0, &n);
	assert_int_equal(n, 3);
	arena_release(&a);
}

int main(void)
{
	framing_setup();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(one_request_every_split),
		cmocka_unit_test(chunked_body_every_split),
		cmocka_unit_test(pipelined_requests_in_order),
		cmocka_unit_test(refusals),
		cmocka_unit_test(limits),
		cmocka_unit_test(expect_continue_pauses_at_the_head),
		cmocka_unit_test(decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
