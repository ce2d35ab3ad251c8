#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "banned.h"

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v && *v ? v : dflt;
}

/* Reads an integer variable within [lo, hi]; unset means dflt. */
static int env_int(const char *name, long dflt, long lo, long hi, long *out, char *err, size_t errlen)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		*out = dflt;
		return 0;
	}
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || *end || end == v || n < lo || n > hi) {
		snprintf(err, errlen, "%s must be an integer from %ld to %ld (got \"%.40s\")", name, lo, hi, v);
		return -1;
	}
	*out = n;
	return 0;
}

int config_parse_redis_url(struct config *c, const char *url)
{
	const char *p;
	if (!strncmp(url, "redis://", 8))
		p = url + 8;
	else
		return -1;
	c->redis_password[0] = '\0';
	c->redis_db = 0;
	c->redis_port = 6379;
	const char *at = strchr(p, '@');
	if (at) {
		const char *colon = memchr(p, ':', (size_t)(at - p));
		const char *pw = colon ? colon + 1 : p;
		size_t n = (size_t)(at - pw);
		if (n >= sizeof(c->redis_password))
			return -1;
		memcpy(c->redis_password, pw, n);
		c->redis_password[n] = '\0';
		p = at + 1;
	}
	size_t hl = strcspn(p, ":/");
	if (hl == 0 || hl >= sizeof(c->redis_host))
		return -1;
	memcpy(c->redis_host, p, hl);
	c->redis_host[hl] = '\0';
	p += hl;
	if (*p == ':') {
		char *end;
		long port = strtol(p + 1, &end, 10);
		if (end == p + 1 || port < 1 || port > 65535)
			return -1;
		c->redis_port = (int)port;
		p = end;
	}
	if (*p == '/' && p[1]) {
		char *end;
		long db = strtol(p + 1, &end, 10);
		if (*end || db < 0 || db > 15)
			return -1;
		c->redis_db = (int)db;
	} else if (*p && strcmp(p, "/")) {
		return -1;
	}
	return 0;
}

int config_origin_allowed(const struct config *c, const char *origin)
{
	if (!origin || !*c->cors_origins)
		return 0;
	size_t olen = strlen(origin);
	const char *p = c->cors_origins;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t n = strcspn(p, ", ");
		if (n == 0)
			break;
		if (n == 1 && *p == '*')
			return 1;
		if (n == olen && !strncasecmp(p, origin, n))
			return 1;
		p += n;
	}
	return 0;
}

