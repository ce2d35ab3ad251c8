/* /api/v1/payments…: top-ups, the provider's webhook, reconciliation reads,
 * and the sandbox provider's signing step behind the /checkout page. */
#include <sodium.h>
#include <string.h>

#include "../core/json.h"
#include "../domain/cards.h"
#include "../domain/payments.h"
#include "../http/worker.h"
#include "api.h"
#include "idempotency.h"
#include "params.h"
#include "../core/banned.h"

#define WEBHOOK_PATH "/api/v1/payments/webhook"
#define EVENT_ID_MAX 128
#define REFERENCE_MAX 128

void payments_topup(struct request *req, struct worker *w)
{
	struct api_error e;
	struct idem im;
	struct payment_new p = { .user_id = req->auth->user_id };
	if (json_get_int(req->json, "card_id", 1, 1, INT64_MAX, &p.card_id, NULL, &e) ||
	    json_get_int(req->json, "amount", 1, RECHARGE_MIN, RECHARGE_MAX, &p.amount, NULL, &e) ||
	    card_access_check(req, w, p.card_id, &e))
		goto fail;
	if (idem_begin_or_reply(&im, req, &w->primary, 0))
		return;
	int rc = payment_create(&w->primary, &req->arena, &p, reply(req, 201), &e);
	idem_finish_or_reply(&im, req, rc, &e);
	return;
fail:
	reply_problem(req, &e);
}

