#include "trips.h"

#include <stdlib.h>
#include <string.h>

#include "fares.h"
#include "../core/banned.h"

enum { CARD, PLACE, PREVIOUS, RULE, VEHICLE_ANY, VEHICLE_CHECK, CHARGE, OPEN_TRIP, CLOSE, GET, BY_CARD, BY_USER, FARES,
       PERSON_LOCK, PERSON_CREDIT };

static const struct sql_stmt stmts[] = {
	[CARD] = { "trip_card",
		"SELECT user_id IS NOT NULL, status, balance, credit_trips_used, coalesce(user_id, 0),"
		"  extract(epoch FROM now())::bigint FROM cards WHERE card_id = $1 FOR UPDATE" },
	[PLACE] = { "trip_place",
		"SELECT r.route_type, r.is_active, s.is_active,"
		"  EXISTS (SELECT 1 FROM route_stops rs WHERE rs.route_id = $1 AND rs.station_id = $2)"
		" FROM (SELECT 1) one LEFT JOIN routes r ON r.route_id = $1 LEFT JOIN stations s ON s.station_id = $2" },
	[PREVIOUS] = { "trip_previous",
		"SELECT t.route_id, extract(epoch FROM t.journey_start)::bigint, t.journey_transfers,"
		"  t.disembarking_time IS NULL, r.route_type, t.journey_start"
		" FROM trips t JOIN routes r USING (route_id) WHERE t.card_id = $1 ORDER BY t.trip_id DESC LIMIT 1" },
	/* $1 this leg's route type, $2 the previous leg's (or NULL), $3 personalised card. */
	[RULE] = { "trip_rule",
		"SELECT p.amount, tr.fare_product_id IS NOT NULL, coalesce(tp.amount, 0), coalesce(tr.duration_limit, 0),"
		"  coalesce(tr.transfer_count, 0), coalesce(tr.personalized_only, true),"
		"  coalesce((SELECT max_credit_trips FROM fare_credit_rules"
		"    WHERE card_kind = CASE WHEN $3::bool THEN 'personalized' ELSE 'anonymous' END), 0)"
		" FROM fare_leg_rules lr JOIN fare_products p USING (fare_product_id)"
		" LEFT JOIN fare_leg_rules plr ON plr.route_type = $2"
		" LEFT JOIN fare_transfer_rules tr ON tr.from_leg_group_id = plr.leg_group_id"
		"   AND tr.to_leg_group_id = lr.leg_group_id"
		" LEFT JOIN fare_products tp ON tp.fare_product_id = tr.fare_product_id"
		" WHERE lr.route_type = $1" },
	[VEHICLE_ANY] = { "trip_vehicle_any",
		"SELECT vehicle_id FROM vehicles WHERE route_id = $1 AND is_active ORDER BY random() LIMIT 1" },
	[VEHICLE_CHECK] = { "trip_vehicle_check", "SELECT 1 FROM vehicles WHERE vehicle_id = $1 AND route_id = $2 AND is_active" },
	/* One statement: fare ledger row (when there is a fare), card, trip. The
	 * card row is locked by this transaction, so the absolute balance is safe. */
	[CHARGE] = { "trip_charge",
		"WITH ids AS (SELECT nextval(pg_get_serial_sequence('trips', 'trip_id')) AS trip_id),"
		" l AS (INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)"
		"  SELECT $1, 'fare', -$2::bigint, $3, 'trip:' || ids.trip_id FROM ids WHERE $2::bigint > 0"
		"  RETURNING entry_id),"
		" c AS (UPDATE cards SET balance = $3, credit_trips_used = $4, last_used_date = now() WHERE card_id = $1),"
		" t AS (INSERT INTO trips (trip_id, card_id, route_id, vehicle_id, boarding_station_id, fare_amount,"
		"    is_transfer, on_credit, journey_start, journey_transfers, ledger_entry_id)"
		"  SELECT ids.trip_id, $1, $5, $6, $7, $2, $8, $9, coalesce($10::timestamptz, now()), $11,"
		"    (SELECT entry_id FROM l) FROM ids RETURNING *)"
		"SELECT json_build_object('trip_id', t.trip_id, 'card_id', t.card_id, 'route_id', t.route_id,"
		"  'vehicle_id', t.vehicle_id, 'boarding_station_id', t.boarding_station_id,"
		"  'boarding_time', rfc3339(t.boarding_time), 'fare_amount', t.fare_amount, 'is_transfer', t.is_transfer,"
		"  'on_credit', t.on_credit, 'status', 'in_progress', 'remaining_balance', $3::bigint)::text FROM t" },
	[OPEN_TRIP] = { "trip_open",
		"SELECT t.card_id, EXISTS (SELECT 1 FROM route_stops rs WHERE rs.route_id = t.route_id AND rs.station_id = $2),"
		"  t.boarding_station_id"
		" FROM trips t JOIN cards c USING (card_id)"
		" WHERE t.trip_id = $1 AND t.disembarking_time IS NULL AND ($3::bigint = 0 OR c.user_id = $3)" },
	[CLOSE] = { "trip_close",
		"UPDATE trips t SET disembarking_station_id = $2, disembarking_time = greatest(now(), t.boarding_time)"
		" WHERE trip_id = $1 AND disembarking_time IS NULL RETURNING trip_json(t)::text" },
	[GET] = { "trip_get",
		"SELECT trip_json(t)::text FROM trips t JOIN cards c USING (card_id)"
		" WHERE t.trip_id = $1 AND ($2::bigint = 0 OR c.user_id = $2)" },
	[BY_CARD] = { "trips_by_card",
		"WITH owner AS (SELECT card_id FROM cards WHERE card_id = $1 AND ($2::bigint = 0 OR user_id = $2)),"
		" page AS (SELECT t.* FROM trips t JOIN owner USING (card_id) WHERE $3::bigint = 0 OR t.trip_id < $3"
		"  ORDER BY t.trip_id DESC LIMIT $4::int + 1),"
		" shown AS (SELECT * FROM page ORDER BY trip_id DESC LIMIT $4)"
		"SELECT json_build_object('card_id', o.card_id, 'trips', coalesce((SELECT json_agg(trip_json(s)"
		"  ORDER BY s.trip_id DESC) FROM shown s), '[]'), 'next_cursor', CASE WHEN (SELECT count(*) FROM page) > $4"
		"  THEN (SELECT min(trip_id) FROM shown)::text END)::text FROM owner o" },
	[BY_USER] = { "trips_by_user",
		"WITH owner AS (SELECT user_id FROM users WHERE user_id = $1 AND ($2::bigint = 0 OR user_id = $2)),"
		" page AS (SELECT t.* FROM trips t JOIN cards c USING (card_id) JOIN owner USING (user_id)"
		"  WHERE $3::bigint = 0 OR t.trip_id < $3 ORDER BY t.trip_id DESC LIMIT $4::int + 1),"
		" shown AS (SELECT * FROM page ORDER BY trip_id DESC LIMIT $4)"
		"SELECT json_build_object('user_id', o.user_id, 'trips', coalesce((SELECT json_agg(trip_json(s)"
		"  ORDER BY s.trip_id DESC) FROM shown s), '[]'), 'next_cursor', CASE WHEN (SELECT count(*) FROM page) > $4"
		"  THEN (SELECT min(trip_id) FROM shown)::text END)::text FROM owner o" },
	/* Credit is the person's: taken with the owner's row locked (after the
	 * card's, as every tap-in does), so two cards cannot spend it twice. */
	[PERSON_LOCK] = { "trip_person_lock", "SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE" },
	[PERSON_CREDIT] = { "trip_person_credit",
		"SELECT coalesce(sum(credit_trips_used), 0) FROM cards WHERE user_id = $1" },
	[FARES] = { "fares_current",
		"SELECT json_build_object("
		"  'currency', 'COP',"
		"  'fare_products', (SELECT json_agg(json_build_object('fare_product_id', fare_product_id,"
		"    'fare_product_name', fare_product_name, 'amount', amount, 'currency', currency)"
		"    ORDER BY fare_product_id) FROM fare_products),"
		"  'fare_leg_rules', (SELECT json_agg(json_build_object('leg_group_id', leg_group_id,"
		"    'network_id', network_id, 'route_type', route_type, 'fare_product_id', fare_product_id)"
		"    ORDER BY route_type) FROM fare_leg_rules),"
		"  'fare_transfer_rules', (SELECT json_agg(json_build_object('from_leg_group_id', from_leg_group_id,"
		"    'to_leg_group_id', to_leg_group_id, 'transfer_count', transfer_count,"
		"    'duration_limit', duration_limit, 'duration_limit_type', duration_limit_type,"
		"    'fare_transfer_type', fare_transfer_type, 'fare_product_id', fare_product_id,"
		"    'personalized_only', personalized_only)) FROM fare_transfer_rules),"
		"  'credit_rules', (SELECT json_agg(json_build_object('card_kind', card_kind,"
		"    'max_credit_trips', max_credit_trips) ORDER BY card_kind) FROM fare_credit_rules))::text" },
};

