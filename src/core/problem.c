#include "problem.h"

#include <stdio.h>
#include <string.h>

#include "banned.h"

static const struct {
	const char *slug;
	int status;
	const char *title;
} problems[] = {
	{ "malformed-json", 400, "Malformed JSON" },
	{ "bad-request", 400, "Bad request" },
	{ "unauthorized", 401, "Authentication required" },
	{ "insufficient-balance", 402, "Insufficient balance" },
	{ "forbidden", 403, "Forbidden" },
	{ "not-found", 404, "Not found" },
	{ "method-not-allowed", 405, "Method not allowed" },
	{ "request-timeout", 408, "Request timeout" },
	{ "conflict", 409, "Conflict" },
	{ "card-blocked", 409, "Card blocked" },
	{ "card-limit", 409, "Card limit reached" },
	{ "active-trip", 409, "Trip already in progress" },
	{ "seat-taken", 409, "Seat taken" },
	{ "idempotency-in-progress", 409, "Request with this Idempotency-Key in progress" },
	{ "payload-too-large", 413, "Payload too large" },
	{ "uri-too-long", 414, "Request target too long" },
	{ "unsupported-media-type", 415, "Unsupported media type" },
	{ "expectation-failed", 417, "Expectation failed" },
	{ "validation", 422, "Validation failed" },
	{ "idempotency-mismatch", 422, "Idempotency-Key reused with a different request" },
	{ "rate-limited", 429, "Too many requests" },
	{ "too-many-connections", 429, "Too many connections from this client" },
	{ "header-too-large", 431, "Request header fields too large" },
	{ "internal", 500, "Internal error" },
	{ "dead-lettered", 500, "Command not applied" },
	{ "unavailable", 503, "Service unavailable" },
	{ "http-version-not-supported", 505, "HTTP version not supported" },
};

static int find(const char *slug)
{
	for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++)
		if (!strcmp(problems[i].slug, slug))
			return (int)i;
	return -1;
}

int problem_status(const char *slug)
{
	int i = find(slug);
	return i < 0 ? 500 : problems[i].status;
}

const char *problem_title(const char *slug)
{
	int i = find(slug);
	return i < 0 ? "Internal error" : problems[i].title;
}

static void fill(struct api_error *e, const char *slug)
{
	memset(e, 0, sizeof(*e));
	e->slug = find(slug) < 0 ? "internal" : slug;
	e->status = problem_status(e->slug);
}

int api_failv(struct api_error *e, const char *slug, const char *fmt, va_list ap)
{
	fill(e, slug);
	vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
	return -1;
}

int api_fail(struct api_error *e, const char *slug, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	api_failv(e, slug, fmt, ap);
	va_end(ap);
	return -1;
}

int api_fail_field(struct api_error *e, const char *field, const char *fmt, ...)
{
	fill(e, "validation");
	snprintf(e->field, sizeof(e->field), "%s", field);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	snprintf(e->detail, sizeof(e->detail), "%s %s", e->field, e->message);
	return -1;
}

void problem_render(struct buf *out, const struct api_error *e, const char *instance, const char *request_id)
{
	buf_adds(out, "{\"type\":\"/problems/");
	buf_adds(out, e->slug);
	buf_adds(out, "\",\"title\":");
	buf_add_json_str(out, problem_title(e->slug));
	buf_adds(out, ",\"status\":");
	buf_add_i64(out, e->status);
	buf_adds(out, ",\"detail\":");
	buf_add_json_str(out, e->detail[0] ? e->detail : problem_title(e->slug));
	buf_adds(out, ",\"instance\":");
	buf_add_json_str(out, instance ? instance : "");
	buf_adds(out, ",\"request_id\":");
	buf_add_json_str(out, request_id ? request_id : "");
	if (e->field[0]) {
		buf_adds(out, ",\"errors\":[{\"field\":");
		buf_add_json_str(out, e->field);
		buf_adds(out, ",\"message\":");
		buf_add_json_str(out, e->message);
		buf_adds(out, "}]");
	}
	if (e->extra && *e->extra) {
		buf_addch(out, ',');
		buf_adds(out, e->extra);
	}
	buf_addch(out, '}');
}
