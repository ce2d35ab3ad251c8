-- JSON documents with one member more are built as JSON, not spliced as
-- text: cutting the last character off a document and pasting a member
-- after it makes broken JSON, or none, of any document that is not an
-- object, and hides what the answer is made of.

-- The object doc with the member k: v added last. json, unlike jsonb, keeps
-- the members in their order; a NULL v is a JSON null.
CREATE FUNCTION json_append(doc json, k text, v json) RETURNS json
LANGUAGE sql IMMUTABLE AS
$$ SELECT json_object_agg(m.key, m.value ORDER BY m.n)
   FROM (SELECT e.key, e.value, e.n FROM json_each(doc) WITH ORDINALITY AS e(key, value, n)
         UNION ALL SELECT k, coalesce(v, 'null'::json), 9223372036854775807) m $$;

-- Booking and cancellation (0011_money_calls.sql) as they were, but for
-- how the answer adds new_balance to the booking document.
CREATE OR REPLACE FUNCTION api_rail_book(p_run bigint, p_card bigint, p_seats bigint[], p_count integer, p_class text,
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
    SELECT json_append(rail_booking_json(bk), 'new_balance', to_json(balance))::text
    INTO o.body FROM rail_bookings bk WHERE bk.booking_id = booking;
    o.status := 201;
    o.card_id := p_card;
    o.ref_id := p_run;
    PERFORM idem_save(i_scope, i_key, i_hash, o);
    RETURN o;
END $$;

CREATE OR REPLACE FUNCTION api_rail_cancel(p_booking bigint, p_rider bigint,
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
    SELECT json_append(rail_booking_json(bu), 'new_balance', (SELECT to_json(balance) FROM c))::text
    INTO o.body FROM bu;
    o.status := 200;
    o.card_id := b.card_id;
    o.ref_id := b.run_id;
    PERFORM idem_save(i_scope, i_key, i_hash, o);
    RETURN o;
END $$;
