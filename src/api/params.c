#include "params.h"

#include "../core/json.h"
#include "../core/banned.h"

int query_page(const struct request *req, int64_t *limit, int64_t *cursor, struct api_error *err)
{
	const char *l = request_query(req, "limit");
	const char *c = request_query(req, "cursor");
	*limit = 20;
	*cursor = 0;
	if (l && parse_int64(l, 1, 100, limit))
		return api_fail_field(err, "limit", "must be an integer from 1 to 100");
	if (c && *c && parse_int64(c, 1, INT64_MAX, cursor))
		return api_fail_field(err, "cursor", "is not a cursor this API returned");
	return 0;
}

const char *query_nonempty(const struct request *req, const char *name)
{
	const char *v = request_query(req, name);
	return v && *v ? v : NULL;
}

int query_time(const struct request *req, const char *name, const char **out, struct api_error *err)
{
	*out = query_nonempty(req, name);
	if (*out && !rfc3339_valid(*out))
		return api_fail_field(err, name, "must be an RFC 3339 time with a zone");
	return 0;
}

int64_t request_rider_id(const struct request *req)
{
	return req->auth && req->auth->role == ROLE_RIDER ? req->auth->user_id : 0;
}

int query_page_canonical(struct request *req, const char **limit, const char **cursor, struct api_error *err)
{
	int64_t l, c;
	if (query_page(req, &l, &c, err))
		return -1;
	*limit = arena_printf(&req->arena, "%lld", (long long)l);
	*cursor = c ? arena_printf(&req->arena, "%lld", (long long)c) : NULL;
	return 0;
}

int64_t request_card_lane(struct request *req)
{
	json_t *v = req->json ? json_object_get(req->json, "card_id") : NULL;
	return json_is_integer(v) && json_integer_value(v) > 0 ? (int64_t)json_integer_value(v) : 0;
}
