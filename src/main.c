/*
 * transitd: start-up, sub-commands, signals and graceful shutdown.
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/resource.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/async.h"
#include "api/live.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/xalloc.h"
#include "api/idempotency.h"
#include "api/keys.h"
#include "auth/auth.h"
#include "auth/session.h"
#include "domain/rail.h"
#include "domain/simulator.h"
#include "domain/trips.h"
#include "domain/users.h"
#include "http/ratelimit.h"
#include "domain/analytics.h"
#include "domain/cards.h"
#include "domain/network.h"
#include "domain/payments.h"
#include "http/cached.h"
#include "http/router.h"
#include "http/server.h"
#include "store/cache.h"
#include "store/migrate.h"
#include "store/nearcache.h"
#include "store/owners.h"
#include "store/replicas.h"
#include "version.h"
#include "core/banned.h"

#define EXIT_CONFIG 2

static const char usage[] =
	"usage: transitd <command> [options]\n"
	"\n"
	"commands:\n"
	"  serve            serve the HTTP API (default)\n"
	"  migrate          apply pending database migrations\n"
	"  seed --demo      load the demo network, riders and cards (idempotent)\n"
	"  seed --scale N   add a benchmark dataset: N users, 1.2 N cards, 3 N recharges\n"
	"  simulate [--once] move the demo's vehicles: arrivals pass, fall behind, are added\n"
	"                   (every SIMULATE_INTERVAL_MS; --once: one step)\n"
	"  payments expire  mark pending payments past their expiry as expired\n"
	"  routes [--table] print the route table (--table: handler, access, cache, how it runs)\n"
	"  config           print the settings below (--markdown: as README.md's table)\n"
	"  --version        print the version\n"
	"  --help           print this help\n"
	"\n"
	"A bad setting stops any command but routes and config with one line naming\n"
	"the variable (exit status 2).\n"
	"\n";

static void register_statements(const struct config *cfg)
{
	api_init(cfg);
	network_register();
	cards_register();
	idempotency_register();
	users_register_statements();
	trips_register();
	analytics_register();
	rail_register();
	async_register();
	simulator_register();
	payments_register();
}

static int need_database(const struct config *cfg)
{
	if (!*cfg->database_url) {
		fprintf(stderr, "transitd: DATABASE_URL is not set\n");
		return -1;
	}
	return 0;
}

/* Creates or updates an account of transitd's own; when its role or
 * password changed, its logins end (on every instance, if Redis can be
 * reached; otherwise access tokens run out within ACCESS_TOKEN_TTL and
 * refresh tokens are refused at once by the database). 0, 1 (someone
 * else's account, untouched) or -1. */
static int provision(const struct config *cfg, struct pg *pg, const struct account_spec *spec)
{
	int64_t user_id, revoked_ms;
	int rc = user_ensure_account(pg, spec, &user_id, &revoked_ms);
	if (rc || !revoked_ms)
		return rc;
	cache_configure(cfg);
	auth_configure_ttls(cfg);
	redisContext *c = redis_connect_raw(cfg, 1000);
	if (!c || session_revoke_user_raw(c, user_id, revoked_ms))
		fprintf(stderr, "transitd: Redis unreachable: access tokens of %s run out within ACCESS_TOKEN_TTL\n",
			spec->email);
	if (c)
		redisFree(c);
	return 0;
}

static int cmd_migrate(const struct config *cfg)
{
	struct pg pg;
	if (need_database(cfg))
		return EXIT_CONFIG;
	pg_init(&pg, cfg->database_url, cfg, 0);
	int rc = migrate_up(&pg);
	if (!rc && *cfg->admin_email) {
		if (strlen(cfg->admin_password) < 10) {
			fprintf(stderr, "transitd: ADMIN_PASSWORD must be at least 10 characters\n");
			rc = -1;
		} else {
			struct account_spec spec = { cfg->admin_email, cfg->admin_password, "Admin", "", ROLE_ADMIN,
						     "admin-env", 0 };
			rc = provision(cfg, &pg, &spec);
			if (rc == 1)
				fprintf(stderr, "transitd: ADMIN_EMAIL %s belongs to an account that was registered, "
						"not created by migrate; it is not made an admin. Choose another "
						"ADMIN_EMAIL, or have an admin change its role.\n", cfg->admin_email);
			else if (!rc)
				printf("admin account %s ready\n", cfg->admin_email);
		}
	}
	pg_close(&pg);
	return rc ? 1 : 0;
}

