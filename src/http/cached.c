#include "cached.h"

#include <string.h>

#include "../store/cache.h"
#include "../store/nearcache.h"
#include "../core/banned.h"

static unsigned near_ms = 1000;

void cached_set_near_ttl(unsigned ms)
{
	near_ms = ms;
}

unsigned near_ttl_ms(const struct cache_family *f)
{
	unsigned family_ms = (unsigned)f->ttl_s * 1000u;
	return f->near ? (near_ms < family_ms ? near_ms : family_ms) : 0;
}

void reply_cached(struct request *req, struct worker *w, cache_fill fill)
{
	const struct cache_family *f = req->route->cache;
	const char *key = req->cache_key;
	int redis_up = 0;
	struct api_error err;

	if (key) {
		redisReply *rep = redis_command(&w->redis, &req->arena, "GET %s", key);
		redis_up = rep != NULL;
		if (rep && rep->type == REDIS_REPLY_STRING) {
			reply_json(req, 200, rep->str, rep->len);
			req->res.x_cache = "HIT";
			nearcache_put(key, rep->str, rep->len, near_ttl_ms(f));
			return;
		}
	}
	struct buf *out = reply(req, 200);
	if (fill(req, w, out, &err)) {
		reply_problem(req, &err);
		return;
	}
	req->res.x_cache = redis_up ? "MISS" : "BYPASS";
	if (!key)
		return;
	/* Without Redis no invalidation can reach this instance: keep nothing. */
	if (!redis_up)
		return;
	redis_command(&w->redis, &req->arena, "SET %s %b EX %d", key, out->ptr, out->len, f->ttl_s);
	nearcache_put(key, out->ptr, out->len, near_ttl_ms(f));
}
