#include "network.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "document.h"
#include "paging.h"
#include "../core/banned.h"

enum {
	LOCALITIES,
	LOCALITY_RESOLVE,
	STATIONS,
	STATION,
	ARRIVALS,
	ALERTS,
	ROUTES,
	ROUTE,
	ALERT_CREATE,
	ALERT_END,
	PLACE_CHECK,
	ALERTS_NEXT_CHANGE,
};

static const struct sql_stmt stmts[] = {
	[LOCALITIES] = { "network_localities",
		"SELECT json_build_object('localities', coalesce(json_agg(json_build_object("
		"  'locality_id', l.locality_id, 'name', l.name,"
		"  'station_count', (SELECT count(*) FROM stations s WHERE s.locality_id = l.locality_id))"
		"  ORDER BY l.locality_id), '[]'))::text FROM localities l" },
	[LOCALITY_RESOLVE] = { "network_locality_resolve",
		"SELECT locality_id FROM localities WHERE fold_name(name) = fold_name($1) OR locality_id::text = $1" },
	/* Keyset paging (paging.h), by id. */
	[STATIONS] = { "network_stations",
		"WITH " PAGE_OLDEST_FIRST("SELECT station_id, doc FROM station_doc"
			" WHERE ($1::smallint IS NULL OR locality_id = $1) AND ($2::text IS NULL OR station_type = $2)",
			"station_id", "$3", "$4")
		" SELECT json_build_object(" PAGE_MEMBERS_OLDEST_FIRST("stations", "s.doc", "station_id", "$4") ")::text" },
	/* The station document with its routes added last (json_append keeps the order of the members). */
	[STATION] = { "network_station",
		"SELECT json_append(d.doc, 'routes', coalesce((SELECT json_agg(json_build_object("
		"  'route_id', r.route_id, 'route_code', r.route_code, 'name', r.name, 'route_type', r.route_type)"
		"  ORDER BY r.route_code) FROM route_stops rs JOIN routes r USING (route_id)"
		"  WHERE rs.station_id = d.station_id AND r.is_active), '[]'))::text"
		" FROM station_doc d WHERE d.station_id = $1" },
	[ARRIVALS] = { "network_arrivals",
		"SELECT json_build_object('station_id', s.station_id, 'arrivals', coalesce((SELECT json_agg("
		"  json_build_object('route_id', a.route_id, 'route_code', r.route_code, 'vehicle_id', a.vehicle_id,"
		"    'vehicle_code', v.vehicle_code, 'estimated_arrival_time', rfc3339(a.estimated_arrival_time),"
		"    'status', a.status) ORDER BY a.estimated_arrival_time, r.route_code)"
		"  FROM arrivals a JOIN routes r USING (route_id) LEFT JOIN vehicles v USING (vehicle_id)"
		"  WHERE a.station_id = s.station_id"
		"    AND a.estimated_arrival_time BETWEEN now() AND now() + interval '60 minutes'), '[]'))::text"
		" FROM stations s WHERE s.station_id = $1" },
	/* Alerts on the station itself or on any route that serves it. */
	[ALERTS] = { "network_alerts",
		"SELECT json_build_object('station_id', s.station_id, 'alerts', coalesce((SELECT json_agg("
		"  json_build_object('alert_id', al.alert_id, 'severity', al.severity, 'alert_type', al.alert_type,"
		"    'message', al.message, 'station_id', al.station_id, 'route_id', al.route_id,"
		"    'start_timestamp', rfc3339(al.start_timestamp), 'end_timestamp', rfc3339(al.end_timestamp))"
		"    ORDER BY al.start_timestamp DESC, al.alert_id DESC)"
		"  FROM alerts al WHERE (al.station_id = s.station_id"
		"      OR al.route_id IN (SELECT route_id FROM route_stops WHERE station_id = s.station_id))"
		"    AND (NOT $2::bool OR (al.start_timestamp <= now()"
		"         AND (al.end_timestamp IS NULL OR al.end_timestamp > now())))), '[]'))::text"
		" FROM stations s WHERE s.station_id = $1" },
	[ROUTES] = { "network_routes",
		"SELECT json_build_object('routes', coalesce(json_agg(json_build_object("
		"  'route_id', r.route_id, 'route_code', r.route_code, 'name', r.name, 'route_type', r.route_type,"
		"  'color', r.color, 'is_active', r.is_active,"
		"  'stop_count', (SELECT count(*) FROM route_stops rs WHERE rs.route_id = r.route_id))"
		"  ORDER BY r.route_id), '[]'))::text FROM routes r" },
	[ROUTE] = { "network_route",
		"SELECT json_build_object('route_id', r.route_id, 'route_code', r.route_code, 'name', r.name,"
		"  'route_type', r.route_type, 'color', r.color, 'is_active', r.is_active,"
		"  'stop_count', (SELECT count(*) FROM route_stops rs WHERE rs.route_id = r.route_id),"
		"  'stops', coalesce((SELECT json_agg(json_build_object('stop_sequence', rs.stop_sequence,"
		"    'station_id', s.station_id, 'station_code', s.station_code, 'name', s.name,"
		"    'station_type', s.station_type) ORDER BY rs.stop_sequence)"
		"    FROM route_stops rs JOIN stations s USING (station_id) WHERE rs.route_id = r.route_id), '[]'))::text"
		" FROM routes r WHERE r.route_id = $1" },
	/* The alert and the stations whose alert lists it changes. */
#define ALERT_RESULT \
	"SELECT json_build_object('alert_id', a.alert_id, 'severity', a.severity, 'alert_type', a.alert_type," \
	"  'message', a.message, 'station_id', a.station_id, 'route_id', a.route_id," \
	"  'start_timestamp', rfc3339(a.start_timestamp), 'end_timestamp', rfc3339(a.end_timestamp))::text," \
	"  coalesce((SELECT string_agg(DISTINCT x::text, ',') FROM (SELECT a.station_id AS x WHERE a.station_id IS NOT NULL" \
	"    UNION SELECT rs.station_id FROM route_stops rs WHERE rs.route_id = a.route_id) s), '') FROM a"
	[ALERT_CREATE] = { "network_alert_create",
		"WITH a AS (INSERT INTO alerts (severity, alert_type, message, station_id, route_id, start_timestamp,"
		"  end_timestamp) VALUES ($1, coalesce($2, 'service'), $3, $4, $5, coalesce($6::timestamptz, now()),"
		"  $7::timestamptz) RETURNING *) " ALERT_RESULT },
	[ALERT_END] = { "network_alert_end",
		"WITH a AS (UPDATE alerts SET end_timestamp = $2::timestamptz WHERE alert_id = $1 RETURNING *) " ALERT_RESULT },
	[PLACE_CHECK] = { "network_place_check",
		"SELECT $1::int IS NULL OR EXISTS (SELECT 1 FROM stations WHERE station_id = $1),"
		"  $2::int IS NULL OR EXISTS (SELECT 1 FROM routes WHERE route_id = $2)" },
	/* When the station's active alerts next change by time alone: the
	 * earliest start or end still to come, in ms since the epoch, or 0. */
	[ALERTS_NEXT_CHANGE] = { "network_alerts_next_change",
		"SELECT coalesce((extract(epoch FROM min(t)) * 1000)::bigint, 0) FROM ("
		"  SELECT CASE WHEN al.start_timestamp > now() THEN al.start_timestamp ELSE al.end_timestamp END AS t"
		"  FROM alerts al WHERE (al.station_id = $1"
		"      OR al.route_id IN (SELECT route_id FROM route_stops WHERE station_id = $1))"
		"    AND (al.start_timestamp > now() OR al.end_timestamp > now())) x" },
};

