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

int64_t request_rider_id(const struct request *req)
{
	return req->auth && req->auth->role == ROLE_RIDER ? req->auth->user_id : 0;
}
