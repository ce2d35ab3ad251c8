-- active_riders() planned its boundary-day check as a hash semi join over
-- every active card (a sequential scan of cards: ~35 ms at 120k cards),
-- because a SQL function's body is planned without its argument's value.
-- OFFSET 0 keeps the EXISTS a correlated subplan: one lookup in
-- cards_user_idx per rider whose last day is the window's first (a few
-- hundred), whatever the plan. Same definition, same result.
CREATE OR REPLACE FUNCTION active_riders(at timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (SELECT coalesce(sum(riders), 0) FROM rider_days WHERE day > utc_day(at - interval '30 days'))
         + (SELECT count(*) FROM rider_last_day r
            WHERE r.last_day = utc_day(at - interval '30 days')
              AND EXISTS (SELECT 1 FROM cards c WHERE c.user_id = r.user_id AND c.status = 'active'
                          AND c.last_used_date >= at - interval '30 days' OFFSET 0))
$$;
