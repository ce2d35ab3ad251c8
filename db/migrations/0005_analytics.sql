-- Aggregates kept current by the writes themselves, so analytics reads are
-- sums over a few hundred rows instead of scans of every trip. Each locality
-- has up to 16 shard rows (created on first use) and a trip picks one by its
-- id: concurrent taps update different rows, so no single counter row
-- serialises the writers.

CREATE TABLE trip_stats (
    locality_id     smallint NOT NULL REFERENCES localities,
    shard           smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    total_trips     bigint NOT NULL DEFAULT 0,
    completed_trips bigint NOT NULL DEFAULT 0,
    total_revenue   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (locality_id, shard)
);
-- Statement-level triggers with transition tables: one update per locality
-- and shard per statement, whether it wrote one trip or a million.
CREATE FUNCTION trip_stats_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trip_stats AS ts (locality_id, shard, total_trips, completed_trips, total_revenue)
    SELECT s.locality_id, (t.trip_id % 16)::smallint, count(*),
           count(*) FILTER (WHERE t.disembarking_time IS NOT NULL), sum(t.fare_amount)
    FROM new_trips t JOIN stations s ON s.station_id = t.boarding_station_id
    WHERE s.locality_id IS NOT NULL
    GROUP BY 1, 2
    ON CONFLICT (locality_id, shard) DO UPDATE
    SET total_trips = ts.total_trips + EXCLUDED.total_trips,
        completed_trips = ts.completed_trips + EXCLUDED.completed_trips,
        total_revenue = ts.total_revenue + EXCLUDED.total_revenue;
    RETURN NULL;
END $$;

CREATE FUNCTION trip_stats_completed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO trip_stats AS ts (locality_id, shard, completed_trips)
    SELECT s.locality_id, (n.trip_id % 16)::smallint, count(*)
    FROM new_trips n JOIN old_trips o USING (trip_id)
    JOIN stations s ON s.station_id = n.boarding_station_id
    WHERE o.disembarking_time IS NULL AND n.disembarking_time IS NOT NULL AND s.locality_id IS NOT NULL
    GROUP BY 1, 2
    ON CONFLICT (locality_id, shard) DO UPDATE SET completed_trips = ts.completed_trips + EXCLUDED.completed_trips;
    RETURN NULL;
END $$;

CREATE TRIGGER trips_stats_insert AFTER INSERT ON trips
    REFERENCING NEW TABLE AS new_trips FOR EACH STATEMENT EXECUTE FUNCTION trip_stats_inserted();
CREATE TRIGGER trips_stats_complete AFTER UPDATE ON trips
    REFERENCING OLD TABLE AS old_trips NEW TABLE AS new_trips FOR EACH STATEMENT EXECUTE FUNCTION trip_stats_completed();

-- Trips written before this migration.
INSERT INTO trip_stats (locality_id, shard, total_trips, completed_trips, total_revenue)
SELECT s.locality_id, (t.trip_id % 16)::smallint, count(*),
       count(*) FILTER (WHERE t.disembarking_time IS NOT NULL), sum(t.fare_amount)
FROM trips t JOIN stations s ON s.station_id = t.boarding_station_id
WHERE s.locality_id IS NOT NULL GROUP BY 1, 2;

CREATE INDEX trips_destinations_idx ON trips (boarding_station_id, disembarking_station_id)
    WHERE disembarking_station_id IS NOT NULL;
CREATE INDEX cards_last_used_idx ON cards (last_used_date) WHERE status = 'active' AND user_id IS NOT NULL;
