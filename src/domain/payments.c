#include "payments.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cards.h"
#include "document.h"
#include "paging.h"
#include "../core/banned.h"

#define SIGNATURE_HEADER_MAX 1024
#define SIGNATURE_MAX_V1 8 /* a provider rotating its secret may send a few */

enum {
	CREATE,
	GET,
	STATE,
	LIST,
	EXPIRE,
	CREDIT,
	DECLINE,
	LOCK,
	MARK_EXPIRED,
	RECORD,
};

static const struct sql_stmt stmts[] = {
	/* The checkout URL names the payment, so its id is drawn first. A card
	 * that is not active inserts nothing (then: 404 or 409). */
	[CREATE] = { "payment_create",
		"WITH id AS (SELECT nextval(pg_get_serial_sequence('payments', 'payment_id')) AS payment_id)"
		"INSERT INTO payments (payment_id, card_id, user_id, amount, provider, checkout_url, expires_at)"
		" SELECT id.payment_id, c.card_id, $3, $2, $4, replace($5, '{payment_id}', id.payment_id::text),"
		"  now() + $6::int * interval '1 second'"
		" FROM cards c, id WHERE c.card_id = $1 AND c.status = 'active'"
		" RETURNING payment_json(payments)::text" },
	/* Staff see the deliveries too: the document with one more member. */
	[GET] = { "payment_get",
		"SELECT CASE WHEN $3::boolean THEN json_append(payment_json(p), 'events', payment_events_json(p.payment_id))"
		"  ELSE payment_json(p) END::text"
		" FROM payments p JOIN cards c USING (card_id)"
		" WHERE p.payment_id = $1 AND ($2::bigint = 0 OR c.user_id = $2)" },
	[STATE] = { "payment_state",
		"SELECT p.amount, payment_status(p) FROM payments p JOIN cards c USING (card_id)"
		" WHERE p.payment_id = $1 AND ($2::bigint = 0 OR c.user_id = $2)" },
	/* Keyset paging (paging.h), newest first. */
	[LIST] = { "payment_list",
		"WITH " PAGE_NEWEST_FIRST("SELECT * FROM payments p WHERE ($1::text IS NULL OR payment_status(p) = $1)"
			" AND ($2::timestamptz IS NULL OR p.created_at >= $2) AND ($3::timestamptz IS NULL OR p.created_at < $3)",
			"payment_id", "$4", "$5")
		" SELECT json_build_object("
		PAGE_MEMBERS_NEWEST_FIRST("payments", "payment_json(s)", "payment_id", "$5") ")::text" },
	[EXPIRE] = { "payments_expire",
		"WITH e AS (UPDATE payments SET status = 'expired', settled_at = now()"
		"  WHERE status = 'pending' AND expires_at <= now() RETURNING 1)"
		"SELECT count(*) FROM e" },
	/*
	 * The credit, one statement: the payment goes from pending to approved
	 * (only a pending, unexpired payment of this amount matches; a
	 * concurrent delivery waits for the row lock, then finds it approved
	 * and matches nothing), the card is credited (repaying trips taken on
	 * credit, as any recharge), and the ledger, recharges and event rows are
	 * written. The unique index on recharges.payment_id refuses a second credit.
	 * $1 payment, $2 amount, $3 provider reference, $4 event id, $5
	 * provider, $6 signature time (unix seconds).
	 */
	[CREDIT] = { "payment_credit",
		"WITH ids AS (SELECT nextval(pg_get_serial_sequence('recharges', 'recharge_id')) AS recharge_id),"
		" p AS (UPDATE payments SET status = 'approved', recharge_id = ids.recharge_id,"
		"    provider_reference = $3, settled_at = now()"
		"  FROM ids WHERE payment_id = $1 AND status = 'pending' AND amount = $2 AND expires_at > now()"
		"  RETURNING payments.payment_id, payments.card_id, payments.amount, payments.recharge_id),"
		" c AS (UPDATE cards SET balance = cards.balance + p.amount,"
		"    credit_trips_used = CASE WHEN cards.balance + p.amount >= 0 THEN 0 ELSE cards.credit_trips_used END"
		"  FROM p WHERE cards.card_id = p.card_id RETURNING cards.card_id, cards.balance),"
		" l AS (INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)"
		"  SELECT c.card_id, 'recharge', p.amount, c.balance, 'recharge:' || p.recharge_id FROM c, p"
		"  RETURNING entry_id, card_id, created_at),"
		" r AS (INSERT INTO recharges (recharge_id, card_id, amount, payment_id, ledger_entry_id, recharge_timestamp)"
		"  SELECT p.recharge_id, l.card_id, p.amount, p.payment_id, l.entry_id, l.created_at FROM l, p"
		"  RETURNING recharge_id, card_id),"
		" ev AS (INSERT INTO payment_events (event_id, provider, type, payment_id, amount, provider_reference,"
		"    signed_at, outcome)"
		"  SELECT $4, $5, 'payment.approved', $1, $2, $3, to_timestamp($6), 'credited' FROM r)"
		"SELECT card_id FROM r" },
	/* A decline: the same compare-and-set, and no money. Same parameters. */
	[DECLINE] = { "payment_decline",
		"WITH p AS (UPDATE payments SET status = 'declined', provider_reference = $3, settled_at = now()"
		"  WHERE payment_id = $1 AND status = 'pending' AND amount = $2 AND expires_at > now()"
		"  RETURNING payment_id)"
		"INSERT INTO payment_events (event_id, provider, type, payment_id, amount, provider_reference,"
		"  signed_at, outcome)"
		" SELECT $4, $5, 'payment.declined', p.payment_id, $2, $3, to_timestamp($6), 'declined' FROM p"
		" RETURNING payment_id" },
	[LOCK] = { "payment_lock",
		"SELECT status, amount, expires_at <= now() FROM payments WHERE payment_id = $1 FOR UPDATE" },
	[MARK_EXPIRED] = { "payment_mark_expired",
		"UPDATE payments SET status = 'expired', settled_at = now() WHERE payment_id = $1 AND status = 'pending'" },
	[RECORD] = { "payment_record",
		"INSERT INTO payment_events (event_id, provider, type, payment_id, amount, provider_reference,"
		"  signed_at, outcome) VALUES ($1, $2, $3, $4, $5, $6, to_timestamp($7), $8)" },
};

