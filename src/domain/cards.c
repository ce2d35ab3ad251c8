#include "cards.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../core/banned.h"

enum {
	CREATE,
	GET,
	BALANCE,
	HISTORY,
	TRANSACTIONS,
	RECHARGE,
	STATUS_OF,
	POINT_ACTIVE,
	SET_STATUS,
	OWNER,
};

static const struct sql_stmt stmts[] = {
	[CREATE] = { "card_create",
		"INSERT INTO cards (card_number, user_id) VALUES ($1, $2) RETURNING card_json(cards)::text" },
	[GET] = { "card_get", "SELECT card_json(c)::text FROM cards c WHERE card_id = $1" },
	[BALANCE] = { "card_balance",
		"SELECT json_build_object('card_id', card_id, 'balance', balance, 'status', status,"
		"  'last_used_date', rfc3339(last_used_date), 'credit_trips_used', credit_trips_used)::text"
		" FROM cards WHERE card_id = $1" },
	/* Keyset paging, newest first: one row more than asked tells whether a next page exists. */
	[HISTORY] = { "card_history",
		"WITH page AS (SELECT recharge_id, card_id, amount, recharge_timestamp FROM recharges"
		"  WHERE card_id = $1 AND ($2::bigint = 0 OR recharge_id < $2)"
		"  ORDER BY recharge_id DESC LIMIT $3::int + 1),"
		" shown AS (SELECT * FROM page ORDER BY recharge_id DESC LIMIT $3)"
		"SELECT json_build_object('card_id', c.card_id, 'history', coalesce((SELECT json_agg(json_build_object("
		"  'recharge_id', recharge_id, 'card_id', card_id, 'amount', amount,"
		"  'recharge_timestamp', rfc3339(recharge_timestamp)) ORDER BY recharge_id DESC) FROM shown), '[]'),"
		"  'next_cursor', CASE WHEN (SELECT count(*) FROM page) > $3"
		"    THEN (SELECT min(recharge_id) FROM shown)::text END)::text"
		" FROM cards c WHERE c.card_id = $1" },
	[TRANSACTIONS] = { "card_transactions",
		"WITH page AS (SELECT * FROM card_ledger"
		"  WHERE card_id = $1 AND ($2::bigint = 0 OR entry_id < $2)"
		"  ORDER BY entry_id DESC LIMIT $3::int + 1),"
		" shown AS (SELECT * FROM page ORDER BY entry_id DESC LIMIT $3)"
		"SELECT json_build_object('card_id', c.card_id, 'transactions', coalesce((SELECT json_agg("
		"  json_build_object('entry_id', entry_id, 'kind', kind, 'amount', amount,"
		"  'balance_after', balance_after, 'reference', reference, 'created_at', rfc3339(created_at))"
		"  ORDER BY entry_id DESC) FROM shown), '[]'),"
		"  'next_cursor', CASE WHEN (SELECT count(*) FROM page) > $3"
		"    THEN (SELECT min(entry_id) FROM shown)::text END)::text"
		" FROM cards c WHERE c.card_id = $1" },
	/* One statement: the card row changes atomically, the ledger and recharge
	 * rows are written with it. A recharge first repays trips taken on credit. */
	[RECHARGE] = { "card_recharge",
		"WITH c AS (UPDATE cards SET balance = balance + $2,"
		"    credit_trips_used = CASE WHEN balance + $2 >= 0 THEN 0 ELSE credit_trips_used END"
		"  WHERE card_id = $1 AND status = 'active' RETURNING card_id, balance),"
		" ids AS (SELECT nextval(pg_get_serial_sequence('recharges', 'recharge_id')) AS recharge_id),"
		" l AS (INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)"
		"  SELECT c.card_id, 'recharge', $2, c.balance, 'recharge:' || ids.recharge_id FROM c, ids"
		"  RETURNING entry_id, card_id, balance_after, created_at),"
		" r AS (INSERT INTO recharges (recharge_id, card_id, amount, recharge_point_id, ledger_entry_id,"
		"    recharge_timestamp)"
		"  SELECT ids.recharge_id, l.card_id, $2, $3, l.entry_id, l.created_at FROM l, ids"
		"  RETURNING recharge_id, recharge_timestamp)"
		"SELECT json_build_object('recharge_id', r.recharge_id, 'card_id', l.card_id, 'amount', $2::bigint,"
		"  'new_balance', l.balance_after, 'recharge_timestamp', rfc3339(r.recharge_timestamp))::text"
		" FROM r, l" },
	[STATUS_OF] = { "card_status_of", "SELECT status FROM cards WHERE card_id = $1" },
	[POINT_ACTIVE] = { "card_point_active",
		"SELECT 1 FROM recharge_points WHERE recharge_point_id = $1 AND is_active" },
	[SET_STATUS] = { "card_set_status",
		"UPDATE cards c SET status = $2 WHERE card_id = $1 RETURNING card_json(c)::text" },
	[OWNER] = { "card_owner", "SELECT coalesce(user_id, 0) FROM cards WHERE card_id = $1" },
};

void cards_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

