"""Trips and fares end to end: tap-in and tap-out, the reads, every error
status, transfers (and their 125-minute window), trips on credit, and the
ledger invariants after each scenario. Every test makes its own cards, so
the tests do not depend on one another or on the demo cards' state.

Network used (db/seed/demo_1_network.sql): route 3 (J72, trunk) stops
[1, 11, 13, 15, 17, 19, 20, 23, 25, 26, 27, 28, 101, 102] with station 101
(Museo del Oro) inactive; route 17 (F23) [5, 60..69, 28, 101, 102]; route 2
(B1) [1, 10..19]; route 18 (F19) [5, 60..68]; route 26 (J24) inactive."""
import uuid

import pytest
import requests

from conftest import RFC3339_UTC, assert_problem, bearer, db_rows, db_scalar, login

V1 = "/api/v1"
FARE = 3200
WINDOW_S = 7500
TIMEOUT = 10

R_A, R_B, R_C, R_D = 3, 17, 2, 18   # four distinct active routes
R_INACTIVE = 26
INACTIVE_STATION = 101              # a stop of route 3, but closed


# --- helpers -------------------------------------------------------------

def post(base, path, body, headers=None, **kw):
    return requests.post(base + V1 + path, json=body, headers=headers, timeout=TIMEOUT, **kw)


def get(base, path, headers=None, **kw):
    return requests.get(base + V1 + path, headers=headers, timeout=TIMEOUT, **kw)


def register_user(base):
    """A fresh rider: (user_id, headers)."""
    email = "trips.%s@example.test" % uuid.uuid4().hex[:16]
    r = post(base, "/auth/register", {"email": email, "password": "trips-password-1",
                                      "first_name": "Viajera", "last_name": "Prueba"})
    assert r.status_code == 201, r.text
    uid = r.json()["user_id"]
    return uid, bearer(login(base, email, "trips-password-1")["access_token"])


def new_card(base, staff, user_id=None, balance=0):
    """A fresh card (personalised for user_id, else anonymous), recharged to balance."""
    r = post(base, "/cards", {"user_id": user_id} if user_id else {}, staff)
    assert r.status_code == 201, r.text
    card = r.json()
    assert card["user_id"] == user_id and card["balance"] == 0, card
    if balance:
        recharge(base, staff, card["card_id"], balance)
    return card["card_id"]


def recharge(base, headers, card_id, amount):
    r = post(base, "/cards/recharge", {"card_id": card_id, "amount": amount}, headers)
    assert r.status_code == 201, r.text
    return r.json()


def tap_in(base, headers, card_id, route_id, station_id, expect=201, **extra):
    body = {"card_id": card_id, "route_id": route_id, "boarding_station_id": station_id, **extra}
    r = post(base, "/trips/start", body, headers)
    if expect is not None:
        assert r.status_code == expect, r.text
    return r.json() if expect == 201 else r


def tap_out(base, headers, trip_id, station_id, expect=200):
    r = post(base, "/trips/end", {"trip_id": trip_id, "disembarking_station_id": station_id}, headers)
    if expect is not None:
        assert r.status_code == expect, r.text
    return r.json() if expect == 200 else r


def ride(base, headers, card_id, route_id, board, alight):
    """Tap in and out; returns the tap-in document."""
    t = tap_in(base, headers, card_id, route_id, board)
    tap_out(base, headers, t["trip_id"], alight)
    return t


def balance(base, headers, card_id):
    r = get(base, "/cards/%d/balance" % card_id, headers)
    assert r.status_code == 200, r.text
    return r.json()


def shift_journey(db, trip_id, ago_seconds):
    """Moves a trip back in time so that its journey began ago_seconds before
    the database's now(); boarding and disembarking move by the same amount
    (the journey's legs keep their order and durations)."""
    db_rows(db, "UPDATE trips SET journey_start = now() - make_interval(secs => %s),"
                " boarding_time = boarding_time - (journey_start - now() + make_interval(secs => %s)),"
                " disembarking_time = disembarking_time - (journey_start - now() + make_interval(secs => %s))"
                " WHERE trip_id = %s RETURNING trip_id", ago_seconds, ago_seconds, ago_seconds, trip_id)


