#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "banned.h"

/* A row's field, checked at compile time: a negative array size when the
 * field of struct config does not have the type the row's macro fills. */
#define FIELD_OF(f, T) \
	(offsetof(struct config, f) + 0 * sizeof(char[_Generic(((struct config *)0)->f, T: 1, default: -1)]))
#define INT_FIELD(f) \
	(offsetof(struct config, f) + 0 * sizeof(char[sizeof(((struct config *)0)->f) == sizeof(int) ? 1 : -1]))

/* Rows of the table. The trailing arguments set further members
 * (.alias, .parse, .flags, .choices for strings). */
#define INT(n, f, d, lo, hi, doc_, ...) \
	{ .name = n, .type = CONFIG_INT, .offset = FIELD_OF(f, int), .dflt = d, .min = lo, .max = hi, \
	  .doc = doc_, __VA_ARGS__ }
#define SIZE(n, f, d, lo, hi, doc_) \
	{ .name = n, .type = CONFIG_SIZE, .offset = FIELD_OF(f, size_t), .dflt = d, .min = lo, .max = hi, .doc = doc_ }
#define BOOL(n, f, d, doc_) \
	{ .name = n, .type = CONFIG_BOOL, .offset = FIELD_OF(f, int), .dflt = d, .min = 0, .max = 1, .doc = doc_ }
#define ENUM(n, f, d, choices_, doc_, ...) \
	{ .name = n, .type = CONFIG_ENUM, .offset = INT_FIELD(f), .dflt = d, .choices = choices_, .doc = doc_, \
	  __VA_ARGS__ }
#define TEXT(type_, n, f, d, max_, doc_, ...) \
	{ .name = n, .type = type_, .offset = FIELD_OF(f, const char *), .dflt = d, .max = max_, .doc = doc_, \
	  __VA_ARGS__ }
#define STRING(...) TEXT(CONFIG_STRING, __VA_ARGS__)
#define LIST(...) TEXT(CONFIG_LIST, __VA_ARGS__)
#define SECRET(...) TEXT(CONFIG_SECRET, __VA_ARGS__)

static int parse_redis_url(struct config *c, const char *v, char *err, size_t errlen);
static int parse_cache_prefix(struct config *c, const char *v, char *err, size_t errlen);
static int parse_trusted_proxies(struct config *c, const char *v, char *err, size_t errlen);

#define SECRET_HOWTO "generate one with `head -c 48 /dev/urandom | base64`"

/* Every variable transitd reads, in the README's order. Defaults are spelled
 * as the variable would be and parsed by the same code, so a default out of
 * its own bounds fails every start (and the unit tests). */
