#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "nearcache.h"
#include "../core/banned.h"

static const struct config *cfg;
static char channel[96];

void cache_configure(const struct config *c)
{
	cfg = c;
	snprintf(channel, sizeof(channel), "%sinvalidate", c->cache_prefix);
}

const char *cache_prefix(void)
{
	return cfg ? cfg->cache_prefix : "transitd:";
}

/* Key parts are escaped so that no value can forge a ':' separator. */
static void add_part(struct buf *b, const char *s)
{
	buf_addch(b, ':');
	for (; s && *s; s++) {
		if (*s == ':' || *s == '%' || *s == '*' || (unsigned char)*s < 0x21)
			buf_addf(b, "%%%02X", (unsigned char)*s);
		else
			buf_addch(b, *s);
	}
}

const char *cache_key(struct arena *a, const struct cache_family *f, const int64_t *ids, int nids,
		      const char *const *values, int nvalues)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, cache_prefix());
	buf_adds(&b, f->name);
	for (int i = 0; i < nids; i++) {
		buf_addch(&b, ':');
		buf_add_i64(&b, ids[i]);
	}
	for (int i = 0; i < nvalues; i++)
		add_part(&b, values[i]);
	const char *key = b.len <= CACHE_KEY_MAX ? arena_strndup(a, b.ptr, b.len) : NULL;
	buf_release(&b);
	return key;
}

void cache_count(struct cache_family *f, const char *x_cache)
{
	if (!f || !x_cache)
		return;
	unsigned long *c = !strcmp(x_cache, "HIT") ? &f->hits : !strcmp(x_cache, "MISS") ? &f->misses : &f->bypasses;
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

static void drop_local(const char *key)
{
	size_t n = strlen(key);
	if (n && key[n - 1] == '*') {
		char prefix[CACHE_KEY_MAX + 1];
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(n - 1), key);
		nearcache_drop_prefix(prefix);
	} else {
		nearcache_drop(key);
	}
}

void cache_invalidate(struct redis *r, struct arena *a, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *k = keys[i];
		size_t len = strlen(k);
		drop_local(k);
		if (len && k[len - 1] == '*') {
			/* Prefix invalidations are rare (admin writes): SCAN is fine. */
			const char *cursor = "0";
			do {
				redisReply *rep = redis_command(r, a, "SCAN %s MATCH %s COUNT 1000", cursor, k);
				if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
					break;
				cursor = arena_strdup(a, rep->element[0]->str);
				redisReply *list = rep->element[1];
				for (size_t j = 0; j < list->elements; j++)
					redis_command(r, a, "UNLINK %s", list->element[j]->str);
			} while (strcmp(cursor, "0"));
		} else {
			redis_command(r, a, "UNLINK %s", k);
		}
		redis_command(r, a, "PUBLISH %s %s", channel, k);
	}
}

static pthread_t subscriber;
static volatile int subscriber_stop;
static int subscriber_running;

/* Listens for invalidations from every instance. After any gap in the
 * subscription (Redis down) the near-cache is cleared, since messages may
 * have been missed. */
static void *subscriber_main(void *arg)
{
	(void)arg;
	while (!subscriber_stop) {
		redisContext *c = redis_connect_raw(cfg, 1000);
		if (!c) {
			for (int i = 0; i < 10 && !subscriber_stop; i++)
				usleep(100 * 1000);
			continue;
		}
		redisReply *rep = redisCommand(c, "SUBSCRIBE %s", channel);
		if (rep)
			freeReplyObject(rep);
		nearcache_clear();
		while (!subscriber_stop && rep) {
			rep = NULL;
			if (redisGetReply(c, (void **)&rep) != REDIS_OK) {
				/* A read timeout only means no message for a second. */
				if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK) &&
				    !subscriber_stop) {
					c->err = 0;
					c->errstr[0] = '\0';
					rep = (redisReply *)1;
					continue;
				}
				break;
			}
			if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
			    rep->element[2]->type == REDIS_REPLY_STRING)
				drop_local(rep->element[2]->str);
			freeReplyObject(rep);
		}
		redisFree(c);
	}
	return NULL;
}

int cache_subscriber_start(const struct config *c)
{
	cfg = c;
	subscriber_stop = 0;
	if (pthread_create(&subscriber, NULL, subscriber_main, NULL))
		return -1;
	subscriber_running = 1;
	return 0;
}

void cache_subscriber_stop(void)
{
	if (!subscriber_running)
		return;
	subscriber_stop = 1;
	pthread_join(subscriber, NULL);
	subscriber_running = 0;
}
