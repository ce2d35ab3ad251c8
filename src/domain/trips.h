#ifndef TRANSITD_DOMAIN_TRIPS_H
#define TRANSITD_DOMAIN_TRIPS_H
/*
 * Tap-in and tap-out, one call each to a function in SQL (outcome.h). A
 * tap-in locks the card row (FOR UPDATE), so taps on one card run one at a
 * time; the fare engine (fare_decide, in SQL) decides; the fare's ledger
 * row, the card's new balance and the trip row are written by one
 * statement. The partial unique index on open trips is what guarantees one
 * open trip per card.
 *
 * rider_id, when not 0, restricts the call to that rider's cards (another
 * card is 404, as if it did not exist).
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"
#include "outcome.h"

void trips_register(void);

struct tap_in {
	int64_t card_id, route_id, station_id, vehicle_id; /* vehicle_id 0: assigned from the route's fleet */
};

/* *o: the 201 (or the stored answer of k). 402 insufficient-balance, 409
 * active-trip or card-blocked, 404, 422, 409 idempotency-in-progress. */
int trip_start(struct pg *db, struct arena *a, const struct tap_in *t, int64_t rider_id, const struct write_key *k,
	       struct write_outcome *o, struct api_error *err);
/* *o: the 200, with the trip's card (card_id) and boarding station (ref_id).
 * 404 when no open trip has this id. */
int trip_end(struct pg *db, struct arena *a, int64_t trip_id, int64_t station_id, int64_t rider_id,
	     const struct write_key *k, struct write_outcome *o, struct api_error *err);

/* The trip document into out; 404 when unknown (or not the rider's). */
int trip_get(struct pg *db, struct arena *a, int64_t trip_id, int64_t rider_id, struct buf *out,
	     struct api_error *err);
/* A keyset page of trips, newest first, into out. by_user: owner_id is a
 * user, else a card; 404 when it is unknown (or not the rider's). */
int trips_page(struct pg *db, struct arena *a, int by_user, int64_t owner_id, int64_t rider_id, int64_t after_id,
	       int64_t limit, struct buf *out, struct api_error *err);
/* The fare products and rules in force, into out. */
int fares_current(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);

#endif
