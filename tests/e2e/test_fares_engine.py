"""The fare engine, fare_decide() in SQL (db/migrations/0011_money_calls.sql),
called directly: a tap-in decides its fare inside its one call to the
database, so the engine lives there. Each row of CASES is one rule in force,
card and previous boarding, with the whole decision expected; then a chained
Bogotá day, and the engine's invariants over thousands of random and extreme
inputs (what the libFuzzer harness of the C engine checked before).

Not the engine's job (so not tested here): repaying credit. A recharge resets
credit_trips_used to 0 once the balance is >= 0 again; the engine only reads it."""
import random

import pytest

from conftest import db_rows

FARE = 3200
WINDOW = 7500          # 125 minutes
NOW = 1764097573       # 2025-11-25T19:06:13Z
MIN = 60
I64_MIN, I64_MAX = -2**63, 2**63 - 1
I16_MIN, I16_MAX = -2**15, 2**15 - 1

# rule: (fare, has_transfer, transfer_fare, duration_limit, transfer_count, personalized_only, max_credit_trips)
BOGOTA_PERSONAL = (FARE, True, 0, WINDOW, 2, True, 2)
BOGOTA_ANON = (FARE, True, 0, WINDOW, 2, True, 0)


# card: (personalized, balance, credit_trips_used, person_credit_trips)
def personal(balance, credit):
    return (True, balance, credit, credit)


def person(balance, credit, person_credit):
    return (True, balance, credit, person_credit)


def anon(balance):
    return (False, balance, 0, 0)


# previous boarding: (exists, route, journey_start, journey_transfers)
NO_PREVIOUS = (False, 0, 0, 0)


def previous(route, ago, transfers):
    return (True, route, NOW - ago, transfers)


