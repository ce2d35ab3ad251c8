/* /api/v1/cards…: issue, read, recharge, block. */
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../domain/cards.h"
#include "../http/cached.h"
#include "../store/cache.h"
#include "../store/owners.h"
#include "api.h"
#include "idempotency.h"
#include "keys.h"
#include "params.h"
#include "../core/banned.h"

static const char *const page_query[] = { "limit", "cursor", NULL };

static const struct config *cfg;

void cards_api_configure(const struct config *c)
{
	cfg = c;
}

static int normalize_page(struct request *req, const char **v, struct api_error *err)
{
	return query_page_canonical(req, &v[0], &v[1], err);
}

/*
 * A card's reads (its document, balance and recharge history) are answered
 * from the near-cache on the I/O thread, for staff and for the card's
 * owner, once every invalidation that reached this process is applied
 * (cache_invalidations_settled): a rider reads a balance right after paying
 * or boarding, perhaps on another instance. Fills read the primary.
 * 1: from memory; 0: a worker decides; -1: another rider's card, answered
 * 404 as if it did not exist.
 */
static int card_from_memory_or_reply(struct request *req)
{
	if (!cache_invalidations_settled())
		return 0;
	if (req->auth->role != ROLE_RIDER)
		return 1;
	int64_t owner;
	if (owners_get(req->ids[0], &owner))
		return 0; /* not known here yet: a worker looks it up */
	if (owner == req->auth->user_id)
		return 1;
	struct api_error e;
	api_fail(&e, "not-found", "card %lld does not exist", (long long)req->ids[0]);
	reply_problem(req, &e);
	return -1;
}

struct cache_family family_card = { .label = "card", .key = "card:{}", .ttl_s = 30, .near = 1,
				     .from_memory = card_from_memory_or_reply };
struct cache_family family_card_balance = { .label = "card_balance", .key = "card:{}:balance", .ttl_s = 30,
					    .near = 1, .from_memory = card_from_memory_or_reply };
struct cache_family family_card_history = { .label = "card_history", .key = "card:{}:history", .ttl_s = 60,
					    .query = page_query, .normalize = normalize_page, .near = 1,
					    .from_memory = card_from_memory_or_reply };

/* Not a cached read: the owners map's entry (store/owners.h), which a
 * change of status or owner drops on every instance. */
static const struct cache_family owner_entry = { .label = "card_owner", .key = "card:{}:owner" };

size_t card_cache_keys(struct arena *a, int64_t card_id, unsigned what, const char **keys)
{
	size_t n = 0;
	keys[n++] = family_key(a, &family_card, card_id);
	keys[n++] = family_key(a, &family_card_balance, card_id);
	if (what & CARD_RECHARGED)
		keys[n++] = family_key(a, &family_card_history, card_id);
	if (what & CARD_STATUS) {
		keys[n++] = family_key(a, &owner_entry, card_id);
		keys[n++] = family_key(a, &family_users_active, 0);
	}
	return n;
}

void card_cache_invalidate(struct request *req, struct worker *w, int64_t card_id, unsigned what)
{
	const char *keys[CARD_CACHE_KEYS_MAX];
	worker_invalidate(w, &req->arena, keys, card_cache_keys(&req->arena, card_id, what, keys));
}

/* The owner of a card, from memory or PostgreSQL. */
static int owner_of(struct request *req, struct worker *w, int64_t card_id, int64_t *owner, struct api_error *e)
{
	if (owners_get(card_id, owner) == 0)
		return 0;
	uint64_t gen = owners_generation(card_id);
	if (card_owner(&w->primary, &req->arena, card_id, owner, e))
		return -1;
	owners_put(card_id, *owner, gen);
	return 0;
}

int card_access_check(struct request *req, struct worker *w, int64_t card_id, struct api_error *e)
{
	int64_t owner;
	if (req->auth->role != ROLE_RIDER)
		return 0;
	if (owner_of(req, w, card_id, &owner, e))
		return -1;
	if (owner != req->auth->user_id)
		return api_fail(e, "not-found", "card %lld does not exist", (long long)card_id);
	return 0;
}

/* Handlers on /cards/{card_id}: 0, or -1 with req answered (404) when the
 * caller may not reach the card. */
static int card_access_or_reply(struct request *req, struct worker *w)
{
	struct api_error e;
	if (card_access_check(req, w, req->ids[0], &e) == 0)
		return 0;
	reply_problem(req, &e);
	return -1;
}