int config_load(struct config *c, char *err, size_t errlen)
{
	long v;
	memset(c, 0, sizeof(*c));

	if (env_int("PORT", 8000, 1, 65535, &v, err, errlen))
		return -1;
	c->port = (int)v;
	const char *bind = env_or("BIND", "127.0.0.1");
	if (strlen(bind) >= sizeof(c->bind)) {
		snprintf(err, errlen, "BIND is too long");
		return -1;
	}
	snprintf(c->bind, sizeof(c->bind), "%s", bind);

	c->database_url = env_or("DATABASE_URL", "");
	if (*c->database_url && strncmp(c->database_url, "postgres://", 11) &&
	    strncmp(c->database_url, "postgresql://", 13)) {
		snprintf(err, errlen, "DATABASE_URL must start with postgresql:// or postgres://");
		return -1;
	}
	c->replica_urls = env_or("DATABASE_REPLICA_URLS", "");
	if (env_int("REPLICA_MAX_LAG_MS", 1000, 0, 3600000, &v, err, errlen))
		return -1;
	c->replica_max_lag_ms = (int)v;
	c->redis_url = env_or("REDIS_URL", "redis://127.0.0.1:6379");
	if (config_parse_redis_url(c, c->redis_url)) {
		snprintf(err, errlen, "REDIS_URL must look like redis://[:password@]host[:port][/db]");
		return -1;
	}
	c->amqp_url = env_or("AMQP_URL", "");
	if (*c->amqp_url && strncmp(c->amqp_url, "amqp://", 7)) {
		snprintf(err, errlen, "AMQP_URL must start with amqp://");
		return -1;
	}
	c->amqp_queue = env_or("AMQP_QUEUE", "transitd.commands");
	if (strlen(c->amqp_queue) > 200) {
		snprintf(err, errlen, "AMQP_QUEUE must be at most 200 characters");
		return -1;
	}
	if (env_int("AMQP_DELIVERY_LIMIT", 5, 1, 1000, &v, err, errlen))
		return -1;
	c->amqp_delivery_limit = (int)v;
	if (env_int("AMQP_CONFIRM_TIMEOUT_MS", 2000, 10, 60000, &v, err, errlen))
		return -1;
	c->amqp_confirm_timeout_ms = (int)v;
	if (env_int("ASYNC_CONSUMERS", 4, 0, 256, &v, err, errlen))
		return -1;
	c->async_consumers = (int)v;
	const char *fallback = env_or("ASYNC_FALLBACK", "refuse");
	if (strcmp(fallback, "refuse") && strcmp(fallback, "sync")) {
		snprintf(err, errlen, "ASYNC_FALLBACK must be refuse or sync (got \"%.20s\")", fallback);
		return -1;
	}
	c->async_fallback_sync = !strcmp(fallback, "sync");
	c->jwt_secret = env_or("JWT_SECRET", "");

	const char *lvl = env_or("LOG_LEVEL", "info");
	static const char *const levels[] = { "debug", "info", "warn", "error" };
	c->log_level = (enum log_level)-1;
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(lvl, levels[i]))
			c->log_level = (enum log_level)i;
	if ((int)c->log_level < 0) {
		snprintf(err, errlen, "LOG_LEVEL must be one of debug, info, warn, error (got \"%.20s\")", lvl);
		return -1;
	}

	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	if (cores < 1)
		cores = 1;
	if (env_int("IO_THREADS", cores, 1, 256, &v, err, errlen))
		return -1;
	c->io_threads = (int)v;
	/* DB_POOL_SIZE is the older name: each worker owns one connection. */
	long pool;
	if (env_int("DB_POOL_SIZE", 16, 1, 512, &pool, err, errlen))
		return -1;
	if (env_int("WORKERS", pool, 1, 512, &v, err, errlen))
		return -1;
	c->workers = (int)v;
	if (env_int("JOB_QUEUE_SIZE", 4096, 1, 1 << 20, &v, err, errlen))
		return -1;
	c->job_queue_size = (int)v;
	if (env_int("MAX_BODY_BYTES", 65536, 256, 16 << 20, &v, err, errlen))
		return -1;
	c->max_body_bytes = (size_t)v;
	c->cors_origins = env_or("CORS_ORIGINS", "");
	c->cache_prefix = env_or("CACHE_PREFIX", "transitd:");
	if (strlen(c->cache_prefix) > 64 || c->cache_prefix[0] == '!') {
		snprintf(err, errlen, "CACHE_PREFIX must be at most 64 characters and not start with '!'");
		return -1;
	}
	if (env_int("DB_CONNECT_TIMEOUT", 2, 1, 60, &v, err, errlen))
		return -1;
	c->db_connect_timeout_s = (int)v;
	if (env_int("DB_STATEMENT_TIMEOUT_MS", 5000, 10, 600000, &v, err, errlen))
		return -1;
	c->db_statement_timeout_ms = (int)v;
	if (env_int("REDIS_TIMEOUT_MS", 500, 1, 60000, &v, err, errlen))
		return -1;
	c->redis_timeout_ms = (int)v;
	if (env_int("REDIS_BREAKER_FAILURES", 3, 1, 1000, &v, err, errlen))
		return -1;
	c->redis_breaker_failures = (int)v;
	if (env_int("REDIS_BREAKER_WINDOW_MS", 1000, 0, 60000, &v, err, errlen))
		return -1;
	c->redis_breaker_window_ms = (int)v;
	if (env_int("REDIS_HEDGE_MS", 25, 0, 60000, &v, err, errlen))
		return -1;
	c->redis_hedge_ms = (int)v;
	if (env_int("SHUTDOWN_TIMEOUT", 30, 0, 3600, &v, err, errlen))
		return -1;
	c->shutdown_timeout_s = (int)v;
	if (env_int("SHUTDOWN_DELAY_MS", 0, 0, 600000, &v, err, errlen))
		return -1;
	c->shutdown_delay_ms = (int)v;
	if (env_int("NEAR_CACHE_TTL_MS", 1000, 0, 600000, &v, err, errlen))
		return -1;
	c->near_cache_ttl_ms = (int)v;
	c->web_dir = env_or("WEB_DIR", "web");
	if (env_int("ACCESS_TOKEN_TTL", 1800, 10, 86400, &v, err, errlen))
		return -1;
	c->access_token_ttl_s = (int)v;
	if (env_int("REFRESH_TOKEN_TTL", 604800, 60, 90 * 86400, &v, err, errlen))
		return -1;
	c->refresh_token_ttl_s = (int)v;
	if (env_int("AUTH_FAIL_OPEN", 0, 0, 1, &v, err, errlen))
		return -1;
	c->auth_fail_open = (int)v;
	if (env_int("RATE_LIMIT_PER_MINUTE", 6000, 0, 10000000, &v, err, errlen))
		return -1;
	c->rate_limit_per_minute = (int)v;
	if (env_int("LOGIN_RATE_PER_EMAIL", 10, 1, 100000, &v, err, errlen))
		return -1;
	c->login_rate_per_email = (int)v;
	if (env_int("LOGIN_RATE_PER_ADDRESS", 30, 1, 100000, &v, err, errlen))
		return -1;
	c->login_rate_per_address = (int)v;
	if (env_int("RATE_LIMIT_FAIL_CLOSED", 0, 0, 1, &v, err, errlen))
		return -1;
	c->rate_limit_fail_closed = (int)v;
	c->admin_email = env_or("ADMIN_EMAIL", "");
	c->admin_password = env_or("ADMIN_PASSWORD", "");
	if (env_int("HTTP_HEADER_TIMEOUT_MS", 10000, 100, 600000, &v, err, errlen))
		return -1;
	c->http_header_timeout_ms = (int)v;
	if (env_int("HTTP_BODY_TIMEOUT_MS", 10000, 100, 600000, &v, err, errlen))
		return -1;
	c->http_body_timeout_ms = (int)v;
	if (env_int("HTTP_IDLE_TIMEOUT_MS", 60000, 100, 3600000, &v, err, errlen))
		return -1;
	c->http_idle_timeout_ms = (int)v;
	if (env_int("HTTP_SEND_TIMEOUT_MS", 30000, 100, 600000, &v, err, errlen))
		return -1;
	c->http_send_timeout_ms = (int)v;
	if (env_int("MAX_CONNECTIONS", 16384, 1, 1 << 20, &v, err, errlen))
		return -1;
	c->max_connections = (int)v;
	if (env_int("MAX_CONNECTIONS_PER_CLIENT", 1024, 0, 1 << 20, &v, err, errlen))
		return -1;
	c->max_connections_per_client = (int)v;
	if (env_int("STREAMS_MAX", 1000, 0, 1 << 20, &v, err, errlen))
		return -1;
	c->streams_max = (int)v;
	if (env_int("STREAMS_PER_CLIENT", 4, 0, 1 << 20, &v, err, errlen))
		return -1;
	c->streams_per_client = (int)v;
	if (env_int("SIMULATE_INTERVAL_MS", 5000, 100, 600000, &v, err, errlen))
		return -1;
	c->simulate_interval_ms = (int)v;

	/* Payments. The webhook secret's strength is checked by `serve` (as
	 * JWT_SECRET's): migrate and seed do not need it. */
	c->payment_provider = env_or("PAYMENT_PROVIDER", "sandbox");
	if (strcmp(c->payment_provider, "sandbox") && strcmp(c->payment_provider, "external")) {
		snprintf(err, errlen, "PAYMENT_PROVIDER must be sandbox or external (got \"%.20s\")", c->payment_provider);
		return -1;
	}
	c->payment_webhook_secret = env_or("PAYMENT_WEBHOOK_SECRET", "");
	if (env_int("PAYMENT_TTL", 1800, 1, 7 * 86400, &v, err, errlen))
		return -1;
	c->payment_ttl_s = (int)v;
	c->payment_checkout_url = env_or("PAYMENT_CHECKOUT_URL", "");
	if (!strcmp(c->payment_provider, "external") &&
	    (strncmp(c->payment_checkout_url, "https://", 8) || !strstr(c->payment_checkout_url, "{payment_id}") ||
	     strlen(c->payment_checkout_url) > 512)) {
		snprintf(err, errlen, "PAYMENT_CHECKOUT_URL must be an https:// URL holding {payment_id} "
				      "(at most 512 characters) when PAYMENT_PROVIDER=external");
		return -1;
	}
	char why[160];
	c->ntrusted_proxies = cidr_parse_list(env_or("TRUSTED_PROXIES", ""), c->trusted_proxies, CIDR_MAX, why,
					      sizeof(why));
	if (c->ntrusted_proxies < 0) {
		snprintf(err, errlen, "TRUSTED_PROXIES must be comma-separated addresses or CIDR ranges: %s", why);
		return -1;
	}
	if (env_int("REGISTER_RATE_PER_ADDRESS", 10, 1, 100000, &v, err, errlen))
		return -1;
	c->register_rate_per_address = (int)v;
	if (env_int("LOGIN_SLOWDOWN_AFTER", 10, 1, 100000, &v, err, errlen))
		return -1;
	c->login_slowdown_after = (int)v;
	if (env_int("LOGIN_SLOWDOWN_MAX", 30, 1, 3600, &v, err, errlen))
		return -1;
	c->login_slowdown_max_s = (int)v;
	if (env_int("PASSWORD_HASHERS", 2, 1, 64, &v, err, errlen))
		return -1;
	c->password_hashers = (int)v;
	if (env_int("PASSWORD_QUEUE", 16, 0, 4096, &v, err, errlen))
		return -1;
	c->password_queue = (int)v;
	if (env_int("MAX_CARDS_PER_RIDER", 5, 1, 1000, &v, err, errlen))
		return -1;
	c->max_cards_per_rider = (int)v;
	return 0;
}
