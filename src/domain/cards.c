#include "cards.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "document.h"
#include "paging.h"
#include "../core/banned.h"

enum {
	CREATE,
	GET,
	BALANCE,
	HISTORY,
	TRANSACTIONS,
	RECHARGE,
	STATUS_OF,
	SET_STATUS,
	OWNER,
	OWNER_LOCK,
	OWNER_CARDS,
};

static const struct sql_stmt stmts[] = {
	[CREATE] = { "card_create",
		"INSERT INTO cards (card_number, user_id) VALUES ($1, $2) RETURNING card_json(cards)::text" },
	[GET] = { "card_get", "SELECT card_json(c)::text FROM cards c WHERE card_id = $1" },
	[BALANCE] = { "card_balance",
		"SELECT json_build_object('card_id', card_id, 'balance', balance, 'status', status,"
		"  'last_used_date', rfc3339(last_used_date), 'credit_trips_used', credit_trips_used)::text"
		" FROM cards WHERE card_id = $1" },
	/* Keyset paging (paging.h), newest first; no card: no row (404). */
	[HISTORY] = { "card_history",
		"WITH " PAGE_NEWEST_FIRST("SELECT * FROM recharges WHERE card_id = $1", "recharge_id", "$2", "$3")
		" SELECT json_build_object('card_id', c.card_id, "
		PAGE_MEMBERS_NEWEST_FIRST("history", "json_build_object('recharge_id', s.recharge_id, 'card_id', s.card_id,"
			" 'amount', s.amount, 'recharge_timestamp', rfc3339(s.recharge_timestamp))", "recharge_id", "$3")
		")::text FROM cards c WHERE c.card_id = $1" },
	[TRANSACTIONS] = { "card_transactions",
		"WITH " PAGE_NEWEST_FIRST("SELECT * FROM card_ledger WHERE card_id = $1", "entry_id", "$2", "$3")
		" SELECT json_build_object('card_id', c.card_id, "
		PAGE_MEMBERS_NEWEST_FIRST("transactions", "json_build_object('entry_id', s.entry_id, 'kind', s.kind,"
			" 'amount', s.amount, 'balance_after', s.balance_after, 'reference', s.reference,"
			" 'created_at', rfc3339(s.created_at))", "entry_id", "$3")
		")::text FROM cards c WHERE c.card_id = $1" },
	/* One call (db/migrations/0011_money_calls.sql): key, checks, card,
	 * ledger and recharge rows, stored answer. */
	[RECHARGE] = { "card_recharge",
		"SELECT " WRITE_OUTCOME_COLUMNS " FROM api_card_recharge($1, $2, $3, $4, $5, $6, $7)" },
	[STATUS_OF] = { "card_status_of", "SELECT status FROM cards WHERE card_id = $1" },
	[SET_STATUS] = { "card_set_status",
		"UPDATE cards c SET status = $2 WHERE card_id = $1 RETURNING card_json(c)::text" },
	[OWNER] = { "card_owner", "SELECT coalesce(user_id, 0) FROM cards WHERE card_id = $1" },
	/* The cap on a rider's cards: counted with the rider's row locked, so two
	 * concurrent issues cannot both see room for one. */
	[OWNER_LOCK] = { "card_owner_lock", "SELECT 1 FROM users WHERE user_id = $1 FOR UPDATE" },
	[OWNER_CARDS] = { "card_owner_cards", "SELECT count(*) FROM cards WHERE user_id = $1" },
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

int card_create(struct pg *db, struct arena *a, int64_t user_id, int max_cards, struct buf *out,
		struct api_error *err)
{
	if (user_id && max_cards) {
		const char *v[] = { pg_int(a, user_id) };
		PGresult *r;
		if (!pg_exec(db, a, &stmts[OWNER_LOCK], 1, v, err) || !(r = pg_exec(db, a, &stmts[OWNER_CARDS], 1, v, err)))
			return -1;
		if (atoll(PQgetvalue(r, 0, 0)) >= max_cards)
			return api_fail(err, "card-limit", "a rider may hold at most %d cards (blocked ones count)",
					max_cards);
	}
	/* 10^15 numbers: a collision is rare, three in a row means something else is wrong. */
	for (int attempt = 0; attempt < 3; attempt++) {
		char number[17];
		card_number_generate(number);
		const char *v[] = { number, user_id ? pg_int(a, user_id) : NULL };
		PGresult *r = pg_exec(db, a, &stmts[CREATE], 2, v, err);
		if (r) {
			document_copy(r, out);
			return 0;
		}
		if (!strcmp(db->sqlstate, "23503"))
			return api_fail_field(err, "user_id", "is not a registered user");
		if (strcmp(db->sqlstate, "23505"))
			return -1;
	}
	return api_fail(err, "internal", "could not allocate a card number");
}

/* The card's document of stmt, whose parameters start with the card. */
static int card_document(struct pg *db, struct arena *a, int stmt, int n, const char *const *v, struct buf *out,
			 struct api_error *err)
{
	return document_read(db, a, &stmts[stmt], n, v, "card", out, err);
}

int card_get(struct pg *db, struct arena *a, int64_t card_id, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id) };
	return card_document(db, a, GET, 1, v, out, err);
}

int card_balance(struct pg *db, struct arena *a, int64_t card_id, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id) };
	return card_document(db, a, BALANCE, 1, v, out, err);
}

int card_history(struct pg *db, struct arena *a, int64_t card_id, int64_t after_id, int64_t limit,
		 struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id), pg_int(a, after_id), pg_int(a, limit) };
	return card_document(db, a, HISTORY, 3, v, out, err);
}

int card_transactions(struct pg *db, struct arena *a, int64_t card_id, int64_t after_id, int64_t limit,
		      struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id), pg_int(a, after_id), pg_int(a, limit) };
	return card_document(db, a, TRANSACTIONS, 3, v, out, err);
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

int card_recharge(struct pg *db, struct arena *a, const struct recharge *rc, const struct write_key *k,
		  struct write_outcome *o, struct api_error *err)
{
	const char *v[] = { pg_int(a, rc->card_id), pg_int(a, rc->amount), rc->point_id ? pg_int(a, rc->point_id) : NULL,
			    WRITE_KEY_PARAMS(k) };
	PGresult *r = pg_exec(db, a, &stmts[RECHARGE], 7, v, err);
	return r ? write_outcome_read(r, a, o, err) : -1;
}

int card_set_status(struct pg *db, struct arena *a, int64_t card_id, const char *status, struct buf *out,
		    struct api_error *err)
{
	const char *v[] = { pg_int(a, card_id), status };
	return card_document(db, a, SET_STATUS, 2, v, out, err);
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
