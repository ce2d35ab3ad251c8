/* Helpers handlers use to read the request and answer it. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/log.h"
#include "http.h"
#include "../core/banned.h"

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *request_header(const struct request *req, const char *name)
{
	for (int i = 0; i < req->nheaders; i++)
		if (!strcasecmp(req->headers[i].name, name))
			return req->headers[i].value;
	return NULL;
}

const char *request_query(const struct request *req, const char *name)
{
	for (int i = 0; i < req->nquery; i++)
		if (!strcmp(req->query[i].name, name))
			return req->query[i].value;
	return NULL;
}

struct buf *reply(struct request *req, int status)
{
	req->res.status = status;
	req->res.content_type = "application/json; charset=utf-8";
	buf_reset(&req->res.body);
	return &req->res.body;
}

void reply_json(struct request *req, int status, const char *json, size_t len)
{
	buf_add(reply(req, status), json, len);
}

void reply_header(struct request *req, const char *name, const char *value)
{
	struct response *r = &req->res;
	if (r->nheaders == (int)(sizeof(r->headers) / sizeof(r->headers[0])))
		return;
	r->headers[r->nheaders][0] = name;
	r->headers[r->nheaders][1] = arena_strdup(&req->arena, value);
	r->nheaders++;
}

void reply_problem(struct request *req, const struct api_error *e)
{
	struct buf *b = reply(req, e->status);
	req->res.content_type = "application/problem+json";
	problem_render(b, e, req->path, req->request_id);
	if (e->retry_after > 0) {
		char v[16];
		int n = e->retry_after;
		char *p = v + sizeof(v) - 1;
		*p = '\0';
		do {
			*--p = (char)('0' + n % 10);
			n /= 10;
		} while (n);
		reply_header(req, "Retry-After", p);
	}
}

void security_event(const struct request *req, const char *event, const char *detail)
{
	struct log_subject who = { req->request_id, req->client, req->path, req->auth ? req->auth->user_id : 0 };
	log_security(&who, event, detail);
}
