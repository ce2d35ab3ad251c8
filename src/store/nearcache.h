#ifndef TRANSITD_NEARCACHE_H
#define TRANSITD_NEARCACHE_H
/*
 * The near-cache: a small in-process copy of hot Redis values, read on the
 * I/O threads without any system call. Sharded by key hash, each shard under
 * its own mutex, entries expire after their TTL and are dropped when another
 * instance publishes an invalidation (see cache.h). When a shard is full the
 * oldest entry goes.
 */
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"

void nearcache_init(size_t max_entries);
void nearcache_free(void);
/* Copies a fresh value into a (NUL-terminated). 0 when found, -1 otherwise. */
int nearcache_get(const char *key, struct arena *a, const char **val, size_t *len);

/*
 * Stale-while-revalidate, for reads that can be refreshed by going on to
 * Redis: as nearcache_get, but an entry that expired less than one TTL ago
 * is still copied (0), except to one caller every NEARCACHE_REFRESH_WAIT_MS,
 * which gets -1 and is expected to refresh it with nearcache_put. So when
 * a hot entry expires, one request goes to Redis instead of every request
 * at once. An invalidated entry is gone: it is never served stale.
 */
#define NEARCACHE_REFRESH_WAIT_MS 250
int nearcache_get_or_refresh(const char *key, struct arena *a, const char **val, size_t *len);
void nearcache_put(const char *key, const char *val, size_t len, uint64_t ttl_ms);
/*
 * Reads that fill the near-cache race with invalidations: a value read from
 * Redis or PostgreSQL just before a write commits can reach nearcache_put
 * just after that write's invalidation dropped the key, and would then be
 * served until it expires. So a reader takes the key's generation before it
 * reads, and nearcache_put_since stores the value only if no drop has
 * reached the key's shard since (a drop of another key of the shard also
 * refuses it: the cost is a refill, never a stale value).
 */
uint64_t nearcache_generation(const char *key);
void nearcache_put_since(const char *key, const char *val, size_t len, uint64_t ttl_ms, uint64_t generation);
/* Drops key and every variant "key#..." of it (one shard). */
void nearcache_drop_variants(const char *key);
/* Drops every key starting with prefix (all shards). */
void nearcache_drop_prefix(const char *prefix);
void nearcache_clear(void);
size_t nearcache_count(void);

#endif
