/* /api/v1/rail/…: trains, runs, seat maps, bookings. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/json.h"
#include "../core/text.h"
#include "../domain/rail.h"
#include "../http/cached.h"
#include "../http/lanes.h"
#include "../store/cache.h"
#include "api.h"
#include "idempotency.h"
#include "keys.h"
#include "params.h"
#include "../core/banned.h"

#define BOOKING_ATTEMPTS 3

static const char *const runs_query[] = { "origin", "destination", "date", NULL };

struct cache_family family_rail_trains = { .label = "rail_trains", .key = "rail:trains", .ttl_s = 3600, .near = 1 };
static int normalize_runs(struct request *req, const char **v, struct api_error *err);
struct cache_family family_rail_runs = { .label = "rail_runs", .key = "rail:runs", .ttl_s = 30, .query = runs_query,
					 .near = 1, .normalize = normalize_runs };
struct cache_family family_rail_seats = { .label = "rail_seats", .key = "rail:run:{}:seats", .ttl_s = 30, .near = 1 };

/* A booking or cancellation changes the run's seat map, every run list
 * (free counts) and the card (its balance). */
static void invalidate_run(struct request *req, struct worker *w, int64_t run_id, int64_t card_id)
{
	const char *keys[2 + CARD_CACHE_KEYS_MAX] = {
		family_key(&req->arena, &family_rail_seats, run_id),
		family_key(&req->arena, &family_rail_runs, 0),
	};
	size_t n = 2;
	if (card_id)
		n += card_cache_keys(&req->arena, card_id, CARD_MONEY, keys + n);
	worker_invalidate(w, &req->arena, keys, n);
}

static int fill_trains(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return rail_trains(worker_read_db(w), &req->arena, out, err);
}

void rail_trains_get(struct request *req, struct worker *w)
{
	reply_cached(req, w, fill_trains);
}

/* YYYY-MM-DD, a real date from 2000 to 2100; today in Bogotá (UTC-5, no
 * daylight saving) when absent. */
static int bogota_date(const char *in, char out[11], struct api_error *err)
{
	if (!in || !*in) {
		time_t t = time(NULL) - 5 * 3600;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(out, 11, "%Y-%m-%d", &tm);
		return 0;
	}
	if (!date_valid(in, 2000, 2100))
		return api_fail_field(err, "date", "must be a date YYYY-MM-DD");
	snprintf(out, 11, "%s", in);
	return 0;
}

/* The canonical origin/destination: a station id in decimal, or a folded
 * name; NULL when absent. */
static int station_canonical(struct request *req, const char *name, const char **v, struct api_error *err)
{
	int64_t id;
	if (!*v || !**v) {
		*v = NULL;
		return 0;
	}
	if (strspn(*v, "0123456789") == strlen(*v)) {
		if (parse_int64(*v, 1, INT32_MAX, &id))
			return api_fail_field(err, name, "must be a station id or a station name");
		*v = arena_printf(&req->arena, "%lld", (long long)id);
		return 0;
	}
	if (strlen(*v) > 100)
		return api_fail_field(err, name, "must be at most 100 characters");
	*v = text_fold(&req->arena, *v);
	if (!**v)
		*v = NULL;
	return 0;
}

/* origin, destination, date: ids or folded names, and the date in full. */
static int normalize_runs(struct request *req, const char **v, struct api_error *err)
{
	char date[11];
	if (station_canonical(req, "origin", &v[0], err) || station_canonical(req, "destination", &v[1], err) ||
	    bogota_date(v[2], date, err))
		return -1;
	v[2] = arena_strdup(&req->arena, date);
	return 0;
}

/* A station id, or the id of the rail station with that name. */
static int station_param(struct request *req, struct worker *w, const char *name, int64_t *out,
			 struct api_error *err)
{
	const char *v = request_query(req, name);
	*out = 0;
	if (!v || !*v)
		return 0;
	if (strspn(v, "0123456789") == strlen(v))
		return parse_int64(v, 1, INT32_MAX, out) ? api_fail_field(err, name, "must be a station id") : 0;
	return rail_station_resolve(worker_read_db(w), &req->arena, name, v, out, err);
}

