#ifndef TRANSITD_CACHED_H
#define TRANSITD_CACHED_H
/*
 * Cache-aside for a JSON read (worker thread): Redis first (waiting at most
 * REDIS_HEDGE_MS), then fill() from PostgreSQL under a lease, one fill per
 * key at a time in this process (single flight), stored in Redis with the
 * family's TTL and in the near-cache. A fill may read the worker's replica
 * when it has replayed the key's last invalidation (worker_read_db).
 * X-Cache says HIT, MISS, or BYPASS when Redis could not be used. Only 200
 * answers are cached. ../store/README.md has the whole design.
 */
#include "http.h"
#include "worker.h"

typedef int (*cache_fill)(struct request *req, struct worker *w, struct buf *out, struct api_error *err);

/* Answers req (the route has a cache family and dispatch set its keys)
 * from the cache or from fill, which writes the JSON into out: 0, or -1
 * with err (answered as a problem, not cached). Blocks. */
void reply_cached(struct request *req, struct worker *w, cache_fill fill);

/* NEAR_CACHE_TTL_MS, set once at start-up. */
void cached_set_near_ttl(unsigned ms);

#endif