const struct config_setting config_settings[] = {
	INT("PORT", port, "8000", 1, 65535, "HTTP port"),
	STRING("BIND", bind, "127.0.0.1", 63, "listen address (IPv4 or IPv6)"),
	SECRET("DATABASE_URL", database_url, "", 0,
	       "PostgreSQL primary, `postgresql://user@host:port/db`; required by `serve`, `migrate`, `seed`, "
	       "`simulate` and `payments`",
	       .choices = "postgresql://|postgres://", .flags = CONFIG_PREFIX),
	LIST("DATABASE_REPLICA_URLS", replica_urls, "", 0,
	     "read replicas, spread over the workers; cache fills read them once they have replayed the write "
	     "they follow, else the primary"),
	INT("REPLICA_MAX_LAG_MS", replica_max_lag_ms, "1000", 0, 3600000,
	    "a replica further behind the primary serves no read"),
	SECRET("REDIS_URL", redis_url, "redis://127.0.0.1:6379", 0, "`redis://[:password@]host[:port][/db]`",
	       .parse = parse_redis_url),
	SECRET("AMQP_URL", amqp_url, "", 0,
	       "RabbitMQ, `amqp://user:password@host:port/vhost`; unset = `Prefer: respond-async` is ignored "
	       "(`make run` and `make test` start a private node and set it)",
	       .choices = "amqp://", .flags = CONFIG_PREFIX),
	STRING("AMQP_QUEUE", amqp_queue, "transitd.commands", 200,
	       "the durable quorum queue of commands; dead letters go to `<queue>.dead`"),
	INT("AMQP_DELIVERY_LIMIT", amqp_delivery_limit, "5", 1, 1000,
	    "deliveries of a command before it is dead-lettered and its operation fails"),
	INT("AMQP_CONFIRM_TIMEOUT_MS", amqp_confirm_timeout_ms, "2000", 10, 60000,
	    "wait for the broker's publisher confirm before answering `503`"),
	INT("ASYNC_CONSUMERS", async_consumers, "4", 0, 256,
	    "consumer threads applying commands in this process (0: publish only)"),
	/* The index of the choice is the field: sync = 1. */
	ENUM("ASYNC_FALLBACK", async_fallback_sync, "refuse", "refuse|sync",
	     "with the broker down, async requests get `503` (`refuse`) or run synchronously (`sync`)"),
	SECRET("JWT_SECRET", jwt_secret, "", 0,
	       "token signing secret, required by `serve` (`make run` generates one in `.run/`); " SECRET_HOWTO
	       ". `serve` refuses one shorter than 32 bytes, one holding a known placeholder (`change-me`, "
	       "`example`, `secret-key`, …), a repeating or stepping pattern, or one under 128 bits by the "
	       "Shannon estimate of its characters"),
	STRING("PAYMENT_PROVIDER", payment_provider, "sandbox", 0,
	       "`sandbox`: riders approve their own top-ups on `/checkout/{id}` and no money is collected (local "
	       "use only; `serve` says so at start); `external`: a real provider's checkout, see "
	       "`PAYMENT_CHECKOUT_URL`",
	       .choices = "sandbox|external"),
	SECRET("PAYMENT_WEBHOOK_SECRET", payment_webhook_secret, "", 0,
	       "key of the provider's `Payment-Signature` (HMAC-SHA256); at least 32 bytes and 10 different "
	       "characters, or `serve` stops (`make run` generates one in `.run/`)"),
	INT("PAYMENT_TTL", payment_ttl_s, "1800", 1, 7 * 86400,
	    "seconds a pending payment waits for the provider before it expires"),
	STRING("PAYMENT_CHECKOUT_URL", payment_checkout_url, "", 0,
	       "with `external`, required: the provider's checkout URL, `https://`, with `{payment_id}` where the "
	       "payment's id goes (at most 512 bytes)"),
	/* In the order of enum log_level. */
	ENUM("LOG_LEVEL", log_level, "info", "debug|info|warn|error", "`info` logs one line per request",
	     .flags = CONFIG_ANYCASE),
	INT("IO_THREADS", io_threads, "", 1, 256, "HTTP I/O threads (one epoll loop each)", .flags = CONFIG_CORES),
	INT("WORKERS", workers, "16", 1, 512, "worker threads; each owns one primary connection",
	    .alias = "DB_POOL_SIZE"),
	INT("JOB_QUEUE_SIZE", job_queue_size, "4096", 1, 1 << 20, "requests waiting for a worker before `503`"),
	SIZE("MAX_BODY_BYTES", max_body_bytes, "65536", 256, 16 << 20, "request body limit (`413` above)"),
	LIST("CORS_ORIGINS", cors_origins, "", 0, "allowed origins, `*` for any"),
	STRING("CACHE_PREFIX", cache_prefix, "transitd:", 64,
	       "prefix of every Redis key and of the invalidation channel; not starting with `!`",
	       .parse = parse_cache_prefix),
	INT("DB_CONNECT_TIMEOUT", db_connect_timeout_s, "2", 1, 60, "seconds to connect to PostgreSQL"),
	INT("DB_STATEMENT_TIMEOUT_MS", db_statement_timeout_ms, "5000", 10, 600000,
	    "per-statement limit (`503` above)"),
	INT("REDIS_TIMEOUT_MS", redis_timeout_ms, "500", 1, 60000,
	    "per-call Redis limit; failures open the circuit breaker"),
	INT("REDIS_BREAKER_FAILURES", redis_breaker_failures, "3", 1, 1000,
	    "Redis failures in a row before the circuit breaker may open"),
	INT("REDIS_BREAKER_WINDOW_MS", redis_breaker_window_ms, "1000", 0, 60000,
	    "the breaker opens only when those failures span at least this long, so a burst does not open it "
	    "(0: the count alone)"),
	INT("REDIS_HEDGE_MS", redis_hedge_ms, "25", 0, 60000,
	    "a cached read waits this long for Redis, then reads PostgreSQL (0: no hedge)"),
	INT("ACCESS_TOKEN_TTL", access_token_ttl_s, "1800", 10, 86400, "access token lifetime, seconds"),
	INT("REFRESH_TOKEN_TTL", refresh_token_ttl_s, "604800", 60, 90 * 86400, "refresh token lifetime, seconds"),
	BOOL("AUTH_FAIL_OPEN", auth_fail_open, "0",
	     "1 accepts tokens while the revocation list cannot be checked (Redis down)"),
	INT("RATE_LIMIT_PER_MINUTE", rate_limit_per_minute, "6000", 0, 10000000,
	    "per-client budget (user, else address); 0 disables"),
	INT("LOGIN_RATE_PER_EMAIL", login_rate_per_email, "10", 1, 100000,
	    "`POST /auth/login` per minute per email from one address"),
	INT("LOGIN_RATE_PER_ADDRESS", login_rate_per_address, "30", 1, 100000,
	    "`POST /auth/login` per minute per address"),
	INT("LOGIN_SLOWDOWN_AFTER", login_slowdown_after, "10", 1, 100000,
	    "after this many failed logins of one email in 15 minutes (from anywhere), attempts on it take "
	    "turns, each twice as long as the last; a right password ends it. Nobody can lock an account, "
	    "only slow it down"),
	INT("LOGIN_SLOWDOWN_MAX", login_slowdown_max_s, "30", 1, 3600, "the longest such turn, seconds"),
	INT("REGISTER_RATE_PER_ADDRESS", register_rate_per_address, "10", 1, 100000,
	    "`POST /auth/register` per minute per address"),
	INT("PASSWORD_HASHERS", password_hashers, "2", 1, 64,
	    "threads that hash registration passwords (Argon2id, 64 MiB each)"),
	INT("PASSWORD_QUEUE", password_queue, "16", 0, 4096,
	    "registrations waiting for a hasher; more are answered `503` + `Retry-After` while other routes "
	    "keep their workers"),
	LIST("TRUSTED_PROXIES", trusted_proxies_text, "", 0,
	     "addresses or CIDR ranges (`10.0.0.0/8, 2001:db8::/32`) of proxies in front of transitd: only from "
	     "these peers is the client address taken from `Forwarded` / `X-Forwarded-For` (the rightmost "
	     "address that is not a trusted proxy), and their connections are not capped per address",
	     .parse = parse_trusted_proxies),
	INT("MAX_CARDS_PER_RIDER", max_cards_per_rider, "5", 1, 1000,
	    "cards a rider may issue for themselves (blocked ones count; staff may issue more). Trips on "
	    "credit are counted per person over all their cards"),
	BOOL("RATE_LIMIT_FAIL_CLOSED", rate_limit_fail_closed, "0",
	     "1 refuses requests (`503`) when Redis cannot count them"),
	STRING("ADMIN_EMAIL", admin_email, "", 0,
	       "`transitd migrate` creates this admin, or updates one it created before (a new password ends "
	       "its logins); it refuses an email someone registered"),
	SECRET("ADMIN_PASSWORD", admin_password, "", 0,
	       "the password of `ADMIN_EMAIL`, at least 10 characters (checked by `migrate`)"),
	INT("NEAR_CACHE_TTL_MS", near_cache_ttl_ms, "1000", 0, 600000,
	    "lifetime of in-process cached reads (0 disables); an expired entry is served one more TTL while "
	    "one request refreshes it"),
	INT("SHUTDOWN_TIMEOUT", shutdown_timeout_s, "30", 0, 3600,
	    "seconds to finish in-flight requests after SIGTERM"),
	INT("SHUTDOWN_DELAY_MS", shutdown_delay_ms, "0", 0, 600000,
	    "after SIGTERM, `/readyz` answers 503 this long before the listener closes (let the load balancer "
	    "notice; `make cluster` uses 1500)"),
	STRING("WEB_DIR", web_dir, "web", 0,
	       "the console (`console/`), the npm files it imports (named in `vendor.json`) and Swagger UI; read "
	       "once at start"),
	INT("SIMULATE_INTERVAL_MS", simulate_interval_ms, "5000", 100, 600000,
	    "`transitd simulate`: time between two steps"),
	INT("HTTP_HEADER_TIMEOUT_MS", http_header_timeout_ms, "10000", 100, 600000,
	    "a request head must arrive within this of the connection's start or its first byte (`408`)"),
	INT("HTTP_BODY_TIMEOUT_MS", http_body_timeout_ms, "10000", 100, 600000,
	    "a request body must arrive within this of its head (`408`)"),
	INT("HTTP_IDLE_TIMEOUT_MS", http_idle_timeout_ms, "60000", 100, 3600000,
	    "a kept-alive connection may sit idle this long between requests"),
	INT("HTTP_SEND_TIMEOUT_MS", http_send_timeout_ms, "30000", 100, 600000,
	    "a client that reads nothing of its response for this long is dropped"),
	INT("MAX_CONNECTIONS", max_connections, "16384", 1, 1 << 20,
	    "open connections; more are answered `503` and closed (kept below the open-files limit)"),
	INT("STREAMS_MAX", streams_max, "1000", 0, 1 << 20,
	    "open live streams (`/stations/{id}/live`); more are answered `503`"),
	INT("STREAMS_PER_CLIENT", streams_per_client, "4", 0, 1 << 20,
	    "open live streams per client address; more are answered `429`"),
	INT("MAX_CONNECTIONS_PER_CLIENT", max_connections_per_client, "1024", 0, 1 << 20,
	    "open connections per client address; more are answered `429` and closed; 0 = no cap"),
};