void payments_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static const struct payment_provider sandbox = { "sandbox", "/checkout/{payment_id}", 1 };
static struct payment_provider external = { "external", NULL, 0 };
static const struct payment_provider *provider = &sandbox;
static const char *secret = "";
static int ttl_s = 1800;

int payments_configure(const struct config *cfg, char *err, size_t errlen)
{
	if (payment_secret_check(cfg->payment_webhook_secret, err, errlen))
		return -1;
	secret = cfg->payment_webhook_secret;
	ttl_s = cfg->payment_ttl_s;
	if (!strcmp(cfg->payment_provider, "external")) {
		external.checkout_template = cfg->payment_checkout_url;
		provider = &external;
	} else {
		provider = &sandbox;
	}
	return 0;
}

const struct payment_provider *payment_provider(void)
{
	return provider;
}

int payment_secret_check(const char *s, char *err, size_t errlen)
{
	unsigned char seen[256] = { 0 };
	size_t n = strlen(s);
	int distinct = 0;
	for (size_t i = 0; i < n; i++)
		if (!seen[(unsigned char)s[i]]++)
			distinct++;
	if (n >= 32 && distinct >= 10)
		return 0;
	snprintf(err, errlen,
		 "PAYMENT_WEBHOOK_SECRET must be at least 32 bytes with at least 10 different characters "
		 "(got %zu bytes, %d different)", n, distinct);
	return -1;
}

/* HMAC-SHA256 of "<t>.<body>", t as its decimal text appears in the header. */
static void mac_of(const char *key, const char *t, size_t tlen, const char *body, size_t len,
		   unsigned char out[crypto_auth_hmacsha256_BYTES])
{
	crypto_auth_hmacsha256_state st;
	crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, tlen);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
	crypto_auth_hmacsha256_final(&st, out);
	sodium_memzero(&st, sizeof(st));
}

void payment_signature_make(const char *key, int64_t t, const char *body, size_t len, char *out, size_t outlen)
{
	char ts[24], hex[2 * crypto_auth_hmacsha256_BYTES + 1];
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	int n = snprintf(ts, sizeof(ts), "%lld", (long long)t);
	mac_of(key, ts, (size_t)n, body, len, mac);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	snprintf(out, outlen, "t=%s,v1=%s", ts, hex);
}

