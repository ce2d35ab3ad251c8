#ifndef TRANSITD_REDIS_H
#define TRANSITD_REDIS_H
/*
 * One Redis connection owned by one thread, behind a process-wide circuit
 * breaker.
 *
 * The breaker opens after REDIS_BREAKER_FAILURES consecutive failures or
 * timeouts spanning at least REDIS_BREAKER_WINDOW_MS (redis_breaker_configure);
 * while open, redis_command returns NULL at once so callers go to
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
	int owed; /* replies of commands redis_command_within stopped waiting for */
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
/* The same with argc arguments of lens[i] bytes each (binary-safe); with
 * lens NULL, each argument is a C string. */
redisReply *redis_commandv(struct redis *r, struct arena *a, int argc, const char **argv, const size_t *lens);

/*
 * A hedged command, for reads that have somewhere else to go: as
 * redis_command, but waits at most wait_ms for the reply. When it does not
 * come, returns NULL with *slow set: Redis is slow, not failed (the breaker
 * does not count it); the command may still run, and its reply is read and
 * dropped before the connection's next command (or the connection is
 * replaced if it is still not there).
 */
redisReply *redis_command_within(struct redis *r, struct arena *a, int wait_ms, int *slow, const char *fmt, ...);

/* The breaker's thresholds (REDIS_BREAKER_FAILURES, REDIS_BREAKER_WINDOW_MS). */
void redis_breaker_configure(int failures, int window_ms);
/* Times the breaker opened, and hedged calls that gave up waiting. */
unsigned long redis_breaker_opened_total(void);
unsigned long redis_hedged_total(void);

/* Connects a fresh context (for subscribers and health checks); NULL on failure. */
redisContext *redis_connect_raw(const struct config *cfg, int timeout_ms);

enum breaker_state redis_breaker_state(void);
/* Failures counted since start, for metrics. */
unsigned long redis_failures_total(void);

#endif
