-- Money writes as one server-side call each. Recharge, tap-in, tap-out,
-- booking and cancellation used to be a client-side transaction of up to a
-- dozen round trips (BEGIN, the idempotency lock and lookup, the reads, the
-- write, the stored answer, COMMIT); every one of them held the card's row
-- lock across the network. Each is now one function call, sent as one
-- statement in its own transaction: the Idempotency-Key is claimed, the
-- request is checked and applied, and a successful answer is stored, all in
-- the database. The C side sends the call and renders what comes back.
--
-- A call returns one api_outcome: a 2xx with its JSON document (replayed =
-- true when it is the stored answer of an earlier request with the same
-- key), or a problem (slug, detail, and for a validation error the field)
-- when nothing was written. The C side maps slugs to statuses; only 2xx
-- answers are stored.

CREATE TYPE api_outcome AS (
    status   smallint, -- 2xx: done (or replayed); NULL: see slug
    body     text,     -- the answer's JSON document (2xx)
    replayed boolean,  -- the stored answer of an earlier request with this key
    slug     text,     -- a problem: /problems/<slug>
    detail   text,     -- its detail; for slug 'validation' with a field, what is wrong with the field
    field    text,     -- the field a validation problem names
    extra    text,     -- raw JSON members added to the problem document
    card_id  bigint,   -- the card whose balance changed (for cache invalidation)
    ref_id   bigint    -- tap-out: the boarding station; cancellation: the run
);

CREATE FUNCTION api_problem(slug text, detail text, field text DEFAULT NULL, extra text DEFAULT NULL)
RETURNS api_outcome LANGUAGE sql IMMUTABLE AS
$$ SELECT ROW(NULL, NULL, false, slug, detail, field, extra, NULL, NULL)::api_outcome $$;

-- The Idempotency-Key part of every call. i_key NULL: the request has none.
-- The lock id is 64 bits of a digest of scope and key (computed by the
-- caller); a transaction-scoped advisory lock on it turns a duplicate that
-- arrives while the first runs into 409 at once. Returns NULL fields when
-- the request should run, or its answer: 409, 422 (same key, another
-- request), or the stored answer. The lock is released at commit, after
-- the stored answer is visible, so a duplicate never runs twice.
CREATE FUNCTION idem_claim(i_lock bigint, i_scope text, i_key text, i_hash text)
RETURNS api_outcome LANGUAGE plpgsql AS $$
DECLARE
    o api_outcome;
    k record;
BEGIN
    IF i_key IS NULL THEN
        RETURN o;
    END IF;
    IF NOT pg_try_advisory_xact_lock(i_lock) THEN
        RETURN api_problem('idempotency-in-progress', 'a request with this Idempotency-Key is still running');
    END IF;
    SELECT request_hash, status, body INTO k FROM idempotency_keys
    WHERE scope = i_scope AND key = i_key AND created_at > now() - interval '24 hours';
    IF NOT FOUND THEN
        -- Now and then, records past their 24 hours go (those nobody else is deleting).
        IF random() < 0.001 THEN
            DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(
                SELECT ctid FROM idempotency_keys WHERE created_at < now() - interval '24 hours'
                LIMIT 1000 FOR UPDATE SKIP LOCKED));
        END IF;
        RETURN o;
    END IF;
    IF k.request_hash <> i_hash THEN
        RETURN api_problem('idempotency-mismatch', 'this Idempotency-Key was used for a different request');
    END IF;
    o.status := k.status;
    o.body := k.body;
    o.replayed := true;
    RETURN o;
END $$;

