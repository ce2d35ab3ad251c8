#ifndef TRANSITD_CACHE_H
#define TRANSITD_CACHE_H
/*
 * Cache-aside families and cross-instance invalidation.
 *
 * A family names a kind of cached read: its Redis key pattern ("{}" stands
 * for each path id in turn: "card:{}:balance"), its TTL, which query
 * parameters select a variant, and whether the near-cache may hold it.
 * A family without query parameters is a plain string key. A family with
 * them is a Redis hash at that key, one field per variant, expiring as a
 * whole (EXPIRE NX at first fill), so one UNLINK drops every variant.
 * Near-cache keys are the Redis key, plus "#" + field for variants.
 *
 * Writers call cache_invalidate after their transaction commits: the keys
 * are deleted from Redis and published on the invalidation channel, which
 * every instance's subscriber thread turns into near-cache drops.
 */
#include <stddef.h>
#include <stdint.h>

#include "../core/arena.h"
#include "../core/config.h"
#include "../core/problem.h"
#include "redis.h"

struct request;

struct cache_family {
	const char *label;        /* metrics label, e.g. "card_balance" */
	const char *key;          /* Redis key pattern without prefix */
	int ttl_s;
	const char *const *query; /* NULL-terminated parameter names, or NULL */
	int near;                 /* may the near-cache hold it */
	/* Replaces the raw query values (one per name in query, NULL when absent)
	 * by their canonical text, so that requests meaning the same thing
	 * ("limit=020" and "limit=20", no cursor and "cursor=") share one entry;
	 * the request then carries the canonical values to its handler. CPU only
	 * (it runs on the I/O thread). 0, or -1 with err (a 422 naming the
	 * parameter, answered without a worker). NULL: values used as sent. */
	int (*normalize)(struct request *req, const char **values, struct api_error *err);
	/* For reads not everyone may make (a rider's own card): decides on the
	 * I/O thread, before the near-cache is looked at, whether this caller's
	 * read may be answered from memory. 1: yes; 0: no, a worker decides (it
	 * checks access itself); -1: refused, req answered. CPU only. NULL:
	 * anyone may read what the near-cache holds. */
	int (*from_memory)(struct request *req);
	unsigned long hits, misses, bypasses; /* atomics */
	unsigned long fills;                  /* reads that went to PostgreSQL */
};

void cache_configure(const struct config *cfg);
const char *cache_prefix(void);

/* The Redis key of a family for the given ids, allocated in a. */
#define CACHE_KEY_MAX 400
const char *cache_key(struct arena *a, const struct cache_family *f, const int64_t *ids, int nids);
/* The hash field for the query values of a variant (NULL values = ""), or
 * NULL when it would exceed CACHE_KEY_MAX. */
const char *cache_field(struct arena *a, const char *const *values, int nvalues);

/* Deletes keys (without prefix, as in the family pattern, ids filled in)
 * and their fill leases from Redis, and from the near-cache (and whatever
 * cache_on_drop keeps) of every instance; returns once every subscriber's
 * socket holds the message. Blocks on Redis; never fails: with Redis down
 * the keys expire by their TTL. A nonzero lsn is the WAL position of the
 * write: refills of these keys must read at or past it (kept 60 s under
 * cache_lsn_key). */
void cache_invalidate(struct redis *r, struct arena *a, const char *const *keys, size_t n, uint64_t lsn);

/* The Redis key holding the WAL position of key's last invalidation. */
const char *cache_lsn_key(struct arena *a, const char *key);

void cache_count(struct cache_family *f, const char *x_cache);

/*
 * Declares keys under CACHE_PREFIX that are not cache (logins, revocations,
 * counters): cache_clear_all leaves them. A name ending in ':' stands for
 * every key that begins with it ("rt:"), any other for that one key
 * ("revoked"). Each owner declares its own, at start-up, before any
 * cache_clear_all; name must outlive the process. At most CACHE_KEPT_MAX.
 */
#define CACHE_KEPT_MAX 16
void cache_keep(const char *name);
/* Whether key (prefix included) is one that cache_keep declared. */
int cache_kept(const char *key);

/* Deletes every key under CACHE_PREFIX but those declared by cache_keep,
 * and empties every near-cache (this instance's and, by a message, the
 * others'). Blocks on Redis. */
void cache_clear_all(struct redis *r, struct arena *a);

/* What else the subscriber thread serves (set once, at start-up): the
 * revocation list (messages starting with '!') and the live boards (each
 * invalidated key). Every hook runs on the subscriber thread. */
struct cache_listener {
	int (*connected)(redisContext *c); /* after (re)subscribing: load state; 0 or -1 */
	void (*current)(int yes);          /* whether the subscription is live */
	void (*message)(const char *msg);
	void (*invalidated)(const char *key); /* each key another instance (or this one) invalidated; "*" for all */
};

/* Called for every key dropped from this process's memory (by a local
 * write or a message of another instance), and with "*" when everything
 * is; set once at start-up, before the subscriber starts. */
void cache_on_drop(void (*fn)(const char *key));

/*
 * Whether every invalidation published before now has been applied here:
 * the subscription is live and nothing is waiting in its socket or being
 * applied. A writer answers only after its invalidation has reached every
 * subscriber's socket (cache_invalidate), so a read that checks this first
 * and then answers from memory sees the writes that were answered before
 * it began, on any instance of this host. One poll(2), no blocking; safe on
 * any thread.
 */
int cache_invalidations_settled(void);

/* Starts / stops the invalidation subscriber thread; listener may be NULL. */
int cache_subscriber_start(const struct config *cfg, const struct cache_listener *listener);
void cache_subscriber_stop(void);

#endif