void payment_get_one(struct request *req, struct worker *w)
{
	struct api_error e;
	int staff = req->auth->role != ROLE_RIDER;
	if (payment_get(&w->primary, &req->arena, req->ids[0], request_rider_id(req), staff, reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

static int known_status(const char *status)
{
	static const char *const statuses[] = { "pending", "approved", "declined", "expired" };
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (!strcmp(status, statuses[i]))
			return 1;
	return 0;
}

void payments_list(struct request *req, struct worker *w)
{
	struct api_error e;
	struct payment_filter f = { .status = query_nonempty(req, "status") };
	if (query_page(req, &f.limit, &f.after_id, &e))
		goto fail;
	if (f.status && !known_status(f.status)) {
		api_fail_field(&e, "status", "must be pending, approved, declined or expired");
		goto fail;
	}
	if (query_time(req, "from", &f.from, &e) || query_time(req, "to", &f.to, &e) ||
	    payment_list(&w->primary, &req->arena, &f, reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

/* The event a provider sends (API.md, Payments). Unknown fields are ignored. */
static int parse_event(json_t *j, struct payment_event *ev, struct api_error *e)
{
	const char *type;
	if (json_get_str(j, "event_id", 1, EVENT_ID_MAX, &ev->event_id, e) ||
	    json_get_str(j, "type", 1, 64, &type, e) ||
	    json_get_int(j, "payment_id", 1, 1, INT64_MAX, &ev->payment_id, NULL, e) ||
	    json_get_int(j, "amount", 1, 1, INT64_MAX, &ev->amount, NULL, e) ||
	    json_get_str(j, "provider_reference", 0, REFERENCE_MAX, &ev->provider_reference, e))
		return -1;
	if (!*ev->event_id)
		return api_fail_field(e, "event_id", "must not be empty");
	ev->approved = !strcmp(type, "payment.approved");
	if (!ev->approved && strcmp(type, "payment.declined"))
		return api_fail_field(e, "type", "must be payment.approved or payment.declined");
	return 0;
}

/*
 * The provider's webhook. The signature is checked on the raw bytes before
 * anything parses them (this route is not ROUTE_JSON_BODY); only a signed
 * body is parsed. Unknown payment 404, wrong amount 422 (both recorded);
 * anything else is 200, whether it changed the payment or not, so the
 * provider stops retrying.
 */
void payments_webhook(struct request *req, struct worker *w)
{
	struct api_error e;
	struct payment_event ev = { 0 };
	enum payment_outcome outcome;
	int64_t card_id;
	enum payment_sig sig = payment_delivery_verify(request_header(req, "Payment-Signature"), req->body.ptr,
						       req->body.len, &ev.signed_at);
	if (sig != PAYMENT_SIG_OK) {
		security_event(req, "webhook-signature-refused", payment_sig_reason(sig));
		api_fail(&e, "unauthorized", "%s", payment_sig_reason(sig));
		reply_header(req, "WWW-Authenticate", "Payment-Signature");
		goto fail;
	}
	if (request_json_or_reply(req))
		return;
	if (parse_event(req->json, &ev, &e) ||
	    payment_apply(&w->primary, &req->arena, &ev, &outcome, &card_id, &e))
		goto fail;
	if (outcome == PAYMENT_CREDITED)
		card_cache_invalidate(req, w, card_id, CARD_RECHARGED);
	if (outcome == PAYMENT_UNKNOWN) {
		api_fail(&e, "not-found", "payment %lld does not exist", (long long)ev.payment_id);
		goto fail;
	}
	if (outcome == PAYMENT_AMOUNT_MISMATCH) {
		api_fail_field(&e, "amount", "is not the amount of payment %lld", (long long)ev.payment_id);
		goto fail;
	}
	struct buf *b = reply(req, 200);
	buf_adds(b, "{\"received\":true,\"outcome\":");
	buf_add_json_str(b, payment_outcome_name(outcome));
	buf_addch(b, '}');
	return;
fail:
	reply_problem(req, &e);
}

static void random_hex(char out[25])
{
	unsigned char raw[12];
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, 25, raw, sizeof(raw));
}

/*
 * The sandbox provider's "pay" or "refuse" button: the event a real provider
 * would send for this payment, signed, for the checkout page to deliver to
 * the webhook. Nothing changes here; the webhook does the rest, by the same
 * code as for any provider. Only with PAYMENT_PROVIDER=sandbox (404
 * otherwise): it lets a rider approve a payment nobody collected.
 */
void payment_sandbox_sign(struct request *req, struct worker *w)
{
	struct api_error e;
	struct payment_state st;
	const char *decision;
	int64_t id = req->ids[0];
	if (!payment_provider()->sandbox)
		goto not_enabled;
	if (json_get_str(req->json, "decision", 1, 16, &decision, &e))
		goto fail;
	if (strcmp(decision, "approve") && strcmp(decision, "decline")) {
		api_fail_field(&e, "decision", "must be approve or decline");
		goto fail;
	}
	if (payment_state(&w->primary, &req->arena, id, request_rider_id(req), &st, &e))
		goto fail;
	if (strcmp(st.status, "pending")) {
		api_fail(&e, "conflict", "payment %lld is %s", (long long)id, st.status);
		goto fail;
	}
	char event_id[25], reference[25], signature[PAYMENT_SIGNATURE_MAX];
	random_hex(event_id);
	random_hex(reference);
	const char *body = arena_printf(&req->arena,
					"{\"event_id\":\"evt_sandbox_%s\",\"type\":\"payment.%s\",\"payment_id\":%lld,"
					"\"amount\":%lld,\"provider_reference\":\"sandbox_%s\"}",
					event_id, strcmp(decision, "approve") ? "declined" : "approved", (long long)id,
					(long long)st.amount, reference);
	if (payment_sandbox_signature(body, strlen(body), signature, sizeof(signature)))
		goto not_enabled;
	struct buf *b = reply(req, 200);
	buf_adds(b, "{\"webhook_url\":\"" WEBHOOK_PATH "\",\"body\":");
	buf_add_json_str(b, body);
	buf_adds(b, ",\"signature\":");
	buf_add_json_str(b, signature);
	buf_addch(b, '}');
	return;
not_enabled:
	api_fail(&e, "not-found", "the sandbox payment provider is not enabled on this server");
fail:
	reply_problem(req, &e);
}