const size_t config_settings_count = sizeof(config_settings) / sizeof(config_settings[0]);

/* The value of a variable; NULL when unset or empty, which mean the default. */
static const char *env_value(const char *name)
{
	const char *v = name ? getenv(name) : NULL;
	return v && *v ? v : NULL;
}

static void *field_of(struct config *c, const struct config_setting *s)
{
	return (char *)c + s->offset;
}

/* The index of v among the setting's choices ("a|b|c"), or -1. */
static int choice_index(const struct config_setting *s, const char *v)
{
	size_t len = strlen(v);
	int i = 0;
	for (const char *p = s->choices; *p; i++) {
		size_t n = strcspn(p, "|");
		if (s->flags & CONFIG_PREFIX ? !strncmp(v, p, n)
		    : len == n && (s->flags & CONFIG_ANYCASE ? !strncasecmp(v, p, n) : !strncmp(v, p, n)))
			return i;
		p += n + (p[n] == '|');
	}
	return -1;
}

/* Writes choices "a|b|c" as "a, b or c" into out (truncated to outlen). */
static void choices_text(const char *choices, char *out, size_t outlen)
{
	size_t used = 0;
	out[0] = '\0';
	for (const char *p = choices; *p && used < outlen;) {
		size_t n = strcspn(p, "|");
		const char *sep = used == 0 ? "" : p[n] ? ", " : " or ";
		int w = snprintf(out + used, outlen - used, "%s%.*s", sep, (int)n, p);
		if (w < 0)
			break;
		used += (size_t)w;
		p += n + (p[n] == '|');
	}
}