-- Stores a successful answer under its key, in the transaction of the effect.
CREATE FUNCTION idem_save(i_scope text, i_key text, i_hash text, o api_outcome)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF i_key IS NULL OR o.status IS NULL OR o.status NOT BETWEEN 200 AND 299 THEN
        RETURN;
    END IF;
    INSERT INTO idempotency_keys (scope, key, request_hash, status, body)
    VALUES (i_scope, i_key, i_hash, o.status, o.body)
    ON CONFLICT (scope, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,
        status = EXCLUDED.status, body = EXCLUDED.body, created_at = now();
END $$;

-- ---------------------------------------------------------------- recharge

-- A point of sale's recharge: the card row changes atomically with its
-- ledger and recharge rows; a recharge first repays trips taken on credit.
CREATE FUNCTION api_card_recharge(p_card bigint, p_amount bigint, p_point integer,
                                  i_lock bigint, i_scope text, i_key text, i_hash text)
RETURNS api_outcome LANGUAGE plpgsql AS $$
DECLARE
    o api_outcome;
BEGIN
    o := idem_claim(i_lock, i_scope, i_key, i_hash);
    IF o.status IS NOT NULL OR o.slug IS NOT NULL THEN
        RETURN o;
    END IF;
    IF p_point IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recharge_points
                                           WHERE recharge_point_id = p_point AND is_active) THEN
        RETURN api_problem('validation', 'is not an active recharge point', 'recharge_point_id');
    END IF;
    WITH c AS (UPDATE cards SET balance = balance + p_amount,
                   credit_trips_used = CASE WHEN balance + p_amount >= 0 THEN 0 ELSE credit_trips_used END
               WHERE card_id = p_card AND status = 'active' RETURNING card_id, balance),
         ids AS (SELECT nextval(pg_get_serial_sequence('recharges', 'recharge_id')) AS recharge_id),
         l AS (INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)
               SELECT c.card_id, 'recharge', p_amount, c.balance, 'recharge:' || ids.recharge_id FROM c, ids
               RETURNING entry_id, card_id, balance_after, created_at),
         r AS (INSERT INTO recharges (recharge_id, card_id, amount, recharge_point_id, ledger_entry_id,
                                      recharge_timestamp)
               SELECT ids.recharge_id, l.card_id, p_amount, p_point, l.entry_id, l.created_at FROM l, ids
               RETURNING recharge_id, recharge_timestamp)
    SELECT json_build_object('recharge_id', r.recharge_id, 'card_id', l.card_id, 'amount', p_amount,
                             'new_balance', l.balance_after,
                             'recharge_timestamp', rfc3339(r.recharge_timestamp))::text
    INTO o.body FROM r, l;
    IF o.body IS NULL THEN
        IF EXISTS (SELECT 1 FROM cards WHERE card_id = p_card) THEN
            RETURN api_problem('card-blocked', format('card %s is blocked', p_card));
        END IF;
        RETURN api_problem('not-found', format('card %s does not exist', p_card));
    END IF;
    o.status := 201;
    o.card_id := p_card;
    PERFORM idem_save(i_scope, i_key, i_hash, o);
    RETURN o;
END $$;

-- ------------------------------------------------------------------- fares

-- The fare engine (formerly src/domain/fares.c): a pure function from the
-- rule in force, the card and its previous boarding, to what this boarding
-- costs. Times are unix seconds. Invariants, whatever the input: the fare
-- is never negative (a rule with a negative amount refuses the boarding), a
-- journey never counts more than transfer_count transfers, a refused
-- boarding changes nothing, and no arithmetic overflows (a boarding whose
-- balance would leave 64 bits is refused).
CREATE TYPE fare_decision AS (
    allowed           boolean, -- false: not enough balance or credit
    fare              bigint,
    is_transfer       boolean,
    on_credit         boolean,
    journey_start     bigint,
    journey_transfers integer,
    new_balance       bigint,
    new_credit_trips  integer
);