enum payment_sig payment_signature_verify(const char *key, const char *header, const char *body, size_t len,
					  int64_t now, int64_t *t)
{
	unsigned char macs[SIGNATURE_MAX_V1][crypto_auth_hmacsha256_BYTES];
	int nmacs = 0;
	const char *ts = NULL;
	size_t tslen = 0;
	if (!header || !*header)
		return PAYMENT_SIG_MISSING;
	if (strlen(header) > SIGNATURE_HEADER_MAX)
		return PAYMENT_SIG_MALFORMED;
	/* "t=<digits>,v1=<64 hex>[,v1=…]"; other keys (later schemes) are ignored. */
	for (const char *p = header; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ",");
		while (n && p[n - 1] == ' ')
			n--;
		if (n > 2 && !strncmp(p, "t=", 2)) {
			if (ts || n - 2 > 12 || strspn(p + 2, "0123456789") < n - 2)
				return PAYMENT_SIG_MALFORMED;
			ts = p + 2;
			tslen = n - 2;
		} else if (n >= 3 && !strncmp(p, "v1=", 3)) {
			size_t got;
			const char *end;
			if (n - 3 != 2 * crypto_auth_hmacsha256_BYTES || nmacs == SIGNATURE_MAX_V1 ||
			    sodium_hex2bin(macs[nmacs], sizeof(macs[0]), p + 3, n - 3, NULL, &got, &end) ||
			    got != sizeof(macs[0]) || end != p + n)
				return PAYMENT_SIG_MALFORMED;
			nmacs++;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	if (!ts || !nmacs)
		return PAYMENT_SIG_MALFORMED;
	*t = strtoll(ts, NULL, 10);

	unsigned char want[crypto_auth_hmacsha256_BYTES];
	int match = 0;
	mac_of(key, ts, tslen, body, len, want);
	for (int i = 0; i < nmacs; i++)
		match |= sodium_memcmp(macs[i], want, sizeof(want)) == 0;
	if (!match)
		return PAYMENT_SIG_MISMATCH;
	if (*t < now - PAYMENT_SIGNATURE_TOLERANCE_S || *t > now + PAYMENT_SIGNATURE_TOLERANCE_S)
		return PAYMENT_SIG_STALE;
	return PAYMENT_SIG_OK;
}

const char *payment_sig_reason(enum payment_sig s)
{
	switch (s) {
	case PAYMENT_SIG_OK: return "the signature is valid";
	case PAYMENT_SIG_MISSING: return "the Payment-Signature header is missing";
	case PAYMENT_SIG_MALFORMED: return "the Payment-Signature header must be t=<unix seconds>,v1=<64 hex digits>";
	case PAYMENT_SIG_MISMATCH: return "the signature does not match the body";
	case PAYMENT_SIG_STALE: return "the signature time is more than 300 s from now";
	}
	return "?";
}

enum payment_sig payment_delivery_verify(const char *header, const char *body, size_t len, int64_t *t)
{
	return payment_signature_verify(secret, header, body, len, (int64_t)time(NULL), t);
}

int payment_sandbox_signature(const char *body, size_t len, char *out, size_t outlen)
{
	if (!provider->sandbox)
		return -1;
	payment_signature_make(secret, (int64_t)time(NULL), body, len, out, outlen);
	return 0;
}

int payment_create(struct pg *db, struct arena *a, const struct payment_new *p, struct buf *out,
		   struct api_error *err)
{
	const char *v[] = { pg_int(a, p->card_id),    pg_int(a, p->amount),	      pg_int(a, p->user_id),
			    provider->name,	      provider->checkout_template, pg_int(a, ttl_s) };
	PGresult *r = pg_exec(db, a, &stmts[CREATE], 6, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) == 1) {
		document_copy(r, out);
		return 0;
	}
	return card_explain_inactive(db, a, p->card_id, err);
}

int payment_get(struct pg *db, struct arena *a, int64_t payment_id, int64_t rider_id, int with_events,
		struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, payment_id), pg_int(a, rider_id), with_events ? "true" : "false" };
	return document_read(db, a, &stmts[GET], 3, v, "payment", out, err);
}

int payment_state(struct pg *db, struct arena *a, int64_t payment_id, int64_t rider_id, struct payment_state *out,
		  struct api_error *err)
{
	const char *v[] = { pg_int(a, payment_id), pg_int(a, rider_id) };
	PGresult *r = pg_exec(db, a, &stmts[STATE], 2, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1)
		return api_fail(err, "not-found", "payment %lld does not exist", (long long)payment_id);
	out->amount = atoll(PQgetvalue(r, 0, 0));
	snprintf(out->status, sizeof(out->status), "%s", PQgetvalue(r, 0, 1));
	return 0;
}

int payment_list(struct pg *db, struct arena *a, const struct payment_filter *f, struct buf *out,
		 struct api_error *err)
{
	const char *v[] = { f->status, f->from, f->to, pg_int(a, f->after_id), pg_int(a, f->limit) };
	return document_read(db, a, &stmts[LIST], 5, v, "payments", out, err);
}

