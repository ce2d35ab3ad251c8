-- About ten completed trips per scale user (about 1,000,000 for N = 100,000), all
-- after the card's last recharge, so the ledger never goes below zero: paid
-- boardings of 3,200 COP with their 'fare' ledger rows, each second one
-- followed 30 minutes later by a free transfer onto another route.
DO $$
DECLARE
    n int := current_setting('transitd.scale')::int;
    fare bigint := (SELECT p.amount FROM fare_leg_rules lr JOIN fare_products p USING (fare_product_id)
                    WHERE lr.route_type = 'trunk');
BEGIN
    IF EXISTS (SELECT 1 FROM card_ledger WHERE reference LIKE 'scale-trip:%') THEN
        RAISE NOTICE 'scale trips already present';
        RETURN;
    END IF;

    CREATE TEMP TABLE scale_routes ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY r.route_id) - 1 AS i, r.route_id,
           (SELECT station_id FROM route_stops s WHERE s.route_id = r.route_id ORDER BY stop_sequence LIMIT 1) AS first_stop,
           (SELECT station_id FROM route_stops s WHERE s.route_id = r.route_id ORDER BY stop_sequence DESC LIMIT 1) AS last_stop,
           (SELECT vehicle_id FROM vehicles v WHERE v.route_id = r.route_id AND v.is_active LIMIT 1) AS vehicle_id
    FROM routes r WHERE r.is_active;

    -- Paid boardings: up to eight per card, as many as its balance pays for.
    CREATE TEMP TABLE scale_paid ON COMMIT DROP AS
    SELECT c.card_id, c.user_id IS NOT NULL AS personalized, j,
           c.balance - fare * j AS balance_after,
           last.ts + (now() - interval '1 hour' - last.ts) * (j::double precision / 9) AS boarding
    FROM cards c
    JOIN LATERAL (SELECT max(created_at) AS ts FROM card_ledger l WHERE l.card_id = c.card_id) last ON true
    CROSS JOIN LATERAL generate_series(1, least(c.balance / fare, 8)::int) j
    WHERE c.card_number LIKE '9%' AND c.balance >= fare AND last.ts IS NOT NULL;

    ALTER TABLE scale_paid ADD COLUMN trip_id bigint, ADD COLUMN entry_id bigint;
    UPDATE scale_paid SET trip_id = nextval(pg_get_serial_sequence('trips', 'trip_id'));

    INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference, created_at)
    SELECT card_id, 'fare', -fare, balance_after, 'scale-trip:' || trip_id, boarding FROM scale_paid;
    UPDATE scale_paid p SET entry_id = l.entry_id
    FROM card_ledger l WHERE l.reference = 'scale-trip:' || p.trip_id;

    INSERT INTO trips (trip_id, card_id, route_id, vehicle_id, boarding_station_id, disembarking_station_id,
                       boarding_time, disembarking_time, fare_amount, is_transfer, journey_start,
                       journey_transfers, ledger_entry_id)
    SELECT p.trip_id, p.card_id, r.route_id, r.vehicle_id, r.first_stop, r.last_stop, p.boarding,
           p.boarding + interval '25 minutes', fare, false, p.boarding, 0, p.entry_id
    FROM scale_paid p
    JOIN scale_routes r ON r.i = (p.card_id + p.j) % (SELECT count(*) FROM scale_routes);

    -- Free transfers (personalised cards): 30 minutes after every second paid boarding.
    INSERT INTO trips (card_id, route_id, vehicle_id, boarding_station_id, disembarking_station_id,
                       boarding_time, disembarking_time, fare_amount, is_transfer, journey_start,
                       journey_transfers)
    SELECT p.card_id, r.route_id, r.vehicle_id, r.first_stop, r.last_stop, p.boarding + interval '30 minutes',
           p.boarding + interval '50 minutes', 0, true, p.boarding, 1
    FROM scale_paid p
    JOIN scale_routes r ON r.i = (p.card_id + p.j + 1) % (SELECT count(*) FROM scale_routes)
    WHERE p.personalized AND p.j % 2 = 0;

    UPDATE cards c SET balance = s.balance_after, last_used_date = s.last_boarding
    FROM (SELECT DISTINCT ON (card_id) card_id, balance_after, boarding + interval '30 minutes' AS last_boarding
          FROM scale_paid ORDER BY card_id, j DESC) s
    WHERE c.card_id = s.card_id;
END $$;
ANALYZE trips;
ANALYZE card_ledger;
ANALYZE cards;