# decision: (allowed, fare, is_transfer, on_credit, journey_start, journey_transfers, new_balance, new_credit_trips)
CASES = [
    # --- boarding and transfers
    ("first boarding pays the full fare and starts a journey",
     BOGOTA_PERSONAL, personal(10000, 0), NO_PREVIOUS, 3, NOW,
     (True, FARE, False, False, NOW, 0, 10000 - FARE, 0)),
    ("1st transfer onto another route is free, the journey keeps its start",
     BOGOTA_PERSONAL, personal(6800, 0), previous(3, 30 * MIN, 0), 17, NOW,
     (True, 0, True, False, NOW - 30 * MIN, 1, 6800, 0)),
    ("2nd transfer is free too",
     BOGOTA_PERSONAL, personal(6800, 0), previous(17, 60 * MIN, 1), 9, NOW,
     (True, 0, True, False, NOW - 60 * MIN, 2, 6800, 0)),
    ("3rd transfer is paid and starts a new journey",
     BOGOTA_PERSONAL, personal(6800, 0), previous(9, 70 * MIN, 2), 3, NOW,
     (True, FARE, False, False, NOW, 0, 6800 - FARE, 0)),
    ("window edge 124:59 is a transfer",
     BOGOTA_PERSONAL, personal(6800, 0), previous(3, WINDOW - 1, 0), 17, NOW,
     (True, 0, True, False, NOW - (WINDOW - 1), 1, 6800, 0)),
    ("window edge 125:00 is a transfer (the limit is inclusive)",
     BOGOTA_PERSONAL, personal(6800, 0), previous(3, WINDOW, 0), 17, NOW,
     (True, 0, True, False, NOW - WINDOW, 1, 6800, 0)),
    ("window edge 125:01 is paid, a new journey",
     BOGOTA_PERSONAL, personal(6800, 0), previous(3, WINDOW + 1, 0), 17, NOW,
     (True, FARE, False, False, NOW, 0, 6800 - FARE, 0)),
    ("window measured from the journey's first paid boarding, not the last leg",
     BOGOTA_PERSONAL, personal(6800, 0), previous(17, WINDOW + 1, 1), 9, NOW,
     (True, FARE, False, False, NOW, 0, 6800 - FARE, 0)),
    ("the same route again is paid (a new trip, not a transfer)",
     BOGOTA_PERSONAL, personal(6800, 0), previous(3, 10 * MIN, 0), 3, NOW,
     (True, FARE, False, False, NOW, 0, 6800 - FARE, 0)),
    ("a boarding before the journey start (clock skew) is paid",
     BOGOTA_PERSONAL, personal(6800, 0), previous(3, -5, 0), 17, NOW,
     (True, FARE, False, False, NOW, 0, 6800 - FARE, 0)),
    ("no transfer rule between the leg groups: paid",
     (FARE, False, 0, 0, 0, True, 2), personal(6800, 0), previous(3, 10 * MIN, 0), 17, NOW,
     (True, FARE, False, False, NOW, 0, 6800 - FARE, 0)),
    ("a transfer rule with a price charges that price",
     (FARE, True, 500, WINDOW, 2, True, 2), personal(6800, 0), previous(3, 10 * MIN, 0), 17, NOW,
     (True, 500, True, False, NOW - 10 * MIN, 1, 6300, 0)),
    # --- anonymous cards
    ("anonymous card pays the first boarding",
     BOGOTA_ANON, anon(10000), NO_PREVIOUS, 3, NOW,
     (True, FARE, False, False, NOW, 0, 10000 - FARE, 0)),
    ("anonymous card pays every boarding (no transfer)",
     BOGOTA_ANON, anon(6800), previous(3, 10 * MIN, 0), 17, NOW,
     (True, FARE, False, False, NOW, 0, 6800 - FARE, 0)),
    ("personalized_only=false lets an anonymous card transfer",
     (FARE, True, 0, WINDOW, 2, False, 0), anon(6800), previous(3, 10 * MIN, 0), 17, NOW,
     (True, 0, True, False, NOW - 10 * MIN, 1, 6800, 0)),
    # --- credit
    ("credit trip 1 from balance 0",
     BOGOTA_PERSONAL, personal(0, 0), NO_PREVIOUS, 3, NOW,
     (True, FARE, False, True, NOW, 0, -FARE, 1)),
    ("credit trip 2 from balance -3200",
     BOGOTA_PERSONAL, personal(-FARE, 1), previous(3, 10 * MIN, 0), 3, NOW,
     (True, FARE, False, True, NOW, 0, -2 * FARE, 2)),
    ("3rd credit trip from -6400 is refused, balance unchanged",
     BOGOTA_PERSONAL, personal(-2 * FARE, 2), previous(3, 10 * MIN, 0), 3, NOW,
     (False, FARE, False, False, NOW, 0, -2 * FARE, 2)),
    ("credit trip 1 from balance 1000",
     BOGOTA_PERSONAL, personal(1000, 0), NO_PREVIOUS, 3, NOW,
     (True, FARE, False, True, NOW, 0, 1000 - FARE, 1)),
    ("credit trip 2 from balance -2200",
     BOGOTA_PERSONAL, personal(1000 - FARE, 1), previous(3, 10 * MIN, 0), 3, NOW,
     (True, FARE, False, True, NOW, 0, 1000 - 2 * FARE, 2)),
    ("3rd credit trip from -5400 is refused (two credit trips used)",
     BOGOTA_PERSONAL, personal(1000 - 2 * FARE, 2), previous(3, 10 * MIN, 0), 3, NOW,
     (False, FARE, False, False, NOW, 0, 1000 - 2 * FARE, 2)),
    ("credit refused when it would go below two fares",
     BOGOTA_PERSONAL, personal(-5000, 1), NO_PREVIOUS, 3, NOW,
     (False, FARE, False, False, NOW, 0, -5000, 1)),
    ("a balance of exactly one fare pays without credit",
     BOGOTA_PERSONAL, personal(FARE, 0), NO_PREVIOUS, 3, NOW,
     (True, FARE, False, False, NOW, 0, 0, 0)),
    ("anonymous card with 0: max_credit_trips=0 refuses",
     BOGOTA_ANON, anon(0), NO_PREVIOUS, 3, NOW,
     (False, FARE, False, False, NOW, 0, 0, 0)),
    ("anonymous card with 1000: max_credit_trips=0 refuses",
     BOGOTA_ANON, anon(1000), NO_PREVIOUS, 3, NOW,
     (False, FARE, False, False, NOW, 0, 1000, 0)),
    ("personalised card with max_credit_trips=0 refuses",
     (FARE, True, 0, WINDOW, 2, True, 0), personal(0, 0), NO_PREVIOUS, 3, NOW,
     (False, FARE, False, False, NOW, 0, 0, 0)),
    ("a free transfer is allowed with a negative balance and no credit left",
     BOGOTA_PERSONAL, personal(-2 * FARE, 2), previous(3, 10 * MIN, 0), 17, NOW,
     (True, 0, True, False, NOW - 10 * MIN, 1, -2 * FARE, 2)),
    ("same route within the window with no credit left is refused",
     BOGOTA_PERSONAL, personal(-2 * FARE, 2), previous(17, 10 * MIN, 1), 17, NOW,
     (False, FARE, False, False, NOW, 0, -2 * FARE, 2)),
    ("stale credit count with a positive balance: paid normally, count kept",
     BOGOTA_PERSONAL, personal(5000, 2), NO_PREVIOUS, 3, NOW,
     (True, FARE, False, False, NOW, 0, 5000 - FARE, 2)),
    # --- credit is the person's
    ("a new card of a person whose other cards used the credit gets none",
     BOGOTA_PERSONAL, person(0, 0, 2), NO_PREVIOUS, 3, NOW,
     (False, FARE, False, False, NOW, 0, 0, 0)),
    ("a person with one credit trip left may take it on any card",
     BOGOTA_PERSONAL, person(0, 0, 1), NO_PREVIOUS, 3, NOW,
     (True, FARE, False, True, NOW, 0, -FARE, 1)),
    # --- hostile rules and values: refused, never wrapped
    ("a negative fare in the rules refuses the boarding",
     (-5, True, 0, WINDOW, 2, True, 2), personal(10000, 0), NO_PREVIOUS, 3, NOW,
     (False, 0, False, False, NOW, 0, 10000, 0)),
    ("a balance at the bottom of 64 bits is refused, not wrapped",
     BOGOTA_PERSONAL, personal(I64_MIN, 0), NO_PREVIOUS, 3, NOW,
     (False, FARE, False, False, NOW, 0, I64_MIN, 0)),
    ("a journey start far in the past does not overflow the window check",
     BOGOTA_PERSONAL, personal(10000, 0), (True, 3, I64_MIN, 0), 17, NOW,
     (True, FARE, False, False, NOW, 0, 10000 - FARE, 0)),
    ("a negative transfer count of the previous leg is no transfer",
     BOGOTA_PERSONAL, personal(10000, 0), previous(3, MIN, -7), 17, NOW,
     (True, FARE, False, False, NOW, 0, 10000 - FARE, 0)),
]

