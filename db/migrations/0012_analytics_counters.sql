-- Counters for the analytics that still read base tables: active riders,
-- top destinations and the number of users. Like trip_stats, they are kept
-- by the writes themselves, so a cold read sums a few rows instead of
-- scanning a million trips or a hundred thousand cards. The definitions do
-- not change (API.md, Details).

-- ------------------------------------------------------------ active riders
-- An active user has an active card that travelled in the last 30 days
-- (cards.last_used_date). Each rider's last day of travel (the UTC date of
-- the latest last_used_date over their active cards) is kept in
-- rider_last_day, and rider_days counts riders by that day, in 64 shards
-- (user_id % 64) so that the first taps of a morning do not queue on one
-- row. The count for a window starting at a moment of day D is the riders
-- of the days after D, plus those whose last day is D and who travelled at
-- or after that moment (at most a day's riders, checked one by one).

CREATE TABLE rider_last_day (
    user_id  bigint PRIMARY KEY,
    last_day date NOT NULL
);
CREATE INDEX rider_last_day_day_idx ON rider_last_day (last_day);

CREATE TABLE rider_days (
    day    date NOT NULL,
    shard  smallint NOT NULL CHECK (shard BETWEEN 0 AND 63),
    riders bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, shard)
);

CREATE FUNCTION utc_day(ts timestamptz) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT (ts AT TIME ZONE 'UTC')::date $$;

