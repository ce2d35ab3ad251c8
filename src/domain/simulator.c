#include "simulator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../store/replicas.h"
#include "../core/banned.h"

enum { LOCK, STEP, WAL };

static const struct sql_stmt stmts[] = {
	[LOCK] = { "simulate_lock", "SELECT pg_try_advisory_xact_lock(hashtext('transitd.simulate'))" },
	/* The parts touch disjoint rows (passed: before now; arriving: the next
	 * two minutes; delayed: later), and `last` reads the step's snapshot, so
	 * the stops just passed still tell where each route's schedule is. */
	[STEP] = { "simulate_step",
		"WITH passed AS (DELETE FROM arrivals WHERE estimated_arrival_time < now() RETURNING station_id),"
		" hit AS (SELECT vehicle_id, 30 + floor(random() * 91)::int AS secs FROM vehicles"
		"  WHERE is_active AND random() < $1::float8),"
		" delayed AS (UPDATE arrivals a SET estimated_arrival_time = a.estimated_arrival_time"
		"    + make_interval(secs => hit.secs), status = 'delayed'"
		"  FROM hit WHERE a.vehicle_id = hit.vehicle_id AND a.status <> 'cancelled'"
		"    AND a.estimated_arrival_time > now() + interval '2 minutes' RETURNING a.station_id),"
		" arriving AS (UPDATE arrivals SET status = 'arriving'"
		"  WHERE estimated_arrival_time BETWEEN now() AND now() + interval '2 minutes'"
		"    AND status IN ('on_time', 'delayed') RETURNING station_id),"
		/* the seed's timetable (migration 0017) */
		" served AS (SELECT rs.route_id, rs.station_id, rs.stop_sequence::int AS seq, tt.headway, tt.run_min"
		"  FROM route_stops rs JOIN routes r ON r.route_id = rs.route_id AND r.is_active"
		"  JOIN route_timetable tt ON tt.route_id = rs.route_id"
		"  JOIN stations s ON s.station_id = rs.station_id AND s.is_active),"
		" fleet AS (SELECT route_id, array_agg(vehicle_id ORDER BY vehicle_id) AS ids FROM vehicles"
		"  WHERE is_active AND route_id IS NOT NULL GROUP BY route_id),"
		" last AS (SELECT DISTINCT ON (route_id, station_id) route_id, station_id,"
		"    estimated_arrival_time AS t, vehicle_id FROM arrivals"
		"  ORDER BY route_id, station_id, estimated_arrival_time DESC),"
		/* the route's latest prediction: where its runs are */
		" ref AS (SELECT DISTINCT ON (a.route_id) a.route_id, rs.stop_sequence::int AS seq,"
		"    a.estimated_arrival_time AS t, a.vehicle_id FROM arrivals a"
		"  JOIN route_stops rs ON rs.route_id = a.route_id AND rs.station_id = a.station_id"
		"  ORDER BY a.route_id, a.estimated_arrival_time DESC),"
		/* t, vpos: the last run seen at this stop and its vehicle's place in the
		 * fleet. A stop with nothing predicted takes the run of the route's latest
		 * prediction, moved along by the stops between (one headway back, so that
		 * k = 1 is that run); a route with none starts from the seed's timetable. */
		" base AS (SELECT sv.*, f.ids, l.t IS NULL AS fresh,"
		"    CASE WHEN l.t IS NOT NULL THEN l.t"
		"      WHEN ref.t IS NOT NULL THEN ref.t + make_interval(mins => (sv.seq - ref.seq) * sv.run_min - sv.headway)"
		"      ELSE now() + make_interval(mins => ((sv.route_id * 5) % sv.headway + sv.seq * sv.run_min)"
		"        % sv.headway - sv.headway) END AS t,"
		"    CASE WHEN l.t IS NOT NULL THEN array_position(f.ids, l.vehicle_id)"
		"      ELSE array_position(f.ids, ref.vehicle_id) - 1 END AS vpos"
		"  FROM served sv LEFT JOIN last l USING (route_id, station_id) LEFT JOIN ref USING (route_id)"
		"  LEFT JOIN fleet f USING (route_id)),"
		/* runs already behind a known one are not predicted again (k >= 1) */
		" due AS (SELECT b.route_id, b.station_id, b.headway, b.ids, b.t,"
		"    CASE WHEN b.fresh THEN floor(extract(epoch FROM now() - b.t) / (b.headway * 60))"
		"      ELSE greatest(0, floor(extract(epoch FROM now() - b.t) / (b.headway * 60))) END::int AS skip,"
		"    coalesce(b.vpos, 1 + (floor((extract(epoch FROM b.t) / 60"
		"      - b.seq * b.run_min) / b.headway))::bigint % cardinality(b.ids))::int AS vpos"
		"  FROM base b),"
		" added AS (INSERT INTO arrivals (station_id, route_id, vehicle_id, estimated_arrival_time, status)"
		"  SELECT d.station_id, d.route_id,"
		"    d.ids[1 + ((d.vpos - 1 + k) % cardinality(d.ids) + cardinality(d.ids)) % cardinality(d.ids)],"
		"    d.t + make_interval(mins => k * d.headway),"
		"    CASE WHEN d.t + make_interval(mins => k * d.headway) <= now() + interval '2 minutes'"
		"      THEN 'arriving' ELSE 'on_time' END"
		"  FROM due d CROSS JOIN LATERAL generate_series(d.skip + 1, d.skip + 60 / d.headway + 2) k"
		"  WHERE d.t + make_interval(mins => k * d.headway) BETWEEN now() AND now() + interval '60 minutes'"
		"  RETURNING station_id)"
		"SELECT (SELECT count(*) FROM passed), (SELECT count(*) FROM added), (SELECT count(*) FROM delayed),"
		"  (SELECT count(*) FROM arriving), coalesce((SELECT string_agg(DISTINCT station_id::text, ',') FROM ("
		"    SELECT station_id FROM passed UNION ALL SELECT station_id FROM added"
		"    UNION ALL SELECT station_id FROM delayed UNION ALL SELECT station_id FROM arriving) c), '')" },
	[WAL] = { "simulate_wal_position", "SELECT pg_current_wal_lsn()::text" },
};