CREATE FUNCTION fare_decide(
    r_fare bigint,                -- full fare of a boarding of this route type
    r_has_transfer boolean,       -- a transfer rule applies from the previous leg
    r_transfer_fare bigint,       -- cost of such a transfer
    r_duration_limit bigint,      -- seconds from the journey's first paid boarding
    r_transfer_count integer,     -- transfers per journey
    r_personalized_only boolean,
    r_max_credit_trips integer,   -- for this card's kind
    c_personalized boolean,
    c_balance bigint,
    c_credit_trips integer,       -- trips on credit on this card
    c_person_credit_trips integer, -- on every card of its owner (credit is the person's)
    p_exists boolean,             -- a previous boarding exists
    p_route bigint,
    p_journey_start bigint,
    p_journey_transfers integer,
    route bigint,                 -- the route boarded now
    now_s bigint)
RETURNS fare_decision LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    d fare_decision;
    nb numeric;
    credit_floor numeric;
    transfer boolean;
BEGIN
    -- A transfer: within the window of the journey's first paid boarding,
    -- transfers left, onto another route (the same route again is a new trip).
    transfer := coalesce(r_has_transfer AND p_exists AND p_route <> route
                         AND (c_personalized OR NOT r_personalized_only)
                         AND now_s >= p_journey_start
                         AND now_s::numeric - p_journey_start <= r_duration_limit
                         AND p_journey_transfers >= 0 AND p_journey_transfers < r_transfer_count, false);
    d.is_transfer := transfer;
    d.fare := CASE WHEN transfer THEN r_transfer_fare ELSE r_fare END;
    d.journey_start := CASE WHEN transfer THEN p_journey_start ELSE now_s END;
    d.journey_transfers := CASE WHEN transfer THEN p_journey_transfers + 1 ELSE 0 END;
    d.new_credit_trips := c_credit_trips;
    d.on_credit := false;
    d.allowed := true;
    IF d.fare < 0 THEN -- a broken rule charges nothing and boards nobody
        d.fare := 0;
    ELSE
        nb := c_balance::numeric - d.fare;
        IF nb BETWEEN -9223372036854775808 AND 9223372036854775807 THEN
            d.new_balance := nb;
            IF d.fare = 0 OR d.new_balance >= 0 THEN
                RETURN d;
            END IF;
            -- On credit: at most max_credit_trips fares below zero, in as many
            -- trips, counted over all the cards of the person.
            credit_floor := -(r_max_credit_trips::numeric) * d.fare;
            IF c_credit_trips >= 0 AND c_credit_trips < r_max_credit_trips
               AND c_person_credit_trips < r_max_credit_trips
               AND credit_floor >= -9223372036854775808 AND d.new_balance >= credit_floor THEN
                d.on_credit := true;
                d.new_credit_trips := c_credit_trips + 1;
                RETURN d;
            END IF;
        END IF;
    END IF;
    d.allowed := false;
    d.on_credit := false;
    d.new_balance := c_balance;
    d.new_credit_trips := c_credit_trips;
    RETURN d;
END $$;

-- ------------------------------------------------------------------- trips

-- Tap-in. The card row is locked first (as every money write does), the
-- fare engine decides, and fare ledger row, card and trip are written by one
-- statement. p_rider: the calling rider (0 for staff), who must own the card.
CREATE FUNCTION api_trip_start(p_card bigint, p_route bigint, p_station bigint, p_vehicle bigint, p_rider bigint,
                               i_lock bigint, i_scope text, i_key text, i_hash text)
RETURNS api_outcome LANGUAGE plpgsql AS $$
DECLARE
    o api_outcome;
    c record;
    pl record;
    pv record;
    ru record;
    d fare_decision;
    has_prev boolean;
    person integer;
    vehicle bigint;
BEGIN
    o := idem_claim(i_lock, i_scope, i_key, i_hash);
    IF o.status IS NOT NULL OR o.slug IS NOT NULL THEN
        RETURN o;
    END IF;
    SELECT user_id IS NOT NULL AS personalized, status, balance, credit_trips_used,
           coalesce(user_id, 0) AS owner, extract(epoch FROM now())::bigint AS now_s
    INTO c FROM cards WHERE card_id = p_card FOR UPDATE;
    IF NOT FOUND OR (p_rider <> 0 AND c.owner <> p_rider) THEN
        RETURN api_problem('not-found', format('card %s does not exist', p_card));
    END IF;
    IF c.status <> 'active' THEN
        RETURN api_problem('card-blocked', format('card %s is blocked', p_card));
    END IF;

    SELECT r.route_type, r.is_active AS route_active, s.is_active AS station_active,
           EXISTS (SELECT 1 FROM route_stops rs WHERE rs.route_id = p_route AND rs.station_id = p_station) AS on_route
    INTO pl FROM (SELECT 1) one LEFT JOIN routes r ON r.route_id = p_route
    LEFT JOIN stations s ON s.station_id = p_station;
    IF pl.route_type IS NULL OR pl.route_active IS NOT TRUE THEN
        RETURN api_problem('validation', 'is not an active route', 'route_id');
    END IF;
    IF pl.station_active IS NOT TRUE THEN
        RETURN api_problem('validation', 'is not an active station', 'boarding_station_id');
    END IF;
    IF NOT pl.on_route THEN
        RETURN api_problem('validation', format('is not a stop of route %s', p_route), 'boarding_station_id');
    END IF;

    SELECT t.route_id, extract(epoch FROM t.journey_start)::bigint AS start_s, t.journey_transfers,
           t.disembarking_time IS NULL AS open, r.route_type, t.journey_start
    INTO pv FROM trips t JOIN routes r USING (route_id) WHERE t.card_id = p_card ORDER BY t.trip_id DESC LIMIT 1;
    has_prev := FOUND;
    IF has_prev AND pv.open THEN
        RETURN api_problem('active-trip', format('card %s already has a trip in progress', p_card));
    END IF;

    SELECT p.amount, tr.fare_product_id IS NOT NULL AS has_transfer, coalesce(tp.amount, 0) AS transfer_fare,
           coalesce(tr.duration_limit, 0) AS duration_limit, coalesce(tr.transfer_count, 0) AS transfer_count,
           coalesce(tr.personalized_only, true) AS personalized_only,
           coalesce((SELECT max_credit_trips FROM fare_credit_rules
                     WHERE card_kind = CASE WHEN c.personalized THEN 'personalized' ELSE 'anonymous' END), 0)
               AS max_credit_trips
    INTO ru FROM fare_leg_rules lr JOIN fare_products p USING (fare_product_id)
    LEFT JOIN fare_leg_rules plr ON plr.route_type = pv.route_type
    LEFT JOIN fare_transfer_rules tr ON tr.from_leg_group_id = plr.leg_group_id
        AND tr.to_leg_group_id = lr.leg_group_id
    LEFT JOIN fare_products tp ON tp.fare_product_id = tr.fare_product_id
    WHERE lr.route_type = pl.route_type;
    IF NOT FOUND THEN
        RETURN api_problem('validation', format('has no fare for route type %s', pl.route_type), 'route_id');
    END IF;

    d := fare_decide(ru.amount, ru.has_transfer, ru.transfer_fare, ru.duration_limit, ru.transfer_count,
                     ru.personalized_only, ru.max_credit_trips, c.personalized, c.balance, c.credit_trips_used,
                     c.credit_trips_used, has_prev, pv.route_id, pv.start_s, pv.journey_transfers, p_route, c.now_s);
    IF d.on_credit AND c.personalized THEN
        -- This card has credit left; does its owner? Taken with the owner's
        -- row locked (after the card's, as every tap-in does), so two cards
        -- cannot spend it twice.
        PERFORM 1 FROM users WHERE user_id = c.owner FOR UPDATE;
        SELECT coalesce(sum(credit_trips_used), 0) INTO person FROM cards WHERE user_id = c.owner;
        d := fare_decide(ru.amount, ru.has_transfer, ru.transfer_fare, ru.duration_limit, ru.transfer_count,
                         ru.personalized_only, ru.max_credit_trips, c.personalized, c.balance, c.credit_trips_used,
                         person, has_prev, pv.route_id, pv.start_s, pv.journey_transfers, p_route, c.now_s);
    END IF;
    IF NOT d.allowed THEN
        RETURN api_problem('insufficient-balance',
                           format('the fare is %s COP and the balance %s COP', d.fare, c.balance), NULL,
                           format('"fare":%s,"balance":%s', d.fare, c.balance));
    END IF;

    IF p_vehicle IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM vehicles WHERE vehicle_id = p_vehicle AND route_id = p_route AND is_active) THEN
            RETURN api_problem('validation', format('is not an active vehicle of route %s', p_route), 'vehicle_id');
        END IF;
        vehicle := p_vehicle;
    ELSE
        SELECT vehicle_id INTO vehicle FROM vehicles WHERE route_id = p_route AND is_active ORDER BY random() LIMIT 1;
    END IF;

    -- Fare ledger row (when there is a fare), card and trip in one statement.
    WITH ids AS (SELECT nextval(pg_get_serial_sequence('trips', 'trip_id')) AS trip_id),
         l AS (INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)
               SELECT p_card, 'fare', -d.fare, d.new_balance, 'trip:' || ids.trip_id FROM ids WHERE d.fare > 0
               RETURNING entry_id),
         cu AS (UPDATE cards SET balance = d.new_balance, credit_trips_used = d.new_credit_trips,
                    last_used_date = now() WHERE card_id = p_card),
         t AS (INSERT INTO trips (trip_id, card_id, route_id, vehicle_id, boarding_station_id, fare_amount,
                                  is_transfer, on_credit, journey_start, journey_transfers, ledger_entry_id)
               SELECT ids.trip_id, p_card, p_route, vehicle, p_station, d.fare, d.is_transfer, d.on_credit,
                      CASE WHEN d.is_transfer THEN pv.journey_start ELSE now() END, d.journey_transfers,
                      (SELECT entry_id FROM l) FROM ids RETURNING *)
    SELECT json_build_object('trip_id', t.trip_id, 'card_id', t.card_id, 'route_id', t.route_id,
                             'vehicle_id', t.vehicle_id, 'boarding_station_id', t.boarding_station_id,
                             'boarding_time', rfc3339(t.boarding_time), 'fare_amount', t.fare_amount,
                             'is_transfer', t.is_transfer, 'on_credit', t.on_credit, 'status', 'in_progress',
                             'remaining_balance', d.new_balance)::text
    INTO o.body FROM t;
    o.status := 201;
    o.card_id := p_card;
    PERFORM idem_save(i_scope, i_key, i_hash, o);
    RETURN o;
