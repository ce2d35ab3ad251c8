#include "analytics.h"

#include "document.h"
#include "../core/banned.h"

enum { TOTAL, LOCALITIES, REVENUE, REVENUE_LOCALITIES, TOP_DESTINATIONS, DAILY };

static const struct sql_stmt stmts[] = {
	[TOTAL] = { "analytics_trips_total",
		"SELECT json_build_object('total_trips', coalesce(sum(total_trips), 0),"
		"  'completed_trips', coalesce(sum(completed_trips), 0),"
		"  'active_trips', coalesce(sum(total_trips - completed_trips), 0),"
		"  'total_revenue', coalesce(sum(total_revenue), 0))::text FROM trip_stats" },
	[LOCALITIES] = { "analytics_trips_localities",
		"SELECT json_build_object('localities', coalesce(json_agg(json_build_object('locality', l.name,"
		"  'locality_id', l.locality_id, 'total_trips', coalesce(s.total, 0),"
		"  'completed_trips', coalesce(s.completed, 0), 'active_trips', coalesce(s.total - s.completed, 0),"
		"  'total_revenue', coalesce(s.revenue, 0)) ORDER BY l.locality_id), '[]'))::text"
		" FROM localities l LEFT JOIN (SELECT locality_id, sum(total_trips) AS total,"
		"  sum(completed_trips) AS completed, sum(total_revenue) AS revenue FROM trip_stats GROUP BY locality_id) s"
		" USING (locality_id)" },
	[REVENUE] = { "analytics_revenue",
		"SELECT json_build_object('total_revenue', coalesce(sum(total_revenue), 0), 'currency', 'COP')::text"
		" FROM trip_stats" },
	[REVENUE_LOCALITIES] = { "analytics_revenue_localities",
		"SELECT json_build_object('data', coalesce(json_agg(json_build_object('locality', l.name,"
		"  'locality_id', l.locality_id, 'total_revenue', coalesce(s.revenue, 0))"
		"  ORDER BY coalesce(s.revenue, 0) DESC, l.locality_id), '[]'), 'currency', 'COP')::text"
		" FROM localities l LEFT JOIN (SELECT locality_id, sum(total_revenue) AS revenue FROM trip_stats"
		"  GROUP BY locality_id) s USING (locality_id)" },
	/* Completed trips per alighting station, from the counters the trip
	 * writes keep (station_destinations, 16 shards per pair). */
	[TOP_DESTINATIONS] = { "analytics_top_destinations",
		"SELECT json_build_object('station_id', st.station_id, 'destinations', coalesce((SELECT json_agg("
		"  json_build_object('station_id', d.station_id, 'name', d.name, 'trip_count', d.n)"
		"  ORDER BY d.n DESC, d.station_id) FROM (SELECT s.station_id, s.name, t.n FROM ("
		"    SELECT disembarking_station_id, sum(trips)::bigint AS n FROM station_destinations"
		"    WHERE boarding_station_id = st.station_id"
		"    GROUP BY 1 HAVING sum(trips) > 0 ORDER BY 2 DESC, 1 LIMIT 10) t"
		"    JOIN stations s ON s.station_id = t.disembarking_station_id) d), '[]'))::text"
		" FROM stations st WHERE st.station_id = $1" },
	/* The last $1 days of Bogotá's calendar, today last, days without trips as zeros. */
	[DAILY] = { "analytics_trips_daily",
		"SELECT json_build_object('days', json_agg(json_build_object('date', d.day,"
		"  'total_trips', coalesce(s.total, 0), 'completed_trips', coalesce(s.completed, 0),"
		"  'total_revenue', coalesce(s.revenue, 0)) ORDER BY d.day),"
		"  'today', bogota_day(now()), 'time_zone', 'America/Bogota', 'currency', 'COP')::text"
		" FROM (SELECT bogota_day(now()) - k AS day FROM generate_series(0, $1::int - 1) k) d"
		" LEFT JOIN (SELECT day, sum(total_trips) AS total, sum(completed_trips) AS completed,"
		"  sum(total_revenue) AS revenue FROM trip_days WHERE day > bogota_day(now()) - $1::int"
		"  GROUP BY day) s USING (day)" },
};

void analytics_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* Aggregates always answer one row; only a station can be missing. */
static int document(struct pg *db, struct arena *a, int stmt, int n, const char *const *v, struct buf *out,
		    struct api_error *err)
{
	return document_read(db, a, &stmts[stmt], n, v, "station", out, err);
}

int analytics_trips_total(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return document(db, a, TOTAL, 0, NULL, out, err);
}

int analytics_trips_localities(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return document(db, a, LOCALITIES, 0, NULL, out, err);
}

int analytics_revenue(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return document(db, a, REVENUE, 0, NULL, out, err);
}

int analytics_revenue_localities(struct pg *db, struct arena *a, struct buf *out, struct api_error *err)
{
	return document(db, a, REVENUE_LOCALITIES, 0, NULL, out, err);
}

int analytics_top_destinations(struct pg *db, struct arena *a, int64_t station_id, struct buf *out,
			       struct api_error *err)
{
	const char *v[] = { pg_int(a, station_id) };
	return document(db, a, TOP_DESTINATIONS, 1, v, out, err);
}

int analytics_trips_daily(struct pg *db, struct arena *a, int days, struct buf *out, struct api_error *err)
{
	const char *v[] = { pg_int(a, days) };
	return document(db, a, DAILY, 1, v, out, err);
}