static int cmd_seed(const struct config *cfg, int argc, char **argv)
{
	char setup[96];
	const char *prefix = NULL;
	long n = 0;
	if (argc == 3 && !strcmp(argv[2], "--demo")) {
		prefix = "demo_";
		setup[0] = '\0';
	} else if (argc == 4 && !strcmp(argv[2], "--scale")) {
		char *end;
		n = strtol(argv[3], &end, 10);
		if (*end || n < 1 || n > 10000000) {
			fprintf(stderr, "transitd: seed --scale takes a number of users from 1 to 10000000\n");
			return EXIT_CONFIG;
		}
		prefix = "scale_";
		snprintf(setup, sizeof(setup), "SELECT set_config('transitd.scale', '%ld', true)", n);
	} else {
		fprintf(stderr, "usage: transitd seed --demo | --scale N\n");
		return EXIT_CONFIG;
	}
	if (need_database(cfg))
		return EXIT_CONFIG;
	struct pg pg;
	pg_init(&pg, cfg->database_url, cfg, 0);
	int rc = migrate_seed(&pg, prefix, setup[0] ? setup : NULL);
	/* The demo accounts of the local default; a password already set is kept. */
	static const struct {
		const char *email, *password, *first, *last;
		enum role role;
	} demo[] = {
		{ "admin@transitd.local", "admin-change-me", "Admin", "Transitd", ROLE_ADMIN },
		{ "operator@transitd.local", "operator-change-me", "Olga", "Operadora", ROLE_OPERATOR },
		{ "rider@transitd.local", "rider-change-me", "Ana", "Rodríguez", ROLE_RIDER },
	};
	for (size_t i = 0; !rc && !n && i < sizeof(demo) / sizeof(demo[0]); i++) {
		struct account_spec spec = { demo[i].email, demo[i].password, demo[i].first, demo[i].last,
					     demo[i].role, "seed", 1 };
		rc = provision(cfg, &pg, &spec);
		if (rc == 1) {
			fprintf(stderr, "transitd: %s was registered by someone before the seed ran; it is left "
					"as it is (not a demo account)\n", demo[i].email);
			rc = 0;
		}
	}
	pg_close(&pg);
	if (!rc && n)
		printf("scale data loaded for %ld users\n", n);
	else if (!rc)
		printf("demo data loaded\n");
	return rc ? 1 : 0;
}

/* Invalidates the arrivals of each station in ids ("1,2,3"), the way the
 * API's writes do, so that caches drop them and live boards re-read them. */
static void invalidate_arrivals(struct redis *redis, struct arena *a, const char *ids, uint64_t lsn)
{
	const char *keys[64];
	size_t n = 0;
	for (const char *p = ids; *p;) {
		size_t len = strcspn(p, ",");
		keys[n++] = family_key(a, &family_arrivals, strtoll(p, NULL, 10));
		p += len + (p[len] == ',');
		if (n == sizeof(keys) / sizeof(keys[0]) || !*p) {
			cache_invalidate(redis, a, keys, n, lsn);
			n = 0;
		}
	}
}

/* SIGINT and SIGTERM into *stop, blocked on this thread (and every thread
 * it starts after this) so that they wait for sigwait or sigtimedwait. */
static void block_stop_signals(sigset_t *stop)
{
	sigemptyset(stop);
	sigaddset(stop, SIGINT);
	sigaddset(stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, stop, NULL);
}

