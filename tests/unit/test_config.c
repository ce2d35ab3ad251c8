/* Unit tests for src/core/config.{h,c}. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

/* Every name transitd has read: none may disappear from the table, or a
 * deployment setting it would be silently ignored. */
static const char *const known[] = {
	"PORT", "BIND", "DATABASE_URL", "DATABASE_REPLICA_URLS", "REPLICA_MAX_LAG_MS", "REDIS_URL", "AMQP_URL",
	"AMQP_QUEUE", "AMQP_DELIVERY_LIMIT", "AMQP_CONFIRM_TIMEOUT_MS", "ASYNC_CONSUMERS", "ASYNC_FALLBACK",
	"JWT_SECRET", "PAYMENT_PROVIDER", "PAYMENT_WEBHOOK_SECRET", "PAYMENT_TTL", "PAYMENT_CHECKOUT_URL",
	"LOG_LEVEL", "IO_THREADS", "WORKERS", "DB_POOL_SIZE", "JOB_QUEUE_SIZE", "MAX_BODY_BYTES", "CORS_ORIGINS",
	"CACHE_PREFIX", "DB_CONNECT_TIMEOUT", "DB_STATEMENT_TIMEOUT_MS", "REDIS_TIMEOUT_MS",
	"REDIS_BREAKER_FAILURES", "REDIS_BREAKER_WINDOW_MS", "REDIS_HEDGE_MS", "ACCESS_TOKEN_TTL",
	"REFRESH_TOKEN_TTL", "AUTH_FAIL_OPEN", "RATE_LIMIT_PER_MINUTE", "LOGIN_RATE_PER_EMAIL",
	"LOGIN_RATE_PER_ADDRESS", "LOGIN_SLOWDOWN_AFTER", "LOGIN_SLOWDOWN_MAX", "REGISTER_RATE_PER_ADDRESS",
	"PASSWORD_HASHERS", "PASSWORD_QUEUE", "TRUSTED_PROXIES", "MAX_CARDS_PER_RIDER", "RATE_LIMIT_FAIL_CLOSED",
	"ADMIN_EMAIL", "ADMIN_PASSWORD", "NEAR_CACHE_TTL_MS", "SHUTDOWN_TIMEOUT", "SHUTDOWN_DELAY_MS", "WEB_DIR",
	"SIMULATE_INTERVAL_MS", "HTTP_HEADER_TIMEOUT_MS", "HTTP_BODY_TIMEOUT_MS", "HTTP_IDLE_TIMEOUT_MS",
	"HTTP_SEND_TIMEOUT_MS", "MAX_CONNECTIONS", "STREAMS_MAX", "STREAMS_PER_CLIENT",
	"MAX_CONNECTIONS_PER_CLIENT",
};

/* Unsets every variable of the table (and the known names), so the
 * environment the tests run in never leaks in. */
static int clean_env(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_settings_count; i++) {
		unsetenv(config_settings[i].name);
		if (config_settings[i].alias)
			unsetenv(config_settings[i].alias);
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		unsetenv(known[i]);
	return 0;
}

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	char err[256] = "untouched";
	memset(&c, 0x5a, sizeof(c));
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.port, 8000);
	assert_string_equal(c.bind, "127.0.0.1");
	assert_string_equal(c.database_url, "");
	assert_string_equal(c.replica_urls, "");
	assert_string_equal(c.redis_url, "redis://127.0.0.1:6379");
	assert_string_equal(c.redis_host, "127.0.0.1");
	assert_int_equal(c.redis_port, 6379);
	assert_string_equal(c.redis_password, "");
	assert_int_equal(c.redis_db, 0);
	assert_string_equal(c.amqp_url, "");
	assert_string_equal(c.jwt_secret, "");
	assert_int_equal(c.log_level, LOG_INFO);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	assert_int_equal(c.io_threads, cores < 1 ? 1 : cores);
	assert_int_equal(c.workers, 16);
	assert_int_equal(c.job_queue_size, 4096);
	assert_int_equal(c.max_body_bytes, 65536);
	assert_string_equal(c.cors_origins, "");
	assert_string_equal(c.cache_prefix, "transitd:");
	assert_int_equal(c.db_connect_timeout_s, 2);
	assert_int_equal(c.db_statement_timeout_ms, 5000);
	assert_int_equal(c.redis_timeout_ms, 500);
	assert_int_equal(c.redis_breaker_failures, 3);
	assert_int_equal(c.redis_breaker_window_ms, 1000);
	assert_int_equal(c.redis_hedge_ms, 25);
	assert_int_equal(c.shutdown_timeout_s, 30);
	assert_int_equal(c.near_cache_ttl_ms, 1000);
	assert_string_equal(c.web_dir, "web");
}

