-- Demo riders, cards with balances, and recharge points. Balances are built
-- from recharges and their ledger rows, so the ledger invariant holds.
-- Idempotent: users by email, cards and points by fixed id, money only once.
-- An account someone registered under a demo email before the seed ran is
-- left alone: it is not marked as the seed's, and demo cards never go to it.

INSERT INTO users (user_id, email, first_name, last_name, provisioned_by) VALUES
    (1, 'admin@transitd.local', 'Admin', 'Transitd', 'seed'),
    (2, 'operator@transitd.local', 'Olga', 'Operadora', 'seed'),
    (3, 'rider@transitd.local', 'Ana', 'Rodríguez', 'seed'),
    (4, 'carlos.gomez@transitd.local', 'Carlos', 'Gómez', 'seed'),
    (5, 'lucia.martinez@transitd.local', 'Lucía', 'Martínez', 'seed')
ON CONFLICT DO NOTHING;
SELECT setval(pg_get_serial_sequence('users', 'user_id'), greatest((SELECT max(user_id) FROM users), 1));

INSERT INTO recharge_points (recharge_point_id, name, station_id) VALUES
    (1, 'Taquilla Portal Norte', 1),
    (2, 'Taquilla Portal Américas', 5),
    (3, 'Punto autorizado Calle 100', NULL),
    (4, 'Taquilla Portal Tunal', NULL)
ON CONFLICT (recharge_point_id) DO NOTHING;
SELECT setval(pg_get_serial_sequence('recharge_points', 'recharge_point_id'),
              greatest((SELECT max(recharge_point_id) FROM recharge_points), 1));

DO $$
DECLARE
    demo record;
    amount bigint;
    balance bigint;
    entry bigint;
BEGIN
    FOR demo IN SELECT * FROM (VALUES
        (1::bigint, '6061000000000011', 'rider@transitd.local', ARRAY[20000, 10000]::bigint[]),
        (2, '6061000000000029', 'rider@transitd.local', ARRAY[5000]::bigint[]),
        (3, '6061000000000037', 'carlos.gomez@transitd.local', ARRAY[50000]::bigint[]),
        (4, '6061000000000045', 'lucia.martinez@transitd.local', ARRAY[3200, 3200]::bigint[]),
        (5, '6061000000000052', NULL, ARRAY[10000]::bigint[]),
        (6, '6061000000000060', NULL, ARRAY[]::bigint[])
    ) AS t(card_id, card_number, owner, recharges)
    LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM cards WHERE card_id = demo.card_id);
        INSERT INTO cards (card_id, card_number, user_id) VALUES (demo.card_id, demo.card_number,
            (SELECT user_id FROM users WHERE email = demo.owner AND provisioned_by = 'seed'));
        balance := 0;
        FOREACH amount IN ARRAY demo.recharges LOOP
            balance := balance + amount;
            INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)
                VALUES (demo.card_id, 'recharge', amount, balance, 'seed')
                RETURNING entry_id INTO entry;
            INSERT INTO recharges (card_id, amount, recharge_point_id, ledger_entry_id)
                VALUES (demo.card_id, amount, 1 + (entry % 4)::int, entry);
        END LOOP;
        UPDATE cards SET balance = demo_balance.b
            FROM (SELECT balance AS b) demo_balance WHERE card_id = demo.card_id;
    END LOOP;
END $$;
SELECT setval(pg_get_serial_sequence('cards', 'card_id'), greatest((SELECT max(card_id) FROM cards), 1));