static int cmd_simulate(const struct config *cfg, int argc, char **argv)
{
	int once = argc == 3 && !strcmp(argv[2], "--once");
	if (argc > 3 || (argc == 3 && !once)) {
		fprintf(stderr, "usage: transitd simulate [--once]\n");
		return EXIT_CONFIG;
	}
	if (need_database(cfg))
		return EXIT_CONFIG;
	sigset_t stop;
	block_stop_signals(&stop);
	cache_configure(cfg);
	struct pg pg;
	struct redis redis;
	pg_init(&pg, cfg->database_url, cfg, 1);
	redis_init(&redis, cfg);
	/* WAL positions matter only to instances that read replicas. */
	int with_lsn = *cfg->replica_urls != '\0';
	int rc = 0;
	if (!once)
		log_msg(LOG_INFO, "simulator: a step every %d ms", cfg->simulate_interval_ms);
	for (;;) {
		struct arena a;
		struct api_error err;
		struct simulate_result res;
		arena_init(&a);
		if (simulate_step(&pg, &a, 0.005, &res, &err)) {
			log_msg(LOG_WARN, "simulator: %s", err.detail);
			rc = 1;
		} else if (res.skipped) {
			if (once)
				printf("simulate: another simulator is stepping; skipped\n");
			rc = 0;
		} else {
			invalidate_arrivals(&redis, &a, res.stations, with_lsn ? res.lsn : 0);
			if (once)
				printf("simulate: %ld arrivals passed, %ld added, %ld delayed, %ld arriving\n", res.passed,
				       res.added, res.delayed, res.arriving);
			else
				log_msg(LOG_DEBUG, "simulator: %ld arrivals passed, %ld added, %ld delayed, %ld arriving",
					res.passed, res.added, res.delayed, res.arriving);
			rc = 0;
		}
		arena_release(&a);
		if (once)
			break;
		struct timespec wait = { cfg->simulate_interval_ms / 1000, (cfg->simulate_interval_ms % 1000) * 1000000L };
		if (sigtimedwait(&stop, NULL, &wait) >= 0)
			break;
	}
	redis_close(&redis);
	pg_close(&pg);
	return rc;
}

/* `payments expire`: for cron (deploy/k8s/payments-expire-cronjob.yaml).
 * Readers already see a stale pending payment as expired; this writes it. */
static int cmd_payments(const struct config *cfg, int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[2], "expire")) {
		fprintf(stderr, "usage: transitd payments expire\n");
		return EXIT_CONFIG;
	}
	if (need_database(cfg))
		return EXIT_CONFIG;
	struct pg pg;
	struct arena a;
	struct api_error err;
	int64_t n = 0;
	pg_init(&pg, cfg->database_url, cfg, 1);
	arena_init(&a);
	int rc = payments_expire(&pg, &a, &n, &err);
	if (rc)
		fprintf(stderr, "transitd: payments expire: %s\n", err.detail);
	else
		printf("%lld pending payments expired\n", (long long)n);
	arena_release(&a);
	pg_close(&pg);
	return rc ? 1 : 0;
}

/* Who may call a route, in words. */
static const char *route_roles(unsigned roles)
{
	switch (roles) {
	case 0: return "public";
	case ROLE_ANY: return "signed in";
	case ROLE_STAFF: return "operator, admin";
	default: return roles == ROLE_ADMIN ? "admin" : roles == ROLE_OPERATOR ? "operator" : "rider";
	}
}

/* "METHOD /pattern" per line; with --table, a Markdown table that also
 * names each route's handler, who may call it, its cache key and how it
 * runs (the README's "Where things are" starts from it). */
static int cmd_routes(int argc, char **argv)
{
	int table = argc > 2 && !strcmp(argv[2], "--table");
	if (table)
		printf("| route | handler | who | cache key (TTL) | runs |\n|---|---|---|---|---|\n");
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct route *r = &api_routes[i];
		const char *method = router_method_name(r->method);
		if (!table) {
			printf("%s %s\n", method, r->pattern);
			continue;
		}
		char cache[128] = "";
		if (r->cache)
			snprintf(cache, sizeof(cache), "`%s` (%d s%s)", r->cache->key, r->cache->ttl_s,
				 r->cache->near ? ", near" : "");
		printf("| `%s %s` | `%s` | %s | %s | %s%s%s |\n", method, r->pattern, r->handler_name,
		       route_roles(r->roles), cache,
		       r->flags & ROUTE_INLINE ? "I/O thread" : r->prepare ? "password pool, worker" : "worker",
		       r->flags & ROUTE_ASYNC ? ", async" : "", r->lane ? ", card lane" : "");
	}
	return 0;
}