/* Writes "<from> <what> (got "<v>")" into err; a secret's value is left
 * out, as it would land in logs. Returns -1. */
static int bad_value(const struct config_setting *s, const char *from, const char *v, const char *what, char *err,
		     size_t errlen)
{
	if (s->type == CONFIG_SECRET)
		snprintf(err, errlen, "%s %s", from, what);
	else
		snprintf(err, errlen, "%s %s (got \"%.40s\")", from, what, v);
	return -1;
}

static int parse_number(const struct config_setting *s, const char *from, const char *v, long *out, char *err,
			size_t errlen)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (!errno && end != v && !*end && n >= s->min && n <= s->max) {
		*out = n;
		return 0;
	}
	char what[96];
	if (s->type == CONFIG_BOOL)
		snprintf(what, sizeof(what), "must be 0 or 1");
	else
		snprintf(what, sizeof(what), "must be an integer from %ld to %ld", s->min, s->max);
	return bad_value(s, from, v, what, err, errlen);
}

static int parse_text(struct config *c, const struct config_setting *s, const char *from, const char *v, char *err,
		      size_t errlen)
{
	char list[128], what[160];
	if (s->max && strlen(v) > (size_t)s->max) {
		snprintf(err, errlen, "%s must be at most %ld characters", from, s->max);
		return -1;
	}
	if (s->choices && *v && choice_index(s, v) < 0) {
		choices_text(s->choices, list, sizeof(list));
		snprintf(what, sizeof(what), "must %s %s", s->flags & CONFIG_PREFIX ? "start with" : "be", list);
		return bad_value(s, from, v, what, err, errlen);
	}
	*(const char **)field_of(c, s) = v;
	return s->parse ? s->parse(c, v, err, errlen) : 0;
}

