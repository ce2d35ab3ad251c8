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

/* Variant parts are escaped so that no value can forge a separator. */
static void add_part(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == ':' || *s == '%' || *s == '#' || (unsigned char)*s < 0x21)
			buf_addf(b, "%%%02X", (unsigned char)*s);
		else
			buf_addch(b, *s);
	}
}

const char *cache_key(struct arena *a, const struct cache_family *f, const int64_t *ids, int nids)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, cache_prefix());
	int used = 0;
	for (const char *p = f->key; *p; p++) {
		if (p[0] == '{' && p[1] == '}') {
			buf_add_i64(&b, used < nids ? ids[used] : 0);
			used++;
			p++;
		} else {
			buf_addch(&b, *p);
		}
	}
	const char *key = arena_strndup(a, b.ptr, b.len);
	buf_release(&b);
	return key;
}

const char *cache_field(struct arena *a, const char *const *values, int nvalues)
{
	struct buf b = BUF_INIT;
	for (int i = 0; i < nvalues; i++) {
		if (i)
			buf_addch(&b, ':');
		add_part(&b, values[i]);
	}
	const char *field = b.len <= CACHE_KEY_MAX ? arena_strndup(a, b.ptr, b.len) : NULL;
	buf_release(&b);
	return field;
}

void cache_count(struct cache_family *f, const char *x_cache)
{
	if (!f || !x_cache)
		return;
	unsigned long *c = !strcmp(x_cache, "HIT") ? &f->hits : !strcmp(x_cache, "MISS") ? &f->misses : &f->bypasses;
	__atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
}

/* Drops a Redis key and all its variants from the near-cache. */
static void drop_local(const char *key)
{
	nearcache_drop_variants(key);
}

/* Marks each key with the WAL position its refill must read at (replicas.h),
 * for longer than any replica may lag and still be read. */
static const char mark_lua[] =
	"for _, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1], 'EX', 60) end\n"
	"return 0\n";

void cache_invalidate(struct redis *r, struct arena *a, const char *const *keys, size_t n, uint64_t lsn)
{
	if (!n)
		return;
	if (lsn) {
		const char **margv = arena_alloc(a, (n + 4) * sizeof(*margv));
		size_t *mlens = arena_alloc(a, (n + 4) * sizeof(*mlens));
		margv[0] = "EVAL";
		margv[1] = mark_lua;
		margv[2] = arena_printf(a, "%zu", n);
		for (size_t i = 0; i < n; i++)
			margv[3 + i] = cache_lsn_key(a, keys[i]);
		margv[3 + n] = arena_printf(a, "%llu", (unsigned long long)lsn);
		for (size_t i = 0; i < n + 4; i++)
			mlens[i] = strlen(margv[i]);
		redis_commandv(r, a, (int)n + 4, margv, mlens);
	}
	/* One UNLINK for all keys and their fill leases (see http/cached.c), one
	 * message naming them all: two round trips. */
	const char **argv = arena_alloc(a, (2 * n + 1) * sizeof(*argv));
	size_t *lens = arena_alloc(a, (2 * n + 1) * sizeof(*lens));
	struct buf msg = BUF_INIT;
	argv[0] = "UNLINK";
	lens[0] = 6;
	for (size_t i = 0; i < n; i++) {
		argv[i + 1] = arena_printf(a, "%s%s", cache_prefix(), keys[i]);
		lens[i + 1] = strlen(argv[i + 1]);
		argv[n + i + 1] = arena_printf(a, "%slease:%s", cache_prefix(), keys[i]);
		lens[n + i + 1] = strlen(argv[n + i + 1]);
		drop_local(argv[i + 1]);
		if (i)
			buf_addch(&msg, '\n');
		buf_add(&msg, argv[i + 1], lens[i + 1]);
	}
	redis_commandv(r, a, (int)(2 * n) + 1, argv, lens);
	redis_command(r, a, "PUBLISH %s %b", channel, msg.ptr, msg.len);
	buf_release(&msg);
}

const char *cache_lsn_key(struct arena *a, const char *key)
{
	return arena_printf(a, "%slsn:%s", cache_prefix(), key);
}

void cache_clear_all(struct redis *r, struct arena *a)
{
	const char *pattern = arena_printf(a, "%s*", cache_prefix());
	const char *cursor = "0";
	do {
		redisReply *rep = redis_command(r, a, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
		if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2)
			break;
		cursor = arena_strdup(a, rep->element[0]->str);
		redisReply *list = rep->element[1];
		for (size_t j = 0; j < list->elements; j++) {
			const char *k = list->element[j]->str;
			/* Sessions, revocations and rate counters are not cache. */
			if (strstr(k, ":rt:") || strstr(k, ":famrevoked:") || strstr(k, ":rl:") || strstr(k, ":lf:") ||
			    strstr(k, ":lg:") ||
			    !strcmp(k + strlen(cache_prefix()), "revoked"))
				continue;
			redis_command(r, a, "UNLINK %s", k);
		}
	} while (strcmp(cursor, "0"));
	nearcache_clear();
	redis_command(r, a, "PUBLISH %s *", channel);
}

/* Handles one invalidation message: keys separated by newlines, or "*". */
static const struct cache_listener *listener;

static void apply_invalidation(const char *msg)
{
	if (!strcmp(msg, "*")) {
		nearcache_clear();
		if (listener && listener->invalidated)
			listener->invalidated("*");
		return;
	}
	char key[CACHE_KEY_MAX + 80];
	while (*msg) {
		size_t n = strcspn(msg, "\n");
		if (n < sizeof(key)) {
			memcpy(key, msg, n);
			key[n] = '\0';
			drop_local(key);
			if (listener && listener->invalidated)
				listener->invalidated(key);
		}
		msg += n + (msg[n] == '\n');
	}
}

static pthread_t subscriber;
static volatile int subscriber_stop;
static int subscriber_running;

/* Listens for invalidations from every instance. After any gap in the
 * subscription (Redis down) the near-cache is cleared, since messages may
 * have been missed; messages starting with '!' go to the listener. */
static void *subscriber_main(void *arg)
{
	(void)arg;
	while (!subscriber_stop) {
		redisContext *c = redis_connect_raw(cfg, 1000);
		redisReply *rep = c ? redisCommand(c, "SUBSCRIBE %s", channel) : NULL;
		if (!rep) {
			if (c)
				redisFree(c);
			for (int i = 0; i < 5 && !subscriber_stop; i++)
				usleep(100 * 1000);
			continue;
		}
		freeReplyObject(rep);
		nearcache_clear();
		/* Subscribed first, loaded second: nothing published in between is lost. */
		redisContext *loader = listener ? redis_connect_raw(cfg, 1000) : NULL;
		int loaded = listener && loader && listener->connected(loader) == 0;
		if (loader)
			redisFree(loader);
		if (listener && !loaded) {
			redisFree(c);
			continue;
		}
		if (listener)
			listener->current(1);
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
			    rep->element[2]->type == REDIS_REPLY_STRING) {
				const char *msg = rep->element[2]->str;
				if (msg[0] == '!') {
					if (listener)
						listener->message(msg);
				} else {
					apply_invalidation(msg);
				}
			}
			freeReplyObject(rep);
		}
		if (listener)
			listener->current(0);
		redisFree(c);
	}
	return NULL;
}

int cache_subscriber_start(const struct config *c, const struct cache_listener *l)
{
	cfg = c;
	listener = l;
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
