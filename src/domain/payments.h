#ifndef TRANSITD_DOMAIN_PAYMENTS_H
#define TRANSITD_DOMAIN_PAYMENTS_H
/*
 * Online top-ups: a payment is asked for, a payment provider confirms or
 * declines it with a signed event, and only a confirmation moves money.
 *
 * Signature (every provider): Payment-Signature: t=<unix seconds>,v1=<hex
 * HMAC-SHA256 of "<t>.<raw body>" keyed with PAYMENT_WEBHOOK_SECRET>, checked
 * on the raw bytes before anything parses them, compared in constant time,
 * refused when t is more than PAYMENT_SIGNATURE_TOLERANCE_S from now.
 *
 * Exactly once: an approval is applied by one statement that moves the
 * payment from pending to approved (a compare-and-set on its row:
 * concurrent deliveries wait for the row, then find it approved and change
 * nothing), credits the card, and writes the ledger row, the recharges row
 * and the event row. The unique index on recharges.payment_id is the
 * guarantee under it: a second credit of one payment cannot commit,
 * whatever the code above does. The invariant cards.balance == sum(card_ledger.amount) holds as for
 * any recharge (domain/cards.h).
 *
 * Database functions block on the given connection and return 0, or -1
 * with err (503 when the database is down).
 */
#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"
#include "../core/config.h"
#include "../store/pg.h"

#define PAYMENT_SIGNATURE_TOLERANCE_S 300
#define PAYMENT_SIGNATURE_MAX 128 /* "t=<20 digits>,v1=<64 hex>" and its NUL fit */

void payments_register(void);

/* What differs between providers. The checkout URL is a template in which
 * "{payment_id}" is replaced; verification and the credit are shared. */
struct payment_provider {
	const char *name;
	const char *checkout_template;
	int sandbox; /* riders approve or decline on transitd's /checkout page */
};

/* Start-up of `serve`: keeps the provider, secret and TTL. -1 with a
 * one-line message naming the variable when the secret is weak. */
int payments_configure(const struct config *cfg, char *err, size_t errlen);
/* The configured provider (sandbox until payments_configure). */
const struct payment_provider *payment_provider(void);

/* A webhook secret is strong enough with at least 32 bytes and 10 distinct
 * byte values (no "aaaa…" or "abab…"). 0, or -1 with a message in err. */
int payment_secret_check(const char *secret, char *err, size_t errlen);

/* "t=<t>,v1=<hex>" for body, into out (at least PAYMENT_SIGNATURE_MAX bytes). */
void payment_signature_make(const char *secret, int64_t t, const char *body, size_t len, char *out, size_t outlen);

enum payment_sig {
	PAYMENT_SIG_OK,
	PAYMENT_SIG_MISSING,   /* no header */
	PAYMENT_SIG_MALFORMED, /* no t, no v1, or not digits / 64 hex digits */
	PAYMENT_SIG_MISMATCH,  /* no v1 is the HMAC of this body under this secret */
	PAYMENT_SIG_STALE,     /* t more than the tolerance away from now */
};
/* Checks a Payment-Signature header (may be NULL) for body at time now.
 * Several v1 entries may be given (any may match). *t gets the signed time
 * when the header parses. Constant time in the comparison of MACs. */
enum payment_sig payment_signature_verify(const char *secret, const char *header, const char *body, size_t len,
					  int64_t now, int64_t *t);
/* A short reason for logs and the 401 detail. */
const char *payment_sig_reason(enum payment_sig s);
/* payment_signature_verify with the configured secret and the current time. */
enum payment_sig payment_delivery_verify(const char *header, const char *body, size_t len, int64_t *t);

/* The sandbox provider signs the events its checkout page delivers: the
 * signature of body at the current time with the configured secret. -1
 * (nothing written) unless the provider is the sandbox. */
int payment_sandbox_signature(const char *body, size_t len, char *out, size_t outlen);

struct payment_new {
	int64_t card_id;
	int64_t amount;
	int64_t user_id; /* who asks */
};
/* A pending payment of an active card, expiring after PAYMENT_TTL, with the
 * provider's checkout URL. 404 unknown card, 409 card-blocked. */
int payment_create(struct pg *db, struct arena *a, const struct payment_new *p, struct buf *out,
		   struct api_error *err);

/* The payment document; rider_id != 0: only if that rider owns the card
 * (404 otherwise); with_events adds the deliveries received for it. */
int payment_get(struct pg *db, struct arena *a, int64_t payment_id, int64_t rider_id, int with_events,
		struct buf *out, struct api_error *err);

struct payment_state {
	int64_t amount;
	char status[16]; /* as a reader sees it: a stale pending payment is "expired" */
};
/* What the sandbox checkout needs to sign an event; rider_id as payment_get. */
int payment_state(struct pg *db, struct arena *a, int64_t payment_id, int64_t rider_id, struct payment_state *out,
		  struct api_error *err);

struct payment_filter {
	const char *status; /* NULL = any; else pending, approved, declined or expired */
	const char *from;   /* RFC 3339, created at or after; NULL = no bound */
	const char *to;     /* RFC 3339, created before; NULL = no bound */
	int64_t after_id;   /* cursor: payment ids below it; 0 = first page */
	int64_t limit;
};
/* Newest first: {"payments": [...], "next_cursor"}. */
int payment_list(struct pg *db, struct arena *a, const struct payment_filter *f, struct buf *out,
		 struct api_error *err);

/* Moves every pending payment past its expiry to expired; *count of them. */
int payments_expire(struct pg *db, struct arena *a, int64_t *count, struct api_error *err);

/* A verified provider event. */
struct payment_event {
	const char *event_id;
	int approved; /* payment.approved, else payment.declined */
	int64_t payment_id;
	int64_t amount;
	const char *provider_reference; /* may be NULL */
	int64_t signed_at;              /* t of the signature */
};

enum payment_outcome {
	PAYMENT_CREDITED,        /* approved now: the card was credited */
	PAYMENT_DECLINED,        /* declined now: no money */
	PAYMENT_EXPIRED,         /* the payment was past its expiry: expired now, no money */
	PAYMENT_NO_EFFECT,       /* the payment was already approved, declined or expired */
	PAYMENT_UNKNOWN,         /* no such payment */
	PAYMENT_AMOUNT_MISMATCH, /* the event's amount is not the payment's */
};
const char *payment_outcome_name(enum payment_outcome o);

/* Applies an event and records the delivery (whatever its outcome) in
 * payment_events. *card_id is the card credited (PAYMENT_CREDITED). 0 with
 * *outcome, or -1 with err when the database failed (nothing applied). */
int payment_apply(struct pg *db, struct arena *a, const struct payment_event *ev, enum payment_outcome *outcome,
		  int64_t *card_id, struct api_error *err);

#endif
