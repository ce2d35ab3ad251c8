#ifndef TRANSITD_API_KEYS_H
#define TRANSITD_API_KEYS_H
/*
 * The cache keys a write makes stale, named as the reads are cached: from
 * their family's pattern (store/cache.h), so that a read and its
 * invalidation cannot drift apart.
 */
#include <stdint.h>

#include "../core/arena.h"
#include "../store/cache.h"

/* The key of family f for id (its "{}"; a pattern without one ignores id),
 * without CACHE_PREFIX, as worker_invalidate takes keys. Allocated in a. */
const char *family_key(struct arena *a, const struct cache_family *f, int64_t id);

#endif