END $$;

-- Tap-out: the open trip is closed; the card is not touched.
CREATE FUNCTION api_trip_end(p_trip bigint, p_station bigint, p_rider bigint,
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
    SELECT tr.card_id, tr.boarding_station_id,
           EXISTS (SELECT 1 FROM route_stops rs WHERE rs.route_id = tr.route_id AND rs.station_id = p_station)
               AS on_route
    INTO t FROM trips tr JOIN cards c USING (card_id)
    WHERE tr.trip_id = p_trip AND tr.disembarking_time IS NULL AND (p_rider = 0 OR c.user_id = p_rider);
    IF NOT FOUND THEN
        RETURN api_problem('not-found', format('no trip %s in progress', p_trip));
    END IF;
    IF NOT t.on_route THEN
        RETURN api_problem('validation', 'is not a stop of this trip''s route', 'disembarking_station_id');
    END IF;
    UPDATE trips tr SET disembarking_station_id = p_station, disembarking_time = greatest(now(), tr.boarding_time)
    WHERE trip_id = p_trip AND disembarking_time IS NULL
    RETURNING trip_json(tr)::text INTO o.body;
    IF o.body IS NULL THEN -- ended by a concurrent tap-out
        RETURN api_problem('not-found', format('no trip %s in progress', p_trip));
    END IF;
    o.status := 200;
    o.card_id := t.card_id;
    o.ref_id := t.boarding_station_id;
    PERFORM idem_save(i_scope, i_key, i_hash, o);
    RETURN o;
END $$;

-- -------------------------------------------------------------------- rail

-- A booking paid from a card (no credit for rail). Seats are locked before
-- the card, so bookings cannot deadlock: specific seats FOR UPDATE in id
-- order, "any N of a class" FOR UPDATE SKIP LOCKED. Once locked, a seat is
-- checked again with a fresh snapshot: a booking that committed after this
-- call's first look released the lock we then took, and the seat is taken
-- after all. The partial unique index on active booking seats stays the
-- last guard. p_seats NULL: p_count seats of p_class.
CREATE FUNCTION api_rail_book(p_run bigint, p_card bigint, p_seats bigint[], p_count integer, p_class text,
                              p_rider bigint, i_lock bigint, i_scope text, i_key text, i_hash text)
RETURNS api_outcome LANGUAGE plpgsql AS $$
DECLARE
    o api_outcome;
    owner bigint;
    departed boolean;
    seats bigint[];
    taken bigint[];
    skip bigint[] := '{}';
    total bigint;
    n integer;
    booking bigint;
    balance bigint;
    st text;
BEGIN
    o := idem_claim(i_lock, i_scope, i_key, i_hash);
    IF o.status IS NOT NULL OR o.slug IS NOT NULL THEN
        RETURN o;
    END IF;
    SELECT coalesce(user_id, 0) INTO owner FROM cards WHERE card_id = p_card;
    IF NOT FOUND OR (p_rider <> 0 AND owner <> p_rider) THEN
        RETURN api_problem('not-found', format('card %s does not exist', p_card));
    END IF;
    SELECT departure_time <= now() INTO departed FROM rail_runs WHERE run_id = p_run;
    IF NOT FOUND THEN
        RETURN api_problem('not-found', format('run %s does not exist', p_run));
    END IF;
    IF departed THEN
        RETURN api_problem('validation', 'has departed; it can no longer be booked', 'run_id');
    END IF;

    IF p_seats IS NOT NULL THEN
        SELECT array_agg(seat_id ORDER BY seat_id), sum(price) INTO seats, total FROM (
            SELECT seat_id, price FROM rail_seats WHERE run_id = p_run AND seat_id = ANY (p_seats)
            ORDER BY seat_id FOR UPDATE) s;
        IF coalesce(cardinality(seats), 0) <> cardinality(p_seats) THEN
            RETURN api_problem('validation', format('lists seats that are not seats of run %s', p_run), 'seat_ids');
        END IF;
        SELECT array_agg(seat_id ORDER BY seat_id) INTO taken FROM rail_booking_seats
        WHERE seat_id = ANY (seats) AND active;
        IF taken IS NOT NULL THEN
            RETURN api_problem('seat-taken', format('%s of the seats asked for %s already taken', cardinality(taken),
                                                     CASE WHEN cardinality(taken) = 1 THEN 'is' ELSE 'are' END),
                               NULL, '"seats":[' || array_to_string(taken, ',') || ']');
        END IF;
    ELSE
        LOOP
            SELECT array_agg(seat_id ORDER BY seat_id), coalesce(sum(price), 0) INTO seats, total FROM (
                SELECT s.seat_id, s.price FROM rail_seats s
                WHERE s.run_id = p_run AND s.class = p_class AND s.seat_id <> ALL (skip)
                  AND NOT EXISTS (SELECT 1 FROM rail_booking_seats b WHERE b.seat_id = s.seat_id AND b.active)
                ORDER BY s.seat_id LIMIT p_count FOR UPDATE SKIP LOCKED) s;
            n := coalesce(cardinality(seats), 0);
            IF n < p_count THEN
                RETURN api_problem('seat-taken', format('only %s %s seats are free on run %s', n, p_class, p_run),
                                   NULL, '"seats":[]');
            END IF;
            -- Booked by someone who committed after the look above: skip them.
            SELECT array_agg(seat_id) INTO taken FROM rail_booking_seats WHERE seat_id = ANY (seats) AND active;
            EXIT WHEN taken IS NULL;
            skip := skip || taken;
        END LOOP;
    END IF;

    -- Card, ledger, booking and its seats in one statement; no row when the
    -- card is blocked or short of money.
    WITH ids AS (SELECT nextval(pg_get_serial_sequence('rail_bookings', 'booking_id')) AS booking_id),
         c AS (UPDATE cards SET balance = cards.balance - total
               WHERE card_id = p_card AND status = 'active' AND cards.balance >= total
               RETURNING card_id, cards.balance, user_id),
         l AS (INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)
               SELECT c.card_id, 'booking', -total, c.balance, 'booking:' || ids.booking_id FROM c, ids
               RETURNING entry_id),
         b AS (INSERT INTO rail_bookings (booking_id, run_id, user_id, card_id, total_amount, payment_entry_id)
               SELECT ids.booking_id, p_run, c.user_id, c.card_id, total, l.entry_id FROM ids, c, l
               RETURNING booking_id),
         s AS (INSERT INTO rail_booking_seats (booking_id, seat_id) SELECT b.booking_id, unnest(seats) FROM b)
    SELECT b.booking_id, c.balance INTO booking, balance FROM b, c;
    IF booking IS NULL THEN
        SELECT cards.status, cards.balance INTO st, balance FROM cards WHERE card_id = p_card;
        IF st <> 'active' THEN
            RETURN api_problem('card-blocked', format('card %s is blocked', p_card));
        END IF;
        RETURN api_problem('insufficient-balance',
                           format('the booking costs %s COP and the balance is %s COP', total, balance), NULL,
                           format('"total_amount":%s,"balance":%s', total, balance));
    END IF;
    SELECT left(rail_booking_json(bk)::text, -1) || ', "new_balance" : ' || balance || '}'
    INTO o.body FROM rail_bookings bk WHERE bk.booking_id = booking;
    o.status := 201;
    o.card_id := p_card;
    o.ref_id := p_run;
    PERFORM idem_save(i_scope, i_key, i_hash, o);
    RETURN o;