static void test_empty_values_mean_default(void **state)
{
	(void)state;
	setenv("PORT", "", 1);
	setenv("LOG_LEVEL", "", 1);
	setenv("REDIS_URL", "", 1);
	setenv("CACHE_PREFIX", "", 1);
	struct config c;
	char err[256];
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.port, 8000);
	assert_int_equal(c.log_level, LOG_INFO);
	assert_string_equal(c.redis_host, "127.0.0.1");
	assert_string_equal(c.cache_prefix, "transitd:");
}

static void test_values_are_read(void **state)
{
	(void)state;
	setenv("PORT", "65535", 1);
	setenv("BIND", "0.0.0.0", 1);
	setenv("DATABASE_URL", "postgres://u@db/transit", 1);
	setenv("DATABASE_REPLICA_URLS", "postgresql://r1/x,postgresql://r2/x", 1);
	setenv("REDIS_URL", "redis://:s3cret@cache.local:6380/2", 1);
	setenv("AMQP_URL", "amqp://guest:guest@mq/", 1);
	setenv("JWT_SECRET", "shh", 1);
	setenv("LOG_LEVEL", "WARN", 1);
	setenv("IO_THREADS", "3", 1);
	setenv("DB_POOL_SIZE", "7", 1);
	setenv("JOB_QUEUE_SIZE", "10", 1);
	setenv("MAX_BODY_BYTES", "256", 1);
	setenv("CORS_ORIGINS", "https://a.example", 1);
	setenv("CACHE_PREFIX", "t2:", 1);
	setenv("DB_CONNECT_TIMEOUT", "60", 1);
	setenv("DB_STATEMENT_TIMEOUT_MS", "10", 1);
	setenv("REDIS_TIMEOUT_MS", "1", 1);
	setenv("SHUTDOWN_TIMEOUT", "0", 1);
	setenv("NEAR_CACHE_TTL_MS", "0", 1);
	setenv("WEB_DIR", "/srv/web", 1);
	struct config c;
	char err[256] = "";
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.port, 65535);
	assert_string_equal(c.bind, "0.0.0.0");
	assert_string_equal(c.database_url, "postgres://u@db/transit");
	assert_string_equal(c.replica_urls, "postgresql://r1/x,postgresql://r2/x");
	assert_string_equal(c.redis_host, "cache.local");
	assert_int_equal(c.redis_port, 6380);
	assert_string_equal(c.redis_password, "s3cret");
	assert_int_equal(c.redis_db, 2);
	assert_string_equal(c.amqp_url, "amqp://guest:guest@mq/");
	assert_string_equal(c.jwt_secret, "shh");
	assert_int_equal(c.log_level, LOG_WARN);
	assert_int_equal(c.io_threads, 3);
	/* WORKERS unset: falls back to the older DB_POOL_SIZE. */
	assert_int_equal(c.workers, 7);
	assert_int_equal(c.job_queue_size, 10);
	assert_int_equal(c.max_body_bytes, 256);
	assert_string_equal(c.cors_origins, "https://a.example");
	assert_string_equal(c.cache_prefix, "t2:");
	assert_int_equal(c.db_connect_timeout_s, 60);
	assert_int_equal(c.db_statement_timeout_ms, 10);
	assert_int_equal(c.redis_timeout_ms, 1);
	assert_int_equal(c.shutdown_timeout_s, 0);
	assert_int_equal(c.near_cache_ttl_ms, 0);
	assert_string_equal(c.web_dir, "/srv/web");

	/* WORKERS wins over DB_POOL_SIZE. */
	setenv("WORKERS", "5", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.workers, 5);
}

static void test_log_levels(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		enum log_level l;
	} cases[] = { { "debug", LOG_DEBUG }, { "info", LOG_INFO }, { "warn", LOG_WARN },
		      { "error", LOG_ERROR }, { "Error", LOG_ERROR }, { "DEBUG", LOG_DEBUG } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		setenv("LOG_LEVEL", cases[i].s, 1);
		struct config c;
		char err[256];
		assert_int_equal(config_load(&c, err, sizeof(err)), 0);
		assert_int_equal(c.log_level, cases[i].l);
	}
}

