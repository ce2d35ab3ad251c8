#include "cached.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../store/cache.h"
#include "../store/nearcache.h"
#include "../store/replicas.h"
#include "../core/xalloc.h"
#include "../core/banned.h"

static unsigned near_ms = 1000;

void cached_set_near_ttl(unsigned ms)
{
	near_ms = ms;
}

/* The near-cache TTL for a family: short, since the near-cache of another
 * instance learns of writes only through the invalidation channel. */
static unsigned near_ttl_ms(const struct cache_family *f)
{
	unsigned family_ms = (unsigned)f->ttl_s * 1000u;
	return f->near ? (near_ms < family_ms ? near_ms : family_ms) : 0;
}

/* The cached value, waiting for Redis at most REDIS_HEDGE_MS: a read has
 * PostgreSQL to go to, and a moment of a starved Redis should cost it that
 * much, not REDIS_TIMEOUT_MS (*slow: Redis did not answer in time). */
static redisReply *redis_get(struct request *req, struct worker *w, int *slow)
{
	int hedge = w->redis.cfg ? w->redis.cfg->redis_hedge_ms : 0;
	*slow = 0;
	if (req->cache_field) {
		if (hedge)
			return redis_command_within(&w->redis, &req->arena, hedge, slow, "HGET %s %s", req->cache_key,
						    req->cache_field);
		return redis_command(&w->redis, &req->arena, "HGET %s %s", req->cache_key, req->cache_field);
	}
	if (hedge)
		return redis_command_within(&w->redis, &req->arena, hedge, slow, "GET %s", req->cache_key);
	return redis_command(&w->redis, &req->arena, "GET %s", req->cache_key);
}

/*
 * Fills use leases, so that a read cannot put back a value a write has just
 * invalidated: before reading PostgreSQL a filler records a random token in
 * the key's lease hash; a writer's invalidation deletes the key and its
 * leases; the fill is written only if the token is still there. Whatever
 * the interleaving, a value read before a commit is never cached after the
 * invalidation that followed it.
 */
static const char fill_lua[] =
	"if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end\n"
	"redis.call('HDEL', KEYS[2], ARGV[1])\n"
	"if ARGV[5] == '1' then\n"
	"  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\n"
	"  redis.call('EXPIRE', KEYS[1], ARGV[4], 'NX')\n"
	"else\n"
	"  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])\n"
	"end\n"
	"return 1\n";

static const char *lease_key(struct request *req)
{
	return arena_printf(&req->arena, "%slease:%s", cache_prefix(), req->cache_key + strlen(cache_prefix()));
}

static const char *lease_field(const struct request *req)
{
	return req->cache_field ? req->cache_field : "_";
}

/* The lease, in one round trip, with the WAL position of the key's last
 * invalidation (0 when none is known: any replica in time may serve it). */
static const char lease_lua[] =
	"redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
	"redis.call('PEXPIRE', KEYS[1], 10000)\n"
	"return redis.call('GET', KEYS[2]) or '0'\n";

/* Takes a lease before reading PostgreSQL; NULL when Redis said no.
 * *lsn: the position the fill must read at. */
