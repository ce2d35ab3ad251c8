#include "rail.h"

#include <stdlib.h>
#include <string.h>

#include "document.h"
#include "paging.h"
#include "../core/banned.h"

enum {
	TRAINS, RUNS, SEAT_MAP, RUN_CHECK, RUN_INSERT, RUN_SEATS, RUN_DOC,
	BOOK, BOOK_BATCH, CANCEL, BOOKING_GET, BOOKINGS_PAGE, STATION_BY_NAME,
};

#define RUN_JSON \
	"json_build_object('run_id', r.run_id, 'train_id', r.train_id, 'train_code', t.train_code," \
	"  'origin', o.name, 'origin_station_id', r.origin_station_id, 'destination', d.name," \
	"  'destination_station_id', r.destination_station_id, 'departure_time', rfc3339(r.departure_time)," \
	"  'arrival_time', rfc3339(r.arrival_time), 'seats_free', (SELECT count(*) FROM rail_seats s" \
	"    WHERE s.run_id = r.run_id AND NOT EXISTS (SELECT 1 FROM rail_booking_seats b" \
	"      WHERE b.seat_id = s.seat_id AND b.active)))"
#define RUN_FROM \
	" FROM rail_runs r JOIN trains t USING (train_id) JOIN stations o ON o.station_id = r.origin_station_id" \
	" JOIN stations d ON d.station_id = r.destination_station_id"

static const struct sql_stmt stmts[] = {
	[TRAINS] = { "rail_trains",
		"SELECT json_build_object('trains', coalesce(json_agg(json_build_object('train_id', t.train_id,"
		"  'train_code', t.train_code, 'name', t.name, 'is_active', t.is_active,"
		"  'seat_count', (SELECT sum(seats) FROM train_coaches c WHERE c.train_id = t.train_id),"
		"  'coaches', (SELECT json_agg(json_build_object('coach', c.coach, 'class', c.class, 'seats', c.seats,"
		"    'price', c.price) ORDER BY c.coach) FROM train_coaches c WHERE c.train_id = t.train_id))"
		"  ORDER BY t.train_id), '[]'))::text FROM trains t" },
	[RUNS] = { "rail_runs",
		"SELECT json_build_object('date', $3::date, 'runs', coalesce(json_agg(" RUN_JSON
		"  ORDER BY r.departure_time, r.run_id), '[]'))::text" RUN_FROM
		" WHERE r.departure_time >= ($3::date::timestamp AT TIME ZONE 'America/Bogota')"
		"   AND r.departure_time < (($3::date + 1)::timestamp AT TIME ZONE 'America/Bogota')"
		"   AND ($1::int IS NULL OR r.origin_station_id = $1) AND ($2::int IS NULL OR r.destination_station_id = $2)" },
	[SEAT_MAP] = { "rail_seat_map",
		"SELECT json_build_object('run_id', r.run_id, 'departure_time', rfc3339(r.departure_time),"
		"  'seats', (SELECT json_agg(json_build_object('seat_id', s.seat_id, 'coach', s.coach, 'number', s.number,"
		"    'class', s.class, 'price', s.price, 'status', CASE WHEN EXISTS (SELECT 1 FROM rail_booking_seats b"
		"      WHERE b.seat_id = s.seat_id AND b.active) THEN 'taken' ELSE 'free' END) ORDER BY s.seat_id)"
		"    FROM rail_seats s WHERE s.run_id = r.run_id))::text FROM rail_runs r WHERE r.run_id = $1" },
	[RUN_CHECK] = { "rail_run_check",
		"SELECT (SELECT is_active FROM trains WHERE train_id = $1),"
		"  (SELECT station_type = 'rail' FROM stations WHERE station_id = $2),"
		"  (SELECT station_type = 'rail' FROM stations WHERE station_id = $3)" },
	[RUN_INSERT] = { "rail_run_insert",
		"INSERT INTO rail_runs (train_id, origin_station_id, destination_station_id, departure_time, arrival_time)"
		" VALUES ($1, $2, $3, $4, $5) RETURNING run_id" },
	[RUN_SEATS] = { "rail_run_seats", "SELECT rail_run_seats($1)" },
	[RUN_DOC] = { "rail_run_doc", "SELECT " RUN_JSON "::text" RUN_FROM " WHERE r.run_id = $1" },
	/* Booking and cancellation, one call each (db/migrations/0011_money_calls.sql):
	 * the key, seats locked and checked, card charged or refunded, ledger,
	 * booking and its seats, the stored answer. */
	[BOOK] = { "rail_book",
		"SELECT " WRITE_OUTCOME_COLUMNS " FROM api_rail_book($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)" },
	[BOOK_BATCH] = { "rail_book_batch", "SELECT " WRITE_OUTCOME_COLUMNS " FROM api_rail_book_batch($1::jsonb)" },
	[CANCEL] = { "rail_cancel", "SELECT " WRITE_OUTCOME_COLUMNS " FROM api_rail_cancel($1, $2, $3, $4, $5, $6)" },
	[BOOKING_GET] = { "rail_booking_get",
		"SELECT rail_booking_json(b)::text FROM rail_bookings b"
		" WHERE booking_id = $1 AND ($2::bigint = 0 OR user_id = $2)" },
	/* Keyset paging (paging.h), newest first; rider 0: everyone's. */
	[BOOKINGS_PAGE] = { "rail_bookings_page",
		"WITH " PAGE_NEWEST_FIRST("SELECT * FROM rail_bookings WHERE $1::bigint = 0 OR user_id = $1",
					  "booking_id", "$2", "$3")
		" SELECT json_build_object("
		PAGE_MEMBERS_NEWEST_FIRST("bookings", "rail_booking_json(s)", "booking_id", "$3") ")::text" },
	[STATION_BY_NAME] = { "rail_station_by_name",
		"SELECT station_id FROM stations WHERE station_type = 'rail' AND fold_name(name) = fold_name($1)"
		" ORDER BY station_id LIMIT 2" },
};

