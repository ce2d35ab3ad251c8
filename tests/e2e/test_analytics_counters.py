"""The counters behind the cold analytics (issue 11, item 4;
db/migrations/0012_analytics_counters.sql): riders by their last day of
travel, completed trips per (boarding, alighting) station pair, users per
shard. Each is checked against the definition computed from the base tables
(API.md, Details) after the writes that move it: taps, a card blocked and
unblocked, given to another rider, moved in time, trips moved, concurrent
first taps of one rider's two cards, and the 30-day window's edge."""
import threading
import time
import uuid

import pytest
import requests

from conftest import bearer, db_rows, db_scalar, login, redis_cli

V1 = "/api/v1"
TIMEOUT = 10

DEFINITION = """SELECT count(DISTINCT user_id) FROM cards WHERE status = 'active' AND user_id IS NOT NULL
                AND last_used_date >= now() - interval '30 days'"""


@pytest.fixture(autouse=True)
def travel_dates_agree_afterwards(db):
    """These tests move cards' last_used_date back directly, which the API
    never does to a card that travelled since; afterwards each card's date
    is its last boarding again, so the suites that define active riders by
    trips (test_analytics.py), in any order or on a reused database, see
    what the API would have made."""
    yield
    db_rows(db, "UPDATE cards c SET last_used_date = t.last"
                " FROM (SELECT card_id, max(boarding_time) AS last FROM trips GROUP BY card_id) t"
                " WHERE t.card_id = c.card_id AND (c.last_used_date IS NULL OR c.last_used_date < t.last)"
                " RETURNING 1")


def post(url, path, body, headers=None):
    return requests.post(url + V1 + path, json=body, headers=headers, timeout=TIMEOUT)


def rider(base):
    email = "counters.%s@example.test" % uuid.uuid4().hex[:16]
    r = post(base, "/auth/register", {"email": email, "password": "counters-password",
                                      "first_name": "Cuenta", "last_name": "Dora"})
    assert r.status_code == 201, r.text
    return r.json()["user_id"], bearer(login(base, email, "counters-password")["access_token"])


def card(base, operator, user_id, amount=30000):
    r = post(base, "/cards", {"user_id": user_id}, operator)
    assert r.status_code == 201, r.text
    cid = r.json()["card_id"]
    r = post(base, "/cards/recharge", {"card_id": cid, "amount": amount}, operator)
    assert r.status_code == 201, r.text
    return cid


def ride(base, headers, card_id, board=1, alight=13):
    r = post(base, "/trips/start", {"card_id": card_id, "route_id": 3, "boarding_station_id": board}, headers)
    assert r.status_code == 201, r.text
    trip = r.json()["trip_id"]
    r = post(base, "/trips/end", {"trip_id": trip, "disembarking_station_id": alight}, headers)
    assert r.status_code == 200, r.text
    return trip


def assert_riders_consistent(db):
    """The function equals the definition; the per-rider rows equal what the
    cards say; the day counts equal the per-rider rows."""
    in_one_snapshot = db_rows(db, "SELECT active_riders(now()), (%s)" % DEFINITION)[0]
    assert in_one_snapshot[0] == in_one_snapshot[1], in_one_snapshot
    wrong = db_rows(db, """
        WITH truth AS (SELECT user_id, utc_day(max(last_used_date)) AS day FROM cards
                       WHERE user_id IS NOT NULL AND status = 'active' AND last_used_date IS NOT NULL GROUP BY 1)
        SELECT coalesce(t.user_id, r.user_id), t.day, r.last_day FROM truth t
        FULL JOIN rider_last_day r USING (user_id) WHERE t.day IS DISTINCT FROM r.last_day""")
    assert not wrong, wrong[:5]
    wrong = db_rows(db, """
        WITH truth AS (SELECT last_day AS day, (user_id %% 64)::smallint AS shard, count(*) AS n
                       FROM rider_last_day GROUP BY 1, 2)
        SELECT coalesce(t.day, d.day), coalesce(t.shard, d.shard), t.n, d.riders FROM truth t
        FULL JOIN rider_days d ON d.day = t.day AND d.shard = t.shard
        WHERE coalesce(t.n, 0) <> coalesce(d.riders, 0)""")
    assert not wrong, wrong[:5]
    return in_one_snapshot[0]


def drop(key):
    """Drops a cached read in Redis and every server's near-cache."""
    redis_cli("UNLINK", key)
    redis_cli("PUBLISH", "transitd:invalidate", key)
    time.sleep(0.1)


