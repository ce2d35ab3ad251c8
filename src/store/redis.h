#ifndef TRANSITD_REDIS_H
#define TRANSITD_REDIS_H
/*
 * One Redis connection owned by one thread, behind a process-wide circuit
 * breaker.
 *
 * The breaker opens after REDIS_BREAKER_FAILURES consecutive failures or
 * timeouts; while open, redis_command returns NULL at once so callers go to
 * PostgreSQL. After the cool-down one caller probes (half-open); success
 * closes it. Redis is never required for correctness: callers treat NULL as
 * "no cache".
 */
#include <hiredis/hiredis.h>

#include "../core/arena.h"
#include "../core/config.h"

#define REDIS_BREAKER_FAILURES 3
#define REDIS_BREAKER_COOLDOWN_MS 1000

struct redis {
	redisContext *ctx;
	const struct config *cfg;
};

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

void redis_init(struct redis *r, const struct config *cfg);
void redis_close(struct redis *r);

/*
 * Runs one command (hiredis format). Returns the reply, owned by arena a, or
 * NULL when Redis is down, slow, the breaker is open, or the reply is an
 * error. May block for at most REDIS_TIMEOUT_MS (twice on reconnect).
 */
redisReply *redis_command(struct redis *r, struct arena *a, const char *fmt, ...);
redisReply *redis_commandv(struct redis *r, struct arena *a, int argc, const char **argv, const size_t *lens);

/* Connects a fresh context (for subscribers and health checks); NULL on failure. */
redisContext *redis_connect_raw(const struct config *cfg, int timeout_ms);

enum breaker_state redis_breaker_state(void);
/* Failures counted since start, for metrics. */
unsigned long redis_failures_total(void);

#endif
