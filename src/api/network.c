/* GET /api/v1/localities, /stations…, /routes… : cached network reads. */
#include <string.h>

#include "../core/json.h"
#include "../domain/network.h"
#include "../http/cached.h"
#include "../store/cache.h"
#include "api.h"
#include "params.h"
#include "../core/banned.h"

static const char *const station_query[] = { "locality", "type", "limit", "cursor", NULL };
static const char *const alerts_query[] = { "active_only", NULL };

struct cache_family family_localities = { .label = "localities", .key = "localities", .ttl_s = 3600, .near = 1 };
struct cache_family family_stations = { .label = "stations", .key = "stations", .ttl_s = 300,
					.query = station_query, .near = 1 };
struct cache_family family_station = { .label = "station", .key = "station:{}", .ttl_s = 300, .near = 1 };
struct cache_family family_arrivals = { .label = "arrivals", .key = "station:{}:arrivals", .ttl_s = 15, .near = 1 };
struct cache_family family_alerts = { .label = "alerts", .key = "station:{}:alerts", .ttl_s = 60,
				      .query = alerts_query, .near = 1 };
struct cache_family family_routes = { .label = "routes", .key = "routes", .ttl_s = 300, .near = 1 };
struct cache_family family_route = { .label = "route", .key = "route:{}", .ttl_s = 300, .near = 1 };

static int fill_localities(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	return network_localities(worker_read_db(w), &req->arena, out, err);
}

static int fill_stations(struct request *req, struct worker *w, struct buf *out, struct api_error *err)
{
	struct station_filter f = { 0 };
	f.locality = request_query(req, "locality");
	f.type = request_query(req, "type");
	if (query_page(req, &f.limit, &f.after_id, err))
		return -1;
	if (f.locality && !*f.locality)
		f.locality = NULL;
	if (f.type && !*f.type)
		f.type = NULL;
	if (f.type && strcmp(f.type, "portal") && strcmp(f.type, "trunk") && strcmp(f.type, "cable") &&
	    strcmp(f.type, "zonal") && strcmp(f.type, "rail"))
		return api_fail_field(err, "type", "must be one of portal, trunk, cable, zonal, rail");
	if (f.locality && strlen(f.locality) > 64)
		return api_fail_field(err, "locality", "must be at most 64 characters");
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