/* Sets one variable to a bad value and expects failure naming it. */
static void expect_bad(const char *var, const char *value)
{
	clean_env(NULL);
	setenv(var, value, 1);
	struct config c;
	char err[256] = "";
	int rc = config_load(&c, err, sizeof(err));
	if (rc != -1)
		fail_msg("%s=%s was accepted", var, value);
	if (!strstr(err, var))
		fail_msg("%s=%s: error \"%s\" does not name the variable", var, value, err);
	unsetenv(var);
}

static void test_bad_values_fail_naming_variable(void **state)
{
	(void)state;
	expect_bad("PORT", "0");
	expect_bad("PORT", "abc");
	expect_bad("PORT", "70000");
	expect_bad("PORT", "65536");
	expect_bad("PORT", "-1");
	expect_bad("PORT", "80x");
	expect_bad("PORT", "99999999999999999999999");
	expect_bad("MAX_BODY_BYTES", "-1");
	expect_bad("MAX_BODY_BYTES", "255");
	expect_bad("MAX_BODY_BYTES", "16777217");
	expect_bad("LOG_LEVEL", "loud");
	expect_bad("LOG_LEVEL", "info ");
	expect_bad("REDIS_URL", "http://x");
	expect_bad("REDIS_URL", "redis://");
	expect_bad("REDIS_URL", "redis://h:0");
	expect_bad("DATABASE_URL", "mysql://x");
	expect_bad("DATABASE_URL", "postgres:/x");
	expect_bad("AMQP_URL", "http://mq");
	expect_bad("WORKERS", "0");
	expect_bad("WORKERS", "513");
	expect_bad("DB_POOL_SIZE", "0");
	expect_bad("IO_THREADS", "0");
	expect_bad("IO_THREADS", "257");
	expect_bad("JOB_QUEUE_SIZE", "0");
	expect_bad("DB_CONNECT_TIMEOUT", "61");
	expect_bad("DB_STATEMENT_TIMEOUT_MS", "9");
	expect_bad("REDIS_TIMEOUT_MS", "0");
	expect_bad("REDIS_BREAKER_FAILURES", "0");
	expect_bad("REDIS_BREAKER_WINDOW_MS", "-1");
	expect_bad("REDIS_HEDGE_MS", "x");
	expect_bad("SHUTDOWN_TIMEOUT", "-1");
	expect_bad("NEAR_CACHE_TTL_MS", "600001");
	expect_bad("CACHE_PREFIX", "0123456789012345678901234567890123456789012345678901234567890123456789");
	expect_bad("BIND", "0123456789012345678901234567890123456789012345678901234567890123456789");
}

static void test_payment_settings(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_string_equal(c.payment_provider, "sandbox");
	assert_string_equal(c.payment_webhook_secret, "");
	assert_int_equal(c.payment_ttl_s, 1800);
	assert_string_equal(c.payment_checkout_url, "");

	setenv("PAYMENT_PROVIDER", "external", 1);
	setenv("PAYMENT_CHECKOUT_URL", "https://pay.example/checkout?ref={payment_id}", 1);
	setenv("PAYMENT_WEBHOOK_SECRET", "whsec", 1); /* its strength is checked by serve */
	setenv("PAYMENT_TTL", "1", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_string_equal(c.payment_provider, "external");
	assert_string_equal(c.payment_checkout_url, "https://pay.example/checkout?ref={payment_id}");
	assert_string_equal(c.payment_webhook_secret, "whsec");
	assert_int_equal(c.payment_ttl_s, 1);

	expect_bad("PAYMENT_PROVIDER", "wompi");
	expect_bad("PAYMENT_PROVIDER", "Sandbox");
	expect_bad("PAYMENT_TTL", "0");
	expect_bad("PAYMENT_TTL", "604801");
	expect_bad("PAYMENT_TTL", "30m");
	/* external needs an https:// template naming the payment */
	static const char *const bad_urls[] = { NULL, "http://pay.example/{payment_id}", "https://pay.example/checkout" };
	for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
		clean_env(NULL);
		setenv("PAYMENT_PROVIDER", "external", 1);
		if (bad_urls[i])
			setenv("PAYMENT_CHECKOUT_URL", bad_urls[i], 1);
		assert_int_equal(config_load(&c, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "PAYMENT_CHECKOUT_URL"));
	}
}

