#ifndef TRANSITD_CACHED_H
#define TRANSITD_CACHED_H
/*
 * Cache-aside for a JSON read (worker thread): Redis first, then fill() from
 * PostgreSQL, stored in Redis with the family's TTL and in the near-cache.
 * X-Cache says HIT, MISS, or BYPASS when Redis could not be used. Only 200
 * answers are cached.
 */
#include "http.h"
#include "worker.h"

typedef int (*cache_fill)(struct request *req, struct worker *w, struct buf *out, struct api_error *err);

void reply_cached(struct request *req, struct worker *w, cache_fill fill);

/* The near-cache TTL for a family: short, since the near-cache of another
 * instance learns of writes only through the invalidation channel. */
unsigned near_ttl_ms(const struct cache_family *f);
/* NEAR_CACHE_TTL_MS, set once at start-up. */
void cached_set_near_ttl(unsigned ms);

#endif
