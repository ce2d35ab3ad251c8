"""Trips under concurrency: taps on one card run one at a time (the card row
is locked and the partial unique index allows one open trip per card), and
many cards tapping at once keep every ledger consistent.

Each worker thread has its own requests.Session (a Session is not safe to
share between threads)."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import assert_problem, db_rows, db_scalar

V1 = "/api/v1"
FARE = 3200
TIMEOUT = 30
ROUTE_A, ROUTE_B = 3, 17          # route 3 and route 17 both stop at station 28 (Av. Jiménez)
A_IN, A_OUT = 1, 28               # Portal Norte -> Av. Jiménez on route 3
B_IN, B_OUT = 28, 5               # Av. Jiménez -> Portal Américas on route 17

_local = threading.local()


def session():
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
    return s


def post(base, headers, path, body):
    return session().post(base + V1 + path, json=body, headers=headers, timeout=TIMEOUT)


def make_card(base, headers, user_id=None, amount=0):
    r = post(base, headers, "/cards", {"user_id": user_id} if user_id else {})
    assert r.status_code == 201, r.text
    card_id = r.json()["card_id"]
    if amount:
        r = post(base, headers, "/cards/recharge", {"card_id": card_id, "amount": amount})
        assert r.status_code == 201, r.text
    return card_id


def ledger_consistent(db, card_ids):
    """Cards whose balance differs from the sum of their ledger."""
    rows = db_rows(db, "SELECT c.card_id, c.balance, coalesce(sum(l.amount), 0) FROM cards c"
                       " LEFT JOIN card_ledger l USING (card_id) WHERE c.card_id = ANY(%s)"
                       " GROUP BY c.card_id, c.balance", list(card_ids))
    assert len(rows) == len(card_ids)
    return [(cid, bal, total) for cid, bal, total in rows if bal != total]


def test_concurrent_tap_ins_on_one_card(base, operator, db):
    """50 simultaneous tap-ins on one card: one boards, 49 are 409 active-trip,
    one fare is charged."""
    card = make_card(base, operator, amount=20000)
    n = 50
    barrier = threading.Barrier(n, timeout=20)
    body = {"card_id": card, "route_id": ROUTE_A, "boarding_station_id": A_IN}

    def tap(_):
        session()                  # connect-ready before the start line
        barrier.wait()
        return post(base, operator, "/trips/start", body)

    start = time.time()
    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(tap, range(n)))
    assert time.time() - start < 30

    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == n - 1, statuses
    for r in answers:
        if r.status_code == 409:
            assert_problem(r, 409, "active-trip")
    won = next(r for r in answers if r.status_code == 201).json()
    assert won["fare_amount"] == FARE and won["remaining_balance"] == 20000 - FARE

    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 1
    assert db_scalar(db, "SELECT count(*) FROM card_ledger WHERE card_id = %s AND kind = 'fare'", card) == 1
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 20000 - FARE
    assert ledger_consistent(db, [card]) == []


def test_concurrent_tap_outs_of_one_trip(base, operator, db):
    """20 simultaneous tap-outs of one trip: exactly one closes it, the rest are 404."""
    card = make_card(base, operator, amount=20000)
    r = post(base, operator, "/trips/start", {"card_id": card, "route_id": ROUTE_A, "boarding_station_id": A_IN})
    assert r.status_code == 201, r.text
    trip = r.json()["trip_id"]
    n = 20
    barrier = threading.Barrier(n, timeout=20)

    def out(_):
        session()
        barrier.wait()
        return post(base, operator, "/trips/end", {"trip_id": trip, "disembarking_station_id": A_OUT})

    with ThreadPoolExecutor(max_workers=n) as pool:
        answers = list(pool.map(out, range(n)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(200) == 1 and statuses.count(404) == n - 1, statuses
    for r in answers:
        if r.status_code == 404:
            assert_problem(r, 404, "not-found")
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s AND disembarking_time IS NULL", card) == 0
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 20000 - FARE


def test_many_cards_tap_in_and_out_concurrently(base, operator, db):
    """100 cards (half anonymous, half personalised), each recharged 20000,
    ride route 3, then route 17, then route 3 again, all cards at once.
    Anonymous cards pay every boarding; personalised cards pay the first and
    transfer free twice. Every request succeeds and every ledger holds."""
    r = post(base, operator, "/auth/register", {
        "email": "trips.concurrency.%d@example.test" % time.time_ns(), "password": "concurrency-password",
        "first_name": "Muchas", "last_name": "Tarjetas"})
    assert r.status_code == 201, r.text
    owner = r.json()["user_id"]
    n_cards, rounds = 100, 3

    with ThreadPoolExecutor(max_workers=20) as pool:
        cards = list(pool.map(lambda i: make_card(base, operator, owner if i % 2 else None, 20000),
                              range(n_cards)))
    personalised = {c for i, c in enumerate(cards) if i % 2}
    legs = [(ROUTE_A, A_IN, A_OUT), (ROUTE_B, B_IN, B_OUT), (ROUTE_A, A_IN, A_OUT)][:rounds]
    failures = []

    def travel(card):
        for route, board, alight in legs:
            r = post(base, operator, "/trips/start", {"card_id": card, "route_id": route,
                                                      "boarding_station_id": board})
            if r.status_code != 201:
                failures.append((card, "start", r.status_code, r.text))
                return
            r = post(base, operator, "/trips/end", {"trip_id": r.json()["trip_id"],
                                                    "disembarking_station_id": alight})
            if r.status_code != 200:
                failures.append((card, "end", r.status_code, r.text))
                return

    start = time.time()
    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(travel, cards))
    elapsed = time.time() - start
    assert failures == [], failures[:5]
    assert elapsed < 45, elapsed

    assert ledger_consistent(db, cards) == []
    open_trips = db_rows(db, "SELECT card_id, count(*) FROM trips WHERE card_id = ANY(%s)"
                             " AND disembarking_time IS NULL GROUP BY card_id", cards)
    assert open_trips == [], open_trips
    rows = db_rows(db, "SELECT c.card_id, c.balance, count(t.trip_id), count(t.trip_id) FILTER (WHERE t.fare_amount > 0),"
                       " count(l.entry_id) FILTER (WHERE l.kind = 'fare')"
                       " FROM cards c JOIN trips t USING (card_id)"
                       " LEFT JOIN card_ledger l ON l.entry_id = t.ledger_entry_id"
                       " WHERE c.card_id = ANY(%s) GROUP BY c.card_id, c.balance", cards)
    assert len(rows) == n_cards
    for card, bal, trips, paid, fare_rows in rows:
        want_paid = 1 if card in personalised else rounds
        assert (trips, paid, fare_rows, bal) == (rounds, want_paid, want_paid, 20000 - want_paid * FARE), card
    # No fare row without its trip.
    assert db_scalar(db, "SELECT count(*) FROM card_ledger l WHERE l.card_id = ANY(%s) AND l.kind = 'fare'"
                         " AND NOT EXISTS (SELECT 1 FROM trips t WHERE t.ledger_entry_id = l.entry_id)", cards) == 0