def api_active(base):
    drop("transitd:analytics:users:active")
    r = requests.get(base + V1 + "/analytics/users/active", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["active_users_count"]


def test_active_riders_through_every_change(base, db, operator):
    uid, headers = rider(base)
    a, b = card(base, operator, uid), card(base, operator, uid)
    n0 = assert_riders_consistent(db)
    ride(base, headers, a)
    assert assert_riders_consistent(db) == n0 + 1
    ride(base, headers, b)                        # same day: still one rider
    assert assert_riders_consistent(db) == n0 + 1
    # Card a far back, b still today: still active.
    db_rows(db, "UPDATE cards SET last_used_date = now() - interval '40 days' WHERE card_id = %s RETURNING 1", a)
    assert assert_riders_consistent(db) == n0 + 1
    # Both far back: not active.
    db_rows(db, "UPDATE cards SET last_used_date = now() - interval '31 days' WHERE card_id = %s RETURNING 1", b)
    assert assert_riders_consistent(db) == n0
    ride(base, headers, a)
    assert assert_riders_consistent(db) == n0 + 1
    # Blocking the only recent card: not active; unblocking: active again.
    r = post(base, "/cards/%d/block" % a, None, headers)
    assert r.status_code == 200, r.text
    assert assert_riders_consistent(db) == n0
    r = post(base, "/cards/%d/unblock" % a, None, operator)
    assert r.status_code == 200, r.text
    assert assert_riders_consistent(db) == n0 + 1
    # The card given to another rider moves the activity with it.
    other, _ = rider(base)
    db_rows(db, "UPDATE cards SET user_id = %s WHERE card_id = %s RETURNING 1", other, a)
    assert assert_riders_consistent(db) == n0 + 1
    db_rows(db, "UPDATE cards SET user_id = NULL WHERE card_id = %s RETURNING 1", a)
    assert assert_riders_consistent(db) == n0
    assert api_active(base) == db_scalar(db, DEFINITION)


def test_the_window_edge(db, base, operator):
    """Riders whose last travel is on the day the window starts are counted
    one by one: just inside, just outside."""
    uid_in, _ = rider(base)
    uid_out, _ = rider(base)
    c_in, c_out = card(base, operator, uid_in), card(base, operator, uid_out)
    n0 = assert_riders_consistent(db)
    db_rows(db, "UPDATE cards SET last_used_date = now() - interval '30 days' + interval '2 seconds'"
                " WHERE card_id = %s RETURNING 1", c_in)
    db_rows(db, "UPDATE cards SET last_used_date = now() - interval '30 days' - interval '2 seconds'"
                " WHERE card_id = %s RETURNING 1", c_out)
    assert assert_riders_consistent(db) == n0 + 1
    # Exactly at the start of the window's first day, and the last moment before it.
    db_rows(db, "UPDATE cards SET last_used_date = date_trunc('day', now() - interval '30 days', 'UTC')"
                " + interval '1 day' WHERE card_id = %s RETURNING 1", c_out)
    assert assert_riders_consistent(db) == n0 + 2
    db_rows(db, "UPDATE cards SET last_used_date = date_trunc('day', now() - interval '30 days', 'UTC')"
                " - interval '1 microsecond' WHERE card_id = %s RETURNING 1", c_out)
    assert assert_riders_consistent(db) == n0 + 1


def test_concurrent_first_taps_of_one_riders_cards(base, db, operator):
    """Two cards of one rider tapping in at once, each the first of its day:
    the rider moves to today once (the users row is locked by both)."""
    for _ in range(5):
        uid, headers = rider(base)
        cards = [card(base, operator, uid) for _ in range(2)]
        db_rows(db, "UPDATE cards SET last_used_date = now() - interval '3 days' WHERE card_id = ANY(%s) RETURNING 1",
                cards)
        barrier = threading.Barrier(2)
        errors = []

        def tap(c):
            barrier.wait()
            r = post(base, "/trips/start", {"card_id": c, "route_id": 3, "boarding_station_id": 1}, headers)
            if r.status_code != 201:
                errors.append(r.text)

        threads = [threading.Thread(target=tap, args=(c,)) for c in cards]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not errors, errors
        assert_riders_consistent(db)


TOP_SQL = """SELECT t.disembarking_station_id, count(*) FROM trips t
             WHERE t.boarding_station_id = %s AND t.disembarking_station_id IS NOT NULL
             GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10"""


def assert_destinations_consistent(db):
    wrong = db_rows(db, """
        WITH truth AS (SELECT boarding_station_id AS b, disembarking_station_id AS d, count(*) AS n FROM trips
                       WHERE disembarking_station_id IS NOT NULL GROUP BY 1, 2),
             kept AS (SELECT boarding_station_id AS b, disembarking_station_id AS d, sum(trips) AS n
                      FROM station_destinations GROUP BY 1, 2)
        SELECT coalesce(t.b, k.b), coalesce(t.d, k.d), t.n, k.n FROM truth t FULL JOIN kept k USING (b, d)
        WHERE coalesce(t.n, 0) <> coalesce(k.n, 0)""")
    assert not wrong, wrong[:5]


def test_destinations_follow_the_trips(base, db, operator):
    uid, headers = rider(base)
    c = card(base, operator, uid, 100000)
    trips = [ride(base, headers, c, 1, alight) for alight in (13, 13, 15, 102)]
    assert_destinations_consistent(db)
    # Moving a trip in time changes no count; moving its alighting station moves it.
    db_rows(db, "UPDATE trips SET boarding_time = boarding_time - interval '1 hour',"
                " disembarking_time = disembarking_time - interval '1 hour' WHERE trip_id = %s RETURNING 1", trips[0])
    assert_destinations_consistent(db)
    db_rows(db, "UPDATE trips SET disembarking_station_id = 17 WHERE trip_id = %s RETURNING 1", trips[1])
    assert_destinations_consistent(db)
    drop("transitd:station:1:top-destinations")
    r = requests.get(base + V1 + "/analytics/stations/1/top-destinations", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    got = [(d["station_id"], d["trip_count"]) for d in r.json()["destinations"]]
    assert got == [tuple(x) for x in db_rows(db, TOP_SQL, 1)]


def test_user_count_follows_registrations(base, db):
    for _ in range(3):
        rider(base)
        assert db_scalar(db, "SELECT sum(users) FROM user_counts") == db_scalar(db, "SELECT count(*) FROM users")