void rail_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static int document(struct pg *db, struct arena *a, int stmt, int n, const char *const *v, const char *what,
		    struct buf *out, struct api_error *err)
{
	return document_read(db, a, &stmts[stmt], n, v, what, out, err);
}

int rail_trains(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return document(db, a, TRAINS, 0, NULL, "trains", out, err);
}

int rail_runs(struct pg *db, struct arena *a, int64_t origin, int64_t destination, const char *date,
	      struct buf *out, struct api_error *err)
{
	const char *v[] = { origin ? pg_int(a, origin) : NULL, destination ? pg_int(a, destination) : NULL, date };
	return document(db, a, RUNS, 3, v, "runs", out, err);
}

int rail_station_resolve(struct pg *db, struct arena *a, const char *field, const char *name, int64_t *id,
			 struct api_error *err)
{
	const char *v[] = { name };
	PGresult *r = pg_exec(db, a, &stmts[STATION_BY_NAME], 1, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 0)
		return api_fail_field(err, field, "is not the id or the name of a rail station");
	if (PQntuples(r) > 1)
		return api_fail_field(err, field, "names more than one rail station; give its id");
	*id = atoll(PQgetvalue(r, 0, 0));
	return 0;
}

int rail_seat_map(struct pg *db, struct arena *a, int64_t run_id, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, run_id) };
	return document(db, a, SEAT_MAP, 1, v, "run", out, err);
}

int rail_run_create(struct pg *db, struct arena *a, const struct rail_new_run *n, struct buf *out,
		    struct api_error *err)
{
	const char *cv[] = { pg_int(a, n->train_id), pg_int(a, n->origin), pg_int(a, n->destination) };
	PGresult *r = pg_exec(db, a, &stmts[RUN_CHECK], 3, cv, err);
	if (!r)
		return -1;
	if (strcmp(PQgetvalue(r, 0, 0), "t"))
		return api_fail_field(err, "train_id", "is not an active train");
	if (strcmp(PQgetvalue(r, 0, 1), "t"))
		return api_fail_field(err, "origin_station_id", "is not a rail station");
	if (strcmp(PQgetvalue(r, 0, 2), "t"))
		return api_fail_field(err, "destination_station_id", "is not a rail station");
	if (n->origin == n->destination)
		return api_fail_field(err, "destination_station_id", "must differ from the origin");
	const char *iv[] = { cv[0], cv[1], cv[2], n->departure, n->arrival };
	r = pg_exec(db, a, &stmts[RUN_INSERT], 5, iv, err);
	if (!r) {
		if (!strcmp(db->sqlstate, "23505"))
			return api_fail(err, "conflict", "this train already departs at that time");
		if (!strcmp(db->sqlstate, "23514"))
			return api_fail_field(err, "arrival_time", "must be after departure_time");
		if (!strncmp(db->sqlstate, "22", 2))
			return api_fail_field(err, "departure_time", "must be an RFC 3339 time");
		return -1;
	}
	const char *run[] = { arena_strdup(a, PQgetvalue(r, 0, 0)) };
	if (!pg_exec(db, a, &stmts[RUN_SEATS], 1, run, err))
		return -1;
	return document(db, a, RUN_DOC, 1, run, "run", out, err);
}