static void test_boundaries_accepted(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	setenv("PORT", "1", 1);
	setenv("MAX_BODY_BYTES", "16777216", 1);
	setenv("WORKERS", "512", 1);
	setenv("CACHE_PREFIX", "0123456789012345678901234567890123456789012345678901234567890123", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.port, 1);
	assert_int_equal(c.max_body_bytes, 16u << 20);
	assert_int_equal(c.workers, 512);
	assert_int_equal(strlen(c.cache_prefix), 64);
}

static void test_error_message_truncated_safely(void **state)
{
	(void)state;
	setenv("PORT", "abc", 1);
	struct config c;
	char err[8];
	memset(err, 'Z', sizeof(err));
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_int_equal(err[7], '\0');
	assert_string_equal(err, "PORT mu");
}

static struct config redis_cfg(void)
{
	struct config c;
	memset(&c, 0, sizeof(c));
	/* Stale values that a successful parse must overwrite. */
	snprintf(c.redis_password, sizeof(c.redis_password), "stale");
	c.redis_db = 9;
	c.redis_port = 1;
	return c;
}

static void test_redis_url_variants(void **state)
{
	(void)state;
	struct config c = redis_cfg();
	assert_int_equal(config_parse_redis_url(&c, "redis://localhost"), 0);
	assert_string_equal(c.redis_host, "localhost");
	assert_int_equal(c.redis_port, 6379);
	assert_string_equal(c.redis_password, "");
	assert_int_equal(c.redis_db, 0);

	c = redis_cfg();
	assert_int_equal(config_parse_redis_url(&c, "redis://10.0.0.5:7000"), 0);
	assert_string_equal(c.redis_host, "10.0.0.5");
	assert_int_equal(c.redis_port, 7000);
	assert_int_equal(c.redis_db, 0);

	c = redis_cfg();
	assert_int_equal(config_parse_redis_url(&c, "redis://:pa55@h:6390"), 0);
	assert_string_equal(c.redis_host, "h");
	assert_string_equal(c.redis_password, "pa55");
	assert_int_equal(c.redis_port, 6390);

	c = redis_cfg();
	assert_int_equal(config_parse_redis_url(&c, "redis://user:pw@h"), 0);
	assert_string_equal(c.redis_password, "pw");
	assert_string_equal(c.redis_host, "h");

	c = redis_cfg();
	assert_int_equal(config_parse_redis_url(&c, "redis://h/3"), 0);
	assert_string_equal(c.redis_host, "h");
	assert_int_equal(c.redis_db, 3);
	assert_int_equal(c.redis_port, 6379);

	c = redis_cfg();
	assert_int_equal(config_parse_redis_url(&c, "redis://:x@h:1/15"), 0);
	assert_string_equal(c.redis_password, "x");
	assert_int_equal(c.redis_port, 1);
	assert_int_equal(c.redis_db, 15);

	c = redis_cfg();
	assert_int_equal(config_parse_redis_url(&c, "redis://h:65535/"), 0);
	assert_int_equal(c.redis_port, 65535);
	assert_int_equal(c.redis_db, 0);
}

static void test_redis_url_bad(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"http://h",	     "redis:/h",	"rediss://h",	 "redis://",	    "redis://:pw@",
		"redis://h:",	     "redis://h:0",	"redis://h:65536", "redis://h:abc", "redis://h:80x",
		"redis://h:-1",	     "redis://h/16",	"redis://h/-1",	 "redis://h/x",	    "redis://h/1x",
		"redis://h:6379/1/2", "redis://:6379",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config c = redis_cfg();
		if (config_parse_redis_url(&c, bad[i]) != -1)
			fail_msg("accepted bad redis url \"%s\"", bad[i]);
	}
	/* A password that does not fit is refused rather than truncated. */
	char url[400];
	char pw[200];
	memset(pw, 'p', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	snprintf(url, sizeof(url), "redis://:%s@h", pw);
	struct config c = redis_cfg();
	assert_int_equal(config_parse_redis_url(&c, url), -1);
}

