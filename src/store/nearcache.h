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
void nearcache_put(const char *key, const char *val, size_t len, uint64_t ttl_ms);
void nearcache_drop(const char *key);
/* Drops key and every variant "key#..." of it (one shard). */
void nearcache_drop_variants(const char *key);
/* Drops every key starting with prefix (all shards). */
void nearcache_drop_prefix(const char *prefix);
void nearcache_clear(void);
size_t nearcache_count(void);

#endif
