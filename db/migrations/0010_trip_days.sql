-- Trips and revenue per day, for trend charts: like trip_stats, rows kept by
-- the trip writes themselves (statement-level triggers with transition
-- tables), one per day of Bogotá's calendar and shard (trip_id % 16), so a
-- month's series is a sum over at most 480 rows and concurrent taps rarely
-- meet on a row. A trip counts on the day it boarded; its fare is revenue
-- of that day (it is charged at boarding), and its completion too.

CREATE TABLE trip_days (
    day             date NOT NULL,
    shard           smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    total_trips     bigint NOT NULL DEFAULT 0,
    completed_trips bigint NOT NULL DEFAULT 0,
    total_revenue   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, shard)
);

CREATE FUNCTION bogota_day(ts timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (ts AT TIME ZONE 'America/Bogota')::date $$;

CREATE FUNCTION trip_days_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trip_days AS td (day, shard, total_trips, completed_trips, total_revenue)
    SELECT bogota_day(t.boarding_time), (t.trip_id % 16)::smallint, count(*),
           count(*) FILTER (WHERE t.disembarking_time IS NOT NULL), sum(t.fare_amount)
    FROM new_trips t
    GROUP BY 1, 2
    ON CONFLICT (day, shard) DO UPDATE
    SET total_trips = td.total_trips + EXCLUDED.total_trips,
        completed_trips = td.completed_trips + EXCLUDED.completed_trips,
        total_revenue = td.total_revenue + EXCLUDED.total_revenue;
    RETURN NULL;
END $$;

CREATE FUNCTION trip_days_completed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trip_days AS td (day, shard, completed_trips)
    SELECT bogota_day(n.boarding_time), (n.trip_id % 16)::smallint, count(*)
    FROM new_trips n JOIN old_trips o USING (trip_id)
    WHERE o.disembarking_time IS NULL AND n.disembarking_time IS NOT NULL
    GROUP BY 1, 2
    ON CONFLICT (day, shard) DO UPDATE SET completed_trips = td.completed_trips + EXCLUDED.completed_trips;
    RETURN NULL;
END $$;

CREATE TRIGGER trips_days_insert AFTER INSERT ON trips
    REFERENCING NEW TABLE AS new_trips FOR EACH STATEMENT EXECUTE FUNCTION trip_days_inserted();
CREATE TRIGGER trips_days_complete AFTER UPDATE ON trips
    REFERENCING OLD TABLE AS old_trips NEW TABLE AS new_trips FOR EACH STATEMENT EXECUTE FUNCTION trip_days_completed();

-- Trips written before this migration.
INSERT INTO trip_days (day, shard, total_trips, completed_trips, total_revenue)
SELECT bogota_day(boarding_time), (trip_id % 16)::smallint, count(*),
       count(*) FILTER (WHERE disembarking_time IS NOT NULL), sum(fare_amount)
FROM trips GROUP BY 1, 2;