void cards_create(struct request *req, struct worker *w)
{
	struct api_error e;
	struct idem im;
	int64_t user_id = 0;
	int given;
	if (json_get_int(req->json, "user_id", 0, 1, INT64_MAX, &user_id, &given, &e))
		goto fail;
	/* A rider's card is the rider's own, and a rider holds a limited number
	 * of them (each could ride on credit); staff may issue anonymous cards,
	 * and replacements beyond the cap. */
	int cap = 0;
	if (req->auth->role == ROLE_RIDER) {
		cap = cfg->max_cards_per_rider;
		if (given && user_id != req->auth->user_id) {
			api_fail(&e, "forbidden", "riders issue cards for themselves only");
			goto fail;
		}
		user_id = req->auth->user_id;
	}
	if (idem_begin_or_reply(&im, req, &w->primary, cap > 0))
		return;
	int rc = card_create(&w->primary, &req->arena, user_id, cap, reply(req, 201), &e);
	idem_finish_or_reply(&im, req, rc, &e);
	return;
fail:
	reply_problem(req, &e);
}

static int fill_card(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return card_get(&w->primary, &req->arena, req->ids[0], out, err);
}

static int fill_balance(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return card_balance(&w->primary, &req->arena, req->ids[0], out, err);
}

static int fill_history(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	int64_t limit, cursor;
	if (query_page(req, &limit, &cursor, err))
		return -1;
	return card_history(&w->primary, &req->arena, req->ids[0], cursor, limit, out, err);
}

/* A rider's access is checked before the cache, whose entry every reader shares. */
static void reply_card_cached(struct request *req, struct worker *w, cache_fill fill)
{
	if (card_access_or_reply(req, w))
		return;
	reply_cached(req, w, fill);
}

void card_get_one(struct request *req, struct worker *w)
{
	reply_card_cached(req, w, fill_card);
}

void card_balance_get(struct request *req, struct worker *w)
{
	reply_card_cached(req, w, fill_balance);
}

void card_history_get(struct request *req, struct worker *w)
{
	reply_card_cached(req, w, fill_history);
}

void card_transactions_get(struct request *req, struct worker *w)
{
	struct api_error e;
	int64_t limit, cursor;
	if (card_access_or_reply(req, w))
		return;
	if (query_page(req, &limit, &cursor, &e) ||
	    card_transactions(&w->primary, &req->arena, req->ids[0], cursor, limit, reply(req, 200), &e))
		goto fail;
	return;
fail:
	reply_problem(req, &e);
}

/* A point of sale (operators and admins, by the route table): riders top up
 * through payments, where money comes in only when a provider confirms. */
static int recharge_read(struct request *req, struct recharge *rc, struct api_error *e)
{
	memset(rc, 0, sizeof(*rc));
	return json_get_int(req->json, "card_id", 1, 1, INT64_MAX, &rc->card_id, NULL, e) ||
	       json_get_int(req->json, "amount", 1, RECHARGE_MIN, RECHARGE_MAX, &rc->amount, NULL, e) ||
	       json_get_int(req->json, "recharge_point_id", 0, 1, INT32_MAX, &rc->point_id, NULL, e);
}

int cards_recharge_check(struct request *req, struct worker *w, struct api_error *e)
{
	(void)w;
	struct recharge rc;
	return recharge_read(req, &rc, e) ? -1 : 0;
}

void cards_recharge(struct request *req, struct worker *w)
{
	struct api_error e;
	struct recharge rc;
	struct write_key k;
	struct write_outcome o;
	if (recharge_read(req, &rc, &e))
		goto fail;
	if (idem_key_or_reply(req, &k))
		return;
	if (card_recharge(&w->primary, &req->arena, &rc, &k, &o, &e))
		goto fail;
	reply_outcome(req, &o);
	if (!o.replayed)
		card_cache_invalidate(req, w, rc.card_id, CARD_RECHARGED);
	return;
fail:
	reply_problem(req, &e);
}

static void set_status(struct request *req, struct worker *w, const char *status)
{
	struct api_error e;
	if (card_access_or_reply(req, w))
		return;
	if (card_set_status(&w->primary, &req->arena, req->ids[0], status, reply(req, 200), &e))
		goto fail;
	card_cache_invalidate(req, w, req->ids[0], CARD_STATUS);
	return;
fail:
	reply_problem(req, &e);
}

void card_block(struct request *req, struct worker *w)
{
	set_status(req, w, "blocked");
}

void card_unblock(struct request *req, struct worker *w)
{
	set_status(req, w, "active");
}
