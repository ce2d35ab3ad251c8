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

static redisReply *redis_get(struct request *req, struct worker *w)
{
	if (req->cache_field)
		return redis_command(&w->redis, &req->arena, "HGET %s %s", req->cache_key, req->cache_field);
	return redis_command(&w->redis, &req->arena, "GET %s", req->cache_key);
}

static void redis_fill(struct request *req, struct worker *w, const struct buf *val)
{
	const struct cache_family *f = req->route->cache;
	if (!req->cache_field) {
		redis_command(&w->redis, &req->arena, "SET %s %b EX %d", req->cache_key, val->ptr, val->len, f->ttl_s);
		return;
	}
	/* Every variant expires with the hash, at most ttl after the first fill. */
	if (redis_command(&w->redis, &req->arena, "HSET %s %s %b", req->cache_key, req->cache_field, val->ptr,
			  val->len))
		redis_command(&w->redis, &req->arena, "EXPIRE %s %d NX", req->cache_key, f->ttl_s);
}

void reply_cached(struct request *req, struct worker *w, cache_fill fill)
{
	const struct cache_family *f = req->route->cache;
	int redis_up = 0;
	struct api_error err;

	if (req->cache_key) {
		redisReply *rep = redis_get(req, w);
		redis_up = rep != NULL;
		if (rep && rep->type == REDIS_REPLY_STRING) {
			reply_json(req, 200, rep->str, rep->len);
			req->res.x_cache = "HIT";
			if (req->near_key)
				nearcache_put(req->near_key, rep->str, rep->len, near_ttl_ms(f));
			return;
		}
	}
	struct buf *out = reply(req, 200);
	if (fill(req, w, out, &err)) {
		reply_problem(req, &err);
		return;
	}
	req->res.x_cache = redis_up ? "MISS" : "BYPASS";
	/* Without Redis no invalidation can reach this instance: keep nothing. */
	if (!req->cache_key || !redis_up)
		return;
	redis_fill(req, w, out);
	if (req->near_key)
		nearcache_put(req->near_key, out->ptr, out->len, near_ttl_ms(f));
}
