-- The demo timetable's rule, in one place for the seed and `transitd
-- simulate`: runs leave the first stop every `headway` minutes and take
-- `run_min` minutes from stop to stop (3 by cable). Run j of a route is
-- driven by vehicle j of its active fleet, cycling, so a vehicle must reach
-- the last stop before its next run starts, fleet × headway later; the
-- route's own headway (4..15 minutes, from its id) is lengthened where the
-- fleet is too small for that. Before, one vehicle could be on two runs at
-- once on long routes with few vehicles.
CREATE VIEW route_timetable AS
SELECT r.route_id, t.run_min,
       greatest(4 + (r.route_id * 7) % 12,
                CASE WHEN f.n > 0 THEN coalesce(s.last_seq, 0) * t.run_min / f.n + 1 ELSE 0 END)::integer
           AS headway
FROM routes r
CROSS JOIN LATERAL (SELECT CASE r.route_type WHEN 'cable' THEN 3 ELSE 2 END AS run_min) t
CROSS JOIN LATERAL (SELECT max(rs.stop_sequence)::integer AS last_seq
                    FROM route_stops rs WHERE rs.route_id = r.route_id) s
CROSS JOIN LATERAL (SELECT count(*)::integer AS n
                    FROM vehicles v WHERE v.route_id = r.route_id AND v.is_active) f;
