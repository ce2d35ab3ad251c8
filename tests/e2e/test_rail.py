"""Regional rail end to end: trains, the runs of a Bogotá date, seat maps,
bookings of specific seats and of any seats of a class, cancellation and
refund, departed runs, every error status, Idempotency-Key, body validation
and POST /rail/runs. After every test the money and seat invariants hold:
each card touched has balance == sum of its ledger, no seat is held by two
active bookings, and each booking's total is the sum of its seats' prices.

Demo data (db/seed/demo_3_rail.sql): rail stations 201-210; train 1 'RT-A'
(coach 1 first class, 40 seats x 12000; coaches 2-4 standard, 60 x 6500),
train 2 'RT-B' (2 coaches standard, 50 x 6500); runs every 30 minutes from
05:00 to 22:00 Bogotá time for 14 days, westbound 201 -> 210 on train 1,
eastbound 210 -> 201 on train 2. Tests that book make their own runs (train 1,
between stations 202 and 209, at times the demo schedule never uses), so
the demo runs from 201 stay as seeded."""
import datetime
import itertools
import random
import uuid

import pytest
import requests

from conftest import RFC3339_UTC, assert_problem, bearer, db_rows, db_scalar

V1 = "/api/v1"
TIMEOUT = 10
FIRST, STANDARD = 12000, 6500
BOGOTA = datetime.timezone(datetime.timedelta(hours=-5))
RIDER_CARDS = (1, 2)        # the demo rider's cards
THEIR_CARD = 3              # belongs to user 4


# --- helpers -------------------------------------------------------------

def post(base, path, body=None, headers=None, **kw):
    return requests.post(base + V1 + path, json=body, headers=headers, timeout=TIMEOUT, **kw)


def get(base, path, headers=None, **kw):
    return requests.get(base + V1 + path, headers=headers, timeout=TIMEOUT, **kw)


def bogota_today():
    return datetime.datetime.now(BOGOTA).date()


