/* /api/v1/cards…: issue, read, recharge, block. */
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../domain/cards.h"
#include "../http/cached.h"
#include "../store/cache.h"
#include "../store/nearcache.h"
#include "api.h"
#include "idempotency.h"
#include "params.h"
#include "../core/banned.h"

static const char *const page_query[] = { "limit", "cursor", NULL };

/* Money reads use the primary: a rider checks the balance right after paying. */
struct cache_family family_card_balance = { .label = "card_balance", .key = "card:{}:balance", .ttl_s = 30 };
struct cache_family family_card_history = { .label = "card_history", .key = "card:{}:history", .ttl_s = 60,
					    .query = page_query };

void card_cache_invalidate(struct request *req, struct worker *w, int64_t card_id, int status_changed)
{
	const char *keys[] = {
		arena_printf(&req->arena, "card:%lld:balance", (long long)card_id),
		status_changed ? "analytics:users:active" : arena_printf(&req->arena, "card:%lld:history", (long long)card_id),
	};
	worker_invalidate(w, &req->arena, keys, 2);
}

/* A card's owner never changes after issue, so the process keeps what it
 * has looked up (in the near-cache, under a key no write invalidates). */
#define OWNER_TTL_MS (3600 * 1000)

static int owner_of(struct request *req, struct worker *w, int64_t card_id, int64_t *owner, struct api_error *e)
{
	const char *key = arena_printf(&req->arena, "owner:card:%lld", (long long)card_id);
	const char *val;
	size_t len;
	if (nearcache_get(key, &req->arena, &val, &len) == 0) {
		*owner = atoll(val);
		return 0;
	}
	if (card_owner(&w->primary, &req->arena, card_id, owner, e))
		return -1;
	const char *text = pg_int(&req->arena, *owner);
	nearcache_put(key, text, strlen(text), OWNER_TTL_MS);
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

/* Handlers on /cards/{card_id}: answers and returns -1 when the caller may not. */
static int card_path_allowed(struct request *req, struct worker *w)
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
	if (json_get_int(req->json, "user_id", 0, 1, INT64_MAX, &user_id, &given, &e)) {
		reply_problem(req, &e);
		return;
	}
	/* A rider's card is the rider's own; staff may issue anonymous cards. */
	if (req->auth->role == ROLE_RIDER) {
		if (given && user_id != req->auth->user_id) {
			api_fail(&e, "forbidden", "riders issue cards for themselves only");
			reply_problem(req, &e);
			return;
		}
		user_id = req->auth->user_id;
	}
	if (idem_begin(&im, req, &w->primary, 0))
		return;
	if (card_create(&w->primary, &req->arena, user_id, reply(req, 201), &e)) {
		idem_abort(&im);
		reply_problem(req, &e);
		return;
	}
	idem_commit(&im, req);
}

void card_get_one(struct request *req, struct worker *w)
{
	struct api_error e;
	if (card_path_allowed(req, w))
		return;
	if (card_get(&w->primary, &req->arena, req->ids[0], reply(req, 200), &e))
		reply_problem(req, &e);
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

void card_balance_get(struct request *req, struct worker *w)
{
	if (card_path_allowed(req, w))
		return;
	reply_cached(req, w, fill_balance);
}

void card_history_get(struct request *req, struct worker *w)
{
	if (card_path_allowed(req, w))
		return;
	reply_cached(req, w, fill_history);
}

void card_transactions_get(struct request *req, struct worker *w)
{
	struct api_error e;
	int64_t limit, cursor;
	if (card_path_allowed(req, w))
		return;
	if (query_page(req, &limit, &cursor, &e) ||
	    card_transactions(&w->primary, &req->arena, req->ids[0], cursor, limit, reply(req, 200), &e))
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
	struct idem im;
	struct recharge rc;
	if (recharge_read(req, &rc, &e)) {
		reply_problem(req, &e);
		return;
	}
	if (idem_begin(&im, req, &w->primary, 0))
		return;
	if (card_recharge(&w->primary, &req->arena, &rc, reply(req, 201), &e)) {
		idem_abort(&im);
		reply_problem(req, &e);
		return;
	}
	if (idem_commit(&im, req) == 0)
		card_cache_invalidate(req, w, rc.card_id, 0);
}

static void set_status(struct request *req, struct worker *w, const char *status)
{
	struct api_error e;
	if (card_path_allowed(req, w))
		return;
	if (card_set_status(&w->primary, &req->arena, req->ids[0], status, reply(req, 200), &e)) {
		reply_problem(req, &e);
		return;
	}
	card_cache_invalidate(req, w, req->ids[0], 1);
}

void card_block(struct request *req, struct worker *w)
{
	set_status(req, w, "blocked");
}

void card_unblock(struct request *req, struct worker *w)
{
	set_status(req, w, "active");
}