static void test_origin_allowed(void **state)
{
	(void)state;
	struct config c;
	memset(&c, 0, sizeof(c));

	c.cors_origins = "";
	assert_false(config_origin_allowed(&c, "https://a.example"));
	assert_false(config_origin_allowed(&c, NULL));

	c.cors_origins = "https://a.example, https://b.example,https://c.example";
	assert_true(config_origin_allowed(&c, "https://a.example"));
	assert_true(config_origin_allowed(&c, "https://b.example"));
	assert_true(config_origin_allowed(&c, "https://c.example"));
	/* Case-insensitive. */
	assert_true(config_origin_allowed(&c, "HTTPS://B.Example"));
	/* No match: prefixes, extensions, other hosts, NULL. */
	assert_false(config_origin_allowed(&c, "https://d.example"));
	assert_false(config_origin_allowed(&c, "https://a.exampl"));
	assert_false(config_origin_allowed(&c, "https://a.example.evil"));
	assert_false(config_origin_allowed(&c, "https://a"));
	assert_false(config_origin_allowed(&c, "http://a.example"));
	assert_false(config_origin_allowed(&c, NULL));

	c.cors_origins = "*";
	assert_true(config_origin_allowed(&c, "https://anything.example"));
	assert_false(config_origin_allowed(&c, NULL));

	c.cors_origins = "https://a.example, *";
	assert_true(config_origin_allowed(&c, "https://zzz.example"));

	/* "*" is a wildcard only as a whole entry. */
	c.cors_origins = "*.example, https://a.example";
	assert_false(config_origin_allowed(&c, "https://x.example"));
	assert_true(config_origin_allowed(&c, "*.example"));
	/* A literal "*" inside an origin is not a wildcard. */
	c.cors_origins = "https://*.example";
	assert_false(config_origin_allowed(&c, "https://x.example"));
	assert_true(config_origin_allowed(&c, "https://*.example"));

	c.cors_origins = "  https://a.example  ,  ";
	assert_true(config_origin_allowed(&c, "https://a.example"));
	assert_false(config_origin_allowed(&c, "https://b.example"));
}

/* Regression (src/core/config.c config_origin_allowed): with a trailing ','
 * or ' ' in CORS_ORIGINS the loop reaches the terminating NUL, computes a
 * zero-length entry and compares it with strncasecmp(p, "", 0) == 0, so an
 * empty Origin was reported as allowed. */
static void test_origin_empty_string_not_allowed(void **state)
{
	(void)state;
	/* An empty Origin header matches nothing in a list of real origins,
	 * whatever separators the list happens to end with. */
	struct config c;
	memset(&c, 0, sizeof(c));
	c.cors_origins = "https://a.example";
	assert_false(config_origin_allowed(&c, ""));
	c.cors_origins = "https://a.example,";
	assert_false(config_origin_allowed(&c, ""));
	c.cors_origins = "https://a.example ";
	assert_false(config_origin_allowed(&c, ""));
}

/* Reads field of setting s from c as a number. */
static long number_field(const struct config *c, const struct config_setting *s)
{
	const char *f = (const char *)c + s->offset;
	if (s->type == CONFIG_SIZE)
		return (long)*(const size_t *)f;
	return *(const int *)f;
}

static const char *text_field(const struct config *c, const struct config_setting *s)
{
	return *(const char *const *)((const char *)c + s->offset);
}

static int is_number(const struct config_setting *s)
{
	return s->type == CONFIG_INT || s->type == CONFIG_SIZE || s->type == CONFIG_BOOL;
}

static void test_table_is_well_formed(void **state)
{
	(void)state;
	assert_true(config_settings_count >= sizeof(known) / sizeof(known[0]) - 1);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!config_setting_find(known[i]))
			fail_msg("%s is no longer read", known[i]);
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		if (config_setting_find(s->name) != s)
			fail_msg("%s appears twice", s->name);
		if (!s->doc || !*s->doc || strchr(s->doc, '\n'))
			fail_msg("%s: the doc must be one line", s->name);
		if (!s->dflt)
			fail_msg("%s has no default text", s->name);
		if (is_number(s) && s->min > s->max)
			fail_msg("%s: bounds %ld > %ld", s->name, s->min, s->max);
		if (s->type == CONFIG_ENUM && !s->choices)
			fail_msg("%s: an enum without choices", s->name);
	}
	assert_null(config_setting_find("NO_SUCH_SETTING"));
	assert_ptr_equal(config_setting_find("DB_POOL_SIZE"), config_setting_find("WORKERS"));
}

