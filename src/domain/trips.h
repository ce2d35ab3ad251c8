#ifndef TRANSITD_DOMAIN_TRIPS_H
#define TRANSITD_DOMAIN_TRIPS_H
/*
 * Tap-in and tap-out. A tap-in runs inside the caller's transaction: the
 * card row is locked (FOR UPDATE), so taps on one card run one at a time;
 * the fare engine decides; the fare's ledger row, the card's new balance
 * and the trip row are written by one statement. The partial unique index
 * on open trips is what guarantees one open trip per card.
 *
 * rider_id, when not 0, restricts the call to that rider's cards (another
 * card is 404, as if it did not exist).
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"

void trips_register(void);

struct tap_in {
	int64_t card_id, route_id, station_id, vehicle_id; /* vehicle_id 0: assigned from the route's fleet */
};

/* 201 document into out. 402 insufficient-balance, 409 active-trip or card-blocked, 404, 422. */
int trip_start(struct pg *db, struct arena *a, const struct tap_in *t, int64_t rider_id, struct buf *out,
	       struct api_error *err);
/* 200 document; *card_id and *boarding_id receive the trip's card and
 * boarding station. 404 when no open trip has this id. */
int trip_end(struct pg *db, struct arena *a, int64_t trip_id, int64_t station_id, int64_t rider_id,
	     struct buf *out, int64_t *card_id, int64_t *boarding_id, struct api_error *err);

int trip_get(struct pg *db, struct arena *a, int64_t trip_id, int64_t rider_id, struct buf *out,
	     struct api_error *err);
/* Newest first. by_user: owner_id is a user, else a card. */
int trips_page(struct pg *db, struct arena *a, int by_user, int64_t owner_id, int64_t rider_id, int64_t after_id,
	       int64_t limit, struct buf *out, struct api_error *err);
int fares_current(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);

#endif
