/* /api/v1/rail/…: trains, runs, seat maps, bookings. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../core/json.h"
#include "../domain/rail.h"
#include "../http/cached.h"
#include "../store/cache.h"
#include "api.h"
#include "idempotency.h"
#include "params.h"
#include "../core/banned.h"

#define BOOKING_ATTEMPTS 3

static const char *const runs_query[] = { "origin", "destination", "date", NULL };

struct cache_family family_rail_trains = { .label = "rail_trains", .key = "rail:trains", .ttl_s = 3600, .near = 1 };
struct cache_family family_rail_runs = { .label = "rail_runs", .key = "rail:runs", .ttl_s = 30, .query = runs_query,
					 .near = 1 };
struct cache_family family_rail_seats = { .label = "rail_seats", .key = "rail:run:{}:seats", .ttl_s = 30, .near = 1 };

/* A booking or cancellation changes the run's seat map, every run list
 * (free counts) and the card's balance. */
static void invalidate_run(struct request *req, struct worker *w, int64_t run_id, int64_t card_id)
{
	const char *keys[] = {
		arena_printf(&req->arena, "rail:run:%lld:seats", (long long)run_id),
		"rail:runs",
		arena_printf(&req->arena, "card:%lld:balance", (long long)card_id),
	};
	worker_invalidate(w, &req->arena, keys, card_id ? 3 : 2);
}

static int fill_trains(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return rail_trains(worker_read_db(w), &req->arena, out, err);
}

void rail_trains_get(struct request *req, struct worker *w)
{
	reply_cached(req, w, fill_trains);
}

/* YYYY-MM-DD, a real date; today in Bogotá (UTC-5, no daylight saving) when absent. */
static int bogota_date(const char *in, char out[11], struct api_error *err)
{
	if (!in || !*in) {
		time_t t = time(NULL) - 5 * 3600;
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(out, 11, "%Y-%m-%d", &tm);
		return 0;
	}
	int y, m, d;
	char tail;
	static const int days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (strlen(in) != 10 || sscanf(in, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || in[4] != '-' || in[7] != '-' ||
	    y < 2000 || y > 2100 || m < 1 || m > 12 || d < 1 || d > days[m - 1] ||
	    (m == 2 && d == 29 && (y % 4 || (y % 100 == 0 && y % 400))))
		return api_fail_field(err, "date", "must be a date YYYY-MM-DD");
	snprintf(out, 11, "%s", in);
	return 0;
}

static int station_param(const struct request *req, const char *name, int64_t *out, struct api_error *err)
{
	const char *v = request_query(req, name);
	*out = 0;
	if (v && *v && parse_int64(v, 1, INT32_MAX, out))
		return api_fail_field(err, name, "must be a station id");
	return 0;
}

static int fill_runs(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	int64_t origin, destination;
	char date[11];
	if (station_param(req, "origin", &origin, err) || station_param(req, "destination", &destination, err) ||
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
	    json_get_str(req->json, "departure_time", 1, 40, &n.departure, &e) ||
	    json_get_str(req->json, "arrival_time", 1, 40, &n.arrival, &e) ||
	    (!rfc3339_valid(n.departure) && api_fail_field(&e, "departure_time", "must be an RFC 3339 time with a zone")) ||
	    (!rfc3339_valid(n.arrival) && api_fail_field(&e, "arrival_time", "must be an RFC 3339 time with a zone")) ||
	    rail_run_create(&w->primary, &req->arena, &n, reply(req, 201), &e)) {
		reply_problem(req, &e);
		return;
	}
	const char *keys[] = { "rail:runs" };
	worker_invalidate(w, &req->arena, keys, 1);
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
	memset(&q, 0, sizeof(q));
	return parse_booking(req, &q, e) ? -1 : 0;
}

void rail_bookings_create(struct request *req, struct worker *w)
{
	struct api_error e;
	struct idem im;
	struct rail_booking_req q;
	if (parse_booking(req, &q, &e)) {
		reply_problem(req, &e);
		return;
	}
	for (int attempt = 0; attempt < BOOKING_ATTEMPTS; attempt++) {
		if (idem_begin(&im, req, &w->primary, 1))
			return;
		int rc = rail_book(&w->primary, &req->arena, &q, reply(req, 201), &e);
		if (rc == 0) {
			if (idem_commit(&im, req) == 0)
				invalidate_run(req, w, q.run_id, q.card_id);
			return;
		}
		idem_abort(&im);
		if (rc != RAIL_RETRY) {
			reply_problem(req, &e);
			return;
		}
	}
	api_fail(&e, "seat-taken", "the seats were taken while booking; try again");
	reply_problem(req, &e);
}

void rail_bookings_list(struct request *req, struct worker *w)
{
	struct api_error e;
	int64_t limit, cursor;
	if (query_page(req, &limit, &cursor, &e) ||
	    rail_bookings_page(&w->primary, &req->arena, request_rider_id(req), cursor, limit, reply(req, 200), &e))
		reply_problem(req, &e);
}

void rail_booking_get_one(struct request *req, struct worker *w)
{
	struct api_error e;
	if (rail_booking_get(&w->primary, &req->arena, req->ids[0], request_rider_id(req), reply(req, 200), &e))
		reply_problem(req, &e);
}

void rail_booking_cancel(struct request *req, struct worker *w)
{
	struct api_error e;
	struct idem im;
	int64_t run_id, card_id;
	if (idem_begin(&im, req, &w->primary, 1))
		return;
	if (rail_cancel(&w->primary, &req->arena, req->ids[0], request_rider_id(req), &run_id, &card_id, reply(req, 200), &e)) {
		idem_abort(&im);
		reply_problem(req, &e);
		return;
	}
	if (idem_commit(&im, req) == 0)
		invalidate_run(req, w, run_id, card_id);
}
