#include "cache.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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

static void (*drop_hook)(const char *key);

void cache_on_drop(void (*fn)(const char *key))
{
	drop_hook = fn;
}

/* Drops a Redis key and all its variants from the near-cache (and from
 * whatever else the process keeps in memory under that key). */
static void drop_local(const char *key)
{
	nearcache_drop_variants(key);
	if (drop_hook)
		drop_hook(key);
}

static void drop_all_local(void)
{
	nearcache_clear();
	if (drop_hook)
		drop_hook("*");
}

/* Marks each key with the WAL position its refill must read at (replicas.h),
 * for longer than any replica may lag and still be read. */
static const char unlink_publish_lua[] =
	"redis.call('UNLINK', unpack(KEYS))\n"
	"return redis.call('PUBLISH', ARGV[1], ARGV[2])\n";

static const char mark_lua[] =
	"for _, k in ipairs(KEYS) do redis.call('SET', k, ARGV[1], 'EX', 60) end\n"
	"return 0\n";

void cache_invalidate(struct redis *r, struct arena *a, const char *const *keys, size_t n, uint64_t lsn)
{
	if (!n)
		return;
	if (lsn) {
		const char **margv = arena_alloc(a, (n + 4) * sizeof(*margv));
		margv[0] = "EVAL";
		margv[1] = mark_lua;
		margv[2] = arena_printf(a, "%zu", n);
		for (size_t i = 0; i < n; i++)
			margv[3 + i] = cache_lsn_key(a, keys[i]);
		margv[3 + n] = arena_printf(a, "%llu", (unsigned long long)lsn);
		redis_commandv(r, a, (int)n + 4, margv, NULL);
	}
	/* One script deletes the keys and their fill leases (see http/cached.c)
	 * and publishes their names; then a PING. Redis writes a PUBLISH's
	 * reply and the message to subscribers in the same pass, in no promised
	 * order; the PING's reply comes after that pass, so once it is here
	 * every subscriber's socket holds the message, and an instance that
	 * checks its socket before answering from memory
	 * (cache_invalidations_settled) cannot miss it. */
	const char **argv = arena_alloc(a, (2 * n + 5) * sizeof(*argv));
	struct buf msg = BUF_INIT;
	argv[0] = "EVAL";
	argv[1] = unlink_publish_lua;
	argv[2] = arena_printf(a, "%zu", 2 * n);
	for (size_t i = 0; i < n; i++) {
		argv[3 + i] = arena_printf(a, "%s%s", cache_prefix(), keys[i]);
		argv[3 + n + i] = arena_printf(a, "%slease:%s", cache_prefix(), keys[i]);
		drop_local(argv[3 + i]);
		if (i)
			buf_addch(&msg, '\n');
		buf_adds(&msg, argv[3 + i]);
	}
	argv[3 + 2 * n] = channel;
	argv[4 + 2 * n] = msg.ptr;
	if (redis_commandv(r, a, (int)(2 * n) + 5, argv, NULL))
		redis_command(r, a, "PING");
	buf_release(&msg);
}

const char *cache_lsn_key(struct arena *a, const char *key)
{
	return arena_printf(a, "%slsn:%s", cache_prefix(), key);
}

static const char *kept[CACHE_KEPT_MAX];
static int nkept;

void cache_keep(const char *name)
{
	for (int i = 0; i < nkept; i++)
		if (!strcmp(kept[i], name))
			return;
	if (nkept == CACHE_KEPT_MAX) {
		log_msg(LOG_ERROR, "cache_keep: more than %d names", CACHE_KEPT_MAX);
		abort();
	}
	kept[nkept++] = name;
}

int cache_kept(const char *key)
{
	size_t plen = strlen(cache_prefix());
	if (strncmp(key, cache_prefix(), plen))
		return 0;
	key += plen;
	for (int i = 0; i < nkept; i++) {
		size_t n = strlen(kept[i]);
		if (n && kept[i][n - 1] == ':' ? !strncmp(key, kept[i], n) : !strcmp(key, kept[i]))
			return 1;
	}
	return 0;
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
			if (!cache_kept(k))
				redis_command(r, a, "UNLINK %s", k);
		}
	} while (strcmp(cursor, "0"));
	drop_all_local();
	redis_command(r, a, "PUBLISH %s *", channel);
}

/* Handles one invalidation message: keys separated by newlines, or "*". */
static const struct cache_listener *listener;