/* Each field holds the default its row states, read as the variable would be. */
static void test_every_default_is_the_tables(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		if (s->flags & CONFIG_CORES)
			continue;
		if (is_number(s)) {
			if (number_field(&c, s) != strtol(s->dflt, NULL, 10))
				fail_msg("%s is %ld, its default is %s", s->name, number_field(&c, s), s->dflt);
		} else if (s->type != CONFIG_ENUM && strcmp(text_field(&c, s), s->dflt)) {
			fail_msg("%s is \"%s\", its default is \"%s\"", s->name, text_field(&c, s), s->dflt);
		}
	}
	/* Fields filled beside the table's own. */
	assert_int_equal(c.ntrusted_proxies, 0);
	assert_int_equal(c.async_fallback_sync, 0);
	assert_int_equal(c.amqp_delivery_limit, 5);
	assert_int_equal(c.amqp_confirm_timeout_ms, 2000);
	assert_string_equal(c.amqp_queue, "transitd.commands");
	assert_int_equal(c.max_connections, 16384);
	assert_int_equal(c.max_connections_per_client, 1024);
	assert_int_equal(c.password_hashers, 2);
	assert_int_equal(c.refresh_token_ttl_s, 604800);
}

static void expect_load(const char *var, const char *value, int ok)
{
	clean_env(NULL);
	setenv(var, value, 1);
	struct config c;
	char err[256] = "";
	int rc = config_load(&c, err, sizeof(err));
	if (ok && rc)
		fail_msg("%s=%s was refused: %s", var, value, err);
	if (!ok && rc != -1)
		fail_msg("%s=%s was accepted", var, value);
	if (!ok && !strstr(err, var))
		fail_msg("%s=%s: error \"%s\" does not name the variable", var, value, err);
	if (ok && is_number(config_setting_find(var)) &&
	    number_field(&c, config_setting_find(var)) != strtol(value, NULL, 10))
		fail_msg("%s=%s read as %ld", var, value, number_field(&c, config_setting_find(var)));
	unsetenv(var);
}

/* Every number's bounds are inclusive, and one past them is refused. */
static void test_every_bound(void **state)
{
	(void)state;
	char v[32];
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		if (is_number(s)) {
			snprintf(v, sizeof(v), "%ld", s->min);
			expect_load(s->name, v, 1);
			snprintf(v, sizeof(v), "%ld", s->max);
			expect_load(s->name, v, 1);
			snprintf(v, sizeof(v), "%ld", s->min - 1);
			expect_load(s->name, v, 0);
			snprintf(v, sizeof(v), "%ld", s->max + 1);
			expect_load(s->name, v, 0);
			expect_load(s->name, "twelve", 0);
		} else if (s->type == CONFIG_ENUM) {
			expect_load(s->name, "no-such-choice", 0);
		} else if (s->max) {
			char *long_value = malloc((size_t)s->max + 2);
			memset(long_value, 'a', (size_t)s->max + 1);
			long_value[s->max + 1] = '\0';
			expect_load(s->name, long_value, 0);
			long_value[s->max] = '\0';
			expect_load(s->name, long_value, 1);
			free(long_value);
		}
	}
}

/* The message names the variable and shows the bad value, but never a
 * secret's: error lines end up in logs. */