void network_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static int document(struct pg *db, struct arena *a, int stmt, int n, const char *const *v, struct buf *out,
		    struct api_error *err, const char *what)
{
	return document_read(db, a, &stmts[stmt], n, v, what, out, err);
}

int network_localities(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return document(db, a, LOCALITIES, 0, NULL, out, err, "localities");
}

int network_stations(struct pg *db, struct arena *a, const struct station_filter *f, struct buf *out,
		     struct api_error *err)
{
	const char *locality_id = NULL;
	if (f->locality) {
		const char *v[] = { f->locality };
		PGresult *r = pg_exec(db, a, &stmts[LOCALITY_RESOLVE], 1, v, err);
		if (!r)
			return -1;
		if (PQntuples(r) != 1)
			return api_fail_field(err, "locality", "is not a locality of Bogotá (see /api/v1/localities)");
		locality_id = PQgetvalue(r, 0, 0);
	}
	const char *v[] = { locality_id, f->type, pg_int(a, f->after_id), pg_int(a, f->limit) };
	return document(db, a, STATIONS, 4, v, out, err, "stations");
}

int network_station(struct pg *db, struct arena *a, int64_t id, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, id) };
	return document(db, a, STATION, 1, v, out, err, "station");
}

int network_arrivals(struct pg *db, struct arena *a, int64_t station_id, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, station_id) };
	return document(db, a, ARRIVALS, 1, v, out, err, "station");
}