int payments_expire(struct pg *db, struct arena *a, int64_t *count, struct api_error *err)
{
	PGresult *r = pg_exec(db, a, &stmts[EXPIRE], 0, NULL, err);
	if (!r)
		return -1;
	*count = atoll(PQgetvalue(r, 0, 0));
	return 0;
}

const char *payment_outcome_name(enum payment_outcome o)
{
	switch (o) {
	case PAYMENT_CREDITED: return "credited";
	case PAYMENT_DECLINED: return "declined";
	case PAYMENT_EXPIRED: return "expired";
	case PAYMENT_NO_EFFECT: return "no-effect";
	case PAYMENT_UNKNOWN: return "unknown-payment";
	case PAYMENT_AMOUNT_MISMATCH: return "amount-mismatch";
	}
	return "?";
}

/* The credit or decline statement; 1 when it applied the event, 0 when the
 * payment did not match, -1 with err. */
static int apply_once(struct pg *db, struct arena *a, const struct payment_event *ev, int64_t *card_id,
		      struct api_error *err)
{
	const char *v[] = { pg_int(a, ev->payment_id), pg_int(a, ev->amount), ev->provider_reference,
			    ev->event_id,		provider->name,	      pg_int(a, ev->signed_at) };
	PGresult *r = pg_exec(db, a, &stmts[ev->approved ? CREDIT : DECLINE], 6, v, err);
	if (!r)
		return -1;
	if (PQntuples(r) != 1)
		return 0;
	if (ev->approved)
		*card_id = atoll(PQgetvalue(r, 0, 0));
	return 1;
}

static int record(struct pg *db, struct arena *a, const struct payment_event *ev, enum payment_outcome o,
		  struct api_error *err)
{
	const char *v[] = { ev->event_id,
			    provider->name,
			    ev->approved ? "payment.approved" : "payment.declined",
			    pg_int(a, ev->payment_id),
			    pg_int(a, ev->amount),
			    ev->provider_reference,
			    pg_int(a, ev->signed_at),
			    payment_outcome_name(o) };
	return pg_exec(db, a, &stmts[RECORD], 8, v, err) ? 0 : -1;
}

int payment_apply(struct pg *db, struct arena *a, const struct payment_event *ev, enum payment_outcome *outcome,
		  int64_t *card_id, struct api_error *err)
{
	struct api_error ignored;
	*card_id = 0;
	/* The common case, one statement: a pending payment settled. */
	int rc = apply_once(db, a, ev, card_id, err);
	if (rc == 1) {
		*outcome = ev->approved ? PAYMENT_CREDITED : PAYMENT_DECLINED;
		return 0;
	}
	/* 23505: a concurrent credit of this payment committed first (the
	 * UNIQUE guard); the payment is no longer pending, see below. */
	if (rc < 0 && strcmp(db->sqlstate, "23505"))
		return -1;

	/* Nothing applied: find out why, holding the payment's row, and record
	 * the delivery with what it did. */
	if (pg_run(db, "BEGIN", err))
		return -1;
	const char *v[] = { pg_int(a, ev->payment_id) };
	PGresult *r = pg_exec(db, a, &stmts[LOCK], 1, v, err);
	if (!r)
		goto failed;
	if (PQntuples(r) == 0) {
		*outcome = PAYMENT_UNKNOWN;
	} else if (atoll(PQgetvalue(r, 0, 1)) != ev->amount) {
		*outcome = PAYMENT_AMOUNT_MISMATCH;
	} else if (strcmp(PQgetvalue(r, 0, 0), "pending")) {
		*outcome = PAYMENT_NO_EFFECT;
	} else if (!strcmp(PQgetvalue(r, 0, 2), "t")) {
		if (!pg_exec(db, a, &stmts[MARK_EXPIRED], 1, v, err))
			goto failed;
		*outcome = PAYMENT_EXPIRED;
	} else {
		/* Pending, current and of this amount: the first attempt lost to a
		 * credit that rolled back. Applied again under the lock, it holds. */
		rc = apply_once(db, a, ev, card_id, err);
		if (rc < 0)
			goto failed;
		if (rc == 0) {
			api_fail(err, "unavailable", "payment %lld could not be settled; retry", (long long)ev->payment_id);
			err->retry_after = 1;
			goto failed;
		}
		*outcome = ev->approved ? PAYMENT_CREDITED : PAYMENT_DECLINED;
		return pg_run(db, "COMMIT", err) ? -1 : 0;
	}
	if (record(db, a, ev, *outcome, err) || pg_run(db, "COMMIT", err))
		goto failed;
	return 0;
failed:
	if (db->conn)
		pg_run(db, "ROLLBACK", &ignored);
	*card_id = 0;
	return -1;
}
