#ifndef TRANSITD_CONFIG_H
#define TRANSITD_CONFIG_H
/*
 * Configuration comes from the environment only. config_load fills every
 * field (defaults for unset variables) or fails naming the first bad
 * variable; nothing else in the program reads the environment.
 */
#include <stddef.h>

#include "cidr.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct config {
	int port;
	char bind[64];
	const char *database_url;
	const char *replica_urls; /* comma-separated, may be "" */
	int replica_max_lag_ms;   /* a replica further behind serves no read */
	const char *redis_url;
	char redis_host[256];
	int redis_port;
	char redis_password[128];
	int redis_db;
	const char *amqp_url;     /* "" = no broker, async requests run synchronously */
	const char *amqp_queue;   /* the command queue; dead letters go to <queue>.dead */
	int amqp_delivery_limit;  /* deliveries before a command is dead-lettered */
	int amqp_confirm_timeout_ms;
	int async_consumers;      /* consumer threads in this process; 0 = publish only */
	int async_fallback_sync;  /* ASYNC_FALLBACK=sync: broker down → answer synchronously */
	const char *jwt_secret;
	enum log_level log_level;
	int io_threads;
	int workers;              /* each owns one connection to the primary */
	int job_queue_size;
	size_t max_body_bytes;
	const char *cors_origins; /* comma-separated, "*" allows any */
	const char *cache_prefix;
	int db_connect_timeout_s;
	int db_statement_timeout_ms;
	int redis_timeout_ms;
	int redis_breaker_failures;  /* failures in a row before the breaker may open */
	int redis_breaker_window_ms; /* ...and for at least this long (0: the count alone) */
	int redis_hedge_ms;          /* a cache read waits this long for Redis, then reads PostgreSQL (0: no hedge) */
	int shutdown_timeout_s;
	int shutdown_delay_ms;      /* after SIGTERM, /readyz is 503 this long before the listener closes */
	int near_cache_ttl_ms;
	const char *web_dir;
	int access_token_ttl_s;
	int refresh_token_ttl_s;
	int auth_fail_open;         /* accept tokens while revocations cannot be checked */
	int rate_limit_per_minute;  /* per client, all routes; 0 disables */
	int login_rate_per_email;   /* POST /auth/login per minute */
	int login_rate_per_address;
	int rate_limit_fail_closed;
	const char *admin_email;    /* migrate creates or updates this admin */
	const char *admin_password;
	int http_header_timeout_ms; /* to receive a request head */
	int http_body_timeout_ms;   /* to receive a request body, from its head */
	int http_idle_timeout_ms;   /* a kept-alive connection between requests */
	int http_send_timeout_ms;   /* without progress writing a response */
	int max_connections;        /* open connections; more are answered 503 */
	int max_connections_per_client; /* per client address; 0 = no cap */
	int streams_max;            /* open event streams */
	int streams_per_client;
	int simulate_interval_ms;   /* `transitd simulate`: between steps */
	const char *payment_provider;       /* "sandbox" (riders approve on a transitd page) or "external" */
	const char *payment_webhook_secret; /* HMAC key of Payment-Signature */
	int payment_ttl_s;                  /* a pending payment expires after this */
	const char *payment_checkout_url;   /* external: checkout URL template holding {payment_id} */
	struct cidr trusted_proxies[CIDR_MAX]; /* peers whose Forwarded / X-Forwarded-For count */
	int ntrusted_proxies;
	int register_rate_per_address; /* POST /auth/register per minute */
	int login_slowdown_after;   /* failed logins of an email (15 min) before each waits its turn */
	int login_slowdown_max_s;   /* the longest such turn */
	int password_hashers;       /* threads that hash passwords (register, login) */
	int password_queue;         /* hashes waiting for them before 503 */
	int max_cards_per_rider;    /* cards a rider may issue for themselves */
};

/* Returns 0, or -1 with a one-line message naming the variable in err. */
int config_load(struct config *c, char *err, size_t errlen);

/* Parses redis://[:password@]host[:port][/db] into c. 0 or -1. */
int config_parse_redis_url(struct config *c, const char *url);

/* True when origin is allowed by CORS_ORIGINS. */
int config_origin_allowed(const struct config *c, const char *origin);

#endif
