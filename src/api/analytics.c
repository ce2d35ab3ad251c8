/* /api/v1/analytics/… and the earlier API's aliases; cache administration. */
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../domain/analytics.h"
#include "../domain/users.h"
#include "../http/cached.h"
#include "../store/cache.h"
#include "../store/nearcache.h"
#include "api.h"
#include "../core/banned.h"

/* Hot, shared by every caller, invalidated by trip writes: near-cached. */
struct cache_family family_trips_total = { .label = "trips_total", .key = "analytics:trips:total", .ttl_s = 60, .near = 1 };
struct cache_family family_trips_localities = { .label = "trips_localities", .key = "analytics:trips:localities",
						.ttl_s = 60, .near = 1 };
struct cache_family family_revenue = { .label = "revenue", .key = "analytics:revenue", .ttl_s = 60, .near = 1 };
struct cache_family family_revenue_localities = { .label = "revenue_localities", .key = "analytics:revenue:localities",
						  .ttl_s = 60, .near = 1 };
struct cache_family family_users_active = { .label = "users_active", .key = "analytics:users:active", .ttl_s = 60,
					    .near = 1 };
struct cache_family family_users_count = { .label = "users_count", .key = "analytics:users:count", .ttl_s = 60,
					   .near = 1 };
static const char *const daily_query[] = { "days", NULL };
struct cache_family family_trips_daily = { .label = "trips_daily", .key = "analytics:trips:daily", .ttl_s = 60,
					   .query = daily_query, .near = 1 };
struct cache_family family_top_destinations = { .label = "top_destinations", .key = "station:{}:top-destinations",
						.ttl_s = 300, .near = 1 };

const struct cache_family *const analytics_trip_families[] = {
	&family_trips_total, &family_trips_localities, &family_revenue, &family_revenue_localities,
	&family_users_active, &family_trips_daily,
};
const size_t analytics_trip_families_count = sizeof(analytics_trip_families) / sizeof(analytics_trip_families[0]);

#define FILL(name, call)                                                                                    \
	static int fill_##name(struct request *req, struct worker *w, struct buf *out, struct api_error *err) \
	{                                                                                                    \
		return call(worker_read_db(w), &req->arena, out, err);                                       \
	}                                                                                                    \
	void name(struct request *req, struct worker *w)                                                     \
	{                                                                                                    \
		reply_cached(req, w, fill_##name);                                                           \
	}

FILL(analytics_trips_total_get, analytics_trips_total)
FILL(analytics_trips_localities_get, analytics_trips_localities)
FILL(analytics_revenue_get, analytics_revenue)
FILL(analytics_revenue_localities_get, analytics_revenue_localities)
FILL(users_active_count, users_active_total)
FILL(users_count, users_total)

static int fill_daily(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	const char *v = request_query(req, "days");
	int64_t days = 30;
	if (v && parse_int64(v, 1, 366, &days))
		return api_fail_field(err, "days", "must be an integer from 1 to 366");
	return analytics_trips_daily(worker_read_db(w), &req->arena, (int)days, out, err);
}

void analytics_trips_daily_get(struct request *req, struct worker *w)
{
	reply_cached(req, w, fill_daily);
}

static int fill_top(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return analytics_top_destinations(worker_read_db(w), &req->arena, req->ids[0], out, err);
}

void analytics_top_destinations_get(struct request *req, struct worker *w)
{
	reply_cached(req, w, fill_top);
}

void cache_stats_get(struct request *req, struct worker *w)
{
	unsigned long hits = 0, misses = 0;
	struct buf families = BUF_INIT;
	buf_addch(&families, '{');
	for (size_t i = 0; i < api_routes_count; i++) {
		const struct cache_family *f = api_routes[i].cache;
		int first = 1;
		for (size_t j = 0; j < i && f; j++)
			if (api_routes[j].cache == f)
				first = 0;
		if (!f || !first)
			continue;
		unsigned long h = __atomic_load_n(&f->hits, __ATOMIC_RELAXED);
		unsigned long m = __atomic_load_n(&f->misses, __ATOMIC_RELAXED) + __atomic_load_n(&f->bypasses, __ATOMIC_RELAXED);
		hits += h;
		misses += m;
		if (families.len > 1)
			buf_addch(&families, ',');
		buf_add_json_str(&families, f->label);
		buf_addf(&families, ":{\"hits\":%lu,\"misses\":%lu,\"fills\":%lu}", h, m,
			 __atomic_load_n(&f->fills, __ATOMIC_RELAXED));
	}
	buf_addch(&families, '}');
	long long used = -1;
	redisReply *rep = redis_command(&w->redis, &req->arena, "INFO memory");
	if (rep && rep->type == REDIS_REPLY_STRING) {
		const char *p = strstr(rep->str, "used_memory:");
		if (p)
			used = atoll(p + 12);
	}
	struct buf *b = reply(req, 200);
	buf_addf(b, "{\"hits\":%lu,\"misses\":%lu,\"hit_ratio\":%.4f,\"families\":%s,\"near_cache_entries\":%zu,",
		 hits, misses, hits + misses ? (double)hits / (double)(hits + misses) : 0.0, families.ptr,
		 nearcache_count());
	if (used >= 0)
		buf_addf(b, "\"redis_used_memory\":%lld}", used);
	else
		buf_adds(b, "\"redis_used_memory\":null}");
	buf_release(&families);
}

void cache_clear_post(struct request *req, struct worker *w)
{
	cache_clear_all(&w->redis, &req->arena);
	reply(req, 204);
}