# Each parameter in parentheses: "-9223372036854775808::bigint" would cast
# before negating, and overflow in the test, not in the engine.
DECIDE = ("SELECT allowed, fare, is_transfer, on_credit, journey_start, journey_transfers, new_balance,"
          " new_credit_trips FROM fare_decide((%s)::bigint, (%s), (%s)::bigint, (%s)::bigint, (%s)::int, (%s),"
          " (%s)::int, (%s), (%s)::bigint, (%s)::int, (%s)::int, (%s), (%s)::bigint, (%s)::bigint, (%s)::int,"
          " (%s)::bigint, (%s)::bigint)")


def decide(db, rule, card, prev, route, now):
    rows = db_rows(db, DECIDE, *rule, *card, *prev, route, now)
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize("name,rule,card,prev,route,now,want", CASES, ids=[c[0] for c in CASES])
def test_fare_case(db, name, rule, card, prev, route, now, want):
    got = decide(db, rule, card, prev, route, now)
    fields = ("allowed", "fare", "is_transfer", "on_credit", "journey_start", "journey_transfers",
              "new_balance", "new_credit_trips")
    diff = {f: (w, g) for f, w, g in zip(fields, want, got) if w != g}
    assert not diff, "%s: field: (want, got) %r" % (name, diff)


def test_decision_is_pure(db):
    """The same inputs give the same decision, whatever came before."""
    for _, rule, card, prev, route, now, _ in CASES:
        assert decide(db, rule, card, prev, route, now) == decide(db, rule, card, prev, route, now)