static const char *lease_take(struct request *req, struct worker *w, uint64_t *lsn)
{
	unsigned char raw[12];
	char *token = arena_alloc(&req->arena, 25);
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(token, 25, raw, sizeof(raw));
	const char *argv[] = { "EVAL", lease_lua, "2", lease_key(req),
			       cache_lsn_key(&req->arena, req->cache_key + strlen(cache_prefix())), lease_field(req),
			       token };
	redisReply *rep = redis_commandv(&w->redis, &req->arena, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
	if (!rep || rep->type != REDIS_REPLY_STRING)
		return NULL;
	*lsn = strtoull(rep->str, NULL, 10);
	return token;
}

/* A fill that failed gives its lease back at once, rather than leaving it
 * for the lease hash to expire; only its own (another filler may hold the
 * field since). */
static const char release_lua[] =
	"if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end\n"
	"return 0\n";

static void lease_release(struct request *req, struct worker *w, const char *token)
{
	const char *argv[] = { "EVAL", release_lua, "1", lease_key(req), lease_field(req), token };
	redis_commandv(&w->redis, &req->arena, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL);
}

/* 1 when the value was cached, 0 when a write invalidated the key meanwhile. */
static int redis_fill(struct request *req, struct worker *w, const char *token, const struct buf *val)
{
	const struct cache_family *f = req->route->cache;
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%d", f->ttl_s);
	const char *argv[] = { "EVAL", fill_lua, "2", req->cache_key, lease_key(req), lease_field(req), token,
			       val->ptr, ttl, req->cache_field ? "1" : "0" };
	size_t lens[sizeof(argv) / sizeof(argv[0])];
	for (size_t i = 0; i < sizeof(argv) / sizeof(argv[0]); i++)
		lens[i] = strlen(argv[i]);
	lens[7] = val->len;
	redisReply *rep = redis_commandv(&w->redis, &req->arena, (int)(sizeof(argv) / sizeof(argv[0])), argv, lens);
	return rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
}

/*
 * Single flight: while one worker fills a missing key, the others asking for
 * it wait for that result instead of running the same query. A flight is
 * shared by its leader and waiters and freed by the last one to leave.
 */
struct flight {
	struct flight *next;
	char *key;
	uint64_t gen; /* the leader's near-cache generation when it began */
	int done, refs, status;
	char *body;
	size_t len;
};

static pthread_mutex_t flights_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flights_done = PTHREAD_COND_INITIALIZER;
static struct flight *flights;

#define FLIGHT_WAIT_S 5

static void flight_unref(struct flight *f)
{
	if (--f->refs)
		return;
	free(f->key);
	free(f->body);
	free(f);
}

/* Joins the flight for key: returns 1 with the leader's answer copied into
 * req, or 0 when the caller is the leader (*out set), waited in vain, or
 * may not join (strict, below: *out NULL, the caller reads for itself).
 *
 * strict (reads that must show every write answered before they began): a
 * leader that began before such a write's invalidation was applied here
 * may have read the old value, so a caller joins only a flight that began
 * after every invalidation it must see: all of them applied now
 * (cache_invalidations_settled) and none since the leader began (the
 * near-cache generation of the key is still the leader's). */
static int flight_join(struct request *req, const char *key, uint64_t gen, int strict, struct flight **out)
{
	*out = NULL;
	pthread_mutex_lock(&flights_lock);
	struct flight *f = flights;
	while (f && strcmp(f->key, key))
		f = f->next;
	if (f && strict && (f->gen != gen || !cache_invalidations_settled())) {
		pthread_mutex_unlock(&flights_lock);
		return 0;
	}
	if (!f) {
		f = xcalloc(1, sizeof(*f));
		f->key = xstrdup(key);
		f->gen = gen;
		f->refs = 1;
		f->next = flights;
		flights = f;
		pthread_mutex_unlock(&flights_lock);
		*out = f;
		return 0;
	}
	f->refs++;
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += FLIGHT_WAIT_S;
	while (!f->done && pthread_cond_timedwait(&flights_done, &flights_lock, &deadline) == 0)
		;
	int shared = f->done && f->status == 200;
	if (shared)
		reply_json(req, 200, f->body, f->len);
	flight_unref(f);
	pthread_mutex_unlock(&flights_lock);
	return shared;
}

static void flight_land(struct flight *f, int status, const struct buf *body)
{
	pthread_mutex_lock(&flights_lock);
	struct flight **pp = &flights;
	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
	f->done = 1;
	f->status = status;
	if (status == 200) {
		f->body = xstrndup(body->ptr, body->len);
		f->len = body->len;
	}
	pthread_cond_broadcast(&flights_done);
	flight_unref(f);
	pthread_mutex_unlock(&flights_lock);
}

/* Runs fill into req's body. With a lease the position the fill needs is
 * known, so a replica that has replayed it may serve the fill; the primary
 * has the last word when the replica failed under us or has not seen what
 * the caller asks for (a 404 for a thing just created elsewhere). 0, or -1
 * with err. */
static int fill_from_db(struct request *req, struct worker *w, cache_fill fill, int leased, uint64_t lsn,
			struct api_error *err)
{
	w->read_on_replica = leased;
	w->read_lsn = lsn;
	int failed = fill(req, w, reply(req, 200), err);
	if (failed && w->read_used_replica) {
		if (err->status == 503)
			replicas_mark_down(w->replica_index);
		w->read_on_replica = 0;
		failed = fill(req, w, reply(req, 200), err);
	}
	w->read_on_replica = 0;
	return failed;
}

void reply_cached(struct request *req, struct worker *w, cache_fill fill)
{
	struct cache_family *f = req->route->cache;
	int redis_up = 0, slow = 0;
	struct api_error err;
	/* Before anything is read: a value read before an invalidation must not
	 * land in the near-cache after it (nearcache.h). */
	uint64_t gen = req->near_key ? nearcache_generation(req->near_key) : 0;

	if (req->cache_key) {
		redisReply *rep = redis_get(req, w, &slow);
		redis_up = rep != NULL;
		if (rep && rep->type == REDIS_REPLY_STRING) {
			reply_json(req, 200, rep->str, rep->len);
			req->res.x_cache = "HIT";
			if (req->near_key)
				nearcache_put_since(req->near_key, rep->str, rep->len, near_ttl_ms(f), gen);
			return;
		}
	}
	struct flight *flight = NULL;
	const char *flight_key = req->near_key ? req->near_key : req->cache_key;
	/* Reads that must show the caller's own writes (a card's, on any instance). */
	int strict = f->from_memory != NULL;
	if (flight_key && flight_join(req, flight_key, gen, strict, &flight)) {
		req->res.x_cache = redis_up ? "MISS" : "BYPASS";
		return;
	}
	/* The flight before this one may have landed between our Redis miss and
	 * our joining: its result is in the near-cache (for a strict read, only
	 * once every invalidation that reached us is applied to it). */
	const char *val;
	size_t len;
	if (flight && req->near_key && (!strict || cache_invalidations_settled()) &&
	    nearcache_get(req->near_key, &req->arena, &val, &len) == 0) {
		reply_json(req, 200, val, len);
		req->res.x_cache = "HIT";
		flight_land(flight, 200, &req->res.body);
		return;
	}
	uint64_t lsn = 0;
	const char *token = req->cache_key && redis_up ? lease_take(req, w, &lsn) : NULL;
	__atomic_add_fetch(&f->fills, 1, __ATOMIC_RELAXED);
	int failed = fill_from_db(req, w, fill, token != NULL, lsn, &err);
	const struct buf *out = &req->res.body;
	if (failed) {
		reply_problem(req, &err);
		if (token)
			lease_release(req, w, token);
	} else {
		req->res.x_cache = redis_up ? "MISS" : "BYPASS";
		/* Without Redis (no lease) no invalidation can reach this instance: keep
		 * nothing; but a Redis that is only slow still delivers them (the
		 * subscription is live and heard from): the near-cache may keep the
		 * value, which a later drop removes (the generation refuses it if
		 * the drop came first). */
		if (token && redis_fill(req, w, token, out) && req->near_key)
			nearcache_put_since(req->near_key, out->ptr, out->len, near_ttl_ms(f), gen);
		else if (slow && req->near_key && cache_invalidations_settled())
			nearcache_put_since(req->near_key, out->ptr, out->len, near_ttl_ms(f), gen);
	}
	/* Landed after the caches are written, so no later miss finds neither. */
	if (flight)
		flight_land(flight, req->res.status, &req->res.body);
}