void card_number_generate(char out[17])
{
	int sum = 0;
	for (int i = 0; i < 15; i++)
		out[i] = (char)('0' + randombytes_uniform(10));
	out[0] = (char)('1' + randombytes_uniform(9)); /* no leading zero */
	/* Luhn: from the right, the check digit's neighbour is doubled first. */
	for (int i = 14, dbl = 1; i >= 0; i--, dbl = !dbl) {
		int d = out[i] - '0';
		if (dbl && (d *= 2) > 9)
			d -= 9;
		sum += d;
	}
	out[15] = (char)('0' + (10 - sum % 10) % 10);
	out[16] = '\0';
}

int card_number_valid(const char *s)
{
	if (strlen(s) != 16)
		return 0;
	int sum = 0;
	for (int i = 15, dbl = 0; i >= 0; i--, dbl = !dbl) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		int d = s[i] - '0';
		if (dbl && (d *= 2) > 9)
			d -= 9;
		sum += d;
	}
	return sum % 10 == 0;
}

/* Copies the single JSON value of r into out; 404 when there is no row. */
static int document(PGresult *r, struct buf *out, struct api_error *err, int64_t card_id)
{
	if (PQntuples(r) != 1)
		return api_fail(err, "not-found", "card %lld does not exist", (long long)card_id);
	buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	return 0;
}

int card_create(struct pg *db, struct arena *a, int64_t user_id, struct buf *out, struct api_error *err)
{
	/* 10^15 numbers: a collision is rare, three in a row means something else is wrong. */
	for (int attempt = 0; attempt < 3; attempt++) {
		char number[17];
		card_number_generate(number);
		const char *v[] = { number, user_id ? pg_int(a, user_id) : NULL };
		PGresult *r = pg_exec(db, a, &stmts[CREATE], 2, v, err);
		if (r) {
			buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
			return 0;
		}
		if (!strcmp(db->sqlstate, "23503"))
			return api_fail_field(err, "user_id", "is not a registered user");
		if (strcmp(db->sqlstate, "23505"))
			return -1;
	}
	return api_fail(err, "internal", "could not allocate a card number");
}

static int read_one(struct pg *db, struct arena *a, int stmt, int64_t card_id, struct buf *out,
		    struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id) };
	PGresult *r = pg_exec(db, a, &stmts[stmt], 1, v, err);
	return r ? document(r, out, err, card_id) : -1;
}

int card_get(struct pg *db, struct arena *a, int64_t card_id, struct buf *out, struct api_error *err)
{
	return read_one(db, a, GET, card_id, out, err);
}

int card_balance(struct pg *db, struct arena *a, int64_t card_id, struct buf *out, struct api_error *err)
{
	return read_one(db, a, BALANCE, card_id, out, err);
}

static int page(struct pg *db, struct arena *a, int stmt, int64_t card_id, int64_t after_id, int64_t limit,
		struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id), pg_int(a, after_id), pg_int(a, limit) };
	PGresult *r = pg_exec(db, a, &stmts[stmt], 3, v, err);
	return r ? document(r, out, err, card_id) : -1;
}

int card_history(struct pg *db, struct arena *a, int64_t card_id, int64_t after_id, int64_t limit,
		 struct buf *out, struct api_error *err)
{
	return page(db, a, HISTORY, card_id, after_id, limit, out, err);
}

int card_transactions(struct pg *db, struct arena *a, int64_t card_id, int64_t after_id, int64_t limit,
		      struct buf *out, struct api_error *err)
{
	return page(db, a, TRANSACTIONS, card_id, after_id, limit, out, err);
}

int card_explain_inactive(struct pg *db, struct arena *a, int64_t card_id, struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id) };
	PGresult *r = pg_exec(db, a, &stmts[STATUS_OF], 1, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 0)
		return api_fail(err, "not-found", "card %lld does not exist", (long long)card_id);
	return api_fail(err, "card-blocked", "card %lld is blocked", (long long)card_id);
}

int card_recharge(struct pg *db, struct arena *a, const struct recharge *rc, struct buf *out,
		  struct api_error *err)
{
	if (rc->point_id) {
		const char *v[] = { pg_int(a, rc->point_id) };
		PGresult *r = pg_exec(db, a, &stmts[POINT_ACTIVE], 1, v, err);
		if (!r)
			return -1;
		if (PQntuples(r) == 0)
			return api_fail_field(err, "recharge_point_id", "is not an active recharge point");
	}
	const char *v[] = { pg_int(a, rc->card_id), pg_int(a, rc->amount), rc->point_id ? pg_int(a, rc->point_id) : NULL };
	PGresult *r = pg_exec(db, a, &stmts[RECHARGE], 3, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 0)
		return card_explain_inactive(db, a, rc->card_id, err);
	buf_add(out, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
	return 0;
}

int card_set_status(struct pg *db, struct arena *a, int64_t card_id, const char *status, struct buf *out,
		    struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id), status };
	PGresult *r = pg_exec(db, a, &stmts[SET_STATUS], 2, v, err);
	return r ? document(r, out, err, card_id) : -1;
}

int card_owner(struct pg *db, struct arena *a, int64_t card_id, int64_t *owner, struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id) };
	PGresult *r = pg_exec(db, a, &stmts[OWNER], 1, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1)
		return api_fail(err, "not-found", "card %lld does not exist", (long long)card_id);
	*owner = atoll(PQgetvalue(r, 0, 0));
	return 0;
}
