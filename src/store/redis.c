#include "redis.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "../core/log.h"
#include "../core/banned.h"

static struct {
	int failures;           /* consecutive */
	uint64_t first_ms;      /* when the first of them came */
	uint64_t open_until_ms; /* 0 = closed */
	int probing;            /* a half-open probe is under way */
	unsigned long total_failures, opened, hedged;
	int threshold, window_ms;
} breaker = { .threshold = REDIS_BREAKER_FAILURES, .window_ms = 1000 };

void redis_breaker_configure(int failures, int window_ms)
{
	breaker.threshold = failures;
	breaker.window_ms = window_ms;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

enum breaker_state redis_breaker_state(void)
{
	uint64_t until = __atomic_load_n(&breaker.open_until_ms, __ATOMIC_RELAXED);
	if (!until)
		return BREAKER_CLOSED;
	return mono_ms() < until ? BREAKER_OPEN : BREAKER_HALF_OPEN;
}

unsigned long redis_failures_total(void)
{
	return __atomic_load_n(&breaker.total_failures, __ATOMIC_RELAXED);
}

unsigned long redis_breaker_opened_total(void)
{
	return __atomic_load_n(&breaker.opened, __ATOMIC_RELAXED);
}

unsigned long redis_hedged_total(void)
{
	return __atomic_load_n(&breaker.hedged, __ATOMIC_RELAXED);
}

/* May this call go to Redis? Sets *probe when it is the half-open probe. */
static int breaker_allow(int *probe)
{
	*probe = 0;
	switch (redis_breaker_state()) {
	case BREAKER_CLOSED:
		return 1;
	case BREAKER_OPEN:
		return 0;
	case BREAKER_HALF_OPEN:
		if (__atomic_exchange_n(&breaker.probing, 1, __ATOMIC_ACQ_REL))
			return 0;
		*probe = 1;
		return 1;
	}
	return 0;
}

/*
 * The breaker opens when Redis has failed for a while, not on a burst: the
 * failures must be breaker.threshold in a row *and* span window_ms. When
 * the machine starves Redis of CPU for a moment, every call waiting on it
 * times out at once; counted alone, those few timeouts opened the breaker
 * for a second, and every cached read then went to PostgreSQL (and nothing
 * could refill the near-cache) after Redis was long back. A dead Redis
 * keeps failing, so it opens the breaker one window later than before.
 */
static void breaker_record(int ok, int probe)
{
	if (ok) {
		if (__atomic_load_n(&breaker.failures, __ATOMIC_RELAXED))
			__atomic_store_n(&breaker.failures, 0, __ATOMIC_RELAXED);
		if (__atomic_load_n(&breaker.open_until_ms, __ATOMIC_RELAXED)) {
			__atomic_store_n(&breaker.open_until_ms, 0, __ATOMIC_RELEASE);
			log_msg(LOG_WARN, "redis circuit breaker closed");
		}
	} else {
		__atomic_add_fetch(&breaker.total_failures, 1, __ATOMIC_RELAXED);
		uint64_t now = mono_ms();
		int n = __atomic_add_fetch(&breaker.failures, 1, __ATOMIC_RELAXED);
		if (n == 1)
			__atomic_store_n(&breaker.first_ms, now, __ATOMIC_RELAXED);
		uint64_t first = __atomic_load_n(&breaker.first_ms, __ATOMIC_RELAXED);
		if ((n >= breaker.threshold && now - first >= (uint64_t)breaker.window_ms) || probe) {
			uint64_t was = __atomic_exchange_n(&breaker.open_until_ms,
							   now + REDIS_BREAKER_COOLDOWN_MS, __ATOMIC_RELEASE);
			if (!was) {
				__atomic_add_fetch(&breaker.opened, 1, __ATOMIC_RELAXED);
				log_msg(LOG_WARN, "redis circuit breaker opened after %d failures in %llu ms", n,
					(unsigned long long)(now - first));
			}
		}
	}
	if (probe)
		__atomic_store_n(&breaker.probing, 0, __ATOMIC_RELEASE);
}

void redis_init(struct redis *r, const struct config *cfg)
{
	r->ctx = NULL;
	r->cfg = cfg;
	r->owed = 0;
}

void redis_close(struct redis *r)
{
	if (r->ctx)
		redisFree(r->ctx);
	r->ctx = NULL;
	r->owed = 0;
}

redisContext *redis_connect_raw(const struct config *cfg, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	redisContext *c = redisConnectWithTimeout(cfg->redis_host, cfg->redis_port, tv);
	if (!c || c->err) {
		if (c)
			redisFree(c);
		return NULL;
	}
	redisSetTimeout(c, tv);
	redisReply *rep = NULL;
	if (cfg->redis_password[0]) {
		rep = redisCommand(c, "AUTH %s", cfg->redis_password);
		if (!rep || rep->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(rep);
	}
	if (cfg->redis_db) {
		rep = redisCommand(c, "SELECT %d", cfg->redis_db);
		if (!rep || rep->type == REDIS_REPLY_ERROR)
			goto fail;
		freeReplyObject(rep);
	}
	return c;
fail:
	if (rep)
		freeReplyObject(rep);
	redisFree(c);
	return NULL;
}

static void free_reply(void *p)
{
	freeReplyObject(p);
}

/* Shared tail of both command forms: breaker bookkeeping, arena ownership. */
static redisReply *finish(struct redis *r, struct arena *a, redisReply *rep, int probe)
{
	if (!rep) {
		/* Timeout or connection loss: the context is unusable now. */
		redis_close(r);
		breaker_record(0, probe);
		return NULL;
	}
	breaker_record(1, probe);
	arena_defer(a, free_reply, rep);
	return rep->type == REDIS_REPLY_ERROR ? NULL : rep;
}

/* Reads and drops the replies owed to abandoned commands, without waiting;
 * closes the connection when they are not all here. */
static void settle_owed(struct redis *r)
{
	while (r->owed) {
		void *rep = NULL;
		if (redisGetReplyFromReader(r->ctx, &rep) != REDIS_OK)
			break;
		if (rep) {
			freeReplyObject(rep);
			r->owed--;
			continue;
		}
		struct pollfd p = { r->ctx->fd, POLLIN, 0 };
		if (poll(&p, 1, 0) != 1 || redisBufferRead(r->ctx) != REDIS_OK)
			break;
	}
	if (r->owed)
		redis_close(r);
}

static int ensure(struct redis *r, int *probe)
{
	if (!breaker_allow(probe))
		return -1;
	/* Replies of commands a hedged call stopped waiting for come first:
	 * read them if they are here; a connection still waiting on Redis is
	 * dropped (the next one is not stuck behind them). */
	if (r->ctx && r->owed)
		settle_owed(r);
	/* An idle connection has nothing to read unless Redis closed it (a
	 * restart): replace it now rather than fail the next command. */
	if (r->ctx && !r->owed) {
		struct pollfd p = { r->ctx->fd, POLLIN, 0 };
		if (poll(&p, 1, 0) == 1)
			redis_close(r);
	}
	if (!r->ctx)
		r->ctx = redis_connect_raw(r->cfg, r->cfg->redis_timeout_ms);
	if (!r->ctx) {
		breaker_record(0, *probe);
		return -1;
	}
	return 0;
}

redisReply *redis_command(struct redis *r, struct arena *a, const char *fmt, ...)
{
	int probe;
	if (ensure(r, &probe))
		return NULL;
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(r->ctx, fmt, ap);
	va_end(ap);
	return finish(r, a, rep, probe);
}

redisReply *redis_commandv(struct redis *r, struct arena *a, int argc, const char **argv, const size_t *lens)
{
	int probe;
	if (ensure(r, &probe))
		return NULL;
	redisReply *rep = redisCommandArgv(r->ctx, argc, argv, lens);
	return finish(r, a, rep, probe);
}

redisReply *redis_command_within(struct redis *r, struct arena *a, int wait_ms, int *slow, const char *fmt, ...)
{
	int probe;
	*slow = 0;
	if (ensure(r, &probe))
		return NULL;
	va_list ap;
	va_start(ap, fmt);
	int rc = redisvAppendCommand(r->ctx, fmt, ap);
	va_end(ap);
	int done = 0;
	while (rc == REDIS_OK && !done)
		rc = redisBufferWrite(r->ctx, &done);
	if (rc != REDIS_OK)
		return finish(r, a, NULL, probe);
	uint64_t deadline = mono_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : r->cfg->redis_timeout_ms);
	for (;;) {
		void *rep = NULL;
		if (redisGetReplyFromReader(r->ctx, &rep) != REDIS_OK)
			return finish(r, a, NULL, probe);
		if (rep)
			return finish(r, a, rep, probe);
		uint64_t now = mono_ms();
		int left = now < deadline ? (int)(deadline - now) : 0;
		struct pollfd p = { r->ctx->fd, POLLIN, 0 };
		int n = left ? poll(&p, 1, left) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			/* Slow, not failed: the reply is owed and read (or the
			 * connection dropped) before this connection's next command. */
			r->owed++;
			*slow = 1;
			__atomic_add_fetch(&breaker.hedged, 1, __ATOMIC_RELAXED);
			if (probe)
				__atomic_store_n(&breaker.probing, 0, __ATOMIC_RELEASE);
			return NULL;
		}
		if (n < 0 || redisBufferRead(r->ctx) != REDIS_OK)
			return finish(r, a, NULL, probe);
	}
}
