-- Benchmark dataset at the earlier system's size, for N = current_setting('transitd.scale'):
-- N users, 1.2 N cards (one in six anonymous), 3 N recharges with their ledger
-- rows, over the last 180 days. Runs once per N: a second run finds the data
-- and does nothing. Scale card numbers are 9 followed by the card's sequence number.
DO $$
DECLARE
    n int := current_setting('transitd.scale')::int;
BEGIN
    IF (SELECT count(*) FROM users WHERE email LIKE '%@scale.transitd.local') >= n THEN
        RAISE NOTICE 'scale data for % users already present', n;
        RETURN;
    END IF;

    INSERT INTO users (email, first_name, last_name, created_at)
    SELECT 'user' || g || '@scale.transitd.local', 'Usuario', 'Escala ' || g,
           now() - interval '400 days' + (g % 200) * interval '1 day'
    FROM generate_series(1, n) g
    ON CONFLICT (email) DO NOTHING;

    CREATE TEMP TABLE scale_users ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY user_id) AS i, user_id
    FROM users WHERE email LIKE '%@scale.transitd.local';

    INSERT INTO cards (card_number, user_id, created_at)
    SELECT '9' || lpad(g::text, 15, '0'), CASE WHEN g % 6 = 0 THEN NULL ELSE u.user_id END,
           now() - interval '200 days'
    FROM generate_series(1, (n * 6) / 5) g JOIN scale_users u ON u.i = 1 + (g % n)
    ON CONFLICT (card_number) DO NOTHING;

    CREATE TEMP TABLE scale_cards ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY card_id) AS i, card_id
    FROM cards WHERE card_number LIKE '9%' AND balance = 0;

    CREATE TEMP TABLE scale_recharges ON COMMIT DROP AS
    SELECT g AS seq, c.card_id,
           (ARRAY[5000, 10000, 20000, 50000, 3200, 6400])[1 + g % 6]::bigint AS amount,
           now() - interval '180 days' + (g::double precision / (3 * n)) * interval '179 days' AS ts
    FROM generate_series(1, 3 * n) g
    JOIN scale_cards c ON c.i = 1 + (g::bigint * 7919) % (SELECT count(*) FROM scale_cards);

    INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference, created_at)
    SELECT card_id, 'recharge', amount,
           sum(amount) OVER (PARTITION BY card_id ORDER BY ts, seq), 'scale:' || seq, ts
    FROM scale_recharges;

    INSERT INTO recharges (card_id, amount, recharge_point_id, ledger_entry_id, recharge_timestamp)
    SELECT l.card_id, l.amount, 1 + (l.entry_id % 4)::int, l.entry_id, l.created_at
    FROM card_ledger l WHERE l.reference LIKE 'scale:%'
      AND NOT EXISTS (SELECT 1 FROM recharges r WHERE r.ledger_entry_id = l.entry_id);

    UPDATE cards c SET balance = s.total
    FROM (SELECT card_id, sum(amount) AS total FROM scale_recharges GROUP BY card_id) s
    WHERE c.card_id = s.card_id;
END $$;
ANALYZE users;
ANALYZE cards;
ANALYZE card_ledger;
ANALYZE recharges;