static int fill_runs(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	int64_t origin, destination;
	char date[11];
	if (station_param(req, w, "origin", &origin, err) || station_param(req, w, "destination", &destination, err) ||
	    bogota_date(request_query(req, "date"), date, err))
		return -1;
	return rail_runs(worker_read_db(w), &req->arena, origin, destination, date, out, err);
}

void rail_runs_get(struct request *req, struct worker *w)
{
	reply_cached(req, w, fill_runs);
}

/* Seat maps come from the primary: a rider looks right after booking. */
static int fill_seats(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return rail_seat_map(&w->primary, &req->arena, req->ids[0], out, err);
}

void rail_seats_get(struct request *req, struct worker *w)
{
	reply_cached(req, w, fill_seats);
}

void rail_runs_create(struct request *req, struct worker *w)
{
	struct api_error e;
	struct rail_new_run n;
	if (json_get_int(req->json, "train_id", 1, 1, INT32_MAX, &n.train_id, NULL, &e) ||
	    json_get_int(req->json, "origin_station_id", 1, 1, INT32_MAX, &n.origin, NULL, &e) ||
	    json_get_int(req->json, "destination_station_id", 1, 1, INT32_MAX, &n.destination, NULL, &e) ||
	    json_get_time(req->json, "departure_time", 1, &n.departure, &e) ||
	    json_get_time(req->json, "arrival_time", 1, &n.arrival, &e) ||
	    rail_run_create(&w->primary, &req->arena, &n, reply(req, 201), &e))
		goto fail;
	const char *keys[] = { family_key(&req->arena, &family_rail_runs, 0) };
	worker_invalidate(w, &req->arena, keys, 1);
	return;
fail:
	reply_problem(req, &e);
}

static int parse_booking(struct request *req, struct rail_booking_req *q, struct api_error *e)
{
	memset(q, 0, sizeof(*q));
	q->rider_id = request_rider_id(req);
	if (json_get_int(req->json, "run_id", 1, 1, INT64_MAX, &q->run_id, NULL, e) ||
	    json_get_int(req->json, "card_id", 1, 1, INT64_MAX, &q->card_id, NULL, e))
		return -1;
	json_t *seats = json_object_get(req->json, "seat_ids");
	if (seats && !json_is_null(seats)) {
		size_t i;
		json_t *v;
		if (!json_is_array(seats) || json_array_size(seats) < 1 || json_array_size(seats) > RAIL_MAX_SEATS)
			return api_fail_field(e, "seat_ids", "must be a list of 1 to %d seat ids", RAIL_MAX_SEATS);
		json_array_foreach(seats, i, v) {
			if (!json_is_integer(v) || json_integer_value(v) < 1)
				return api_fail_field(e, "seat_ids", "must hold positive integer seat ids");
			for (int j = 0; j < q->nseats; j++)
				if (q->seat_ids[j] == json_integer_value(v))
					return api_fail_field(e, "seat_ids", "names seat %lld twice",
							      (long long)json_integer_value(v));
			q->seat_ids[q->nseats++] = json_integer_value(v);
		}
		return 0;
	}
	if (json_get_int(req->json, "seat_count", 1, 1, RAIL_MAX_SEATS, &q->seat_count, NULL, e) ||
	    json_get_str(req->json, "class", 1, 16, &q->class, e))
		return -1;
	if (strcmp(q->class, "standard") && strcmp(q->class, "first"))
		return api_fail_field(e, "class", "must be standard or first");
	return 0;
}

int rail_bookings_check(struct request *req, struct worker *w, struct api_error *e)
{
	(void)w;
	struct rail_booking_req q;
	return parse_booking(req, &q, e) ? -1 : 0;
}