void simulator_register(void)
{
	pg_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

int simulate_step(struct pg *db, struct arena *a, double delay_probability, struct simulate_result *out,
		  struct api_error *err)
{
	memset(out, 0, sizeof(*out));
	out->stations = "";
	if (pg_run(db, "BEGIN", err))
		return -1;
	PGresult *r = pg_exec(db, a, &stmts[LOCK], 0, NULL, err);
	if (!r)
		goto rollback;
	if (strcmp(PQgetvalue(r, 0, 0), "t")) {
		out->skipped = 1;
		return pg_run(db, "COMMIT", err);
	}
	const char *v[] = { arena_printf(a, "%.6f", delay_probability) };
	r = pg_exec(db, a, &stmts[STEP], 1, v, err);
	if (!r)
		goto rollback;
	out->passed = atol(PQgetvalue(r, 0, 0));
	out->added = atol(PQgetvalue(r, 0, 1));
	out->delayed = atol(PQgetvalue(r, 0, 2));
	out->arriving = atol(PQgetvalue(r, 0, 3));
	out->stations = arena_strdup(a, PQgetvalue(r, 0, 4));
	if (pg_run(db, "COMMIT", err))
		return -1;
	r = pg_exec(db, a, &stmts[WAL], 0, NULL, err);
	out->lsn = r && PQntuples(r) == 1 ? lsn_parse(PQgetvalue(r, 0, 0)) : 0;
	return 0;
rollback:;
	struct api_error ignored;
	pg_run(db, "ROLLBACK", &ignored);
	return -1;
}