def test_chained_bogota_journey(db):
    """A whole day of one personalised card, chaining decisions the way a tap-in
    does (the previous boarding is the last decision)."""
    card = [True, 4000, 0, 0]
    prev = NO_PREVIOUS
    steps = [  # route, at, fare, transfer, credit, allowed, balance
        (3, NOW, FARE, False, False, True, 800),                          # paid
        (17, NOW + 20 * MIN, 0, True, False, True, 800),                  # 1st transfer
        (9, NOW + 40 * MIN, 0, True, False, True, 800),                   # 2nd transfer
        (3, NOW + 60 * MIN, FARE, False, True, True, 800 - FARE),         # 3rd: paid, credit 1
        (17, NOW + 60 * MIN + WINDOW, 0, True, False, True, 800 - FARE),  # edge of the new window
        (17, NOW + 200 * MIN, FARE, False, True, True, 800 - 2 * FARE),   # same route: credit 2
        (3, NOW + 500 * MIN, FARE, False, False, False, 800 - 2 * FARE),  # new journey, no credit
    ]
    for i, (route, at, fare, transfer, credit, allowed, balance) in enumerate(steps):
        d = decide(db, BOGOTA_PERSONAL, tuple(card), prev, route, at)
        assert (d[1], d[2], d[3], d[0], d[6]) == (fare, transfer, credit, allowed, balance), (i, d)
        if not d[0]:
            continue
        card = [True, d[6], d[7], d[7]]
        prev = (True, route, d[4], d[5])


def extreme(rng, lo, hi):
    return rng.choice([lo, hi, 0, -1, 1, rng.randint(lo, hi), rng.randint(-10000, 10000)])


def test_engine_invariants_on_random_inputs(db):
    """Whatever the rules, card and history: the fare is never negative; a
    journey never counts more transfers than allowed; a refused boarding
    changes nothing; an allowed one moves the balance by exactly the fare;
    credit never goes past the rule's number of trips; nothing overflows (an
    overflow would be an SQL error)."""
    rng = random.Random(20261205)
    inputs = []
    for _ in range(3000):
        rule = (extreme(rng, I64_MIN, I64_MAX), rng.random() < 0.7, extreme(rng, I64_MIN, I64_MAX),
                extreme(rng, I64_MIN, I64_MAX), extreme(rng, I16_MIN, I16_MAX), rng.random() < 0.5,
                extreme(rng, I16_MIN, I16_MAX))
        card = (rng.random() < 0.5, extreme(rng, I64_MIN, I64_MAX), extreme(rng, I16_MIN, I16_MAX),
                extreme(rng, I16_MIN, I16_MAX))
        prev = (rng.random() < 0.7, rng.randint(-3, 40), extreme(rng, I64_MIN, I64_MAX), extreme(rng, I16_MIN, I16_MAX))
        inputs.append((rule, card, prev, rng.randint(-3, 40), extreme(rng, I64_MIN, I64_MAX)))
    # Common Bogotá values too, so that the credit and transfer branches are taken.
    for _ in range(1000):
        rule = BOGOTA_PERSONAL if rng.random() < 0.5 else BOGOTA_ANON
        card = (rng.random() < 0.7, rng.randint(-3 * FARE, 3 * FARE), rng.randint(0, 3), rng.randint(0, 3))
        prev = (rng.random() < 0.7, rng.choice([3, 17, 9]), NOW - rng.randint(-100, 2 * WINDOW), rng.randint(0, 3))
        inputs.append((rule, card, prev, rng.choice([3, 17, 9]), NOW))
    with db.cursor() as cur:
        for rule, card, prev, route, now in inputs:
            cur.execute(DECIDE, (*rule, *card, *prev, route, now))
            allowed, fare, transfer, credit, start, transfers, balance, credits = cur.fetchone()
            ctx = (rule, card, prev, route, now)
            assert fare >= 0, ctx
            if transfer:
                assert transfers <= rule[4], ctx
            else:
                assert transfers == 0, ctx
            if not allowed:
                assert (balance, credits, credit) == (card[1], card[2], False), ctx
            else:
                assert balance == card[1] - fare, ctx
            if credit:
                assert credits <= rule[6] and card[3] < rule[6], ctx
            if allowed and not credit and fare > 0:
                assert balance >= 0, ctx