static void test_errors_show_values_but_not_secrets(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	setenv("ASYNC_CONSUMERS", "lots", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "ASYNC_CONSUMERS must be an integer from 0 to 256 (got \"lots\")");
	clean_env(NULL);
	setenv("ASYNC_FALLBACK", "Sync", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "ASYNC_FALLBACK must be refuse or sync (got \"Sync\")");
	clean_env(NULL);
	setenv("AUTH_FAIL_OPEN", "yes", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "AUTH_FAIL_OPEN must be 0 or 1 (got \"yes\")");
	clean_env(NULL);
	setenv("DATABASE_URL", "mysql://app:hunter2@db/x", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_string_equal(err, "DATABASE_URL must start with postgresql:// or postgres://");
	clean_env(NULL);
	setenv("AMQP_URL", "amqps://app:hunter2@mq/", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_null(strstr(err, "hunter2"));
	assert_non_null(strstr(err, "AMQP_URL"));
	clean_env(NULL);
	setenv("REDIS_URL", "redis://:hunter2@h:0", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_null(strstr(err, "hunter2"));
	assert_non_null(strstr(err, "REDIS_URL"));
}

static void test_older_name_still_checked(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	setenv("WORKERS", "5", 1);
	setenv("DB_POOL_SIZE", "0", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "DB_POOL_SIZE"));
	setenv("DB_POOL_SIZE", "9", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.workers, 5);
}

static void test_lists_and_checks_beside_the_table(void **state)
{
	(void)state;
	struct config c;
	char err[256];
	setenv("TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32,192.0.2.7", 1);
	setenv("ASYNC_FALLBACK", "sync", 1);
	assert_int_equal(config_load(&c, err, sizeof(err)), 0);
	assert_int_equal(c.ntrusted_proxies, 3);
	assert_string_equal(c.trusted_proxies_text, "10.0.0.0/8, 2001:db8::/32,192.0.2.7");
	assert_int_equal(c.async_fallback_sync, 1);
	expect_bad("TRUSTED_PROXIES", "10.0.0.0/33");
	expect_bad("TRUSTED_PROXIES", "proxy.example");
	expect_bad("CACHE_PREFIX", "!t:");
}

/* Reads a whole file into a malloc'ed string, or NULL. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, mem);
	fclose(f);
	fclose(mem);
	return text;
}

/* README.md's configuration table is the settings table, row for row
 * (`scripts/config-table.py` rewrites it). Unit tests run from the root. */
static void test_readme_table_matches(void **state)
{
	(void)state;
	char *readme = slurp("README.md");
	if (!readme)
		fail_msg("README.md not found: run the unit tests from the repository root");
	char *want = NULL;
	size_t wantlen = 0;
	FILE *mem = open_memstream(&want, &wantlen);
	config_print_markdown(mem);
	fclose(mem);
	const char *start = strstr(readme, "\n| variable | default | values | meaning |\n");
	if (!start)
		fail_msg("README.md has no configuration table (header: %.*s)", (int)strcspn(want, "\n"), want);
	start++;
	const char *end = start;
	while (*end == '|')
		end += strcspn(end, "\n") + (end[strcspn(end, "\n")] == '\n');
	size_t have = (size_t)(end - start);
	if (have != wantlen || memcmp(start, want, wantlen)) {
		size_t i = 0, line = 1, bol = 0;
		for (; i < have && i < wantlen && start[i] == want[i]; i++)
			if (want[i] == '\n') {
				line++;
				bol = i + 1;
			}
		fail_msg("README.md's configuration table differs from src/core/config.c at its line %zu:\n"
			 "README: %.*s\ntable:  %.*s\nrun scripts/config-table.py after `make`",
			 line, (int)strcspn(start + bol, "\n"), start + bol, (int)strcspn(want + bol, "\n"), want + bol);
	}
	free(want);
	free(readme);
}

/* `transitd --help` lists every setting, its default and its doc. */
static void test_help_lists_every_setting(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	config_print_help(mem);
	fclose(mem);
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		char line[128];
		snprintf(line, sizeof(line), "\n  %-26s default %s", s->name,
			 s->flags & CONFIG_CORES ? "cores" : *s->dflt ? s->dflt : "\"\"");
		if (!strstr(text, line))
			fail_msg("--help lacks \"%s\"", line + 1);
		if (s->alias && !strstr(text, s->alias))
			fail_msg("--help does not name %s", s->alias);
	}
	assert_non_null(strstr(text, "      HTTP port\n"));
	/* Backticks are Markdown, not for a terminal. */
	assert_null(strchr(text, '`'));
	for (char *p = text; *p; p += strcspn(p, "\n") + 1) {
		if (strcspn(p, "\n") > 80)
			fail_msg("--help line over 80 columns: %.*s", (int)strcspn(p, "\n"), p);
		if (!p[strcspn(p, "\n")])
			break;
	}
	free(text);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clean_env, clean_env)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_empty_values_mean_default),
		T(test_values_are_read),
		T(test_log_levels),
		T(test_bad_values_fail_naming_variable),
		T(test_payment_settings),
		T(test_boundaries_accepted),
		T(test_error_message_truncated_safely),
		T(test_redis_url_variants),
		T(test_redis_url_bad),
		T(test_origin_allowed),
		T(test_origin_empty_string_not_allowed),
		T(test_table_is_well_formed),
		T(test_every_default_is_the_tables),
		T(test_every_bound),
		T(test_errors_show_values_but_not_secrets),
		T(test_older_name_still_checked),
		T(test_lists_and_checks_beside_the_table),
		T(test_readme_table_matches),
		T(test_help_lists_every_setting),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
