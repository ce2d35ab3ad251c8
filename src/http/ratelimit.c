#include "ratelimit.h"

#include <stdio.h>
#include <time.h>

#include "../store/cache.h"
#include "../core/banned.h"

static int fail_closed;

void ratelimit_configure(int closed)
{
	fail_closed = closed;
	cache_keep("rl:");
}

int ratelimit_check(struct request *req, struct redis *r, const char *policy, const char *subject, int limit)
{
	struct api_error e;
	time_t now = time(NULL);
	long window = (long)(now / RATE_WINDOW_S);
	int reset = (int)(RATE_WINDOW_S - now % RATE_WINDOW_S);
	const char *key = arena_printf(&req->arena, "%srl:%s:%s:%ld", cache_prefix(), policy, subject, window);
	/* Failing open, a starved Redis may hold a request no longer than a
	 * cache read would wait for it (REDIS_HEDGE_MS). */
	int slow, hedge = r->cfg && !fail_closed ? r->cfg->redis_hedge_ms : 0;
	redisReply *rep = hedge ? redis_command_within(r, &req->arena, hedge, &slow, "INCR %s", key)
				: redis_command(r, &req->arena, "INCR %s", key);
	if (!rep || rep->type != REDIS_REPLY_INTEGER) {
		if (!fail_closed)
			return 0;
		api_fail(&e, "unavailable", "rate limits cannot be checked right now");
		e.retry_after = 1;
		reply_problem(req, &e);
		return -1;
	}
	if (rep->integer == 1)
		redis_command(r, &req->arena, "EXPIRE %s %d", key, RATE_WINDOW_S + 1);
	long long remaining = limit - rep->integer;
	char policy_h[96], state_h[96];
	snprintf(policy_h, sizeof(policy_h), "\"%s\";q=%d;w=%d", policy, limit, RATE_WINDOW_S);
	snprintf(state_h, sizeof(state_h), "\"%s\";r=%lld;t=%d", policy, remaining > 0 ? remaining : 0, reset);
	if (remaining >= 0) {
		reply_header(req, "RateLimit-Policy", policy_h);
		reply_header(req, "RateLimit", state_h);
		return 0;
	}
	security_event(req, "rate-limited", policy);
	api_fail(&e, "rate-limited", "too many requests; retry in %d s", reset);
	e.retry_after = reset;
	reply_problem(req, &e);
	reply_header(req, "RateLimit-Policy", policy_h);
	reply_header(req, "RateLimit", state_h);
	return -1;
}