static void apply_invalidation(const char *msg)
{
	if (!strcmp(msg, "*")) {
		drop_all_local();
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

/* What an I/O thread needs to know whether every invalidation that reached
 * this process has been applied (cache_invalidations_settled). */
static struct {
	int fd;            /* the subscription's socket, -1 without one */
	int busy;          /* set before each read, cleared once all that was read is applied */
	int current;       /* subscribed, and everything dropped since the last gap */
	unsigned epoch;    /* bumped when a subscription ends */
	uint64_t heard_ms; /* when Redis last said anything on it (it is PINGed every HEARTBEAT_MS) */
} sub = { -1, 1, 0, 0, 0 };

/* A subscription that has not heard from Redis for SILENT_MS may be missing
 * messages that Redis, starved or stuck, has not sent yet. */
#define HEARTBEAT_MS 250
#define SILENT_MS 1000

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int cache_invalidations_settled(void)
{
	unsigned epoch = __atomic_load_n(&sub.epoch, __ATOMIC_SEQ_CST);
	int fd = __atomic_load_n(&sub.fd, __ATOMIC_SEQ_CST);
	if (fd < 0 || !__atomic_load_n(&sub.current, __ATOMIC_SEQ_CST))
		return 0;
	/* The socket first, then the flag: a message read after this poll was
	 * still in the socket when we looked, one read before it set busy
	 * before the read and clears it only once applied. */
	struct pollfd p = { fd, POLLIN, 0 };
	if (poll(&p, 1, 0) != 0)
		return 0;
	return !__atomic_load_n(&sub.busy, __ATOMIC_SEQ_CST) && __atomic_load_n(&sub.epoch, __ATOMIC_SEQ_CST) == epoch &&
	       __atomic_load_n(&sub.current, __ATOMIC_SEQ_CST) &&
	       mono_ms() - __atomic_load_n(&sub.heard_ms, __ATOMIC_RELAXED) < SILENT_MS;
}

static void handle(redisReply *rep)
{
	if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 && rep->element[2]->type == REDIS_REPLY_STRING) {
		const char *msg = rep->element[2]->str;
		if (msg[0] == '!') {
			if (listener)
				listener->message(msg);
		} else {
			apply_invalidation(msg);
		}
	}
}

/* Reads and applies messages until the connection fails or we stop. The
 * socket is polled here rather than read blocking, so that busy is set
 * before bytes leave the socket and cleared only when no complete or
 * partial message is left in hiredis's buffer. */
static void listen_on(redisContext *c)
{
	uint64_t pinged = mono_ms();
	__atomic_store_n(&sub.heard_ms, pinged, __ATOMIC_RELAXED);
	__atomic_store_n(&sub.fd, c->fd, __ATOMIC_SEQ_CST);
	__atomic_store_n(&sub.current, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		void *rep = NULL;
		int rc;
		while ((rc = redisGetReplyFromReader(c, &rep)) == REDIS_OK && rep) {
			handle(rep);
			freeReplyObject(rep);
			rep = NULL;
		}
		if (rc != REDIS_OK)
			break;
		if (c->reader->pos >= c->reader->len)
			__atomic_store_n(&sub.busy, 0, __ATOMIC_SEQ_CST);
		uint64_t now = mono_ms();
		if (now - pinged >= HEARTBEAT_MS) {
			int done = 0;
			pinged = now;
			if (redisAppendCommand(c, "PING") != REDIS_OK)
				break;
			while (!done)
				if (redisBufferWrite(c, &done) != REDIS_OK)
					goto out;
		}
		struct pollfd p = { c->fd, POLLIN, 0 };
		int n = poll(&p, 1, HEARTBEAT_MS);
		if (subscriber_stop)
			break;
		if (n == 0 || (n < 0 && errno == EINTR))
			continue;
		__atomic_store_n(&sub.busy, 1, __ATOMIC_SEQ_CST);
		if (n < 0 || redisBufferRead(c) != REDIS_OK)
			break;
		__atomic_store_n(&sub.heard_ms, mono_ms(), __ATOMIC_RELAXED);
	}
out:
	__atomic_store_n(&sub.current, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&sub.busy, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&sub.epoch, 1, __ATOMIC_SEQ_CST);
	__atomic_store_n(&sub.fd, -1, __ATOMIC_SEQ_CST);
}

/* Listens for invalidations from every instance. After any gap in the
 * subscription (Redis down) everything kept in memory is dropped, since
 * messages may have been missed; messages starting with '!' go to the
 * listener. */
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
		drop_all_local();
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
		listen_on(c);
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
