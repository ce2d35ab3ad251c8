#include "trips.h"

#include <stdlib.h>
#include <string.h>

#include "document.h"
#include "paging.h"
#include "../core/banned.h"

enum { START, END, GET, BY_CARD, BY_USER, FARES };

static const struct sql_stmt stmts[] = {
	/* Tap-in and tap-out, one call each (db/migrations/0011_money_calls.sql):
	 * the key, the checks, the fare engine (fare_decide) and the writes. */
	[START] = { "trip_start",
		"SELECT " WRITE_OUTCOME_COLUMNS " FROM api_trip_start($1, $2, $3, $4, $5, $6, $7, $8, $9)" },
	[END] = { "trip_end", "SELECT " WRITE_OUTCOME_COLUMNS " FROM api_trip_end($1, $2, $3, $4, $5, $6, $7)" },
	[GET] = { "trip_get",
		"SELECT trip_json(t)::text FROM trips t JOIN cards c USING (card_id)"
		" WHERE t.trip_id = $1 AND ($2::bigint = 0 OR c.user_id = $2)" },
	/* Keyset paging (paging.h), newest first, of the trips of a card or of
	 * a user (owner: no row, 404, when unknown or not the rider's). */
	[BY_CARD] = { "trips_by_card",
		"WITH owner AS (SELECT card_id FROM cards WHERE card_id = $1 AND ($2::bigint = 0 OR user_id = $2)), "
		PAGE_NEWEST_FIRST("SELECT t.* FROM trips t JOIN owner USING (card_id)", "trip_id", "$3", "$4")
		" SELECT json_build_object('card_id', o.card_id, "
		PAGE_MEMBERS_NEWEST_FIRST("trips", "trip_json(s)", "trip_id", "$4") ")::text FROM owner o" },
	[BY_USER] = { "trips_by_user",
		"WITH owner AS (SELECT user_id FROM users WHERE user_id = $1 AND ($2::bigint = 0 OR user_id = $2)), "
		PAGE_NEWEST_FIRST("SELECT t.* FROM trips t JOIN cards c USING (card_id) JOIN owner USING (user_id)",
				  "trip_id", "$3", "$4")
		" SELECT json_build_object('user_id', o.user_id, "
		PAGE_MEMBERS_NEWEST_FIRST("trips", "trip_json(s)", "trip_id", "$4") ")::text FROM owner o" },
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

int trip_start(struct pg *db, struct arena *a, const struct tap_in *t, int64_t rider_id, const struct write_key *k,
	       struct write_outcome *o, struct api_error *err)
{
	const char *v[] = { pg_int(a, t->card_id), pg_int(a, t->route_id), pg_int(a, t->station_id),
			    t->vehicle_id ? pg_int(a, t->vehicle_id) : NULL, pg_int(a, rider_id), WRITE_KEY_PARAMS(k) };
	PGresult *r = pg_exec(db, a, &stmts[START], 9, v, err);
	if (!r) {
		/* Two tap-ins of one card queue on its row, so the second finds the
		 * first's trip; the unique index on open trips is the net under that. */
		if (!strcmp(db->sqlstate, "23505"))
			return api_fail(err, "active-trip", "card %lld already has a trip in progress",
					(long long)t->card_id);
		return -1;
	}
	return write_outcome_read(r, a, o, err);
}

int trip_end(struct pg *db, struct arena *a, int64_t trip_id, int64_t station_id, int64_t rider_id,
	     const struct write_key *k, struct write_outcome *o, struct api_error *err)
{
	const char *v[] = { pg_int(a, trip_id), pg_int(a, station_id), pg_int(a, rider_id), WRITE_KEY_PARAMS(k) };
	PGresult *r = pg_exec(db, a, &stmts[END], 7, v, err);
	return r ? write_outcome_read(r, a, o, err) : -1;
}

int trip_get(struct pg *db, struct arena *a, int64_t trip_id, int64_t rider_id, struct buf *out,
	     struct api_error *err)
{
	const char *v[] = { pg_int(a, trip_id), pg_int(a, rider_id) };
	return document_read(db, a, &stmts[GET], 2, v, "trip", out, err);
}

int trips_page(struct pg *db, struct arena *a, int by_user, int64_t owner_id, int64_t rider_id, int64_t after_id,
	       int64_t limit, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, owner_id), pg_int(a, rider_id), pg_int(a, after_id), pg_int(a, limit) };
	return document_read(db, a, &stmts[by_user ? BY_USER : BY_CARD], 4, v, by_user ? "user" : "card", out, err);
}

int fares_current(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return document_read(db, a, &stmts[FARES], 0, NULL, "fares", out, err);
}