/* "{1,2,3}" for a PostgreSQL bigint[] parameter. */
static const char *id_array(struct arena *a, const int64_t *ids, int n)
{
	struct buf b = BUF_INIT;
	buf_addch(&b, '{');
	for (int i = 0; i < n; i++) {
		if (i)
			buf_addch(&b, ',');
		buf_add_i64(&b, ids[i]);
	}
	buf_addch(&b, '}');
	const char *s = arena_strndup(a, b.ptr, b.len);
	buf_release(&b);
	return s;
}

int rail_book(struct pg *db, struct arena *a, const struct rail_booking_req *q, const struct write_key *k,
	      struct write_outcome *o, struct api_error *err)
{
	const char *v[] = { pg_int(a, q->run_id), pg_int(a, q->card_id), q->nseats ? id_array(a, q->seat_ids, q->nseats) : NULL,
			    q->nseats ? NULL : pg_int(a, q->seat_count), q->nseats ? NULL : q->class, pg_int(a, q->rider_id),
			    WRITE_KEY_PARAMS(k) };
	PGresult *r = pg_exec(db, a, &stmts[BOOK], 10, v, err);
	if (!r)
		return !strcmp(db->sqlstate, "23505") ? RAIL_RETRY : -1;
	return write_outcome_read(r, a, o, err);
}

static void json_key(struct buf *b, const char *name, const char *value)
{
	if (!value)
		return;
	buf_addf(b, ",\"%s\":", name);
	buf_add_json_str(b, value);
}

int rail_book_batch(struct pg *db, struct arena *a, const struct rail_booking_req *qs, const struct write_key *ks,
		    int n, struct write_outcome *os, struct api_error *errs, int *oks, struct api_error *err)
{
	struct buf doc = BUF_INIT;
	buf_addch(&doc, '[');
	for (int i = 0; i < n; i++) {
		const struct rail_booking_req *q = &qs[i];
		buf_addf(&doc, "%s{\"run\":%lld,\"card\":%lld,\"rider\":%lld", i ? "," : "", (long long)q->run_id,
			 (long long)q->card_id, (long long)q->rider_id);
		if (q->nseats) {
			buf_adds(&doc, ",\"seats\":[");
			for (int j = 0; j < q->nseats; j++) {
				if (j)
					buf_addch(&doc, ',');
				buf_add_i64(&doc, q->seat_ids[j]);
			}
			buf_addch(&doc, ']');
		} else {
			buf_addf(&doc, ",\"count\":%lld", (long long)q->seat_count);
			json_key(&doc, "class", q->class);
		}
		json_key(&doc, "lock", ks[i].lock);
		json_key(&doc, "scope", ks[i].scope);
		json_key(&doc, "key", ks[i].key);
		json_key(&doc, "hash", ks[i].hash);
		buf_addch(&doc, '}');
	}
	buf_addch(&doc, ']');
	const char *v[] = { arena_strndup(a, doc.ptr, doc.len) };
	buf_release(&doc);
	PGresult *r = pg_exec(db, a, &stmts[BOOK_BATCH], 1, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != n)
		return api_fail(err, "internal", "a batch of %d bookings answered %d outcomes", n, PQntuples(r));
	for (int i = 0; i < n; i++)
		oks[i] = write_outcome_read_row(r, i, a, &os[i], &errs[i]) == 0;
	return 0;
}

int rail_cancel(struct pg *db, struct arena *a, int64_t booking_id, int64_t rider_id, const struct write_key *k,
		struct write_outcome *o, struct api_error *err)
{
	const char *v[] = { pg_int(a, booking_id), pg_int(a, rider_id), WRITE_KEY_PARAMS(k) };
	PGresult *r = pg_exec(db, a, &stmts[CANCEL], 6, v, err);
	return r ? write_outcome_read(r, a, o, err) : -1;
}

int rail_booking_get(struct pg *db, struct arena *a, int64_t booking_id, int64_t rider_id, struct buf *out,
		     struct api_error *err)
{
	const char *v[] = { pg_int(a, booking_id), pg_int(a, rider_id) };
	return document(db, a, BOOKING_GET, 2, v, "booking", out, err);
}

int rail_bookings_page(struct pg *db, struct arena *a, int64_t rider_id, int64_t after_id, int64_t limit,
		       struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, rider_id), pg_int(a, after_id), pg_int(a, limit) };
	return document(db, a, BOOKINGS_PAGE, 3, v, "bookings", out, err);
}