void trips_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static int truth(PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

/* Checks route and station; fills the route type. */
static int check_place(struct pg *db, struct arena *a, const struct tap_in *t, const char **route_type,
		       struct api_error *err)
{
	const char *v[] = { pg_int(a, t->route_id), pg_int(a, t->station_id) };
	PGresult *r = pg_exec(db, a, &stmts[PLACE], 2, v, err);
	if (!r)
		return -1;
	if (PQgetisnull(r, 0, 0) || !truth(r, 0, 1))
		return api_fail_field(err, "route_id", "is not an active route");
	if (PQgetisnull(r, 0, 2) || !truth(r, 0, 2))
		return api_fail_field(err, "boarding_station_id", "is not an active station");
	if (!truth(r, 0, 3))
		return api_fail_field(err, "boarding_station_id", "is not a stop of route %lld", (long long)t->route_id);
	*route_type = arena_strdup(a, PQgetvalue(r, 0, 0));
	return 0;
}

static int pick_vehicle(struct pg *db, struct arena *a, const struct tap_in *t, const char **vehicle,
			struct api_error *err)
{
	*vehicle = NULL;
	if (t->vehicle_id) {
		const char *v[] = { pg_int(a, t->vehicle_id), pg_int(a, t->route_id) };
		PGresult *r = pg_exec(db, a, &stmts[VEHICLE_CHECK], 2, v, err);
		if (!r)
			return -1;
		if (PQntuples(r) == 0)
			return api_fail_field(err, "vehicle_id", "is not an active vehicle of route %lld",
					      (long long)t->route_id);
		*vehicle = v[0];
		return 0;
	}
	const char *v[] = { pg_int(a, t->route_id) };
	PGresult *r = pg_exec(db, a, &stmts[VEHICLE_ANY], 1, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 1)
		*vehicle = arena_strdup(a, PQgetvalue(r, 0, 0));
	return 0;
}

int trip_start(struct pg *db, struct arena *a, const struct tap_in *t, int64_t rider_id, struct buf *out,
	       struct api_error *err)
{
	const char *card_v[] = { pg_int(a, t->card_id) };
	PGresult *r = pg_exec(db, a, &stmts[CARD], 1, card_v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 0 || (rider_id && atoll(PQgetvalue(r, 0, 4)) != rider_id))
		return api_fail(err, "not-found", "card %lld does not exist", (long long)t->card_id);
	if (strcmp(PQgetvalue(r, 0, 1), "active"))
		return api_fail(err, "card-blocked", "card %lld is blocked", (long long)t->card_id);
	int credit_used = atoi(PQgetvalue(r, 0, 3));
	struct fare_card card = { truth(r, 0, 0), atoll(PQgetvalue(r, 0, 2)), credit_used, credit_used };
	const char *owner = arena_strdup(a, PQgetvalue(r, 0, 4));
	int64_t now = atoll(PQgetvalue(r, 0, 5));

	const char *route_type = NULL;
	if (check_place(db, a, t, &route_type, err))
		return -1;

	struct fare_previous prev = { 0 };
	const char *prev_type = NULL, *prev_start = NULL;
	r = pg_exec(db, a, &stmts[PREVIOUS], 1, card_v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		if (truth(r, 0, 3))
			return api_fail(err, "active-trip", "card %lld already has a trip in progress",
					(long long)t->card_id);
		prev.exists = 1;
		prev.route_id = atoll(PQgetvalue(r, 0, 0));
		prev.journey_start = atoll(PQgetvalue(r, 0, 1));
		prev.journey_transfers = atoi(PQgetvalue(r, 0, 2));
		prev_type = arena_strdup(a, PQgetvalue(r, 0, 4));
		prev_start = arena_strdup(a, PQgetvalue(r, 0, 5));
	}

	const char *rule_v[] = { route_type, prev_type, card.personalized ? "true" : "false" };
	r = pg_exec(db, a, &stmts[RULE], 3, rule_v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1)
		return api_fail_field(err, "route_id", "has no fare for route type %s", route_type);
	struct fare_rule rule = {
		atoll(PQgetvalue(r, 0, 0)), truth(r, 0, 1), atoll(PQgetvalue(r, 0, 2)), atoll(PQgetvalue(r, 0, 3)),
		atoi(PQgetvalue(r, 0, 4)), truth(r, 0, 5), atoi(PQgetvalue(r, 0, 6)),
	};
	struct fare_decision d;
	fare_decide(&rule, &card, &prev, t->route_id, now, &d);
	if (d.on_credit && card.personalized) {
		/* This card has credit left; does its owner? */
		const char *ov[] = { owner };
		if (!pg_exec(db, a, &stmts[PERSON_LOCK], 1, ov, err) ||
		    !(r = pg_exec(db, a, &stmts[PERSON_CREDIT], 1, ov, err)))
			return -1;
		card.person_credit_trips = atoi(PQgetvalue(r, 0, 0));
		fare_decide(&rule, &card, &prev, t->route_id, now, &d);
	}
	if (!d.allowed) {
		api_fail(err, "insufficient-balance", "the fare is %lld COP and the balance %lld COP", (long long)d.fare,
			 (long long)card.balance);
		err->extra = arena_printf(a, "\"fare\":%lld,\"balance\":%lld", (long long)d.fare, (long long)card.balance);
		return -1;
	}

	const char *vehicle = NULL;
	if (pick_vehicle(db, a, t, &vehicle, err))
		return -1;
	const char *v[] = {
		pg_int(a, t->card_id), pg_int(a, d.fare), pg_int(a, d.new_balance), pg_int(a, d.new_credit_trips),
		pg_int(a, t->route_id), vehicle, pg_int(a, t->station_id), d.is_transfer ? "true" : "false",
		d.on_credit ? "true" : "false", d.is_transfer ? prev_start : NULL, pg_int(a, d.journey_transfers),
	};
	r = pg_exec(db, a, &stmts[CHARGE], 11, v, err);
	if (!r) {
		if (!strcmp(db->sqlstate, "23505"))
			return api_fail(err, "active-trip", "card %lld already has a trip in progress",
					(long long)t->card_id);
		return -1;
	}
	buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	return 0;
}

int trip_end(struct pg *db, struct arena *a, int64_t trip_id, int64_t station_id, int64_t rider_id,
	     struct buf *out, int64_t *card_id, int64_t *boarding_id, struct api_error *err)
{
	const char *v[] = { pg_int(a, trip_id), pg_int(a, station_id), pg_int(a, rider_id) };
	PGresult *r = pg_exec(db, a, &stmts[OPEN_TRIP], 3, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 0)
		return api_fail(err, "not-found", "no trip %lld in progress", (long long)trip_id);
	if (!truth(r, 0, 1))
		return api_fail_field(err, "disembarking_station_id", "is not a stop of this trip's route");
	*card_id = atoll(PQgetvalue(r, 0, 0));
	*boarding_id = atoll(PQgetvalue(r, 0, 2));
	r = pg_exec(db, a, &stmts[CLOSE], 2, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 0) /* ended by a concurrent tap-out */
		return api_fail(err, "not-found", "no trip %lld in progress", (long long)trip_id);
	buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	return 0;
}

int trip_get(struct pg *db, struct arena *a, int64_t trip_id, int64_t rider_id, struct buf *out,
	     struct api_error *err)
{
	const char *v[] = { pg_int(a, trip_id), pg_int(a, rider_id) };
	PGresult *r = pg_exec(db, a, &stmts[GET], 2, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 0)
		return api_fail(err, "not-found", "trip %lld does not exist", (long long)trip_id);
	buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	return 0;
}

int trips_page(struct pg *db, struct arena *a, int by_user, int64_t owner_id, int64_t rider_id, int64_t after_id,
	       int64_t limit, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, owner_id), pg_int(a, rider_id), pg_int(a, after_id), pg_int(a, limit) };
	PGresult *r = pg_exec(db, a, &stmts[by_user ? BY_USER : BY_CARD], 4, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 0)
		return api_fail(err, "not-found", "%s %lld does not exist", by_user ? "user" : "card", (long long)owner_id);
	buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	return 0;
}

int fares_current(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	PGresult *r = pg_exec(db, a, &stmts[FARES], 0, NULL, err);
	if (!r)
		return -1;
	buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	return 0;
}