END $$;

-- Cancellation: refund, free the seats, mark cancelled, while the run has
-- not departed. The booking row is locked first, then the card (a booking
-- locks seats, then the card: no cycle).
CREATE FUNCTION api_rail_cancel(p_booking bigint, p_rider bigint,
                                i_lock bigint, i_scope text, i_key text, i_hash text)
RETURNS api_outcome LANGUAGE plpgsql AS $$
DECLARE
    o api_outcome;
    b record;
BEGIN
    o := idem_claim(i_lock, i_scope, i_key, i_hash);
    IF o.status IS NOT NULL OR o.slug IS NOT NULL THEN
        RETURN o;
    END IF;
    SELECT bk.status, r.departure_time > now() AS open, bk.card_id, bk.total_amount, bk.run_id
    INTO b FROM rail_bookings bk JOIN rail_runs r USING (run_id)
    WHERE bk.booking_id = p_booking AND (p_rider = 0 OR bk.user_id = p_rider) FOR UPDATE OF bk;
    IF NOT FOUND THEN
        RETURN api_problem('not-found', format('booking %s does not exist', p_booking));
    END IF;
    IF b.status <> 'confirmed' THEN
        RETURN api_problem('conflict', format('booking %s is already cancelled', p_booking));
    END IF;
    IF NOT b.open THEN
        RETURN api_problem('validation', format('the run has departed: booking %s can no longer be cancelled',
                                                p_booking));
    END IF;
    WITH c AS (UPDATE cards SET balance = balance + b.total_amount WHERE card_id = b.card_id
               RETURNING card_id, balance),
         l AS (INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)
               SELECT c.card_id, 'refund', b.total_amount, c.balance, 'booking:' || p_booking FROM c
               RETURNING entry_id),
         s AS (UPDATE rail_booking_seats SET active = false WHERE booking_id = p_booking),
         bu AS (UPDATE rail_bookings SET status = 'cancelled', cancelled_at = now(),
                    refund_entry_id = (SELECT entry_id FROM l) WHERE booking_id = p_booking RETURNING *)
    SELECT left(rail_booking_json(bu)::text, -1) || ', "new_balance" : ' || (SELECT balance FROM c) || '}'
    INTO o.body FROM bu;
    o.status := 200;
    o.card_id := b.card_id;
    o.ref_id := b.run_id;
    PERFORM idem_save(i_scope, i_key, i_hash, o);
    RETURN o;
END $$;

-- Bookings of one card, several at once: each as api_rail_book, in order,
-- in one transaction (one commit for the batch). transitd sends the
-- bookings that waited for a busy card together (src/http/lanes.h), so a
-- card paying for many bookings is not limited to one commit at a time.
-- p: a JSON array of {run, card, seats?, count?, class?, rider, lock?,
-- scope?, key?, hash?}; one outcome per element, in the same order.
CREATE FUNCTION api_rail_book_batch(p jsonb)
RETURNS SETOF api_outcome LANGUAGE plpgsql AS $$
DECLARE
    b jsonb;
BEGIN
    FOR b IN SELECT value FROM jsonb_array_elements(p) WITH ORDINALITY ORDER BY ordinality LOOP
        RETURN NEXT api_rail_book((b->>'run')::bigint, (b->>'card')::bigint,
                                  (SELECT array_agg(x::bigint) FROM jsonb_array_elements_text(b->'seats') x),
                                  (b->>'count')::integer, b->>'class', (b->>'rider')::bigint,
                                  (b->>'lock')::bigint, b->>'scope', b->>'key', b->>'hash');
    END LOOP;
END $$;