/* Connections need descriptors: take the hard limit, and keep MAX_CONNECTIONS
 * below it with room for database, Redis and refused connections. */
static void raise_open_files_limit(struct config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	long room = (long)rl.rlim_cur - 3L * cfg->workers - 1100;
	if (room < 16)
		room = 16;
	if (cfg->max_connections > room) {
		log_msg(LOG_WARN, "MAX_CONNECTIONS lowered from %d to %ld: the open files limit is %ld",
			cfg->max_connections, room, (long)rl.rlim_cur);
		cfg->max_connections = (int)room;
	}
}

/* Invalidations reach the card owner map too (a card blocked or given away). */
static void owner_dropped(const char *key)
{
	owners_invalidated(key, cache_prefix());
}

/* Refuses to serve a database it cannot reach or whose schema is newer
 * than this binary; pending migrations only warn. 0, or the exit status. */
static int check_schema(const struct config *cfg)
{
	struct pg pg;
	int version;
	pg_init(&pg, cfg->database_url, cfg, 0);
	int rc = migrate_check(&pg, &version);
	pg_close(&pg);
	if (rc < 0) {
		fprintf(stderr, "transitd: cannot reach the database at DATABASE_URL\n");
		return 1;
	}
	if (rc == 2) {
		fprintf(stderr, "transitd: the database schema (version %d) is newer than this binary knows (%d); "
				"refusing to start\n", version, migrate_known_version());
		return 1;
	}
	if (rc == 1)
		log_msg(LOG_WARN, "database migrations are pending: run `transitd migrate`; /readyz answers 503");
	return 0;
}

/* The modules' settings, before any thread starts. 0, or the exit status. */
static int configure_modules(const struct config *cfg)
{
	char err[256];
	if (auth_configure(cfg, err, sizeof(err)) || payments_configure(cfg, err, sizeof(err))) {
		fprintf(stderr, "transitd: %s\n", err);
		return EXIT_CONFIG;
	}
	if (payment_provider()->sandbox)
		log_msg(LOG_WARN, "PAYMENT_PROVIDER=sandbox: riders approve their own top-ups on /checkout and no money "
				  "is collected; set PAYMENT_PROVIDER=external in production");
	revocation_fail_open(cfg->auth_fail_open);
	session_keep_keys();
	ratelimit_configure(cfg->rate_limit_fail_closed);
	auth_api_configure(cfg);
	cards_api_configure(cfg);
	return 0;
}

/* The caches in memory and the invalidation subscriber; returns once the
 * revocation list is loaded (or after 3 s without Redis: tokens are then
 * refused or accepted as AUTH_FAIL_OPEN says). */
static void start_caches(const struct config *cfg)
{
	nearcache_init(16384);
	owners_init(1 << 18);
	cached_set_near_ttl((unsigned)cfg->near_cache_ttl_ms);
	cache_configure(cfg);
	cache_on_drop(owner_dropped);
	redis_breaker_configure(cfg->redis_breaker_failures, cfg->redis_breaker_window_ms);
	static const struct cache_listener revocations = {
		session_load_revocations, revocation_set_current, session_apply_message, live_invalidated,
	};
	cache_subscriber_start(cfg, &revocations);
	for (int i = 0; i < 300 && !revocation_is_current(); i++)
		usleep(10 * 1000);
}

/* "METHOD /pattern" of each route, the labels of its metrics (route_labels_free). */
static const char **route_labels(void)
{
	const char **labels = xcalloc(api_routes_count, sizeof(*labels));
	for (size_t i = 0; i < api_routes_count; i++) {
		const char *m = router_method_name(api_routes[i].method);
		size_t n = strlen(m) + strlen(api_routes[i].pattern) + 2;
		char *l = xmalloc(n);
		snprintf(l, n, "%s %s", m, api_routes[i].pattern);
		labels[i] = l;
	}
	return labels;
}