/* Parses v, the text of variable from (the setting's name or older name),
 * into the setting's field. 0, or -1 with a message naming from. */
static int parse_value(struct config *c, const struct config_setting *s, const char *from, const char *v, char *err,
		       size_t errlen)
{
	long n;
	switch (s->type) {
	case CONFIG_INT:
	case CONFIG_BOOL:
		if (parse_number(s, from, v, &n, err, errlen))
			return -1;
		*(int *)field_of(c, s) = (int)n;
		return 0;
	case CONFIG_SIZE:
		if (parse_number(s, from, v, &n, err, errlen))
			return -1;
		*(size_t *)field_of(c, s) = (size_t)n;
		return 0;
	case CONFIG_ENUM: {
		int i = choice_index(s, v);
		if (i >= 0) {
			*(int *)field_of(c, s) = i;
			return 0;
		}
		char list[128], what[160];
		choices_text(s->choices, list, sizeof(list));
		snprintf(what, sizeof(what), "must be %s", list);
		return bad_value(s, from, v, what, err, errlen);
	}
	case CONFIG_STRING:
	case CONFIG_LIST:
	case CONFIG_SECRET:
		break;
	}
	return parse_text(c, s, from, v, err, errlen);
}

static int load_setting(struct config *c, const struct config_setting *s, char *err, size_t errlen)
{
	const char *v = env_value(s->name), *old = env_value(s->alias);
	/* The older name is checked even when the newer one overrides it. */
	if (old && parse_value(c, s, s->alias, old, err, errlen))
		return -1;
	if (v)
		return parse_value(c, s, s->name, v, err, errlen);
	if (old)
		return 0;
	if (s->flags & CONFIG_CORES) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		*(int *)field_of(c, s) = (int)(n < s->min ? s->min : n > s->max ? s->max : n);
		return 0;
	}
	return parse_value(c, s, s->name, s->dflt, err, errlen);
}

/* Checks that involve more than one setting. The strength of JWT_SECRET and
 * PAYMENT_WEBHOOK_SECRET is checked by `serve` (auth_configure,
 * payments_configure): migrate and seed run without them. */
static int check_together(const struct config *c, char *err, size_t errlen)
{
	const char *url = c->payment_checkout_url;
	if (!strcmp(c->payment_provider, "external") &&
	    (strncmp(url, "https://", 8) || !strstr(url, "{payment_id}") || strlen(url) > 512)) {
		snprintf(err, errlen, "PAYMENT_CHECKOUT_URL must be an https:// URL holding {payment_id} "
				      "(at most 512 characters) when PAYMENT_PROVIDER=external");
		return -1;
	}
	return 0;
}

int config_load(struct config *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < config_settings_count; i++)
		if (load_setting(c, &config_settings[i], err, errlen))
			return -1;
	return check_together(c, err, errlen);
}

const struct config_setting *config_setting_find(const char *name)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		if (!strcmp(s->name, name) || (s->alias && !strcmp(s->alias, name)))
			return s;
	}
	return NULL;
}

static int parse_redis_url(struct config *c, const char *v, char *err, size_t errlen)
{
	if (!config_parse_redis_url(c, v))
		return 0;
	snprintf(err, errlen, "REDIS_URL must look like redis://[:password@]host[:port][/db]");
	return -1;
}

static int parse_cache_prefix(struct config *c, const char *v, char *err, size_t errlen)
{
	(void)c;
	if (v[0] != '!')
		return 0;
	snprintf(err, errlen, "CACHE_PREFIX must not start with '!'");
	return -1;
}

