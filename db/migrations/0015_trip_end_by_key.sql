-- Tap-out found its trip through trips_one_open_per_card (the partial index
-- of open trips) filtered by trip_id, because its WHERE also said
-- "disembarking_time IS NULL": a scan of every open trip, and of every
-- entry a closed trip left in that index until vacuum. Under load that was
-- about 14 ms of PostgreSQL CPU per tap-out (134 a second at 50 clients).
-- Now the trip is found and locked by its primary key, and whether it is
-- still open is read from the locked row: a concurrent tap-out of the same
-- trip waits for the lock and then sees it closed, as before.
CREATE OR REPLACE FUNCTION api_trip_end(p_trip bigint, p_station bigint, p_rider bigint,
                                        i_lock bigint, i_scope text, i_key text, i_hash text)
RETURNS api_outcome LANGUAGE plpgsql AS $$
DECLARE
    o api_outcome;
    t record;
BEGIN
    o := idem_claim(i_lock, i_scope, i_key, i_hash);
    IF o.status IS NOT NULL OR o.slug IS NOT NULL THEN
        RETURN o;
    END IF;
    SELECT tr.card_id, tr.boarding_station_id, tr.disembarking_time IS NULL AS open,
           EXISTS (SELECT 1 FROM route_stops rs WHERE rs.route_id = tr.route_id AND rs.station_id = p_station)
               AS on_route
    INTO t FROM trips tr JOIN cards c USING (card_id)
    WHERE tr.trip_id = p_trip AND (p_rider = 0 OR c.user_id = p_rider)
    FOR UPDATE OF tr;
    IF NOT FOUND OR NOT t.open THEN
        RETURN api_problem('not-found', format('no trip %s in progress', p_trip));
    END IF;
    IF NOT t.on_route THEN
        RETURN api_problem('validation', 'is not a stop of this trip''s route', 'disembarking_station_id');
    END IF;
    UPDATE trips tr SET disembarking_station_id = p_station, disembarking_time = greatest(now(), tr.boarding_time)
    WHERE trip_id = p_trip
    RETURNING trip_json(tr)::text INTO o.body;
    o.status := 200;
    o.card_id := t.card_id;
    o.ref_id := t.boarding_station_id;
    PERFORM idem_save(i_scope, i_key, i_hash, o);
    RETURN o;
END $$;