static void route_labels_free(const char **labels)
{
	for (size_t i = 0; i < api_routes_count; i++)
		free((char *)labels[i]);
	free(labels);
}

/* After SIGTERM or SIGINT: /readyz answers 503 for SHUTDOWN_DELAY_MS while
 * the instance still serves, then requests in flight are let finish and
 * everything stops, in the order each part needs. */
static void shut_down(const struct config *cfg, int sig)
{
	server_begin_drain();
	if (cfg->shutdown_delay_ms > 0) {
		log_msg(LOG_INFO, "signal %d: /readyz answers 503; closing in %d ms", sig, cfg->shutdown_delay_ms);
		struct timespec ts = { cfg->shutdown_delay_ms / 1000, (cfg->shutdown_delay_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts))
			;
	}
	log_msg(LOG_INFO, "signal %d: draining %d in-flight requests", sig, server_inflight());
	live_stop(); /* before the I/O threads go: it publishes to their streams */
	server_stop(cfg->shutdown_timeout_s);
	async_stop();
	replicas_stop();
	cache_subscriber_stop();
	nearcache_free();
	owners_free();
	static_free();
}

static int cmd_serve(struct config *cfg)
{
	if (need_database(cfg))
		return EXIT_CONFIG;
	int rc = check_schema(cfg);
	if (!rc)
		rc = configure_modules(cfg);
	if (rc)
		return rc;

	/* Signals go to this thread only: every thread started below inherits the mask. */
	sigset_t stop;
	block_stop_signals(&stop);
	signal(SIGPIPE, SIG_IGN);

	raise_open_files_limit(cfg);
	static_load(cfg->web_dir);
	start_caches(cfg);
	const char **labels = route_labels();
	metrics_init(labels, api_routes_count);

	server_on_stream_closed(live_stream_closed);
	if (replicas_start(cfg) || server_start(cfg, api_routes, api_routes_count, async_submit) ||
	    async_start(cfg, api_routes, api_routes_count) || live_start(cfg)) {
		replicas_stop();
		cache_subscriber_stop();
		return 1;
	}
	log_msg(LOG_INFO, "transitd %s listening on http://%s:%d (%d I/O threads, %d workers)", TRANSITD_VERSION,
		cfg->bind, cfg->port, cfg->io_threads, cfg->workers);

	int sig;
	sigwait(&stop, &sig);
	shut_down(cfg, sig);
	route_labels_free(labels);
	log_msg(LOG_INFO, "stopped");
	return 0;
}

/* `config`: the settings table, as text or as the README's Markdown. It
 * reads no variable, so it works whatever the environment holds. */
static int cmd_config(int argc, char **argv)
{
	if (argc == 2) {
		config_print_help(stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[2], "--markdown")) {
		config_print_markdown(stdout);
		return 0;
	}
	fprintf(stderr, "usage: transitd config [--markdown]\n");
	return EXIT_CONFIG;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "serve";
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(usage, stdout);
		config_print_help(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version")) {
		printf("transitd %s\n", TRANSITD_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "routes"))
		return cmd_routes(argc, argv);
	if (!strcmp(cmd, "config"))
		return cmd_config(argc, argv);

	struct config cfg;
	char err[256];
	if (config_load(&cfg, err, sizeof(err))) {
		fprintf(stderr, "transitd: %s\n", err);
		return EXIT_CONFIG;
	}
	log_set_level(cfg.log_level);
	if (sodium_init() < 0) {
		fprintf(stderr, "transitd: libsodium failed to initialise\n");
		return 1;
	}
	register_statements(&cfg);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (!strcmp(cmd, "serve"))
		return cmd_serve(&cfg);
	if (!strcmp(cmd, "migrate"))
		return cmd_migrate(&cfg);
	if (!strcmp(cmd, "seed"))
		return cmd_seed(&cfg, argc, argv);
	if (!strcmp(cmd, "simulate"))
		return cmd_simulate(&cfg, argc, argv);
	if (!strcmp(cmd, "payments"))
		return cmd_payments(&cfg, argc, argv);
	fprintf(stderr, "transitd: unknown command '%s'\n%s", cmd, usage);
	return EXIT_CONFIG;
}