static int parse_trusted_proxies(struct config *c, const char *v, char *err, size_t errlen)
{
	char why[160];
	c->ntrusted_proxies = cidr_parse_list(v, c->trusted_proxies, CIDR_MAX, why, sizeof(why));
	if (c->ntrusted_proxies >= 0)
		return 0;
	snprintf(err, errlen, "TRUSTED_PROXIES must be comma-separated addresses or CIDR ranges: %s", why);
	return -1;
}

/* The default as the help and the README show it. */
static const char *default_text(const struct config_setting *s)
{
	if (s->flags & CONFIG_CORES)
		return "cores";
	return *s->dflt ? s->dflt : "\"\"";
}

/* What a setting accepts: "1–65535", "debug, info, warn or error", "secret,
 * starts with amqp://"... */
static void values_text(const struct config_setting *s, char *out, size_t outlen)
{
	char list[128] = "", limit[48] = "";
	const char *kind = s->type == CONFIG_SECRET ? "secret" : s->type == CONFIG_LIST ? "comma-separated list" : "text";
	switch (s->type) {
	case CONFIG_INT:
	case CONFIG_SIZE:
		snprintf(out, outlen, "%ld–%ld", s->min, s->max);
		return;
	case CONFIG_BOOL:
		snprintf(out, outlen, "0 or 1");
		return;
	case CONFIG_ENUM:
		choices_text(s->choices, list, sizeof(list));
		snprintf(out, outlen, "%s%s", list, s->flags & CONFIG_ANYCASE ? " (any case)" : "");
		return;
	case CONFIG_STRING:
	case CONFIG_LIST:
	case CONFIG_SECRET:
		break;
	}
	if (s->choices)
		choices_text(s->choices, list, sizeof(list));
	if (s->max)
		snprintf(limit, sizeof(limit), ", at most %ld characters", s->max);
	if (s->choices && !(s->flags & CONFIG_PREFIX))
		snprintf(out, outlen, "%s%s", list, limit);
	else
		snprintf(out, outlen, "%s%s%s%s", kind, *list ? ", starts with " : "", list, limit);
}

/* Prints text from column col (what the line already holds), wrapping
 * before width columns onto lines indented by indent, without Markdown's
 * backticks; ends the line. */
static void print_wrapped(FILE *out, const char *text, int col, int indent, int width)
{
	int empty = 1; /* nothing of text on this line yet */
	for (const char *p = text; *p;) {
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		int n = (int)strcspn(p, " "), shown = n;
		for (int i = 0; i < n; i++)
			shown -= p[i] == '`';
		if (!empty && col + 1 + shown > width) {
			fputc('\n', out);
			col = 0;
			empty = 1;
		}
		if (col == 0)
			col = fprintf(out, "%*s", indent, "");
		else if (!empty)
			col += fprintf(out, " ");
		for (int i = 0; i < n; i++)
			if (p[i] != '`')
				fputc(p[i], out);
		col += shown;
		empty = 0;
		p += n;
	}
	fputc('\n', out);
}

void config_print_help(FILE *out)
{
	char text[640], values[192];
	fputs("settings (from the environment; unset or empty means the default):\n", out);
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		values_text(s, values, sizeof(values));
		snprintf(text, sizeof(text), "default %s; %s", default_text(s), values);
		print_wrapped(out, text, fprintf(out, "  %-26s ", s->name), 29, 79);
		if (s->alias)
			snprintf(text, sizeof(text), "%s (%s is its older name)", s->doc, s->alias);
		else
			snprintf(text, sizeof(text), "%s", s->doc);
		print_wrapped(out, text, 0, 6, 79);
	}
}

void config_print_markdown(FILE *out)
{
	char values[192];
	fputs("| variable | default | values | meaning |\n|---|---|---|---|\n", out);
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct config_setting *s = &config_settings[i];
		values_text(s, values, sizeof(values));
		fprintf(out, "| `%s` | %s | %s | ", s->name, default_text(s), values);
		/* A '|' in a doc would end its cell. */
		for (const char *p = s->doc; *p; p++)
			fputs(*p == '|' ? "\\|" : (char[]){ *p, '\0' }, out);
		if (s->alias)
			fprintf(out, " (`%s` is its older name)", s->alias);
		fputs(" |\n", out);
	}
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