def utc(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_slots = itertools.count()


def fresh_slot(minutes=None):
    """A departure tomorrow in Bogotá that the demo schedule (every :00 and
    :30 from 05:00 to 22:00) never uses: 22:31 onwards, one minute apart,
    with a random second."""
    n = next(_slots) if minutes is None else minutes
    day = bogota_today() + datetime.timedelta(days=1)
    return datetime.datetime.combine(day, datetime.time(22, 31), BOGOTA) + datetime.timedelta(
        minutes=n, seconds=random.randint(1, 59))


def create_run(base, admin, departure=None, train_id=1, origin=202, destination=209, minutes=58):
    """A new run (as the admin); at a fresh slot unless departure is given."""
    for _ in range(5):
        dep = departure or fresh_slot()
        r = post(base, "/rail/runs", {"train_id": train_id, "origin_station_id": origin,
                                      "destination_station_id": destination, "departure_time": utc(dep),
                                      "arrival_time": utc(dep + datetime.timedelta(minutes=minutes))}, admin)
        if r.status_code != 409 or departure:
            break
    assert r.status_code == 201, r.text
    return r.json()


def seat_map(base, run_id):
    r = get(base, "/rail/runs/%d/seats" % run_id)
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Cache") in ("HIT", "MISS", "BYPASS"), r.headers
    return r.json()


def seats_by_id(base, run_id):
    return {s["seat_id"]: s for s in seat_map(base, run_id)["seats"]}


def seat(base, run_id, coach, number):
    for s in seat_map(base, run_id)["seats"]:
        if s["coach"] == coach and s["number"] == number:
            return s
    raise AssertionError("run %d has no seat %d/%d" % (run_id, coach, number))


def balance(base, headers, card_id):
    r = get(base, "/cards/%d/balance" % card_id, headers)
    assert r.status_code == 200, r.text
    return r.json()["balance"]


def recharge(base, operator, card_id, amount):
    r = post(base, "/cards/recharge", {"card_id": card_id, "amount": amount}, operator)
    assert r.status_code == 201, r.text
    return r.json()["new_balance"]


def rider_card(base, rider, operator, amount=0):
    """A fresh card of the demo rider's, recharged by the operator."""
    r = post(base, "/cards", {}, rider)
    assert r.status_code == 201, r.text
    card = r.json()["card_id"]
    if amount:
        recharge(base, operator, card, amount)
    return card


def book(base, headers, run_id, card_id, seat_ids=None, count=None, cls=None, expect=201, **kw):
    body = {"run_id": run_id, "card_id": card_id}
    if seat_ids is not None:
        body["seat_ids"] = seat_ids
    if count is not None:
        body["seat_count"] = count
    if cls is not None:
        body["class"] = cls
    r = post(base, "/rail/bookings", body, headers, **kw)
    if expect is not None:
        assert r.status_code == expect, r.text
    return r.json() if expect == 201 else r


def cancel(base, headers, booking_id, expect=200):
    r = post(base, "/rail/bookings/%d/cancel" % booking_id, None, headers)
    if expect is not None:
        assert r.status_code == expect, r.text
    return r.json() if expect == 200 else r


def taken(base, run_id):
    return {s["seat_id"] for s in seat_map(base, run_id)["seats"] if s["status"] == "taken"}


def bookings_of_card(db, card_id):
    return db_scalar(db, "SELECT count(*) FROM rail_bookings WHERE card_id = %s", card_id)


def ledger(db, card_id, kind=None):
    return db_rows(db, "SELECT kind, amount, balance_after, reference FROM card_ledger WHERE card_id = %s"
                       " AND (%s::text IS NULL OR kind = %s) ORDER BY entry_id", card_id, kind, kind)


def assert_booking_doc(b, run_id, card_id, user_id, seats, status="confirmed"):
    assert set(b) >= {"booking_id", "run_id", "status", "card_id", "user_id", "total_amount", "seats",
                      "created_at", "cancelled_at"}, b
    assert b["run_id"] == run_id and b["card_id"] == card_id and b["user_id"] == user_id, b
    assert b["status"] == status, b
    assert RFC3339_UTC.match(b["created_at"]), b
    if status == "confirmed":
        assert b["cancelled_at"] is None, b
    else:
        assert RFC3339_UTC.match(b["cancelled_at"]), b
    for s in b["seats"]:
        assert set(s) == {"seat_id", "coach", "number", "class", "price"}, s
    assert [s["seat_id"] for s in b["seats"]] == sorted(s["seat_id"] for s in seats), b
    by_id = {s["seat_id"]: s for s in seats}
    for s in b["seats"]:
        want = by_id[s["seat_id"]]
        assert (s["coach"], s["number"], s["class"], s["price"]) == \
            (want["coach"], want["number"], want["class"], want["price"]), (s, want)
    assert b["total_amount"] == sum(s["price"] for s in seats), b


# --- fixtures ------------------------------------------------------------

@pytest.fixture(scope="module")
def rider_id(base, rider):
    return get(base, "/users/me", rider).json()["user_id"]


@pytest.fixture(scope="module")
def other(tokens):
    return bearer(tokens["other"])


@pytest.fixture
def touched(db):
    """Cards a test used; afterwards every one has balance == sum(ledger), and
    the seat invariants hold over the whole database."""
    cards = set(RIDER_CARDS)
    yield cards
    bad = db_rows(db, "SELECT c.card_id, c.balance, coalesce(sum(l.amount), 0) FROM cards c"
                      " LEFT JOIN card_ledger l USING (card_id) WHERE c.card_id = ANY(%s)"
                      " GROUP BY c.card_id HAVING c.balance <> coalesce(sum(l.amount), 0)", sorted(cards))
    assert bad == [], "cards whose balance is not the sum of their ledger: %r" % bad
    assert_seat_invariants(db)


def assert_seat_invariants(db):
    twice = db_rows(db, "SELECT seat_id FROM rail_booking_seats WHERE active GROUP BY seat_id HAVING count(*) > 1")
    assert twice == [], "seats in two active bookings: %r" % twice
    wrong_total = db_rows(db, "SELECT b.booking_id, b.total_amount, sum(s.price) FROM rail_bookings b"
                              " JOIN rail_booking_seats bs USING (booking_id) JOIN rail_seats s USING (seat_id)"
                              " GROUP BY b.booking_id HAVING b.total_amount <> sum(s.price)")
    assert wrong_total == [], "bookings whose total is not the sum of their seats: %r" % wrong_total
    wrong_state = db_rows(db, "SELECT b.booking_id, b.status, bs.seat_id, bs.active FROM rail_bookings b"
                              " JOIN rail_booking_seats bs USING (booking_id)"
                              " WHERE bs.active <> (b.status = 'confirmed')")
    assert wrong_state == [], "booking seats whose active flag disagrees with the booking: %r" % wrong_state
    foreign = db_rows(db, "SELECT b.booking_id, bs.seat_id FROM rail_bookings b JOIN rail_booking_seats bs"
                          " USING (booking_id) JOIN rail_seats s USING (seat_id) WHERE s.run_id <> b.run_id")
    assert foreign == [], "bookings holding seats of another run: %r" % foreign


@pytest.fixture
def funded(base, operator, touched):
    """The demo rider's card 1, recharged so that bookings are affordable."""
    recharge(base, operator, 1, 200000)
    return 1


# --- trains and runs -------------------------------------------------------

def test_trains(base, touched):
    r = get(base, "/rail/trains")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("X-Cache") in ("HIT", "MISS", "BYPASS")
    trains = {t["train_code"]: t for t in r.json()["trains"]}
    assert set(trains) >= {"RT-A", "RT-B"}
    a, b = trains["RT-A"], trains["RT-B"]
    for t in (a, b):
        assert set(t) == {"train_id", "train_code", "name", "is_active", "seat_count", "coaches"}, t
        assert t["is_active"] is True and t["name"]
        assert t["seat_count"] == sum(c["seats"] for c in t["coaches"])
        for c in t["coaches"]:
            assert set(c) == {"coach", "class", "seats", "price"}, c
    assert (a["train_id"], a["seat_count"], b["train_id"], b["seat_count"]) == (1, 220, 2, 100)
    assert [(c["coach"], c["class"], c["seats"], c["price"]) for c in a["coaches"]] == [
        (1, "first", 40, FIRST), (2, "standard", 60, STANDARD), (3, "standard", 60, STANDARD),
        (4, "standard", 60, STANDARD)]
    assert [(c["coach"], c["class"], c["seats"], c["price"]) for c in b["coaches"]] == [
        (1, "standard", 50, STANDARD), (2, "standard", 50, STANDARD)]


def test_runs_of_tomorrow(base, touched):
    """Tomorrow (a Bogotá date): 35 westbound runs from 201, 05:00 to 22:00
    Bogotá = 10:00Z to 03:00Z the next day, every 30 minutes, 58 minutes long."""
    day = bogota_today() + datetime.timedelta(days=1)
    r = get(base, "/rail/runs", params={"origin": 201, "date": day.isoformat()})
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Cache") in ("HIT", "MISS", "BYPASS")
    body = r.json()
    assert body["date"] == day.isoformat()
    runs = body["runs"]
    assert len(runs) == 35, [x["departure_time"] for x in runs]
    first = datetime.datetime.combine(day, datetime.time(5, 0), BOGOTA)
    for i, run in enumerate(runs):
        assert set(run) == {"run_id", "train_id", "train_code", "origin", "origin_station_id", "destination",
                            "destination_station_id", "departure_time", "arrival_time", "seats_free"}, run
        assert RFC3339_UTC.match(run["departure_time"]) and RFC3339_UTC.match(run["arrival_time"]), run
        dep = first + datetime.timedelta(minutes=30 * i)
        assert run["departure_time"] == utc(dep), (i, run)
        assert run["arrival_time"] == utc(dep + datetime.timedelta(minutes=58)), run
        assert (run["train_id"], run["train_code"]) == (1, "RT-A"), run
        assert (run["origin_station_id"], run["destination_station_id"]) == (201, 210), run
        assert (run["origin"], run["destination"]) == ("Estación de la Sabana", "Facatativá"), run
        assert 0 <= run["seats_free"] <= 220, run
    assert runs[0]["departure_time"] == day.isoformat() + "T10:00:00Z"
    assert runs[-1]["departure_time"] == (day + datetime.timedelta(days=1)).isoformat() + "T03:00:00Z"


def test_runs_filters(base, touched):
    day = (bogota_today() + datetime.timedelta(days=1)).isoformat()

    def runs(**params):
        r = get(base, "/rail/runs", params=dict(params, date=day))
        assert r.status_code == 200, r.text
        return r.json()["runs"]

    west = runs(origin=201, destination=210)
    assert len(west) == 35
    east = runs(origin=210)
    assert len(east) >= 35 and all(x["origin_station_id"] == 210 for x in east)
    assert all(x["train_code"] == "RT-B" for x in east)
    assert len(runs(destination=201)) >= 35
    assert all(x["destination_station_id"] == 201 for x in runs(destination=201))
    assert runs(origin=201, destination=201) == []
    assert all(x["origin_station_id"] == 205 for x in runs(origin=205))
    everything = runs()
    assert len(everything) >= 70
    deps = [x["departure_time"] for x in everything]
    assert deps == sorted(deps)
    # Without a date: today in Bogotá.
    r = get(base, "/rail/runs", params={"origin": 201})
    assert r.status_code == 200 and r.json()["date"] == bogota_today().isoformat(), r.text
    # A date with no runs.
    r = get(base, "/rail/runs", params={"date": "2031-01-15"})
    assert r.status_code == 200 and r.json() == {"date": "2031-01-15", "runs": []}, r.text


@pytest.mark.parametrize("date", ["2026-02-30", "26-11-25", "abc", "2026-13-01", "2026-11-251", "2026/11/25",
                                  "2027-02-29", "2026-+1-01", "2026-01- 1", "1999-12-31"])
def test_runs_bad_date(base, date):
    assert_problem(get(base, "/rail/runs", params={"date": date}), 422, "validation", "date")


@pytest.mark.parametrize("param,value", [("origin", "abc"), ("origin", "0"), ("destination", "-3"),
                                         ("destination", "1.5")])
def test_runs_bad_station(base, param, value):
    assert_problem(get(base, "/rail/runs", params={param: value}), 422, "validation", param)


def test_runs_date_is_bogota_local(base, admin, touched):
    """A run at 23:50 Bogotá tomorrow departs at 04:50Z the day after: it is a
    run of tomorrow's Bogotá date, not of the next."""
    day = bogota_today() + datetime.timedelta(days=1)
    second = random.randint(1, 59)
    dep = datetime.datetime.combine(day, datetime.time(23, 50, second), BOGOTA)
    run = create_run(base, admin, dep, origin=203, destination=208)
    assert run["departure_time"] == (day + datetime.timedelta(days=1)).isoformat() + "T04:50:%02dZ" % second
    ids = [x["run_id"] for x in get(base, "/rail/runs", params={"origin": 203, "date": day.isoformat()}).json()["runs"]]
    assert run["run_id"] in ids
    nxt = (day + datetime.timedelta(days=1)).isoformat()
    ids = [x["run_id"] for x in get(base, "/rail/runs", params={"origin": 203, "date": nxt}).json()["runs"]]
    assert run["run_id"] not in ids


# --- seat maps -----------------------------------------------------------------

def test_seat_map_of_a_fresh_run(base, admin, touched):
    run = create_run(base, admin)
    assert run["seats_free"] == 220 and run["train_code"] == "RT-A"
    sm = seat_map(base, run["run_id"])
    assert sm["run_id"] == run["run_id"] and sm["departure_time"] == run["departure_time"]
    seats = sm["seats"]
    assert len(seats) == 220
    assert [s["seat_id"] for s in seats] == sorted(s["seat_id"] for s in seats)
    assert len({s["seat_id"] for s in seats}) == 220
    for s in seats:
        assert set(s) == {"seat_id", "coach", "number", "class", "price", "status"}, s
        assert s["status"] == "free", s
        assert (s["class"], s["price"]) == (("first", FIRST) if s["coach"] == 1 else ("standard", STANDARD)), s
    per_coach = {}
    for s in seats:
        per_coach.setdefault(s["coach"], []).append(s["number"])
    assert {c: sorted(n) for c, n in per_coach.items()} == {
        1: list(range(1, 41)), 2: list(range(1, 61)), 3: list(range(1, 61)), 4: list(range(1, 61))}


def test_seat_map_unknown_run(base):
    assert_problem(get(base, "/rail/runs/987654321/seats"), 404, "not-found")
    assert_problem(get(base, "/rail/runs/abc/seats"), 422, "validation", "run_id")


# --- booking -------------------------------------------------------------------

def test_book_specific_seats(base, admin, rider, other, operator, rider_id, funded, db):
    run = create_run(base, admin)
    rid = run["run_id"]
    want = [seat(base, rid, 1, 1), seat(base, rid, 2, 1)]
    before = balance(base, rider, funded)
    b = book(base, rider, rid, funded, [s["seat_id"] for s in want])
    assert_booking_doc(b, rid, funded, rider_id, want)
    assert b["total_amount"] == FIRST + STANDARD
    assert b["new_balance"] == before - b["total_amount"]
    # The seat map, the run list, the card and its ledger show it.
    sm = seats_by_id(base, rid)
    assert {i for i, s in sm.items() if s["status"] == "taken"} == {s["seat_id"] for s in want}
    day = datetime.datetime.fromisoformat(run["departure_time"].replace("Z", "+00:00")).astimezone(BOGOTA).date()
    listed = {x["run_id"]: x for x in get(base, "/rail/runs", params={"origin": 202, "date": day.isoformat()}).json()["runs"]}
    assert listed[rid]["seats_free"] == 218
    assert balance(base, rider, funded) == before - b["total_amount"]
    rows = ledger(db, funded, "booking")
    assert rows[-1] == ("booking", -b["total_amount"], b["new_balance"], "booking:%d" % b["booking_id"]), rows
    assert db_scalar(db, "SELECT payment_entry_id IS NOT NULL AND refund_entry_id IS NULL FROM rail_bookings"
                         " WHERE booking_id = %s", b["booking_id"])
    tx = get(base, "/cards/%d/transactions" % funded, rider, params={"limit": 1}).json()["transactions"][0]
    assert (tx["kind"], tx["amount"], tx["reference"]) == ("booking", -b["total_amount"], "booking:%d" % b["booking_id"])
    # The reads: the rider's own, the admin's; the other rider sees nothing.
    one = get(base, "/rail/bookings/%d" % b["booking_id"], rider)
    assert one.status_code == 200, one.text
    expected = {k: v for k, v in b.items() if k != "new_balance"}
    assert one.json() == expected
    assert get(base, "/rail/bookings/%d" % b["booking_id"], admin).json() == expected
    assert_problem(get(base, "/rail/bookings/%d" % b["booking_id"], other), 404, "not-found")
    assert_problem(get(base, "/rail/bookings/987654321", rider), 404, "not-found")
    assert_problem(get(base, "/rail/bookings/%d" % b["booking_id"], operator), 403, "forbidden")
    mine = get(base, "/rail/bookings", rider, params={"limit": 100}).json()
    assert b["booking_id"] in [x["booking_id"] for x in mine["bookings"]]
    assert all(x["user_id"] == rider_id for x in mine["bookings"])
    theirs = get(base, "/rail/bookings", other, params={"limit": 100}).json()["bookings"]
    assert b["booking_id"] not in [x["booking_id"] for x in theirs]
    assert get(base, "/rail/bookings", admin, params={"limit": 1}).json()["bookings"][0]["booking_id"] >= b["booking_id"]


def test_bookings_paging(base, admin, rider, funded, touched):
    run = create_run(base, admin)
    made = [book(base, rider, run["run_id"], funded, count=1, cls="standard")["booking_id"] for _ in range(3)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = get(base, "/rail/bookings", rider, params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert set(page) == {"bookings", "next_cursor"}
        assert len(page["bookings"]) <= 2
        seen += [x["booking_id"] for x in page["bookings"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert set(made) <= set(seen)
    for limit in ("0", "101", "x"):
        assert_problem(get(base, "/rail/bookings", rider, params={"limit": limit}), 422, "validation", "limit")
    assert_problem(get(base, "/rail/bookings", rider, params={"cursor": "abc"}), 422, "validation", "cursor")


def test_taken_seat_conflicts(base, admin, rider, funded, db):
    run = create_run(base, admin)
    rid = run["run_id"]
    a, b = seat(base, rid, 2, 5)["seat_id"], seat(base, rid, 2, 6)["seat_id"]
    first = book(base, rider, rid, funded, [a])
    after_first = balance(base, rider, funded)
    n_ledger = len(ledger(db, funded))
    n_bookings = bookings_of_card(db, funded)
    # The same seat again.
    body = assert_problem(book(base, rider, rid, funded, [a], expect=409), 409, "seat-taken")
    assert body["seats"] == [a], body
    # One free seat and the taken one: nothing is booked, not even the free seat.
    body = assert_problem(book(base, rider, rid, funded, [b, a], expect=409), 409, "seat-taken")
    assert body["seats"] == [a], body
    assert taken(base, rid) == {a}
    assert seats_by_id(base, rid)[b]["status"] == "free"
    assert balance(base, rider, funded) == after_first
    assert len(ledger(db, funded)) == n_ledger
    assert bookings_of_card(db, funded) == n_bookings
    assert db_scalar(db, "SELECT count(*) FROM rail_booking_seats WHERE seat_id = %s", b) == 0
    # The free seat alone still books.
    book(base, rider, rid, funded, [b])
    assert taken(base, rid) == {a, b}
    assert first["booking_id"]


def test_book_any_seats_of_a_class(base, admin, rider, rider_id, operator, touched, db):
    card = rider_card(base, rider, operator, 500000)
    touched.add(card)
    run = create_run(base, admin)
    rid = run["run_id"]
    b = book(base, rider, rid, card, count=2, cls="first")
    assert b["total_amount"] == 2 * FIRST and len(b["seats"]) == 2
    assert all(s["class"] == "first" and s["price"] == FIRST and s["coach"] == 1 for s in b["seats"])
    assert b["new_balance"] == 500000 - 2 * FIRST
    s = book(base, rider, rid, card, count=3, cls="standard")
    assert s["total_amount"] == 3 * STANDARD
    assert all(x["class"] == "standard" and x["price"] == STANDARD and x["coach"] > 1 for x in s["seats"])
    assert_booking_doc(s, rid, card, rider_id, s["seats"])
    got = {x["seat_id"] for x in b["seats"]} | {x["seat_id"] for x in s["seats"]}
    assert len(got) == 5 and taken(base, rid) == got
    # The rest of first class: 38 seats, then none is left.
    for n in (10, 10, 10, 8):
        book(base, rider, rid, card, count=n, cls="first")
    assert sum(1 for x in seat_map(base, rid)["seats"] if x["class"] == "first" and x["status"] == "free") == 0
    before = balance(base, rider, card)
    body = assert_problem(book(base, rider, rid, card, count=1, cls="first", expect=409), 409, "seat-taken")
    assert body["seats"] == [], body
    assert balance(base, rider, card) == before
    assert balance(base, rider, card) == 500000 - 40 * FIRST - 3 * STANDARD
    # Standard seats are still sold.
    recharge(base, operator, card, 10000)
    assert book(base, rider, rid, card, count=1, cls="standard")["new_balance"] == 500 + 10000 - STANDARD


def test_cancel_and_rebook(base, admin, rider, funded, db):
    run = create_run(base, admin)
    rid = run["run_id"]
    want = [seat(base, rid, 3, 10), seat(base, rid, 3, 11), seat(base, rid, 1, 40)]
    ids = [s["seat_id"] for s in want]
    before = balance(base, rider, funded)
    b = book(base, rider, rid, funded, ids)
    assert taken(base, rid) == set(ids)
    c = cancel(base, rider, b["booking_id"])
    assert c["booking_id"] == b["booking_id"] and c["status"] == "cancelled"
    assert RFC3339_UTC.match(c["cancelled_at"]), c
    assert c["seats"] == b["seats"] and c["total_amount"] == b["total_amount"]
    assert c["new_balance"] == before
    assert balance(base, rider, funded) == before
    assert taken(base, rid) == set()
    refund = ledger(db, funded, "refund")[-1]
    assert refund == ("refund", b["total_amount"], before, "booking:%d" % b["booking_id"]), refund
    assert db_scalar(db, "SELECT refund_entry_id IS NOT NULL FROM rail_bookings WHERE booking_id = %s",
                     b["booking_id"])
    got = get(base, "/rail/bookings/%d" % b["booking_id"], rider).json()
    assert got["status"] == "cancelled" and got["cancelled_at"] == c["cancelled_at"]
    # Twice: 409 conflict, no second refund.
    assert_problem(cancel(base, rider, b["booking_id"], expect=409), 409, "conflict")
    assert balance(base, rider, funded) == before
    assert db_scalar(db, "SELECT count(*) FROM card_ledger WHERE reference = %s AND kind = 'refund'",
                     "booking:%d" % b["booking_id"]) == 1
    # The seats sell again.
    again = book(base, rider, rid, funded, ids)
    assert again["booking_id"] != b["booking_id"]
    assert taken(base, rid) == set(ids)
    assert balance(base, rider, funded) == before - b["total_amount"]


def test_cancel_by_others(base, admin, rider, other, operator, funded, touched):
    run = create_run(base, admin)
    b = book(base, rider, run["run_id"], funded, count=1, cls="standard")
    assert_problem(cancel(base, other, b["booking_id"], expect=404), 404, "not-found")
    assert_problem(cancel(base, operator, b["booking_id"], expect=403), 403, "forbidden")
    r = requests.post(base + V1 + "/rail/bookings/%d/cancel" % b["booking_id"], timeout=TIMEOUT)
    assert_problem(r, 401, "unauthorized")
    assert_problem(cancel(base, rider, 987654321, expect=404), 404, "not-found")
    assert taken(base, run["run_id"]) == {b["seats"][0]["seat_id"]}
    # The admin cancels anyone's booking.
    assert cancel(base, admin, b["booking_id"])["status"] == "cancelled"
    assert taken(base, run["run_id"]) == set()


def test_departed_run(base, admin, rider, funded, db):
    """A run that has departed can be neither booked nor cancelled."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(second=17, microsecond=0)
    run = create_run(base, admin, now + datetime.timedelta(hours=3), origin=204, destination=206)
    rid = run["run_id"]
    early = book(base, rider, rid, funded, count=2, cls="standard")
    db_rows(db, "UPDATE rail_runs SET departure_time = now() - interval '1 hour', arrival_time = now()"
                " WHERE run_id = %s RETURNING run_id", rid)
    before = balance(base, rider, funded)
    n_bookings = bookings_of_card(db, funded)
    r = book(base, rider, rid, funded, [seat(base, rid, 2, 30)["seat_id"]], expect=422)
    assert_problem(r, 422, "validation", "run_id")
    assert_problem(book(base, rider, rid, funded, count=1, cls="first", expect=422), 422, "validation", "run_id")
    assert_problem(cancel(base, rider, early["booking_id"], expect=422), 422, "validation")
    assert_problem(cancel(base, admin, early["booking_id"], expect=422), 422, "validation")
    assert balance(base, rider, funded) == before
    assert bookings_of_card(db, funded) == n_bookings
    assert get(base, "/rail/bookings/%d" % early["booking_id"], rider).json()["status"] == "confirmed"
    assert taken(base, rid) == {s["seat_id"] for s in early["seats"]}


def test_insufficient_balance(base, admin, rider, operator, touched, db):
    card = rider_card(base, rider, operator, 1000)
    touched.add(card)
    run = create_run(base, admin)
    rid = run["run_id"]
    s = seat(base, rid, 2, 1)["seat_id"]
    body = assert_problem(book(base, rider, rid, card, [s], expect=402), 402, "insufficient-balance")
    assert (body["total_amount"], body["balance"]) == (STANDARD, 1000), body
    body = assert_problem(book(base, rider, rid, card, count=2, cls="first", expect=402), 402,
                          "insufficient-balance")
    assert (body["total_amount"], body["balance"]) == (2 * FIRST, 1000), body
    assert balance(base, rider, card) == 1000
    assert bookings_of_card(db, card) == 0
    assert taken(base, rid) == set()
    assert [r[0] for r in ledger(db, card)] == ["recharge"]
    # Enough money: the same seat books.
    recharge(base, operator, card, 5500)
    b = book(base, rider, rid, card, [s])
    assert b["new_balance"] == 0


def test_blocked_card(base, admin, rider, operator, touched, db):
    card = rider_card(base, rider, operator, 20000)
    touched.add(card)
    r = post(base, "/cards/%d/block" % card, None, rider)
    assert r.status_code == 200 and r.json()["status"] == "blocked", r.text
    run = create_run(base, admin)
    assert_problem(book(base, rider, run["run_id"], card, count=1, cls="standard", expect=409), 409, "card-blocked")
    assert_problem(book(base, admin, run["run_id"], card, [seat(base, run["run_id"], 2, 2)["seat_id"]], expect=409),
                   409, "card-blocked")
    assert taken(base, run["run_id"]) == set()
    assert bookings_of_card(db, card) == 0
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 20000


def test_cards_a_rider_may_not_use(base, admin, rider, other, touched, db):
    run = create_run(base, admin)
    rid = run["run_id"]
    before = db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", THEIR_CARD)
    # Another rider's card, and a card that does not exist: the same 404.
    theirs = assert_problem(book(base, rider, rid, THEIR_CARD, count=1, cls="standard", expect=404), 404, "not-found")
    nobody = assert_problem(book(base, rider, rid, 987654321, count=1, cls="standard", expect=404), 404, "not-found")
    assert theirs["title"] == nobody["title"]
    # The other rider with the demo rider's card.
    assert_problem(book(base, other, rid, RIDER_CARDS[0], count=1, cls="standard", expect=404), 404, "not-found")
    # An unknown run.
    assert_problem(book(base, rider, 987654321, RIDER_CARDS[0], count=1, cls="standard", expect=404), 404,
                   "not-found")
    assert taken(base, rid) == set()
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", THEIR_CARD) == before
    touched.add(THEIR_CARD)


def test_admin_books_with_any_card(base, admin, operator, touched):
    """The admin pays from any card, an anonymous one included (user_id null)."""
    r = post(base, "/cards", {}, operator)
    assert r.status_code == 201, r.text
    card = r.json()["card_id"]
    touched.add(card)
    recharge(base, operator, card, 10000)
    run = create_run(base, admin)
    b = book(base, admin, run["run_id"], card, count=1, cls="standard")
    assert b["user_id"] is None and b["new_balance"] == 10000 - STANDARD


def test_roles_and_auth(base, admin, operator, funded):
    run = create_run(base, admin)
    body = {"run_id": run["run_id"], "card_id": funded, "seat_count": 1, "class": "standard"}
    assert_problem(post(base, "/rail/bookings", body, operator), 403, "forbidden")
    r = post(base, "/rail/bookings", body)
    assert_problem(r, 401, "unauthorized")
    assert "bearer" in r.headers.get("WWW-Authenticate", "").lower()
    assert_problem(post(base, "/rail/bookings", body, {"Authorization": "Bearer nope"}), 401, "unauthorized")
    assert_problem(get(base, "/rail/bookings", operator), 403, "forbidden")
    assert_problem(get(base, "/rail/bookings"), 401, "unauthorized")
    assert taken(base, run["run_id"]) == set()


def test_idempotency_key_books_once(base, admin, rider, funded, db):
    run = create_run(base, admin)
    rid = run["run_id"]
    ids = [seat(base, rid, 4, 1)["seat_id"], seat(base, rid, 4, 2)["seat_id"]]
    before = balance(base, rider, funded)
    n_bookings = bookings_of_card(db, funded)
    key = {"Idempotency-Key": "rail-" + uuid.uuid4().hex}
    first = post(base, "/rail/bookings", {"run_id": rid, "card_id": funded, "seat_ids": ids}, dict(rider, **key))
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    again = post(base, "/rail/bookings", {"run_id": rid, "card_id": funded, "seat_ids": ids}, dict(rider, **key))
    assert again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert bookings_of_card(db, funded) == n_bookings + 1
    assert balance(base, rider, funded) == before - 2 * STANDARD
    assert db_scalar(db, "SELECT count(*) FROM card_ledger WHERE reference = %s",
                     "booking:%d" % first.json()["booking_id"]) == 1
    # The same key for another request.
    r = post(base, "/rail/bookings", {"run_id": rid, "card_id": funded, "seat_count": 1, "class": "first"},
             dict(rider, **key))
    assert_problem(r, 422, "idempotency-mismatch")
    assert bookings_of_card(db, funded) == n_bookings + 1
    # A failed request is not recorded: the same key and body answer 409 again, not a replay.
    key2 = {"Idempotency-Key": "rail-" + uuid.uuid4().hex}
    for _ in range(2):
        r = post(base, "/rail/bookings", {"run_id": rid, "card_id": funded, "seat_ids": ids}, dict(rider, **key2))
        assert_problem(r, 409, "seat-taken")
    # Cancellation with a key: replayed, refunded once.
    ck = {"Idempotency-Key": "rail-cancel-" + uuid.uuid4().hex}
    url = "/rail/bookings/%d/cancel" % first.json()["booking_id"]
    c1 = post(base, url, None, dict(rider, **ck))
    c2 = post(base, url, None, dict(rider, **ck))
    assert c1.status_code == 200 and c2.status_code == 200, (c1.text, c2.text)
    assert c2.headers.get("Idempotent-Replayed") == "true" and c2.json() == c1.json()
    assert balance(base, rider, funded) == before
    assert db_scalar(db, "SELECT count(*) FROM card_ledger WHERE reference = %s AND kind = 'refund'",
                     "booking:%d" % first.json()["booking_id"]) == 1


INVALID_BODIES = [
    ("empty seat_ids", {"seat_ids": []}, "seat_ids"),
    ("11 seats", {"seat_ids": list(range(1, 12))}, "seat_ids"),
    ("duplicates", {"seat_ids": "DUP"}, "seat_ids"),
    ("strings", {"seat_ids": ["a", "b"]}, "seat_ids"),
    ("numeric strings", {"seat_ids": "STR"}, "seat_ids"),
    ("fractions", {"seat_ids": [1.5]}, "seat_ids"),
    ("zero", {"seat_ids": [0]}, "seat_ids"),
    ("not a list", {"seat_ids": 5}, "seat_ids"),
    ("both missing", {}, "seat_count"),
    ("class missing", {"seat_count": 2}, "class"),
    ("class luxury", {"seat_count": 2, "class": "luxury"}, "class"),
    ("seat_count 0", {"seat_count": 0, "class": "standard"}, "seat_count"),
    ("seat_count 11", {"seat_count": 11, "class": "standard"}, "seat_count"),
    ("seat_count string", {"seat_count": "2", "class": "standard"}, "seat_count"),
    ("seats of another run", {"seat_ids": "OTHER_RUN"}, "seat_ids"),
    ("run_id missing", {"run_id": None, "seat_count": 1, "class": "standard"}, "run_id"),
    ("run_id string", {"run_id": "x", "seat_count": 1, "class": "standard"}, "run_id"),
    ("card_id missing", {"card_id": None, "seat_count": 1, "class": "standard"}, "card_id"),
    ("card_id fraction", {"card_id": 1.0, "seat_count": 1, "class": "standard"}, "card_id"),
]


@pytest.fixture(scope="module")
def validation_runs(base, admin):
    return create_run(base, admin), create_run(base, admin)


@pytest.mark.parametrize("name,patch,field", INVALID_BODIES, ids=[x[0] for x in INVALID_BODIES])
def test_invalid_booking_bodies(base, rider, validation_runs, funded, db, name, patch, field):
    run, other_run = validation_runs
    rid = run["run_id"]
    seats = [s["seat_id"] for s in seat_map(base, rid)["seats"]]
    body = {"run_id": rid, "card_id": funded}
    for k, v in patch.items():
        if v is None:
            body.pop(k, None)
        elif v == "DUP":
            body[k] = [seats[0], seats[1], seats[0]]
        elif v == "STR":
            body[k] = [str(seats[0])]
        elif v == "OTHER_RUN":
            body[k] = [seats[0], seat_map(base, other_run["run_id"])["seats"][0]["seat_id"]]
        else:
            body[k] = v
    n_bookings = db_scalar(db, "SELECT count(*) FROM rail_bookings")
    before = balance(base, rider, funded)
    assert_problem(post(base, "/rail/bookings", body, rider), 422, "validation", field)
    assert db_scalar(db, "SELECT count(*) FROM rail_bookings") == n_bookings
    assert balance(base, rider, funded) == before
    assert taken(base, rid) == set()


def test_malformed_booking_requests(base, rider, validation_runs):
    r = requests.post(base + V1 + "/rail/bookings", data="{not json", timeout=TIMEOUT,
                      headers=dict(rider, **{"Content-Type": "application/json"}))
    assert_problem(r, 400)
    r = requests.post(base + V1 + "/rail/bookings", data="run_id=1", timeout=TIMEOUT,
                      headers=dict(rider, **{"Content-Type": "application/x-www-form-urlencoded"}))
    assert_problem(r, 415, "unsupported-media-type")


# --- POST /rail/runs ------------------------------------------------------------

def run_body(**over):
    dep = fresh_slot()
    body = {"train_id": 2, "origin_station_id": 209, "destination_station_id": 202, "departure_time": utc(dep),
            "arrival_time": utc(dep + datetime.timedelta(minutes=40))}
    body.update(over)
    return body


def test_create_run(base, admin, touched):
    body = run_body()
    r = post(base, "/rail/runs", body, admin)
    assert r.status_code == 201, r.text
    run = r.json()
    assert set(run) == {"run_id", "train_id", "train_code", "origin", "origin_station_id", "destination",
                        "destination_station_id", "departure_time", "arrival_time", "seats_free"}, run
    assert (run["train_id"], run["train_code"], run["seats_free"]) == (2, "RT-B", 100)
    assert (run["origin_station_id"], run["destination_station_id"]) == (209, 202)
    assert (run["origin"], run["destination"]) == ("El Corzo", "Carrera 50")
    assert (run["departure_time"], run["arrival_time"]) == (body["departure_time"], body["arrival_time"])
    sm = seat_map(base, run["run_id"])
    assert len(sm["seats"]) == 100 and all(s["status"] == "free" and s["price"] == STANDARD for s in sm["seats"])
    day = (bogota_today() + datetime.timedelta(days=1)).isoformat()
    listed = get(base, "/rail/runs", params={"origin": 209, "date": day}).json()["runs"]
    assert run["run_id"] in [x["run_id"] for x in listed]
    # The same train at the same time again: 409, and no second run.
    assert_problem(post(base, "/rail/runs", body, admin), 409, "conflict")
    other_times = dict(body, origin_station_id=205)
    assert_problem(post(base, "/rail/runs", other_times, admin), 409, "conflict")
    # Another train at that time is fine.
    r = post(base, "/rail/runs", dict(body, train_id=1), admin)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("over,field", [
    ({"origin_station_id": 1}, "origin_station_id"),
    ({"destination_station_id": 1}, "destination_station_id"),
    ({"origin_station_id": 987654}, "origin_station_id"),
    ({"destination_station_id": 209}, "destination_station_id"),
    ({"train_id": 99999}, "train_id"),
    ({"train_id": "1"}, "train_id"),
    ({"train_id": None}, "train_id"),
    ({"departure_time": "half past ten"}, "departure_time"),
    # PostgreSQL's own input forms are not RFC 3339 either.
    ({"departure_time": "yesterday"}, "departure_time"),
    ({"departure_time": "-infinity", "arrival_time": "infinity"}, "departure_time"),
    ("NO_ZONE", "departure_time"),
    ("US_DATES", "departure_time"),
    ({"departure_time": None}, "departure_time"),
    ({"arrival_time": None}, "arrival_time"),
    ("ARRIVAL_BEFORE", "arrival_time"),
    ("ARRIVAL_EQUAL", "arrival_time"),
], ids=["origin bus station", "destination bus station", "origin unknown", "same stations", "unknown train",
        "train string", "train missing", "bad time", "pg yesterday", "pg infinity", "time without zone",
        "pg mm/dd/yyyy", "departure missing", "arrival missing", "arrival before",
        "arrival equal"])
def test_create_run_validation(base, admin, db, over, field):
    body = run_body()
    if over == "ARRIVAL_BEFORE":
        body["arrival_time"] = utc(datetime.datetime.fromisoformat(body["departure_time"].replace("Z", "+00:00"))
                                   - datetime.timedelta(minutes=5))
    elif over == "ARRIVAL_EQUAL":
        body["arrival_time"] = body["departure_time"]
    elif over == "NO_ZONE":
        body["departure_time"] = body["departure_time"].replace("T", " ").rstrip("Z")
        body["arrival_time"] = body["arrival_time"].replace("T", " ").rstrip("Z")
    elif over == "US_DATES":
        day = bogota_today() + datetime.timedelta(days=40 + random.randint(0, 300))
        body["departure_time"] = day.strftime("%m/%d/%Y")
        body["arrival_time"] = (day + datetime.timedelta(days=1)).strftime("%m/%d/%Y")
    else:
        for k, v in over.items():
            if v is None:
                body.pop(k)
            else:
                body[k] = v
    n = db_scalar(db, "SELECT count(*) FROM rail_runs")
    assert_problem(post(base, "/rail/runs", body, admin), 422, "validation", field)
    assert db_scalar(db, "SELECT count(*) FROM rail_runs") == n


def test_create_run_roles(base, rider, operator, db):
    n = db_scalar(db, "SELECT count(*) FROM rail_runs")
    assert_problem(post(base, "/rail/runs", run_body(), rider), 403, "forbidden")
    assert_problem(post(base, "/rail/runs", run_body(), operator), 403, "forbidden")
    assert_problem(post(base, "/rail/runs", run_body()), 401, "unauthorized")
    assert db_scalar(db, "SELECT count(*) FROM rail_runs") == n


def test_other_rider_books_own_card(base, admin, other, operator, touched, db):
    """A second rider books with a card of their own; the demo rider's list does
    not show it."""
    r = post(base, "/cards", {}, other)
    assert r.status_code == 201, r.text
    card = r.json()["card_id"]
    touched.add(card)
    recharge(base, operator, card, 20000)
    run = create_run(base, admin)
    b = book(base, other, run["run_id"], card, count=1, cls="standard")
    me = get(base, "/users/me", other).json()["user_id"]
    assert b["user_id"] == me
    assert [x["booking_id"] for x in get(base, "/rail/bookings", other, params={"limit": 100}).json()["bookings"]
            ][0] == b["booking_id"]
