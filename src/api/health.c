/* Health, readiness and metrics. */
#include <stdio.h>
#include <string.h>

#include "../core/metrics.h"
#include "../http/evloop.h"
#include "../http/lanes.h"
#include "../http/server.h"
#include "../http/worker.h"
#include "../store/cache.h"
#include "../store/migrate.h"
#include "../store/nearcache.h"
#include "../store/replicas.h"
#include "../version.h"
#include "api.h"
#include "async.h"
#include "../core/banned.h"

static uint64_t started_ns;

static const struct sql_stmt stmts[] = {
	{ "health_ping", "SELECT 1" },
};

void api_init(const struct config *cfg)
{
	started_ns = now_ns();
	pg_register(stmts, 1);
	(void)cfg;
}

void health_live(struct request *req, struct worker *w)
{
	(void)w;
	buf_adds(reply(req, 200), "{\"status\":\"alive\"}");
}

void health_status(struct request *req, struct worker *w)
{
	(void)w;
	buf_addf(reply(req, 200), "{\"status\":\"healthy\",\"version\":\"%s\",\"uptime_s\":%llu}", TRANSITD_VERSION,
		 (unsigned long long)((now_ns() - started_ns) / 1000000000u));
}

static void unhealthy(struct request *req, const char *error, const char *extra)
{
	struct buf *b = reply(req, 503);
	buf_adds(b, "{\"status\":\"unhealthy\",\"error\":");
	buf_add_json_str(b, error);
	buf_adds(b, extra);
	buf_addch(b, '}');
	reply_header(req, "Retry-After", "1");
}

void health_db(struct request *req, struct worker *w)
{
	struct api_error err;
	uint64_t t0 = now_ns();
	struct buf pools = BUF_INIT;
	buf_adds(&pools, ",\"replicas\":[");
	for (int i = 0; i < replicas_count(); i++) {
		struct replica_status st;
		replicas_status(i, &st);
		if (i)
			buf_addch(&pools, ',');
		buf_adds(&pools, "{\"url\":");
		buf_add_json_str(&pools, st.url);
		buf_addf(&pools, ",\"role\":\"replica\",\"up\":%s,\"lag_ms\":", st.up ? "true" : "false");
		if (st.lag_ms < 0)
			buf_adds(&pools, "null");
		else
			buf_add_i64(&pools, st.lag_ms);
		buf_addf(&pools, ",\"replay_lsn\":\"%X/%X\",\"reads\":%lu,\"skipped\":%lu}",
			 (unsigned)(st.replay_lsn >> 32), (unsigned)st.replay_lsn, st.reads, st.skipped);
	}
	buf_addch(&pools, ']');
	if (!pg_exec(&w->primary, &req->arena, &stmts[0], 0, NULL, &err))
		unhealthy(req, err.detail, pools.ptr);
	else
		buf_addf(reply(req, 200), "{\"status\":\"healthy\",\"role\":\"primary\",\"latency_ms\":%.3f%s}",
			 (double)(now_ns() - t0) / 1e6, pools.ptr);
	buf_release(&pools);
}

static const char *breaker_name(void)
{
	switch (redis_breaker_state()) {
	case BREAKER_OPEN: return "open";
	case BREAKER_HALF_OPEN: return "half-open";
	default: return "closed";
	}
}

void health_cache(struct request *req, struct worker *w)
{
	uint64_t t0 = now_ns();
	redisReply *rep = redis_command(&w->redis, &req->arena, "PING");
	char extra[64];
	snprintf(extra, sizeof(extra), ",\"breaker\":\"%s\"", breaker_name());
	if (!rep) {
		unhealthy(req, "redis is unreachable or the circuit breaker is open", extra);
		return;
	}
	buf_addf(reply(req, 200), "{\"status\":\"healthy\",\"latency_ms\":%.3f%s}", (double)(now_ns() - t0) / 1e6,
		 extra);
}

void health_queue(struct request *req, struct worker *w)
{
	struct api_error err;
	if (!*w->broker.cfg->amqp_url) { /* no broker: async requests run synchronously */
		buf_adds(reply(req, 200), "{\"status\":\"disabled\"}");
		return;
	}
	uint64_t t0 = now_ns();
	long ready, consumers, dead;
	if (broker_depth(&w->broker, &ready, &consumers, &dead, &err)) {
		unhealthy(req, err.detail, "");
		return;
	}
	struct buf *b = reply(req, 200);
	buf_addf(b, "{\"status\":\"healthy\",\"latency_ms\":%.3f,\"queue\":", (double)(now_ns() - t0) / 1e6);
	buf_add_json_str(b, w->broker.cfg->amqp_queue);
	buf_addf(b, ",\"ready\":%ld,\"consumers\":%ld,\"unacked\":%ld,\"dead_lettered\":%ld}", ready, consumers,
		 async_unacked(), dead);
}

void health_ready(struct request *req, struct worker *w)
{
	int version;
	if (server_draining()) {
		/* stopping: load balancers take this instance out before it closes */
		reply_header(req, "Retry-After", "1");
		buf_adds(reply(req, 503), "{\"status\":\"draining\"}");
		return;
	}
	int rc = migrate_check(&w->primary, &version);
	if (rc == 0) {
		buf_addf(reply(req, 200), "{\"status\":\"ready\",\"schema_version\":%d}", version);
		return;
	}
	struct buf *b = reply(req, 503);
	reply_header(req, "Retry-After", "1");
	buf_addf(b, "{\"status\":\"not-ready\",\"error\":\"%s\"}",
		 rc < 0 ? "database unreachable" : rc == 1 ? "migrations pending" : "database schema is newer than this binary");
}

