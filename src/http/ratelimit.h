#ifndef TRANSITD_RATELIMIT_H
#define TRANSITD_RATELIMIT_H
/*
 * Rate limits shared by every instance: fixed one-minute windows counted in
 * Redis (INCR, and EXPIRE on the first hit of a window). A fixed window is
 * one round trip and one key per client and window; its worst case, twice
 * the budget across a window edge, is acceptable for these budgets. When
 * Redis is unreachable the limiter lets requests through (fail open) unless
 * RATE_LIMIT_FAIL_CLOSED=1.
 */
#include "http.h"
#include "../store/redis.h"

#define RATE_WINDOW_S 60

/* Counts one hit of subject against policy (name, limit). 0: allowed (the
 * RateLimit headers are set); -1: refused, req answered 429 (or 503). */
int ratelimit_check(struct request *req, struct redis *r, const char *policy, const char *subject, int limit);

/* At start-up: whether to refuse (503) when Redis cannot count; declares
 * the counters' keys ("rl:<policy>:<subject>:<window>") as not cache
 * (cache_keep). */
void ratelimit_configure(int fail_closed);

#endif
