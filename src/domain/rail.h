#ifndef TRANSITD_DOMAIN_RAIL_H
#define TRANSITD_DOMAIN_RAIL_H
/*
 * Regional rail: trains, runs, seat maps, bookings paid from a card.
 *
 * A booking is one call to a function in SQL (outcome.h). Specific seats
 * are locked FOR UPDATE in seat id order (two bookings never wait on each
 * other in a cycle), then checked; "any N seats of a class" takes free
 * seats with FOR UPDATE SKIP LOCKED and checks them again once locked (a
 * booking that committed after the first look released the lock it held).
 * Seats are always locked before the card, by every booking, so bookings
 * cannot deadlock with one another. The partial unique index on active
 * booking seats is the final guard: a violation comes back as RAIL_RETRY
 * and the caller runs the booking again.
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"
#include "outcome.h"

#define RAIL_MAX_SEATS 10
#define RAIL_RETRY 1

void rail_register(void);

/* Reads write the API's JSON document into out and return 0, or -1 with
 * err (404 for an unknown id, 503 when the database is down). */
int rail_trains(struct pg *db, struct arena *a, struct buf *out, struct api_error *err);
/* The id of the rail station called name (folded: case, accents and blanks
 * aside). 422 naming field when no station or several have that name. */
int rail_station_resolve(struct pg *db, struct arena *a, const char *field, const char *name, int64_t *id,
			 struct api_error *err);
/* date: a Bogotá local date YYYY-MM-DD; origin/destination 0 = any. */
int rail_runs(struct pg *db, struct arena *a, int64_t origin, int64_t destination, const char *date,
	      struct buf *out, struct api_error *err);
int rail_seat_map(struct pg *db, struct arena *a, int64_t run_id, struct buf *out, struct api_error *err);

struct rail_new_run {
	int64_t train_id, origin, destination;
	const char *departure, *arrival; /* RFC 3339 */
};
/* The new run's document into out (its seats laid out from the train's
 * coaches). 422 naming a field (inactive train, not rail stations, times),
 * 409 conflict when the train already departs then. */
int rail_run_create(struct pg *db, struct arena *a, const struct rail_new_run *r, struct buf *out,
		    struct api_error *err);

struct rail_booking_req {
	int64_t run_id, card_id;
	int64_t seat_ids[RAIL_MAX_SEATS];
	int nseats;          /* specific seats, or 0 */
	int64_t seat_count;  /* any seats of class */
	const char *class;
	int64_t rider_id;    /* the card must be this rider's; 0 for staff */
};
/* 0 with *o: the 201 (ref_id: the run), or the stored answer of k; -1
 * with err: 404, 409 seat-taken (extra: the seats), 402, 409 card-blocked,
 * 422; or RAIL_RETRY (err unset) when a concurrent booking took a seat
 * under the checks: nothing was written, call again. */
int rail_book(struct pg *db, struct arena *a, const struct rail_booking_req *r, const struct write_key *k,
	      struct write_outcome *o, struct api_error *err);
/* n bookings (of one card, as a lane batch) in one call and one transaction:
 * for each, oks[i] and os[i], or errs[i] (extra in a). -1 with err when
 * the call as a whole failed (nothing was written): 503, or an SQL error
 * (a deadlock, a unique violation), after which each may run alone. */
int rail_book_batch(struct pg *db, struct arena *a, const struct rail_booking_req *qs, const struct write_key *ks,
		    int n, struct write_outcome *os, struct api_error *errs, int *oks, struct api_error *err);
/* *o: the 200 (card_id, ref_id: the run). 404, 409 conflict (cancelled), 422 (departed). */
int rail_cancel(struct pg *db, struct arena *a, int64_t booking_id, int64_t rider_id, const struct write_key *k,
		struct write_outcome *o, struct api_error *err);
int rail_booking_get(struct pg *db, struct arena *a, int64_t booking_id, int64_t rider_id, struct buf *out,
		     struct api_error *err);
/* A keyset page of bookings, newest first; rider_id 0: every booking (admin). */
int rail_bookings_page(struct pg *db, struct arena *a, int64_t rider_id, int64_t after_id, int64_t limit,
		       struct buf *out, struct api_error *err);

#endif