static void gauge(struct buf *b, const char *name, const char *help, double v)
{
	buf_addf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v);
}

void metrics_get(struct request *req, struct worker *w)
{
	(void)w;
	struct buf *b = reply(req, 200);
	req->res.content_type = "text/plain; version=0.0.4; charset=utf-8";
	metrics_render(b);
	gauge(b, "transitd_job_queue_depth", "Requests waiting for a worker.", workers_queue_depth());
	gauge(b, "transitd_workers_busy", "Workers running a request (each holds one database connection).",
	      workers_busy());
	gauge(b, "transitd_workers", "Worker threads, and so primary database connections.", workers_count());
	gauge(b, "transitd_inflight_requests", "Requests accepted and not yet answered.", server_inflight());
	gauge(b, "transitd_lane_parked", "Card writes waiting behind a write of the same card (no worker held).",
	      (double)lanes_parked());
	buf_addf(b, "# HELP transitd_lane_batches_total Batches of one card's waiting writes run together.\n"
		    "# TYPE transitd_lane_batches_total counter\ntransitd_lane_batches_total %lu\n"
		    "# HELP transitd_lane_batched_total Card writes that ran in such a batch.\n"
		    "# TYPE transitd_lane_batched_total counter\ntransitd_lane_batched_total %lu\n",
		 lanes_batches(), lanes_batched());
	gauge(b, "transitd_http_connections", "Open client connections.", evloop_connections());
	async_metrics(b);
	if (replicas_count()) {
		buf_adds(b, "# HELP transitd_db_replica_up Read replica answering (1) or not (0).\n"
			    "# TYPE transitd_db_replica_up gauge\n");
		struct replica_status st[16];
		int n = replicas_count() < 16 ? replicas_count() : 16;
		for (int i = 0; i < n; i++) {
			replicas_status(i, &st[i]);
			buf_addf(b, "transitd_db_replica_up{replica=\"%d\"} %d\n", i, st[i].up);
		}
		buf_adds(b, "# HELP transitd_db_replica_lag_ms How long ago the primary was where the replica is (-1 unknown).\n"
			    "# TYPE transitd_db_replica_lag_ms gauge\n");
		for (int i = 0; i < n; i++)
			buf_addf(b, "transitd_db_replica_lag_ms{replica=\"%d\"} %lld\n", i, (long long)st[i].lag_ms);
		buf_adds(b, "# HELP transitd_db_reads_total Cache fills by the database that served them.\n"
			    "# TYPE transitd_db_reads_total counter\n");
		for (int i = 0; i < n; i++)
			buf_addf(b, "transitd_db_reads_total{pool=\"replica\",replica=\"%d\"} %lu\n"
				    "transitd_db_reads_total{pool=\"primary\",replica=\"%d\"} %lu\n",
				 i, st[i].reads, i, st[i].skipped);
	}
	buf_addf(b, "# HELP transitd_http_connections_refused_total Connections answered at once and closed, by cap.\n"
		    "# TYPE transitd_http_connections_refused_total counter\n"
		    "transitd_http_connections_refused_total{reason=\"capacity\"} %lu\n"
		    "transitd_http_connections_refused_total{reason=\"client\"} %lu\n",
		 evloop_refused_capacity(), evloop_refused_client());
	buf_addf(b, "# HELP transitd_http_timeouts_total Connections closed by a header, body, idle or send timeout.\n"
		    "# TYPE transitd_http_timeouts_total counter\ntransitd_http_timeouts_total %lu\n",
		 evloop_timeouts());
	gauge(b, "transitd_near_cache_entries", "Entries in the in-process near-cache.", (double)nearcache_count());
	gauge(b, "transitd_redis_breaker_state", "Redis circuit breaker: 0 closed, 1 open, 2 half-open.",
	      redis_breaker_state());
	gauge(b, "transitd_uptime_seconds", "Seconds since start.", (double)(now_ns() - started_ns) / 1e9);
	buf_addf(b, "# HELP transitd_redis_failures_total Redis calls that failed or timed out.\n"
		    "# TYPE transitd_redis_failures_total counter\ntransitd_redis_failures_total %lu\n"
		    "# HELP transitd_redis_breaker_opened_total Times the Redis circuit breaker opened.\n"
		    "# TYPE transitd_redis_breaker_opened_total counter\ntransitd_redis_breaker_opened_total %lu\n"
		    "# HELP transitd_redis_hedged_total Cache reads that stopped waiting for a slow Redis (REDIS_HEDGE_MS).\n"
		    "# TYPE transitd_redis_hedged_total counter\ntransitd_redis_hedged_total %lu\n",
		 redis_failures_total(), redis_breaker_opened_total(), redis_hedged_total());
	buf_adds(b, "# HELP transitd_cache_requests_total Cached reads by family and result.\n"
		    "# TYPE transitd_cache_requests_total counter\n");
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct cache_family *f = api_routes[i].cache;
		int first = 1;
		for (size_t j = 0; j < i; j++)
			if (api_routes[j].cache == f)
				first = 0;
		if (!f || !first)
			continue;
		buf_addf(b, "transitd_cache_requests_total{family=\"%s\",result=\"hit\"} %lu\n", f->label, f->hits);
		buf_addf(b, "transitd_cache_requests_total{family=\"%s\",result=\"miss\"} %lu\n", f->label, f->misses);
		buf_addf(b, "transitd_cache_requests_total{family=\"%s\",result=\"bypass\"} %lu\n", f->label,
			 f->bypasses);
	}
}
