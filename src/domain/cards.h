#ifndef TRANSITD_DOMAIN_CARDS_H
#define TRANSITD_DOMAIN_CARDS_H
/*
 * Travel cards and the money on them.
 *
 * Invariant: cards.balance == sum(card_ledger.amount) for every card. Every
 * function here that changes a balance does it in one SQL statement that
 * updates the card row atomically (no read-then-write) and writes the
 * ledger row, so it holds on every commit; run inside a caller's
 * transaction, the change commits or rolls back with it.
 *
 * Each function returns 0, or -1 with err: 404 unknown card, 409
 * card-blocked, 422 naming a field, 503 when the database is down; reads
 * and card_create/card_set_status write the API's JSON document into out.
 * All block on the given connection.
 */
#include <stdint.h>

#include "../core/buf.h"
#include "../store/pg.h"
#include "outcome.h"

#define RECHARGE_MIN 1000
#define RECHARGE_MAX 500000

void cards_register(void);

/* A random 16-digit number whose last digit is the Luhn check digit. */
void card_number_generate(char out[17]);

/* user_id 0 issues an anonymous card (422 user_id when no such user).
 * max_cards > 0: 409 card-limit when the user already holds that many
 * (blocked ones too); must run inside a transaction (the user's row is
 * locked while counting). */
int card_create(struct pg *db, struct arena *a, int64_t user_id, int max_cards, struct buf *out,
		struct api_error *err);
int card_get(struct pg *db, struct arena *a, int64_t card_id, struct buf *out, struct api_error *err);
int card_balance(struct pg *db, struct arena *a, int64_t card_id, struct buf *out, struct api_error *err);
/* Keyset pages, newest first; after_id 0 = first page. */
int card_history(struct pg *db, struct arena *a, int64_t card_id, int64_t after_id, int64_t limit,
		 struct buf *out, struct api_error *err);
int card_transactions(struct pg *db, struct arena *a, int64_t card_id, int64_t after_id, int64_t limit,
		      struct buf *out, struct api_error *err);

struct recharge {
	int64_t card_id;
	int64_t amount;
	int64_t point_id; /* 0 = none */
};
/* A point of sale's recharge, one call: *o is its 201 (or the stored answer
 * of k); -1 with err 404, 409 card-blocked, 422 (a field, or the key), 409
 * idempotency-in-progress. */
int card_recharge(struct pg *db, struct arena *a, const struct recharge *r, const struct write_key *k,
		  struct write_outcome *o, struct api_error *err);

/* Why a write that needs an active card found none: always -1, with err
 * 404 (no such card) or 409 card-blocked (or 503). */
int card_explain_inactive(struct pg *db, struct arena *a, int64_t card_id, struct api_error *err);

/* status "active" or "blocked"; setting the current status again is not an error. */
int card_set_status(struct pg *db, struct arena *a, int64_t card_id, const char *status, struct buf *out,
		    struct api_error *err);

/* The card's owner (0: anonymous); 404 for an unknown card. */
int card_owner(struct pg *db, struct arena *a, int64_t card_id, int64_t *owner, struct api_error *err);

#endif
