/* /api/v1/trips…: tap-in, tap-out, trip reads; /api/v1/fares. */
#include <string.h>

#include "../core/json.h"
#include "../domain/trips.h"
#include "../http/cached.h"
#include "../store/cache.h"
#include "api.h"
#include "idempotency.h"
#include "keys.h"
#include "params.h"
#include "../core/banned.h"

struct cache_family family_trip = { .label = "trip", .key = "trip:{}", .ttl_s = 60 };
struct cache_family family_fares = { .label = "fares", .key = "fares", .ttl_s = 300, .near = 1 };

/* A trip write makes stale: the trip, the analytics, at tap-in the card
 * (balance, last use), and at tap-out the boarding station's top
 * destinations (and the card's balance, as ever: cheap, and a tap-out's
 * answer is where riders look next). */
static void invalidate_trip(struct request *req, struct worker *w, int64_t card_id, int64_t trip_id,
			    int64_t boarding_station_id)
{
	const char *keys[16];
	size_t n = 0;
	if (trip_id)
		keys[n++] = family_key(&req->arena, &family_card_balance, card_id);
	else
		n += card_cache_keys(&req->arena, card_id, CARD_MONEY, keys + n);
	if (trip_id)
		keys[n++] = family_key(&req->arena, &family_trip, trip_id);
	if (boarding_station_id)
		keys[n++] = family_key(&req->arena, &family_top_destinations, boarding_station_id);
	for (size_t i = 0; i < analytics_trip_families_count; i++)
		keys[n++] = family_key(&req->arena, analytics_trip_families[i], 0);
	worker_invalidate(w, &req->arena, keys, n);
}

static int tap_in_read(struct request *req, struct tap_in *t, struct api_error *e)
{
	memset(t, 0, sizeof(*t));
	return json_get_int(req->json, "card_id", 1, 1, INT64_MAX, &t->card_id, NULL, e) ||
	       json_get_int(req->json, "route_id", 1, 1, INT32_MAX, &t->route_id, NULL, e) ||
	       json_get_int(req->json, "boarding_station_id", 1, 1, INT32_MAX, &t->station_id, NULL, e) ||
	       json_get_int(req->json, "vehicle_id", 0, 1, INT32_MAX, &t->vehicle_id, NULL, e);
}

int trips_start_check(struct request *req, struct worker *w, struct api_error *e)
{
	(void)w;
	struct tap_in t;
	return tap_in_read(req, &t, e) ? -1 : 0;
}

static int tap_out_read(struct request *req, int64_t *trip_id, int64_t *station_id, struct api_error *e)
{
	return json_get_int(req->json, "trip_id", 1, 1, INT64_MAX, trip_id, NULL, e) ||
	       json_get_int(req->json, "disembarking_station_id", 1, 1, INT32_MAX, station_id, NULL, e);
}

int trips_end_check(struct request *req, struct worker *w, struct api_error *e)
{
	(void)w;
	int64_t trip_id, station_id;
	return tap_out_read(req, &trip_id, &station_id, e) ? -1 : 0;
}

void trips_start(struct request *req, struct worker *w)
{
	struct api_error e;
	struct tap_in t;
	struct write_key k;
	struct write_outcome o;
	if (tap_in_read(req, &t, &e))
		goto fail;
	if (idem_key_or_reply(req, &k))
		return;
	if (trip_start(&w->primary, &req->arena, &t, request_rider_id(req), &k, &o, &e))
		goto fail;
	reply_outcome(req, &o);
	if (!o.replayed)
		invalidate_trip(req, w, t.card_id, 0, 0);
	return;
fail:
	reply_problem(req, &e);
}

void trips_end(struct request *req, struct worker *w)
{
	struct api_error e;
	int64_t trip_id, station_id;
	struct write_key k;
	struct write_outcome o;
	if (tap_out_read(req, &trip_id, &station_id, &e))
		goto fail;
	if (idem_key_or_reply(req, &k))
		return;
	if (trip_end(&w->primary, &req->arena, trip_id, station_id, request_rider_id(req), &k, &o, &e))
		goto fail;
	reply_outcome(req, &o);
	if (!o.replayed)
		invalidate_trip(req, w, o.card_id, trip_id, o.ref_id);
	return;
fail:
	reply_problem(req, &e);
}

/* The cached trip document is shared by all callers; a rider's access is
 * checked against the database first (cheap, by primary key). */
static int fill_trip(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return trip_get(&w->primary, &req->arena, req->ids[0], 0, out, err);
}

void trip_get_one(struct request *req, struct worker *w)
{
	struct api_error e;
	if (request_rider_id(req)) {
		struct buf scratch = BUF_INIT;
		int rc = trip_get(&w->primary, &req->arena, req->ids[0], request_rider_id(req), &scratch, &e);
		buf_release(&scratch);
		if (rc)
			goto fail;
	}
	reply_cached(req, w, fill_trip);
	return;
fail:
	reply_problem(req, &e);
}

static void trips_list(struct request *req, struct worker *w, int by_user)
{
	struct api_error e;
	int64_t limit, cursor;
	if (query_page(req, &limit, &cursor, &e) ||
	    trips_page(&w->primary, &req->arena, by_user, req->ids[0], request_rider_id(req), cursor, limit,
		       reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

void trips_of_card(struct request *req, struct worker *w)
{
	trips_list(req, w, 0);
}

void trips_of_user(struct request *req, struct worker *w)
{
	trips_list(req, w, 1);
}

static int fill_fares(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return fares_current(worker_read_db(w), &req->arena, out, err);
}

void fares_get(struct request *req, struct worker *w)
{
	reply_cached(req, w, fill_fares);
}