def assert_ledger(db, card_ids):
    """The money invariants of every card touched: the balance is the sum of
    its ledger; each paid trip has exactly one 'fare' row of -fare_amount that
    the trip points at; a free trip has none; no fare row without a trip."""
    for card_id in card_ids:
        bal, total = db_rows(db, "SELECT c.balance, coalesce((SELECT sum(amount) FROM card_ledger l"
                                 " WHERE l.card_id = c.card_id), 0) FROM cards c WHERE card_id = %s", card_id)[0]
        assert bal == total, "card %d: balance %d != ledger sum %d" % (card_id, bal, total)
        trips = db_rows(db, "SELECT trip_id, fare_amount, ledger_entry_id FROM trips WHERE card_id = %s", card_id)
        fares = db_rows(db, "SELECT entry_id, amount, reference FROM card_ledger"
                            " WHERE card_id = %s AND kind = 'fare'", card_id)
        by_ref = {}
        for entry_id, amount, ref in fares:
            by_ref.setdefault(ref, []).append((entry_id, amount))
        for trip_id, fare, entry in trips:
            rows = by_ref.pop("trip:%d" % trip_id, [])
            if fare > 0:
                assert len(rows) == 1, "trip %d (fare %d): fare rows %r" % (trip_id, fare, rows)
                assert rows[0][1] == -fare, (trip_id, fare, rows)
                assert entry == rows[0][0], "trip %d points at %r, its fare row is %d" % (trip_id, entry, rows[0][0])
            else:
                assert rows == [] and entry is None, "free trip %d has ledger %r / %r" % (trip_id, rows, entry)
        assert by_ref == {}, "card %d: fare rows without a trip: %r" % (card_id, by_ref)
        # Each ledger row's balance_after is the running sum up to it.
        running = 0
        for entry_id, amount, after in db_rows(db, "SELECT entry_id, amount, balance_after FROM card_ledger"
                                                   " WHERE card_id = %s ORDER BY entry_id", card_id):
            running += amount
            assert after == running, "card %d entry %d: balance_after %d, running sum %d" % (
                card_id, entry_id, after, running)


@pytest.fixture(scope="module")
def stops(base):
    """route_id -> its stop station ids in order (from GET /routes/{id})."""
    out = {}
    for rid in (R_A, R_B, R_C, R_D):
        r = get(base, "/routes/%d" % rid)
        assert r.status_code == 200, r.text
        out[rid] = [s["station_id"] for s in r.json()["stops"]]
    assert INACTIVE_STATION in out[R_A]
    return out


@pytest.fixture
def touched(db):
    """Cards a test used; their ledger invariants are checked after it."""
    cards = []
    yield cards
    assert_ledger(db, cards)


@pytest.fixture
def person(base):
    return register_user(base)


# --- tap-in, tap-out, reads ------------------------------------------------