int network_alerts(struct pg *db, struct arena *a, int64_t station_id, int active_only, struct buf *out,
		   struct api_error *err)
{
	const char *v[] = { pg_int(a, station_id), active_only ? "true" : "false" };
	return document(db, a, ALERTS, 2, v, out, err, "station");
}

int network_alerts_next_change(struct pg *db, struct arena *a, int64_t station_id, int64_t *ms, struct api_error *err)
{
	const char *v[] = { pg_int(a, station_id) };
	PGresult *r = pg_exec(db, a, &stmts[ALERTS_NEXT_CHANGE], 1, v, err);
	if (!r)
		return -1;
	*ms = PQntuples(r) == 1 ? atoll(PQgetvalue(r, 0, 0)) : 0;
	return 0;
}

int network_routes(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return document(db, a, ROUTES, 0, NULL, out, err, "routes");
}

int network_route(struct pg *db, struct arena *a, int64_t id, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, id) };
	return document(db, a, ROUTE, 1, v, out, err, "route");
}

/* Copies the document and the affected stations of an alert statement. */
static int alert_result(struct pg *db, PGresult *r, struct arena *a, struct buf *out, const char **stations,
			struct api_error *err, int64_t id)
{
	if (!r) {
		if (!strcmp(db->sqlstate, "23514"))
			return api_fail_field(err, "end_timestamp", "must not be before start_timestamp");
		return -1;
	}
	if (PQntuples(r) != 1)
		return api_fail(err, "not-found", "alert %lld does not exist", (long long)id);
	document_copy(r, out);
	*stations = arena_strdup(a, PQgetvalue(r, 0, 1));
	return 0;
}

int alert_create(struct pg *db, struct arena *a, const struct alert *al, struct buf *out, const char **stations,
		 struct api_error *err)
{
	const char *station = al->station_id ? pg_int(a, al->station_id) : NULL;
	const char *route = al->route_id ? pg_int(a, al->route_id) : NULL;
	const char *pv[] = { station, route };
	PGresult *r = pg_exec(db, a, &stmts[PLACE_CHECK], 2, pv, err);
	if (!r)
		return -1;
	if (strcmp(PQgetvalue(r, 0, 0), "t"))
		return api_fail_field(err, "station_id", "is not a station");
	if (strcmp(PQgetvalue(r, 0, 1), "t"))
		return api_fail_field(err, "route_id", "is not a route");
	const char *v[] = { al->severity, al->alert_type, al->message, station, route, al->start, al->end };
	return alert_result(db, pg_exec(db, a, &stmts[ALERT_CREATE], 7, v, err), a, out, stations, err, 0);
}

int alert_end(struct pg *db, struct arena *a, int64_t alert_id, const char *end, struct buf *out,
	      const char **stations, struct api_error *err)
{
	const char *v[] = { pg_int(a, alert_id), end };
	return alert_result(db, pg_exec(db, a, &stmts[ALERT_END], 2, v, err), a, out, stations, err, alert_id);
}
