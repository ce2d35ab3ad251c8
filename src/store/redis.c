#include "redis.h"

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
	uint64_t open_until_ms; /* 0 = closed */
	int probing;            /* a half-open probe is under way */
	unsigned long total_failures;
} breaker;

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
		int n = __atomic_add_fetch(&breaker.failures, 1, __ATOMIC_RELAXED);
		if (n >= REDIS_BREAKER_FAILURES || probe) {
			uint64_t was = __atomic_exchange_n(&breaker.open_until_ms,
							   mono_ms() + REDIS_BREAKER_COOLDOWN_MS, __ATOMIC_RELEASE);
			if (!was)
				log_msg(LOG_WARN, "redis circuit breaker opened after %d failures", n);
		}
	}
	if (probe)
		__atomic_store_n(&breaker.probing, 0, __ATOMIC_RELEASE);
}

void redis_init(struct redis *r, const struct config *cfg)
{
	r->ctx = NULL;
	r->cfg = cfg;
}

void redis_close(struct redis *r)
{
	if (r->ctx)
		redisFree(r->ctx);
	r->ctx = NULL;
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

static int ensure(struct redis *r, int *probe)
{
	if (!breaker_allow(probe))
		return -1;
	/* An idle connection has nothing to read unless Redis closed it (a
	 * restart): replace it now rather than fail the next command. */
	if (r->ctx) {
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
