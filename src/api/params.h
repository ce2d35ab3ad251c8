#ifndef TRANSITD_PARAMS_H
#define TRANSITD_PARAMS_H
/* Query parameters shared by many resources. */
#include <stdint.h>

#include "../http/http.h"

/* ?limit= (1-100, default 20) and ?cursor= (an id this API returned; 0 when
 * absent). 0, or -1 with a 422 naming the parameter. */
int query_page(const struct request *req, int64_t *limit, int64_t *cursor, struct api_error *err);

/* The caller's user id when the caller is a rider (who reaches only their
 * own cards, trips, bookings and payments), 0 for staff and public routes. */
int64_t request_rider_id(const struct request *req);

#endif
