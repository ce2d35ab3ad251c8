#ifndef TRANSITD_CACHE_H
#define TRANSITD_CACHE_H
/*
 * Cache-aside families and cross-instance invalidation.
 *
 * A family names a kind of cached read (its Redis TTL, which query
 * parameters are part of the key, whether the near-cache may hold it).
 * Keys are CACHE_PREFIX + family + ":" + path ids + ":" + query values.
 *
 * Writers call cache_invalidate after their transaction commits: the keys
 * are deleted from Redis and published on the invalidation channel, which
 * every instance's subscriber thread turns into near-cache drops.
 */
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/config.h"
#include "redis.h"

struct cache_family {
	const char *name;
	int ttl_s;
	const char *const *query; /* NULL-terminated parameter names, or NULL */
	int near;                 /* may the near-cache hold it */
	unsigned long hits, misses, bypasses; /* atomics */
};

void cache_configure(const struct config *cfg);
const char *cache_prefix(void);

/* The key for a family and its parts (ids, then query values, NULL = ""),
 * allocated in a; NULL when it would exceed CACHE_KEY_MAX. */
#define CACHE_KEY_MAX 400
const char *cache_key(struct arena *a, const struct cache_family *f, const int64_t *ids, int nids,
		      const char *const *values, int nvalues);

/* Deletes keys (full keys; one ending in '*' is a prefix) everywhere. */
void cache_invalidate(struct redis *r, struct arena *a, const char *const *keys, size_t n);

void cache_count(struct cache_family *f, const char *x_cache);

/* Starts / stops the invalidation subscriber thread. */
int cache_subscriber_start(const struct config *cfg);
void cache_subscriber_stop(void);

#endif
