#ifndef TRANSITD_CONFIG_H
#define TRANSITD_CONFIG_H
/*
 * Configuration comes from the environment only, and nothing else in the
 * program reads it. Every variable is a row of one table, config_settings:
 * its name, type, default, bounds, the field of struct config it fills and a
 * one-line doc. That table drives config_load, `transitd --help` and the
 * README's configuration table (tests/unit/test_config.c fails when the
 * README and the table disagree; `transitd config --markdown` prints the
 * table to paste).
 *
 * Invariants after a successful config_load: every field holds a value
 * within its setting's bounds; string fields are never NULL (an unset or
 * empty variable gives the default, "" when there is none) and point into
 * the environment or at static text, so they live as long as the process
 * does not change its environment.
 */
#include <stddef.h>
#include <stdio.h>

#include "cidr.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

struct config {
	int port;
	const char *bind;
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
	const char *trusted_proxies_text;      /* TRUSTED_PROXIES as given */
	struct cidr trusted_proxies[CIDR_MAX]; /* peers whose Forwarded / X-Forwarded-For count */
	int ntrusted_proxies;
	int register_rate_per_address; /* POST /auth/register per minute */
	int login_slowdown_after;   /* failed logins of an email (15 min) before each waits its turn */
	int login_slowdown_max_s;   /* the longest such turn */
	int password_hashers;       /* threads that hash passwords (register, login) */
	int password_queue;         /* hashes waiting for them before 503 */
	int max_cards_per_rider;    /* cards a rider may issue for themselves */
};

enum config_type {
	CONFIG_INT,    /* int field: a decimal integer from min to max */
	CONFIG_SIZE,   /* size_t field: the same */
	CONFIG_BOOL,   /* int field: 0 or 1 */
	CONFIG_ENUM,   /* int-sized field: the index of the value in choices */
	CONFIG_STRING, /* const char * field: text of at most max bytes (0: any),
			* one of choices when there are some */
	CONFIG_LIST,   /* const char * field: a comma-separated list, as text */
	CONFIG_SECRET, /* const char * field: text never echoed in a message */
};

/* Flags of a setting. */
#define CONFIG_ANYCASE 1u /* CONFIG_ENUM: choices match in any case */
#define CONFIG_CORES   2u /* CONFIG_INT: unset means the number of online cores */
#define CONFIG_PREFIX  4u /* strings: choices are prefixes a value must start with */

/* One environment variable. Rows are built by the macros in config.c, which
 * check at compile time that the field has the type the row says. */
struct config_setting {
	const char *name;
	enum config_type type;
	size_t offset;       /* of the field in struct config */
	long min, max;       /* numbers: bounds; strings: max = longest in bytes */
	const char *dflt;    /* the default as the variable would spell it; "" = none */
	const char *choices; /* "a|b|c": the accepted values (or prefixes); "" is always accepted
			      * by strings, as the default; NULL = any */
	const char *alias;   /* an older name, read when this one is unset */
	unsigned flags;
	/* Further parsing into other fields (REDIS_URL, TRUSTED_PROXIES): 0,
	 * or -1 with a message naming the variable in err. */
	int (*parse)(struct config *c, const char *value, char *err, size_t errlen);
	const char *doc;     /* one line, Markdown (backticks) */
};

/* The table, in the README's order, and its length. */
extern const struct config_setting config_settings[];
extern const size_t config_settings_count;

/* Fills every field of c from the environment (defaults for unset or empty
 * variables). Returns 0, or -1 with a one-line message naming the first bad
 * variable in err (truncated to errlen; c is then partly filled). Reads the
 * environment only; never blocks. */
int config_load(struct config *c, char *err, size_t errlen);

/* The setting named name (or whose alias is name), or NULL. */
const struct config_setting *config_setting_find(const char *name);

/* Prints every setting with its default, accepted values and doc, for
 * `transitd --help` and `transitd config`. */
void config_print_help(FILE *out);

/* Prints the README's configuration table (Markdown, header included). */
void config_print_markdown(FILE *out);

/* Parses redis://[:password@]host[:port][/db] into c's redis_host,
 * redis_port, redis_password and redis_db. 0, or -1 leaving them unspecified. */
int config_parse_redis_url(struct config *c, const char *url);

/* True when origin (may be NULL) is allowed by CORS_ORIGINS. */
int config_origin_allowed(const struct config *c, const char *origin);

#endif