def test_tap_in_shape_and_vehicle_from_route_fleet(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    t = tap_in(base, operator, card, R_A, stops[R_A][0])
    for key in ("trip_id", "card_id", "route_id", "boarding_station_id", "boarding_time", "fare_amount",
                "is_transfer", "status", "remaining_balance"):
        assert key in t, (key, t)
    assert isinstance(t["trip_id"], int)
    assert t["card_id"] == card and t["route_id"] == R_A and t["boarding_station_id"] == stops[R_A][0]
    assert RFC3339_UTC.match(t["boarding_time"]), t
    assert t["fare_amount"] == FARE and t["is_transfer"] is False and t["status"] == "in_progress"
    assert t["remaining_balance"] == 10000 - FARE
    assert t.get("on_credit") is False
    # The vehicle was assigned from the route's active fleet.
    assert isinstance(t.get("vehicle_id"), int), t
    route, active = db_rows(db, "SELECT route_id, is_active FROM vehicles WHERE vehicle_id = %s", t["vehicle_id"])[0]
    assert route == R_A and active
    assert db_scalar(db, "SELECT vehicle_id FROM trips WHERE trip_id = %s", t["trip_id"]) == t["vehicle_id"]
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 10000 - FARE

    done = tap_out(base, operator, t["trip_id"], stops[R_A][-1])
    assert done["trip_id"] == t["trip_id"] and done["status"] == "completed"
    assert done["disembarking_station_id"] == stops[R_A][-1]
    assert RFC3339_UTC.match(done["disembarking_time"]) and done["disembarking_time"] >= done["boarding_time"]
    assert done["duration_minutes"] == 0
    assert done["fare_amount"] == FARE and done["card_id"] == card


def test_tap_in_with_given_vehicle(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    vehicle = db_scalar(db, "SELECT max(vehicle_id) FROM vehicles WHERE route_id = %s AND is_active", R_A)
    t = tap_in(base, operator, card, R_A, stops[R_A][1], vehicle_id=vehicle)
    assert t["vehicle_id"] == vehicle
    assert db_scalar(db, "SELECT vehicle_id FROM trips WHERE trip_id = %s", t["trip_id"]) == vehicle
    tap_out(base, operator, t["trip_id"], stops[R_A][2])


def test_tap_in_unknown_vehicle_is_422(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    r = tap_in(base, operator, card, R_A, stops[R_A][0], expect=422, vehicle_id=999999)
    assert_problem(r, 422, "validation", "vehicle_id")
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 0
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 10000


def test_tap_in_inactive_vehicle_is_422(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    vehicle = db_scalar(db, "SELECT min(vehicle_id) FROM vehicles WHERE NOT is_active")
    r = tap_in(base, operator, card, R_A, stops[R_A][0], expect=422, vehicle_id=vehicle)
    assert_problem(r, 422, "validation", "vehicle_id")
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 0


def test_get_trip_cached_then_completed(base, operator, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    t = tap_in(base, operator, card, R_A, stops[R_A][0])
    path = "/trips/%d" % t["trip_id"]
    first = get(base, path, operator)
    assert first.status_code == 200, first.text
    assert first.headers.get("X-Cache") == "MISS"
    doc = first.json()
    assert doc["trip_id"] == t["trip_id"] and doc["status"] == "in_progress" and doc["disembarking_time"] is None
    assert doc["fare_amount"] == FARE and doc["card_id"] == card and doc["route_id"] == R_A
    second = get(base, path, operator)
    assert second.status_code == 200 and second.headers.get("X-Cache") == "HIT", second.headers
    assert second.json() == doc

    tap_out(base, operator, t["trip_id"], stops[R_A][5])
    after = get(base, path, operator)
    assert after.status_code == 200
    assert after.json()["status"] == "completed", "tap-out did not invalidate trip:%d" % t["trip_id"]
    assert after.json()["disembarking_station_id"] == stops[R_A][5]


def test_get_unknown_trip_is_404(base, operator):
    assert_problem(get(base, "/trips/999999999", operator), 404, "not-found")


def test_trips_by_card_and_user_paged_newest_first(base, operator, person, stops, touched):
    uid, rider_h = person
    c1 = new_card(base, operator, uid, balance=20000)
    c2 = new_card(base, operator, uid, balance=20000)
    touched.extend([c1, c2])
    ids = []
    for card in (c1, c2, c1, c2, c1):
        ids.append(ride(base, operator, card, R_A, stops[R_A][0], stops[R_A][3])["trip_id"])

    # A card's trips, two a page, newest first.
    seen, cursor = [], None
    for _ in range(5):
        r = get(base, "/trips/card/%d" % c1, operator, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["trips"]) <= 2
        seen += [t["trip_id"] for t in page["trips"]]
        assert all(t["card_id"] == c1 and t["status"] == "completed" for t in page["trips"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[4], ids[2], ids[0]]

    # The user's trips span both cards; the owner may read them too.
    for who in (operator, rider_h):
        r = get(base, "/trips/user/%d" % uid, who)
        assert r.status_code == 200, r.text
        assert [t["trip_id"] for t in r.json()["trips"]] == ids[::-1]
        assert r.json()["next_cursor"] is None
    r = get(base, "/trips/user/%d" % uid, operator, params={"limit": 3})
    assert [t["trip_id"] for t in r.json()["trips"]] == ids[::-1][:3] and r.json()["next_cursor"] is not None
    r2 = get(base, "/trips/user/%d" % uid, operator, params={"limit": 3, "cursor": r.json()["next_cursor"]})
    assert [t["trip_id"] for t in r2.json()["trips"]] == ids[::-1][3:] and r2.json()["next_cursor"] is None

    # A card without trips: an empty page.
    empty = new_card(base, operator, uid)
    r = get(base, "/trips/card/%d" % empty, operator)
    assert r.status_code == 200 and r.json()["trips"] == [] and r.json()["next_cursor"] is None
    # Unknown card or user, bad limit.
    assert_problem(get(base, "/trips/card/999999999", operator), 404, "not-found")
    assert_problem(get(base, "/trips/user/999999999", operator), 404, "not-found")
    assert_problem(get(base, "/trips/card/%d" % c1, operator, params={"limit": 0}), 422, "validation", "limit")
    assert_problem(get(base, "/trips/card/%d" % c1, operator, params={"limit": 101}), 422, "validation", "limit")


def test_fares_public(base):
    r = requests.get(base + V1 + "/fares", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers.get("X-Cache") in ("HIT", "MISS")
    doc = r.json()
    assert doc["currency"] == "COP"
    products = {p["fare_product_id"]: p for p in doc["fare_products"]}
    assert any(p["amount"] == FARE for p in products.values()), products
    assert products["sitp_boarding"]["amount"] == FARE
    rules = doc["fare_transfer_rules"]
    assert len(rules) == 1
    assert rules[0]["duration_limit"] == WINDOW_S and rules[0]["transfer_count"] == 2
    assert products[rules[0]["fare_product_id"]]["amount"] == 0
    assert {c["card_kind"]: c["max_credit_trips"] for c in doc["credit_rules"]} == {"personalized": 2,
                                                                                      "anonymous": 0}
    assert {lr["route_type"] for lr in doc["fare_leg_rules"]} == {"trunk", "zonal", "feeder", "cable"}


# --- every error status ----------------------------------------------------

def test_insufficient_balance_anonymous_zero(base, operator, db, stops, touched):
    card = new_card(base, operator)                       # anonymous, balance 0
    touched.append(card)
    r = tap_in(base, operator, card, R_A, stops[R_A][0], expect=402)
    body = assert_problem(r, 402, "insufficient-balance")
    assert body["fare"] == FARE and body["balance"] == 0, body
    # Anonymous cards get no credit even with some balance.
    recharge(base, operator, card, 3000)
    body = assert_problem(tap_in(base, operator, card, R_A, stops[R_A][0], expect=402), 402, "insufficient-balance")
    assert body["fare"] == FARE and body["balance"] == 3000, body
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 0
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 3000


def test_second_tap_in_is_active_trip(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    t = tap_in(base, operator, card, R_A, stops[R_A][0])
    assert_problem(tap_in(base, operator, card, R_A, stops[R_A][1], expect=409), 409, "active-trip")
    assert_problem(tap_in(base, operator, card, R_B, stops[R_B][0], expect=409), 409, "active-trip")
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 1
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 10000 - FARE
    tap_out(base, operator, t["trip_id"], stops[R_A][2])


def test_blocked_card_is_409(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    r = post(base, "/cards/%d/block" % card, {}, operator)
    assert r.status_code == 200, r.text
    assert_problem(tap_in(base, operator, card, R_A, stops[R_A][0], expect=409), 409, "card-blocked")
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 0
    assert post(base, "/cards/%d/unblock" % card, {}, operator).status_code == 200
    ride(base, operator, card, R_A, stops[R_A][0], stops[R_A][1])


def test_unknown_card_is_404(base, operator, stops):
    assert_problem(tap_in(base, operator, 999999999, R_A, stops[R_A][0], expect=404), 404, "not-found")


def test_tap_out_unknown_or_completed_trip_is_404(base, operator, stops, touched):
    assert_problem(tap_out(base, operator, 999999999, stops[R_A][0], expect=404), 404, "not-found")
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    t = ride(base, operator, card, R_A, stops[R_A][0], stops[R_A][1])
    assert_problem(tap_out(base, operator, t["trip_id"], stops[R_A][2], expect=404), 404, "not-found")


def test_station_or_route_invalid_is_422(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    off_route = next(s for s in stops[R_B] if s not in stops[R_A])
    cases = [
        ((R_A, off_route), "boarding_station_id"),          # station not on the route
        ((R_A, INACTIVE_STATION), "boarding_station_id"),   # a stop of the route, but closed
        ((R_A, 999999), "boarding_station_id"),             # no such station
        ((R_INACTIVE, 3), "route_id"),                      # inactive route
        ((999999, stops[R_A][0]), "route_id"),              # unknown route
    ]
    for (route, station), field in cases:
        r = tap_in(base, operator, card, route, station, expect=None)
        assert_problem(r, 422, "validation", field)
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 0
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 10000


def test_tap_out_station_not_on_route_is_422(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    t = tap_in(base, operator, card, R_A, stops[R_A][0])
    off_route = next(s for s in stops[R_B] if s not in stops[R_A])
    assert_problem(tap_out(base, operator, t["trip_id"], off_route, expect=422), 422, "validation",
                   "disembarking_station_id")
    assert db_scalar(db, "SELECT disembarking_time FROM trips WHERE trip_id = %s", t["trip_id"]) is None
    tap_out(base, operator, t["trip_id"], stops[R_A][1])


@pytest.mark.parametrize("body,field", [
    ({"route_id": R_A, "boarding_station_id": 1}, "card_id"),
    ({"card_id": 1, "boarding_station_id": 1}, "route_id"),
    ({"card_id": 1, "route_id": R_A}, "boarding_station_id"),
    ({"card_id": "1", "route_id": R_A, "boarding_station_id": 1}, "card_id"),
    ({"card_id": 1.0, "route_id": R_A, "boarding_station_id": 1}, "card_id"),
    ({"card_id": 0, "route_id": R_A, "boarding_station_id": 1}, "card_id"),
    ({"card_id": 2 ** 70, "route_id": R_A, "boarding_station_id": 1}, "card_id"),
    ({"card_id": 1, "route_id": "J72", "boarding_station_id": 1}, "route_id"),
    ({"card_id": 1, "route_id": -3, "boarding_station_id": 1}, "route_id"),
    ({"card_id": 1, "route_id": R_A, "boarding_station_id": [1]}, "boarding_station_id"),
    ({"card_id": 1, "route_id": R_A, "boarding_station_id": True}, "boarding_station_id"),
    ({"card_id": 1, "route_id": R_A, "boarding_station_id": 1, "vehicle_id": "bus"}, "vehicle_id"),
    ({"card_id": 1, "route_id": R_A, "boarding_station_id": 1, "vehicle_id": 2 ** 40}, "vehicle_id"),
])
def test_tap_in_validation(base, operator, body, field):
    assert_problem(post(base, "/trips/start", body, operator), 422, "validation", field)


@pytest.mark.parametrize("body,field", [
    ({"disembarking_station_id": 1}, "trip_id"),
    ({"trip_id": 1}, "disembarking_station_id"),
    ({"trip_id": "1", "disembarking_station_id": 1}, "trip_id"),
    ({"trip_id": 1, "disembarking_station_id": 1.5}, "disembarking_station_id"),
    ({"trip_id": 1, "disembarking_station_id": None}, "disembarking_station_id"),
])
def test_tap_out_validation(base, operator, body, field):
    assert_problem(post(base, "/trips/end", body, operator), 422, "validation", field)


@pytest.mark.parametrize("path", ["/trips/start", "/trips/end"])
def test_malformed_json_is_400(base, operator, path):
    h = dict(operator, **{"Content-Type": "application/json"})
    r = requests.post(base + V1 + path, data=b'{"card_id": 1, "route_id":', headers=h, timeout=TIMEOUT)
    assert_problem(r, 400)


def test_rider_other_card_and_no_token(base, operator, rider, db, stops, touched):
    """A rider reaches only their own cards and trips (others are 404); no token is 401."""
    other_uid, other_h = register_user(base)
    theirs = new_card(base, operator, other_uid, balance=10000)
    touched.append(theirs)
    # The rider (demo user 3) issues a card of their own, has it recharged at a
    # point of sale (riders cannot recharge themselves) and travels with it.
    r = post(base, "/cards", {}, rider)
    assert r.status_code == 201, r.text
    mine = r.json()["card_id"]
    touched.append(mine)
    recharge(base, operator, mine, 10000)
    t = tap_in(base, rider, mine, R_A, stops[R_A][0])
    assert get(base, "/trips/%d" % t["trip_id"], rider).status_code == 200
    assert get(base, "/trips/card/%d" % mine, rider).status_code == 200
    tap_out(base, rider, t["trip_id"], stops[R_A][1])
    me = get(base, "/users/me", rider).json()["user_id"]
    assert get(base, "/trips/user/%d" % me, rider).status_code == 200

    # Another rider's card, trip and user: 404, and nothing changes.
    assert_problem(tap_in(base, rider, theirs, R_A, stops[R_A][0], expect=404), 404, "not-found")
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", theirs) == 0
    t2 = tap_in(base, other_h, theirs, R_A, stops[R_A][0])
    assert_problem(get(base, "/trips/%d" % t2["trip_id"], rider), 404, "not-found")
    assert_problem(get(base, "/trips/card/%d" % theirs, rider), 404, "not-found")
    assert_problem(get(base, "/trips/user/%d" % other_uid, rider), 404, "not-found")
    assert_problem(tap_out(base, rider, t2["trip_id"], stops[R_A][1], expect=404), 404, "not-found")
    assert db_scalar(db, "SELECT disembarking_time FROM trips WHERE trip_id = %s", t2["trip_id"]) is None
    # The rider's own trip is hidden from the other rider too.
    assert_problem(get(base, "/trips/%d" % t["trip_id"], other_h), 404, "not-found")
    # Anonymous cards belong to no rider.
    anon = new_card(base, operator, balance=10000)
    touched.append(anon)
    assert_problem(tap_in(base, rider, anon, R_A, stops[R_A][0], expect=404), 404, "not-found")
    tap_out(base, other_h, t2["trip_id"], stops[R_A][1])

    # No token.
    for r in (post(base, "/trips/start", {"card_id": mine, "route_id": R_A, "boarding_station_id": 1}),
              post(base, "/trips/end", {"trip_id": t["trip_id"], "disembarking_station_id": 1}),
              get(base, "/trips/%d" % t["trip_id"]),
              get(base, "/trips/card/%d" % mine),
              get(base, "/trips/user/%d" % me)):
        assert_problem(r, 401, "unauthorized")
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", mine) == 1


# --- transfers -------------------------------------------------------------

def test_two_free_transfers_then_paid(base, operator, person, db, stops, touched):
    uid, _ = person
    card = new_card(base, operator, uid, balance=20000)
    touched.append(card)
    a = ride(base, operator, card, R_A, stops[R_A][0], 28)
    assert a["fare_amount"] == FARE and a["is_transfer"] is False and a["remaining_balance"] == 20000 - FARE
    b = ride(base, operator, card, R_B, 28, stops[R_B][0])
    assert b["fare_amount"] == 0 and b["is_transfer"] is True and b["remaining_balance"] == 20000 - FARE
    c = ride(base, operator, card, R_C, stops[R_C][0], stops[R_C][-1])
    assert c["fare_amount"] == 0 and c["is_transfer"] is True and c["remaining_balance"] == 20000 - FARE
    d = ride(base, operator, card, R_D, stops[R_D][0], stops[R_D][-1])
    assert d["fare_amount"] == FARE and d["is_transfer"] is False and d["remaining_balance"] == 20000 - 2 * FARE
    # The transfer legs share the journey's start (to the second here; exactly:
    # test_transfer_keeps_journey_start_exactly); a paid boarding (the 1st
    # and the 4th) starts a journey of its own at its boarding time.
    rows = db_rows(db, "SELECT t.journey_transfers, t.is_transfer, t.journey_start = t.boarding_time,"
                       " abs(extract(epoch FROM t.journey_start - a.journey_start)) < 1"
                       " FROM trips t, trips a WHERE a.trip_id = %s AND t.card_id = %s ORDER BY t.trip_id",
                   a["trip_id"], card)
    assert rows == [(0, False, True, True), (1, True, False, True), (2, True, False, True),
                    (0, False, True, rows[3][3])], rows
    assert balance(base, operator, card)["balance"] == 20000 - 2 * FARE
    # The stored trips agree with what tap-in answered.
    r = get(base, "/trips/card/%d" % card, operator).json()["trips"]
    assert [(t["fare_amount"], t["is_transfer"]) for t in r] == [(FARE, False), (0, True), (0, True), (FARE, False)]


def test_anonymous_card_pays_every_boarding(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=20000)
    touched.append(card)
    a = ride(base, operator, card, R_A, stops[R_A][0], 28)
    b = ride(base, operator, card, R_B, 28, stops[R_B][0])
    assert (a["fare_amount"], b["fare_amount"]) == (FARE, FARE)
    assert b["is_transfer"] is False and b["remaining_balance"] == 20000 - 2 * FARE


def test_same_route_again_is_paid(base, operator, person, stops, touched):
    uid, _ = person
    card = new_card(base, operator, uid, balance=20000)
    touched.append(card)
    ride(base, operator, card, R_A, stops[R_A][0], stops[R_A][4])
    again = ride(base, operator, card, R_A, stops[R_A][4], stops[R_A][8])
    assert again["fare_amount"] == FARE and again["is_transfer"] is False
    assert again["remaining_balance"] == 20000 - 2 * FARE


@pytest.mark.parametrize("ago,transfer", [(WINDOW_S - 1, True), (WINDOW_S + 1, False)],
                         ids=["124m59s-free", "125m01s-paid"])
def test_transfer_window(base, operator, person, db, stops, touched, ago, transfer):
    uid, _ = person
    card = new_card(base, operator, uid, balance=20000)
    touched.append(card)
    first = ride(base, operator, card, R_A, stops[R_A][0], 28)
    shift_journey(db, first["trip_id"], ago)
    nxt = ride(base, operator, card, R_B, 28, stops[R_B][0])
    assert nxt["is_transfer"] is transfer, nxt
    assert nxt["fare_amount"] == (0 if transfer else FARE)
    assert nxt["remaining_balance"] == 20000 - FARE - (0 if transfer else FARE)
    # A transfer continues the (moved) journey; a paid boarding starts a new one now.
    gap = db_scalar(db, "SELECT extract(epoch FROM b.journey_start - a.journey_start)::float FROM trips a, trips b"
                        " WHERE a.trip_id = %s AND b.trip_id = %s", first["trip_id"], nxt["trip_id"])
    if transfer:
        assert abs(gap) < 1, gap
    else:
        assert ago - 1 < gap < ago + 5, gap


# --- credit ----------------------------------------------------------------

def test_credit_trips_then_recharge_repays(base, operator, person, db, stops, touched):
    uid, rider_h = person
    card = new_card(base, operator, uid)            # personalised, balance 0
    touched.append(card)
    t1 = ride(base, operator, card, R_A, stops[R_A][0], stops[R_A][1])
    assert t1["on_credit"] is True and t1["fare_amount"] == FARE and t1["remaining_balance"] == -FARE
    assert balance(base, operator, card)["credit_trips_used"] == 1
    t2 = ride(base, operator, card, R_A, stops[R_A][1], stops[R_A][2])   # same route: paid, not a transfer
    assert t2["on_credit"] is True and t2["remaining_balance"] == -2 * FARE
    b = balance(base, rider_h, card)
    assert b["balance"] == -2 * FARE and b["credit_trips_used"] == 2
    # A third paid boarding is refused; nothing changes.
    body = assert_problem(tap_in(base, operator, card, R_A, stops[R_A][2], expect=402), 402, "insufficient-balance")
    assert body["fare"] == FARE and body["balance"] == -2 * FARE, body
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 2
    assert db_rows(db, "SELECT on_credit FROM trips WHERE card_id = %s ORDER BY trip_id", card) == [(True,), (True,)]

    # A recharge repays the credit and resets the count.
    rc = recharge(base, operator, card, 10000)
    assert rc["new_balance"] == 10000 - 2 * FARE
    b = balance(base, operator, card)
    assert b["balance"] == 3600 and b["credit_trips_used"] == 0, b
    t3 = ride(base, operator, card, R_A, stops[R_A][3], stops[R_A][4])
    assert t3["on_credit"] is False and t3["fare_amount"] == FARE and t3["remaining_balance"] == 400
    # Credit again from 400: -2800 is the first credit trip of the new count.
    t4 = ride(base, operator, card, R_A, stops[R_A][4], stops[R_A][5])
    assert t4["on_credit"] is True and t4["remaining_balance"] == 400 - FARE
    assert balance(base, operator, card)["credit_trips_used"] == 1


def test_free_transfer_allowed_without_credit_left(base, operator, person, db, stops, touched):
    """With the two credit trips used, a free transfer still boards (it costs nothing)."""
    uid, _ = person
    card = new_card(base, operator, uid)
    touched.append(card)
    ride(base, operator, card, R_A, stops[R_A][0], stops[R_A][1])
    ride(base, operator, card, R_A, stops[R_A][1], 28)
    assert_problem(tap_in(base, operator, card, R_A, 28, expect=402), 402, "insufficient-balance")
    t = ride(base, operator, card, R_B, 28, stops[R_B][0])
    assert t["is_transfer"] is True and t["fare_amount"] == 0 and t["on_credit"] is False
    assert t["remaining_balance"] == -2 * FARE
    b = balance(base, operator, card)
    assert b["balance"] == -2 * FARE and b["credit_trips_used"] == 2


def test_recharge_not_covering_the_debt_keeps_credit_count(base, operator, person, stops, touched):
    uid, _ = person
    card = new_card(base, operator, uid)
    touched.append(card)
    ride(base, operator, card, R_A, stops[R_A][0], stops[R_A][1])
    ride(base, operator, card, R_A, stops[R_A][1], stops[R_A][2])
    recharge(base, operator, card, 5000)                         # -6400 + 5000 = -1400
    b = balance(base, operator, card)
    assert b["balance"] == -1400 and b["credit_trips_used"] == 2, b
    assert_problem(tap_in(base, operator, card, R_A, stops[R_A][2], expect=402), 402, "insufficient-balance")
    recharge(base, operator, card, 1400)                         # back to exactly 0
    b = balance(base, operator, card)
    assert b["balance"] == 0 and b["credit_trips_used"] == 0, b
    assert ride(base, operator, card, R_A, stops[R_A][2], stops[R_A][3])["on_credit"] is True


def test_anonymous_card_no_credit(base, operator, db, stops, touched):
    card = new_card(base, operator)
    touched.append(card)
    body = assert_problem(tap_in(base, operator, card, R_A, stops[R_A][0], expect=402), 402, "insufficient-balance")
    assert body["fare"] == FARE and body["balance"] == 0
    assert balance(base, operator, card)["credit_trips_used"] == 0
    assert db_scalar(db, "SELECT count(*) FROM card_ledger WHERE card_id = %s", card) == 0


# --- idempotency on tap-in -------------------------------------------------

def test_tap_in_idempotency_key_replays(base, operator, db, stops, touched):
    card = new_card(base, operator, balance=10000)
    touched.append(card)
    key = {"Idempotency-Key": "tap-" + uuid.uuid4().hex}
    body = {"card_id": card, "route_id": R_A, "boarding_station_id": stops[R_A][0]}
    r1 = post(base, "/trips/start", body, dict(operator, **key))
    assert r1.status_code == 201, r1.text
    r2 = post(base, "/trips/start", body, dict(operator, **key))
    assert r2.status_code == 201, r2.text
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.json() == r1.json()
    assert db_scalar(db, "SELECT count(*) FROM trips WHERE card_id = %s", card) == 1
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 10000 - FARE
    tap_out(base, operator, r1.json()["trip_id"], stops[R_A][1])


def test_transfer_keeps_journey_start_exactly(base, operator, person, db, stops, touched):
    """A transfer leg stores the journey's start as it is: the first paid
    boarding's timestamp, not that timestamp rounded to a whole second."""
    uid, _ = person
    card = new_card(base, operator, uid, balance=20000)
    touched.append(card)
    a = ride(base, operator, card, R_A, stops[R_A][0], 28)
    b = ride(base, operator, card, R_B, 28, stops[R_B][0])
    assert b["is_transfer"] is True
    starts = db_rows(db, "SELECT trip_id, journey_start, boarding_time FROM trips WHERE card_id = %s"
                         " ORDER BY trip_id", card)
    assert starts[0][1] == starts[0][2], starts           # a paid boarding starts the journey
    assert starts[1][1] == starts[0][1], (
        "transfer trip %d has journey_start %s, the journey began at %s (trip %d)"
        % (b["trip_id"], starts[1][1], starts[0][1], a["trip_id"]))


def test_vehicle_of_another_route_refused(base, operator, db, stops, touched):
    """A validator reports the vehicle it is mounted on: one from another
    route's fleet is a misconfiguration, refused with 422 naming vehicle_id."""
    with db.cursor() as cur:
        cur.execute("SELECT vehicle_id FROM vehicles WHERE route_id = 17 AND is_active LIMIT 1")
        other = cur.fetchone()[0]
    card = requests.post(base + "/api/v1/cards", json={}, headers=operator).json()["card_id"]
    requests.post(base + "/api/v1/cards/recharge", json={"card_id": card, "amount": 10000}, headers=operator)
    touched.append(card)
    r = requests.post(base + "/api/v1/trips/start", headers=operator,
                      json={"card_id": card, "route_id": 3, "boarding_station_id": 1, "vehicle_id": other})
    assert_problem(r, 422, "validation", "vehicle_id")
