/* GET /api/v1/localities, /stations…, /routes… : cached network reads. */
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../core/text.h"
#include "../domain/network.h"
#include "../http/cached.h"
#include "../store/cache.h"
#include "api.h"
#include "keys.h"
#include "params.h"
#include "../core/banned.h"

static const char *const station_query[] = { "locality", "type", "limit", "cursor", NULL };
static const char *const alerts_query[] = { "active_only", NULL };

static int normalize_stations(struct request *req, const char **v, struct api_error *err);
static int normalize_alerts(struct request *req, const char **v, struct api_error *err);

struct cache_family family_localities = { .label = "localities", .key = "localities", .ttl_s = 3600, .near = 1 };
struct cache_family family_stations = { .label = "stations", .key = "stations", .ttl_s = 300,
					.query = station_query, .near = 1,
					.normalize = normalize_stations };
struct cache_family family_station = { .label = "station", .key = "station:{}", .ttl_s = 300, .near = 1 };
struct cache_family family_arrivals = { .label = "arrivals", .key = "station:{}:arrivals", .ttl_s = 15, .near = 1 };
struct cache_family family_alerts = { .label = "alerts", .key = "station:{}:alerts", .ttl_s = 60,
				      .query = alerts_query, .near = 1,
				      .normalize = normalize_alerts };
struct cache_family family_routes = { .label = "routes", .key = "routes", .ttl_s = 300, .near = 1 };
struct cache_family family_route = { .label = "route", .key = "route:{}", .ttl_s = 300, .near = 1 };

static int valid_station_type(const char *t)
{
	return !strcmp(t, "portal") || !strcmp(t, "trunk") || !strcmp(t, "cable") || !strcmp(t, "zonal") ||
	       !strcmp(t, "rail");
}

/* locality (folded), type, limit, cursor. */
static int normalize_stations(struct request *req, const char **v, struct api_error *err)
{
	if (v[0] && strlen(v[0]) > 64)
		return api_fail_field(err, "locality", "must be at most 64 characters");
	if (v[0])
		v[0] = text_fold(&req->arena, v[0]);
	if (v[0] && !*v[0])
		v[0] = NULL;
	if (v[1] && !*v[1])
		v[1] = NULL;
	if (v[1] && !valid_station_type(v[1]))
		return api_fail_field(err, "type", "must be one of portal, trunk, cable, zonal, rail");
	return query_page_canonical(req, &v[2], &v[3], err);
}

/* active_only: true unless "false". */
static int normalize_alerts(struct request *req, const char **v, struct api_error *err)
{
	(void)req;
	if (!v[0] || !strcmp(v[0], "true"))
		v[0] = "true";
	else if (strcmp(v[0], "false"))
		return api_fail_field(err, "active_only", "must be true or false");
	return 0;
}

static int fill_localities(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return network_localities(worker_read_db(w), &req->arena, out, err);
}

/* The query is canonical already: normalize_stations checked and rewrote it
 * on the I/O thread (an empty value is absent). */
static int fill_stations(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	struct station_filter f = { .locality = request_query(req, "locality"), .type = request_query(req, "type") };
	if (query_page(req, &f.limit, &f.after_id, err))
		return -1;
	return network_stations(worker_read_db(w), &req->arena, &f, out, err);
}

static int fill_station(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return network_station(worker_read_db(w), &req->arena, req->ids[0], out, err);
}

static int fill_arrivals(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return network_arrivals(worker_read_db(w), &req->arena, req->ids[0], out, err);
}

static int fill_alerts(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	const char *v = request_query(req, "active_only");
	int active_only = 1;
	if (v && !strcmp(v, "false"))
		active_only = 0;
	else if (v && strcmp(v, "true"))
		return api_fail_field(err, "active_only", "must be true or false");
	return network_alerts(worker_read_db(w), &req->arena, req->ids[0], active_only, out, err);
}

static int fill_routes(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return network_routes(worker_read_db(w), &req->arena, out, err);
}

static int fill_route(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return network_route(worker_read_db(w), &req->arena, req->ids[0], out, err);
}

void localities_list(struct request *req, struct worker *w) { reply_cached(req, w, fill_localities); }
void stations_list(struct request *req, struct worker *w) { reply_cached(req, w, fill_stations); }
void station_get(struct request *req, struct worker *w) { reply_cached(req, w, fill_station); }
void station_arrivals(struct request *req, struct worker *w) { reply_cached(req, w, fill_arrivals); }
void station_alerts(struct request *req, struct worker *w) { reply_cached(req, w, fill_alerts); }
void routes_list(struct request *req, struct worker *w) { reply_cached(req, w, fill_routes); }
void route_get(struct request *req, struct worker *w) { reply_cached(req, w, fill_route); }

/* Drops the alert lists of every station an alert write touched (ids,
 * comma-separated). */
static void invalidate_alerts(struct request *req, struct worker *w, const char *stations)
{
	const char *keys[256];
	size_t n = 0;
	for (const char *p = stations; *p && n < sizeof(keys) / sizeof(keys[0]);) {
		char *end;
		keys[n++] = family_key(&req->arena, &family_alerts, strtoll(p, &end, 10));
		p = end + (*end == ',');
	}
	worker_invalidate(w, &req->arena, keys, n);
}

void alerts_create(struct request *req, struct worker *w)
{
	struct api_error e;
	struct alert al = { 0 };
	const char *stations;
	if (json_get_str(req->json, "message", 1, 2000, &al.message, &e) ||
	    json_get_str(req->json, "severity", 1, 16, &al.severity, &e) ||
	    json_get_str(req->json, "alert_type", 0, 40, &al.alert_type, &e) ||
	    json_get_int(req->json, "station_id", 0, 1, INT32_MAX, &al.station_id, NULL, &e) ||
	    json_get_int(req->json, "route_id", 0, 1, INT32_MAX, &al.route_id, NULL, &e) ||
	    json_get_time(req->json, "start_timestamp", 0, &al.start, &e) ||
	    json_get_time(req->json, "end_timestamp", 0, &al.end, &e))
		goto fail;
	if (!*al.message) {
		api_fail_field(&e, "message", "must not be empty");
		goto fail;
	}
	if (strcmp(al.severity, "INFO") && strcmp(al.severity, "WARNING") && strcmp(al.severity, "CRITICAL")) {
		api_fail_field(&e, "severity", "must be INFO, WARNING or CRITICAL");
		goto fail;
	}
	if (alert_create(&w->primary, &req->arena, &al, reply(req, 201), &stations, &e))
		goto fail;
	invalidate_alerts(req, w, stations);
	return;
fail:
	reply_problem(req, &e);
}

void alerts_end(struct request *req, struct worker *w)
{
	struct api_error e;
	const char *end, *stations;
	if (json_get_time(req->json, "end_timestamp", 1, &end, &e) ||
	    alert_end(&w->primary, &req->arena, req->ids[0], end, reply(req, 200), &stations, &e))
		goto fail;
	invalidate_alerts(req, w, stations);
	return;
fail:
	reply_problem(req, &e);
}
