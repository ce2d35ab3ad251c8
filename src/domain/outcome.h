#ifndef TRANSITD_DOMAIN_OUTCOME_H
#define TRANSITD_DOMAIN_OUTCOME_H
/*
 * Money writes are one call each of a function in SQL
 * (db/migrations/0011_money_calls.sql): the call claims the request's
 * Idempotency-Key, checks and applies the request, and stores a successful
 * answer, all in one statement and one transaction, so a write costs one
 * round trip to PostgreSQL and holds its row locks only while PostgreSQL
 * works. This header is what the calls take and give back.
 */
#include <stdint.h>

#include "../store/pg.h"

/* The idempotency identity of a request: scope (method, route, caller),
 * key, request digest and advisory lock id, as decimal or hex text. All NULL
 * when the request carries no Idempotency-Key. */
struct write_key {
	const char *lock;
	const char *scope;
	const char *key;
	const char *hash;
};

/* A 2xx answer of a money call. body and the ids live as long as the
 * result the outcome was read from (the arena it was executed in). */
struct write_outcome {
	int status;
	const char *body;
	size_t len;
	int replayed;    /* the stored answer of an earlier request with this key: nothing was done now */
	int64_t card_id; /* the card whose balance changed */
	int64_t ref_id;  /* tap-out: the boarding station; booking and cancellation: the run */
};

/* The columns every money call's SELECT lists, in this order. */
#define WRITE_OUTCOME_COLUMNS "status, body, replayed, slug, detail, field, extra, card_id, ref_id"

/* Reads the one row of a money call: 0 with *o filled (a 2xx, perhaps
 * replayed), or -1 with err (the problem the call answered; no effect). */
int write_outcome_read(PGresult *r, struct arena *a, struct write_outcome *o, struct api_error *err);
/* The same for row `row` of a batch call's result (one row per request). */
int write_outcome_read_row(PGresult *r, int row, struct arena *a, struct write_outcome *o, struct api_error *err);

/* The key's four parameters, in the order the calls take them. */
#define WRITE_KEY_PARAMS(k) (k)->lock, (k)->scope, (k)->key, (k)->hash

#endif
