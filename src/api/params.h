#ifndef TRANSITD_PARAMS_H
#define TRANSITD_PARAMS_H
/* Query parameters shared by many resources. */
#include <stdint.h>

#include "../http/http.h"

/* ?limit= (1-100, default 20) and ?cursor= (an id this API returned; 0 when
 * absent). 0, or -1 with a 422 naming the parameter. */
int query_page(const struct request *req, int64_t *limit, int64_t *cursor, struct api_error *err);

/* The value of query parameter name, NULL when absent or empty. */
const char *query_nonempty(const struct request *req, const char *name);
/* ?name= as an RFC 3339 time with a zone into *out (NULL when absent or
 * empty). 0, or -1 with a 422 naming the parameter. */
int query_time(const struct request *req, const char *name, const char **out, struct api_error *err);

/* The caller's user id when the caller is a rider (who reaches only their
 * own cards, trips, bookings and payments), 0 for staff and public routes. */
int64_t request_rider_id(const struct request *req);
/* For cache families paged by limit and cursor: replaces the raw texts by
 * the canonical ones ("20" and no cursor when absent or empty). 0 or -1 as query_page. */
int query_page_canonical(struct request *req, const char **limit, const char **cursor, struct api_error *err);

/* The lane of a card write (http/lanes.h): its body's card_id, 0 when it
 * has none (the handler will refuse it). CPU only. */
int64_t request_card_lane(struct request *req);

#endif