-- Recomputes one rider's last day and moves them between day counts. The
-- rider's users row is locked first (after the card's, as tap-ins and card
-- issues lock them), so two cards of one rider changing at once cannot both
-- move the rider: the second sees what the first committed.
CREATE FUNCTION rider_refresh(u bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old_day date;
    new_day date;
BEGIN
    PERFORM 1 FROM users WHERE user_id = u FOR UPDATE;
    SELECT utc_day(max(last_used_date)) INTO new_day FROM cards WHERE user_id = u AND status = 'active';
    SELECT last_day INTO old_day FROM rider_last_day WHERE user_id = u;
    IF old_day IS NOT DISTINCT FROM new_day THEN
        RETURN;
    END IF;
    IF old_day IS NOT NULL THEN
        UPDATE rider_days SET riders = riders - 1 WHERE day = old_day AND shard = u % 64;
    END IF;
    IF new_day IS NULL THEN
        DELETE FROM rider_last_day WHERE user_id = u;
        RETURN;
    END IF;
    INSERT INTO rider_days AS rd (day, shard, riders) VALUES (new_day, u % 64, 1)
    ON CONFLICT (day, shard) DO UPDATE SET riders = rd.riders + 1;
    INSERT INTO rider_last_day AS r (user_id, last_day) VALUES (u, new_day)
    ON CONFLICT (user_id) DO UPDATE SET last_day = EXCLUDED.last_day;
END $$;

CREATE FUNCTION cards_rider_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM rider_refresh(NEW.user_id);
        RETURN NULL;
    END IF;
    IF OLD.user_id IS NOT NULL THEN
        PERFORM rider_refresh(OLD.user_id);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.user_id IS NOT NULL AND NEW.user_id IS DISTINCT FROM OLD.user_id THEN
            PERFORM rider_refresh(NEW.user_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- Only what can move a rider: the day of last use changing (not every tap:
-- most are on the day of the card's last one), the status, the owner.
CREATE TRIGGER cards_rider_update AFTER UPDATE OF last_used_date, status, user_id ON cards FOR EACH ROW
    WHEN ((OLD.user_id IS NOT NULL OR NEW.user_id IS NOT NULL)
          AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.user_id IS DISTINCT FROM NEW.user_id
               OR utc_day(OLD.last_used_date) IS DISTINCT FROM utc_day(NEW.last_used_date)))
    EXECUTE FUNCTION cards_rider_changed();
CREATE TRIGGER cards_rider_insert AFTER INSERT ON cards FOR EACH ROW
    WHEN (NEW.user_id IS NOT NULL AND NEW.last_used_date IS NOT NULL)
    EXECUTE FUNCTION cards_rider_changed();
CREATE TRIGGER cards_rider_delete AFTER DELETE ON cards FOR EACH ROW
    WHEN (OLD.user_id IS NOT NULL)
    EXECUTE FUNCTION cards_rider_changed();

INSERT INTO rider_last_day (user_id, last_day)
SELECT user_id, utc_day(max(last_used_date)) FROM cards
WHERE user_id IS NOT NULL AND status = 'active' AND last_used_date IS NOT NULL GROUP BY user_id;
INSERT INTO rider_days (day, shard, riders)
SELECT last_day, (user_id % 64)::smallint, count(*) FROM rider_last_day GROUP BY 1, 2;

-- The whole count in one statement (one snapshot).
CREATE FUNCTION active_riders(at timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (SELECT coalesce(sum(riders), 0) FROM rider_days WHERE day > utc_day(at - interval '30 days'))
         + (SELECT count(*) FROM rider_last_day r
            WHERE r.last_day = utc_day(at - interval '30 days')
              AND EXISTS (SELECT 1 FROM cards c WHERE c.user_id = r.user_id AND c.status = 'active'
                          AND c.last_used_date >= at - interval '30 days'))
$$;

-- ------------------------------------------------------- top destinations
-- Completed trips per (boarding station, alighting station), 16 shards by
-- trip_id so that the taps of one busy pair do not queue on one row.
-- Counted by the alighting station a trip has (an update that changes it
-- moves the trip; one that only moves times changes nothing).

CREATE TABLE station_destinations (
    boarding_station_id     integer NOT NULL,
    disembarking_station_id integer NOT NULL,
    shard                   smallint NOT NULL CHECK (shard BETWEEN 0 AND 15),
    trips                   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (boarding_station_id, disembarking_station_id, shard)
);

CREATE FUNCTION station_destinations_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO station_destinations AS sd (boarding_station_id, disembarking_station_id, shard, trips)
    SELECT boarding_station_id, disembarking_station_id, (trip_id % 16)::smallint, count(*)
    FROM new_trips WHERE disembarking_station_id IS NOT NULL
    GROUP BY 1, 2, 3
    ON CONFLICT (boarding_station_id, disembarking_station_id, shard) DO UPDATE SET trips = sd.trips + EXCLUDED.trips;
    RETURN NULL;
END $$;

CREATE FUNCTION station_destinations_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO station_destinations AS sd (boarding_station_id, disembarking_station_id, shard, trips)
    SELECT b, d, s, sum(delta) FROM (
        SELECT boarding_station_id AS b, disembarking_station_id AS d, (trip_id % 16)::smallint AS s, 1 AS delta
        FROM new_trips WHERE disembarking_station_id IS NOT NULL
        UNION ALL
        SELECT boarding_station_id, disembarking_station_id, (trip_id % 16)::smallint, -1
        FROM old_trips WHERE disembarking_station_id IS NOT NULL) x
    GROUP BY 1, 2, 3 HAVING sum(delta) <> 0
    ON CONFLICT (boarding_station_id, disembarking_station_id, shard) DO UPDATE SET trips = sd.trips + EXCLUDED.trips;
    RETURN NULL;
END $$;

CREATE FUNCTION station_destinations_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE station_destinations sd SET trips = sd.trips - x.n
    FROM (SELECT boarding_station_id AS b, disembarking_station_id AS d, (trip_id % 16)::smallint AS s, count(*) AS n
          FROM old_trips WHERE disembarking_station_id IS NOT NULL GROUP BY 1, 2, 3) x
    WHERE sd.boarding_station_id = x.b AND sd.disembarking_station_id = x.d AND sd.shard = x.s;
    RETURN NULL;
END $$;

CREATE TRIGGER trips_destinations_insert AFTER INSERT ON trips
    REFERENCING NEW TABLE AS new_trips FOR EACH STATEMENT EXECUTE FUNCTION station_destinations_inserted();
CREATE TRIGGER trips_destinations_update AFTER UPDATE ON trips
    REFERENCING OLD TABLE AS old_trips NEW TABLE AS new_trips FOR EACH STATEMENT
    EXECUTE FUNCTION station_destinations_updated();
CREATE TRIGGER trips_destinations_delete AFTER DELETE ON trips
    REFERENCING OLD TABLE AS old_trips FOR EACH STATEMENT EXECUTE FUNCTION station_destinations_deleted();

INSERT INTO station_destinations (boarding_station_id, disembarking_station_id, shard, trips)
SELECT boarding_station_id, disembarking_station_id, (trip_id % 16)::smallint, count(*)
FROM trips WHERE disembarking_station_id IS NOT NULL GROUP BY 1, 2, 3;

-- ------------------------------------------------------------------- users
-- The number of users, in 16 shards by user_id (registrations at once do not
-- queue on one row).

CREATE TABLE user_counts (
    shard smallint PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
    users bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION user_counts_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_counts AS uc (shard, users)
        SELECT (user_id % 16)::smallint, count(*) FROM new_users GROUP BY 1
        ON CONFLICT (shard) DO UPDATE SET users = uc.users + EXCLUDED.users;
    ELSE
        UPDATE user_counts uc SET users = uc.users - x.n
        FROM (SELECT (user_id % 16)::smallint AS s, count(*) AS n FROM old_users GROUP BY 1) x
        WHERE uc.shard = x.s;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_count_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_users FOR EACH STATEMENT EXECUTE FUNCTION user_counts_changed();
CREATE TRIGGER users_count_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_users FOR EACH STATEMENT EXECUTE FUNCTION user_counts_changed();

INSERT INTO user_counts (shard, users)
SELECT (user_id % 16)::smallint, count(*) FROM users GROUP BY 1;