void rail_bookings_create(struct request *req, struct worker *w)
{
	struct api_error e;
	struct rail_booking_req q;
	struct write_key k;
	struct write_outcome o;
	if (parse_booking(req, &q, &e))
		goto fail;
	if (idem_key_or_reply(req, &k))
		return;
	/* A unique violation means the call's seat checks were beaten by a booking
	 * they could not see; it wrote nothing, so it runs again. */
	int rc = RAIL_RETRY;
	for (int attempt = 0; attempt < BOOKING_ATTEMPTS && rc == RAIL_RETRY; attempt++)
		rc = rail_book(&w->primary, &req->arena, &q, &k, &o, &e);
	if (rc == RAIL_RETRY)
		api_fail(&e, "seat-taken", "the seats were taken while booking; try again");
	if (rc)
		goto fail;
	reply_outcome(req, &o);
	if (!o.replayed)
		invalidate_run(req, w, q.run_id, q.card_id);
	return;
fail:
	reply_problem(req, &e);
}

/* Bookings that waited in one card's lane: one database call for all
 * (rail_book_batch), each answered as rail_bookings_create would. */
void rail_bookings_batch(struct request **reqs, int n, struct worker *w)
{
	struct rail_booking_req qs[LANE_BATCH_MAX];
	struct write_key ks[LANE_BATCH_MAX];
	struct write_outcome os[LANE_BATCH_MAX];
	struct api_error errs[LANE_BATCH_MAX], e;
	struct request *go[LANE_BATCH_MAX];
	int oks[LANE_BATCH_MAX], m = 0;
	for (int i = 0; i < n && m < LANE_BATCH_MAX; i++) {
		if (parse_booking(reqs[i], &qs[m], &e)) {
			reply_problem(reqs[i], &e);
			continue;
		}
		if (idem_key_or_reply(reqs[i], &ks[m]))
			continue;
		go[m++] = reqs[i];
	}
	if (m < 2) {
		for (int i = 0; i < m; i++) /* alone: as any booking */
			rail_bookings_create(go[i], w);
		return;
	}
	struct arena a;
	arena_init(&a);
	if (rail_book_batch(&w->primary, &a, qs, ks, m, os, errs, oks, &e)) {
		for (int i = 0; i < m; i++) {
			if (e.status == 503) /* the database: every one would fail alike */
				reply_problem(go[i], &e);
			else /* the batch as a whole (a deadlock, a seat race): each on its own */
				rail_bookings_create(go[i], w);
		}
		arena_release(&a);
		return;
	}
	/* Invalidated once for the batch: the card's reads, each run's seats. */
	const char *keys[LANE_BATCH_MAX + 1 + CARD_CACHE_KEYS_MAX];
	size_t nkeys = 0;
	for (int i = 0; i < m; i++) {
		if (!oks[i]) {
			reply_problem(go[i], &errs[i]);
			continue;
		}
		reply_outcome(go[i], &os[i]);
		if (os[i].replayed)
			continue;
		const char *seats = family_key(&a, &family_rail_seats, qs[i].run_id);
		size_t k = 0;
		while (k < nkeys && strcmp(keys[k], seats))
			k++;
		if (k == nkeys)
			keys[nkeys++] = seats;
	}
	if (nkeys) {
		keys[nkeys++] = family_key(&a, &family_rail_runs, 0);
		nkeys += card_cache_keys(&a, qs[0].card_id, CARD_MONEY, keys + nkeys);
		worker_invalidate(w, &a, keys, nkeys);
	}
	arena_release(&a);
}

void rail_bookings_list(struct request *req, struct worker *w)
{
	struct api_error e;
	int64_t limit, cursor;
	if (query_page(req, &limit, &cursor, &e) ||
	    rail_bookings_page(&w->primary, &req->arena, request_rider_id(req), cursor, limit, reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

void rail_booking_get_one(struct request *req, struct worker *w)
{
	struct api_error e;
	if (rail_booking_get(&w->primary, &req->arena, req->ids[0], request_rider_id(req), reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

void rail_booking_cancel(struct request *req, struct worker *w)
{
	struct api_error e;
	struct write_key k;
	struct write_outcome o;
	if (idem_key_or_reply(req, &k))
		return;
	if (rail_cancel(&w->primary, &req->arena, req->ids[0], request_rider_id(req), &k, &o, &e))
		goto fail;
	reply_outcome(req, &o);
	if (!o.replayed)
		invalidate_run(req, w, o.ref_id, o.card_id);
	return;
fail:
	reply_problem(req, &e);
}
