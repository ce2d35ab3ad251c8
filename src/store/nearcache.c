#include "nearcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/xalloc.h"
#include "../core/banned.h"

#define SHARDS 64
#define BUCKETS 256 /* per shard */

struct entry {
	struct entry *next;            /* bucket chain */
	struct entry *older, *newer;   /* insertion order, for eviction */
	uint64_t hash;
	uint64_t expires_ms;
	uint64_t ttl_ms;
	uint64_t refresh_ms;           /* when a reader last went to refresh it */
	size_t len;
	char *val;
	char key[];
};

struct shard {
	pthread_mutex_t lock;
	struct entry *buckets[BUCKETS];
	struct entry *oldest, *newest;
	size_t count;
	uint64_t drops; /* generation: drops (invalidations) that reached this shard */
};

static struct shard shards[SHARDS];
static size_t max_per_shard;
static int ready;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* Variants "K#field" live in the shard of their base key K, so dropping a
 * key with all its variants looks at one shard only. */
static struct shard *shard_of(const char *key)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *key && *key != '#'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return &shards[h % SHARDS];
}

void nearcache_init(size_t max_entries)
{
	max_per_shard = max_entries / SHARDS ? max_entries / SHARDS : 1;
	for (int i = 0; i < SHARDS; i++) {
		memset(&shards[i], 0, sizeof(shards[i]));
		pthread_mutex_init(&shards[i].lock, NULL);
	}
	ready = 1;
}

/* Unlinks e from its shard (lock held) and frees it. */
static void remove_entry(struct shard *s, struct entry *e)
{
	struct entry **pp = &s->buckets[(e->hash >> 8) % BUCKETS];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	if (e->older)
		e->older->newer = e->newer;
	else
		s->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		s->newest = e->older;
	s->count--;
	free(e->val);
	free(e);
}

static struct entry *find(struct shard *s, const char *key, uint64_t h)
{
	for (struct entry *e = s->buckets[(h >> 8) % BUCKETS]; e; e = e->next)
		if (e->hash == h && !strcmp(e->key, key))
			return e;
	return NULL;
}

static int get(const char *key, struct arena *a, const char **val, size_t *len, int stale_ok)
{
	if (!ready)
		return -1;
	uint64_t h = hash_key(key);
	struct shard *s = shard_of(key);
	int rc = -1;
	pthread_mutex_lock(&s->lock);
	struct entry *e = find(s, key, h);
	if (e) {
		uint64_t now = mono_ms();
		int use = e->expires_ms > now;
		if (!use && now < e->expires_ms + e->ttl_ms) {
			/* Expired within one more TTL: one reader in a while refreshes it,
			 * the others are served the value meanwhile. */
			if (stale_ok) {
				use = e->refresh_ms + NEARCACHE_REFRESH_WAIT_MS > now;
				if (!use)
					e->refresh_ms = now;
			}
		} else if (!use) {
			remove_entry(s, e);
			e = NULL;
		}
		if (use) {
			*val = arena_strndup(a, e->val, e->len);
			*len = e->len;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int nearcache_get(const char *key, struct arena *a, const char **val, size_t *len)
{
	return get(key, a, val, len, 0);
}

int nearcache_get_or_refresh(const char *key, struct arena *a, const char **val, size_t *len)
{
	return get(key, a, val, len, 1);
}

static void put(const char *key, const char *val, size_t len, uint64_t ttl_ms, int check, uint64_t since)
{
	if (!ready || !ttl_ms)
		return;
	uint64_t h = hash_key(key);
	struct shard *s = shard_of(key);
	size_t klen = strlen(key);
	struct entry *fresh = xmalloc(sizeof(*fresh) + klen + 1);
	memcpy(fresh->key, key, klen + 1);
	fresh->hash = h;
	fresh->val = xstrndup(val, len);
	fresh->len = len;
	fresh->expires_ms = mono_ms() + ttl_ms;
	fresh->ttl_ms = ttl_ms;
	fresh->refresh_ms = 0;
	pthread_mutex_lock(&s->lock);
	if (check && s->drops != since) {
		/* An invalidation came after the value was read: it may be older. */
		pthread_mutex_unlock(&s->lock);
		free(fresh->val);
		free(fresh);
		return;
	}
	struct entry *old = find(s, key, h);
	if (old)
		remove_entry(s, old);
	while (s->count >= max_per_shard && s->oldest)
		remove_entry(s, s->oldest);
	struct entry **bucket = &s->buckets[(h >> 8) % BUCKETS];
	fresh->next = *bucket;
	*bucket = fresh;
	fresh->newer = NULL;
	fresh->older = s->newest;
	if (s->newest)
		s->newest->newer = fresh;
	else
		s->oldest = fresh;
	s->newest = fresh;
	s->count++;
	pthread_mutex_unlock(&s->lock);
}

void nearcache_put(const char *key, const char *val, size_t len, uint64_t ttl_ms)
{
	put(key, val, len, ttl_ms, 0, 0);
}

uint64_t nearcache_generation(const char *key)
{
	if (!ready)
		return 0;
	struct shard *s = shard_of(key);
	pthread_mutex_lock(&s->lock);
	uint64_t g = s->drops;
	pthread_mutex_unlock(&s->lock);
	return g;
}

void nearcache_put_since(const char *key, const char *val, size_t len, uint64_t ttl_ms, uint64_t generation)
{
	put(key, val, len, ttl_ms, 1, generation);
}

void nearcache_drop_variants(const char *key)
{
	if (!ready)
		return;
	size_t n = strlen(key);
	struct shard *s = shard_of(key);
	pthread_mutex_lock(&s->lock);
	s->drops++;
	struct entry *e = s->oldest;
	while (e) {
		struct entry *next = e->newer;
		if (!strncmp(e->key, key, n) && (e->key[n] == '\0' || e->key[n] == '#'))
			remove_entry(s, e);
		e = next;
	}
	pthread_mutex_unlock(&s->lock);
}

void nearcache_drop_prefix(const char *prefix)
{
	if (!ready)
		return;
	size_t n = strlen(prefix);
	for (int i = 0; i < SHARDS; i++) {
		struct shard *s = &shards[i];
		pthread_mutex_lock(&s->lock);
		s->drops++;
		struct entry *e = s->oldest;
		while (e) {
			struct entry *next = e->newer;
			if (!strncmp(e->key, prefix, n))
				remove_entry(s, e);
			e = next;
		}
		pthread_mutex_unlock(&s->lock);
	}
}

void nearcache_clear(void)
{
	nearcache_drop_prefix("");
}

void nearcache_free(void)
{
	if (!ready)
		return;
	nearcache_clear();
	ready = 0;
	for (int i = 0; i < SHARDS; i++)
		pthread_mutex_destroy(&shards[i].lock);
}

size_t nearcache_count(void)
{
	size_t n = 0;
	if (!ready)
		return 0;
	for (int i = 0; i < SHARDS; i++) {
		pthread_mutex_lock(&shards[i].lock);
		n += shards[i].count;
		pthread_mutex_unlock(&shards[i].lock);
	}
	return n;
}
