"""Analytics end to end: every path and alias with its documented shape,
MISS then HIT, agreement with the database (totals, per-locality rows, the
active-user definition, top destinations), read-after-write across two
instances, single flight under 200 concurrent cold reads, the admin cache
routes, and Redis dying and coming back under load.

Network used (db/seed/demo_1_network.sql): route 3 (J72, trunk, 3,200 COP)
stops [1, 11, 13, 15, ...]; route 2 (B1) [1, 10..19]; route 17 (F23)
[5, 60..69, ...]."""
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import NEAR_CACHE_S, assert_problem, db_rows, db_scalar, flush_cache, poll, redis_cli, services

V1 = "/api/v1"
FARE = 3200
TIMEOUT = 10
ANALYTICS_KEYS = ("transitd:analytics:*", "transitd:station:*:top-destinations")

# (main path, alias or None, required fields of the body)
TOTAL_FIELDS = ("total_trips", "completed_trips", "active_trips", "total_revenue")
PATHS = {
    "trips_total": ("/analytics/trips/total", "/trips/total"),
    "trips_localities": ("/analytics/trips/localities", "/trips/total/localities"),
    "revenue": ("/analytics/revenue", "/finance/revenue"),
    "revenue_localities": ("/analytics/revenue/localities", "/finance/revenue/localities"),
    "users_active": ("/analytics/users/active", "/users/active/count"),
}
REDIS_KEY = {
    "trips_total": "transitd:analytics:trips:total",
    "trips_localities": "transitd:analytics:trips:localities",
    "revenue": "transitd:analytics:revenue",
    "revenue_localities": "transitd:analytics:revenue:localities",
    "users_active": "transitd:analytics:users:active",
}


# --- helpers -------------------------------------------------------------

def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def get(url, path, headers=None):
    return requests.get(url + V1 + path, headers=headers, timeout=TIMEOUT)


def post(url, path, body, headers=None):
    return requests.post(url + V1 + path, json=body, headers=headers, timeout=TIMEOUT)


def doc(url, path):
    r = get(url, path)
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    assert r.headers.get("X-Cache") in ("HIT", "MISS", "BYPASS"), (path, r.headers)
    return r.json()


def cold(*redis_keys):
    """Drops keys from Redis and waits out every server's near-cache."""
    redis_cli("UNLINK", *redis_keys)
    time.sleep(NEAR_CACHE_S)


def new_card(url, staff, user_id=None, balance=20000):
    r = post(url, "/cards", {"user_id": user_id} if user_id else {}, staff)
    assert r.status_code == 201, r.text
    card_id = r.json()["card_id"]
    if balance:
        r = post(url, "/cards/recharge", {"card_id": card_id, "amount": balance}, staff)
        assert r.status_code == 201, r.text
    return card_id


def tap_in(url, staff, card_id, route_id, station_id):
    r = post(url, "/trips/start", {"card_id": card_id, "route_id": route_id, "boarding_station_id": station_id},
             staff)
    assert r.status_code == 201, r.text
    return r.json()


def tap_out(url, staff, trip_id, station_id):
    r = post(url, "/trips/end", {"trip_id": trip_id, "disembarking_station_id": station_id}, staff)
    assert r.status_code == 200, r.text
    return r.json()


def register(url):
    email = "analytics.%s@example.test" % uuid.uuid4().hex[:16]
    r = post(url, "/auth/register", {"email": email, "password": "analytics-password-1",
                                     "first_name": "Ana", "last_name": "Lítica"})
    assert r.status_code == 201, r.text
    return r.json()["user_id"]


def cache_stats(url, admin):
    r = get(url, "/cache/stats", admin)
    assert r.status_code == 200, r.text
    return r.json()


# The database's side of each figure, written from the contract, not from the
# server's queries: trips and the fare ledger, never trip_stats.
SQL_TOTALS = """
    SELECT count(*), count(t.disembarking_time), count(*) - count(t.disembarking_time)
    FROM trips t"""
SQL_REVENUE = "SELECT coalesce(-sum(amount), 0)::bigint FROM card_ledger WHERE kind = 'fare'"
SQL_LOCALITIES = """
    SELECT l.locality_id, l.name, count(t.trip_id), count(t.disembarking_time),
           coalesce(-sum(cl.amount) FILTER (WHERE cl.kind = 'fare'), 0)::bigint
    FROM localities l
    LEFT JOIN stations s ON s.locality_id = l.locality_id
    LEFT JOIN trips t ON t.boarding_station_id = s.station_id
    LEFT JOIN card_ledger cl ON cl.entry_id = t.ledger_entry_id
    GROUP BY l.locality_id, l.name ORDER BY l.locality_id"""
SQL_ACTIVE_USERS = """
    SELECT count(DISTINCT c.user_id) FROM cards c
    WHERE c.status = 'active' AND c.user_id IS NOT NULL
      AND EXISTS (SELECT 1 FROM trips t WHERE t.card_id = c.card_id
                  AND t.boarding_time >= now() - interval '30 days')"""
SQL_TOP = """
    SELECT t.disembarking_station_id, s.name, count(*) AS n
    FROM trips t JOIN stations s ON s.station_id = t.disembarking_station_id
    WHERE t.boarding_station_id = %s AND t.disembarking_station_id IS NOT NULL
    GROUP BY 1, 2 ORDER BY n DESC, 1 LIMIT 10"""


@pytest.fixture(scope="module")
def traffic(base, operator):
    """Some trips in several localities: completed, open, by a personalised
    card (an active user) and by anonymous ones."""
    uid = register(base)
    mine = new_card(base, operator, uid)
    t = tap_in(base, operator, mine, 3, 1)
    tap_out(base, operator, t["trip_id"], 13)
    for route, board, alight in ((3, 1, 13), (3, 1, 15), (2, 10, 15), (17, 5, 62)):
        c = new_card(base, operator)
        t = tap_in(base, operator, c, route, board)
        tap_out(base, operator, t["trip_id"], alight)
    tap_in(base, operator, new_card(base, operator), 3, 11)  # left open
    return {"user_id": uid}


# --- shapes, aliases, MISS then HIT ---------------------------------------

def check_totals(body):
    assert set(body) == set(TOTAL_FIELDS), body
    assert all(is_int(body[k]) and body[k] >= 0 for k in TOTAL_FIELDS), body
    assert body["active_trips"] == body["total_trips"] - body["completed_trips"], body


def check_shape(name, body):
    if name == "trips_total":
        check_totals(body)
    elif name == "trips_localities":
        assert set(body) == {"localities"}, body
        rows = body["localities"]
        assert isinstance(rows, list) and len(rows) == 20, body
        for row in rows:
            assert set(row) == {"locality", "locality_id", *TOTAL_FIELDS}, row
            assert isinstance(row["locality"], str) and row["locality"], row
            assert is_int(row["locality_id"]), row
            check_totals({k: row[k] for k in TOTAL_FIELDS})
        ids = [row["locality_id"] for row in rows]
        assert ids == sorted(ids) and len(set(ids)) == 20, ids
    elif name == "revenue":
        assert set(body) == {"total_revenue", "currency"}, body
        assert is_int(body["total_revenue"]) and body["total_revenue"] >= 0, body
        assert body["currency"] == "COP"
    elif name == "revenue_localities":
        assert set(body) == {"data", "currency"}, body
        assert body["currency"] == "COP"
        rows = body["data"]
        assert isinstance(rows, list) and len(rows) == 20, body
        for row in rows:
            assert set(row) == {"locality", "locality_id", "total_revenue"}, row
            assert isinstance(row["locality"], str) and is_int(row["locality_id"]), row
            assert is_int(row["total_revenue"]) and row["total_revenue"] >= 0, row
        order = [(-row["total_revenue"], row["locality_id"]) for row in rows]
        assert order == sorted(order), "highest revenue first: %r" % rows
    elif name == "users_active":
        assert set(body) == {"active_users_count"}, body
        assert is_int(body["active_users_count"]) and body["active_users_count"] >= 0, body
    else:
        raise AssertionError(name)


@pytest.mark.parametrize("name", sorted(PATHS))
def test_analytics_shape_alias_and_miss_then_hit(base, traffic, name):
    main, alias = PATHS[name]
    cold(REDIS_KEY[name])
    first = get(base, main)
    assert first.status_code == 200, first.text
    assert first.headers["Content-Type"].startswith("application/json")
    assert first.headers.get("X-Cache") == "MISS", first.headers
    check_shape(name, first.json())
    again = get(base, main)
    assert again.status_code == 200 and again.headers.get("X-Cache") == "HIT", again.headers
    assert again.content == first.content
    # The alias is the same handler and the same cache entry: a HIT, same bytes.
    other = get(base, alias)
    assert other.status_code == 200, other.text
    assert other.headers.get("X-Cache") == "HIT", other.headers
    assert other.content == first.content, (main, alias)
    # Cold again, the alias fills it: MISS, then the main path HITs.
    cold(REDIS_KEY[name])
    other = get(base, alias)
    assert other.headers.get("X-Cache") == "MISS" and other.json() == first.json()
    assert get(base, main).headers.get("X-Cache") == "HIT"


def test_analytics_are_public(base, traffic, rider):
    """No token needed; a token changes nothing."""
    for main, alias in PATHS.values():
        for p in (main, alias):
            assert get(base, p).status_code == 200, p
            assert get(base, p, rider).status_code == 200, p
    assert get(base, "/analytics/stations/1/top-destinations").status_code == 200


def test_top_destinations_shape_and_unknown_station(base, traffic, db):
    cold("transitd:station:1:top-destinations")
    r = get(base, "/analytics/stations/1/top-destinations")
    assert r.status_code == 200, r.text
    assert r.headers.get("X-Cache") == "MISS", r.headers
    body = r.json()
    assert set(body) == {"station_id", "destinations"}, body
    assert body["station_id"] == 1
    assert isinstance(body["destinations"], list) and 1 <= len(body["destinations"]) <= 10, body
    for d in body["destinations"]:
        assert set(d) == {"station_id", "name", "trip_count"}, d
        assert is_int(d["station_id"]) and isinstance(d["name"], str) and is_int(d["trip_count"]), d
        assert d["trip_count"] >= 1
    again = get(base, "/analytics/stations/1/top-destinations")
    assert again.headers.get("X-Cache") == "HIT" and again.content == r.content

    # A station without trips: an empty list, not a 404.
    quiet = db_scalar(db, "SELECT min(station_id) FROM stations s WHERE NOT EXISTS"
                          " (SELECT 1 FROM trips t WHERE t.boarding_station_id = s.station_id)")
    assert doc(base, "/analytics/stations/%d/top-destinations" % quiet) == {"station_id": quiet, "destinations": []}

    unknown = db_scalar(db, "SELECT max(station_id) + 1000 FROM stations")
    body = assert_problem(get(base, "/analytics/stations/%d/top-destinations" % unknown), 404, "not-found")
    assert body["instance"] == V1 + "/analytics/stations/%d/top-destinations" % unknown
    # Not cached: still 404 (and never a 200) on a repeat.
    assert_problem(get(base, "/analytics/stations/%d/top-destinations" % unknown), 404, "not-found")


# --- agreement with the database -------------------------------------------

def test_analytics_match_the_database(base, traffic, db):
    flush_cache(ANALYTICS_KEYS)
    totals = doc(base, "/analytics/trips/total")
    n, done, open_ = db_rows(db, SQL_TOTALS)[0]
    revenue = db_scalar(db, SQL_REVENUE)
    assert n >= 6 and open_ >= 1 and revenue >= 3 * FARE, "the fixture's trips are missing"
    assert totals == {"total_trips": n, "completed_trips": done, "active_trips": open_,
                      "total_revenue": revenue}, "database: %r" % ((n, done, open_, revenue),)
    assert doc(base, "/analytics/revenue") == {"total_revenue": revenue, "currency": "COP"}

    # Per locality: the rows add up to the totals, and each matches the database.
    rows = doc(base, "/analytics/trips/localities")["localities"]
    for k in TOTAL_FIELDS:
        assert sum(r[k] for r in rows) == totals[k], (k, rows)
    want = {lid: (name, cnt, fin, cnt - fin, rev) for lid, name, cnt, fin, rev in db_rows(db, SQL_LOCALITIES)}
    got = {r["locality_id"]: (r["locality"], r["total_trips"], r["completed_trips"], r["active_trips"],
                              r["total_revenue"]) for r in rows}
    assert got == want
    assert sum(1 for r in rows if r["total_trips"]) >= 2, "the fixture rides in several localities"

    rev = doc(base, "/analytics/revenue/localities")
    assert rev["currency"] == "COP"
    assert sum(r["total_revenue"] for r in rev["data"]) == revenue
    assert {r["locality_id"]: (r["locality"], r["total_revenue"]) for r in rev["data"]} == \
        {lid: (w[0], w[4]) for lid, w in want.items()}


def test_active_users_match_the_definition(base, traffic, db):
    flush_cache(ANALYTICS_KEYS)
    want = db_scalar(db, SQL_ACTIVE_USERS)
    assert want >= 1, "the fixture's rider travelled"
    assert doc(base, "/analytics/users/active") == {"active_users_count": want}
    assert doc(base, "/users/active/count") == {"active_users_count": want}


def test_top_destinations_match_the_database(base, traffic, db):
    flush_cache(ANALYTICS_KEYS)
    stations = [sid for (sid,) in db_rows(db, "SELECT DISTINCT boarding_station_id FROM trips"
                                              " WHERE disembarking_station_id IS NOT NULL ORDER BY 1 LIMIT 5")]
    assert 1 in stations
    for sid in stations:
        body = doc(base, "/analytics/stations/%d/top-destinations" % sid)
        want = [{"station_id": d, "name": name, "trip_count": cnt} for d, name, cnt in db_rows(db, SQL_TOP, sid)]
        assert body == {"station_id": sid, "destinations": want}, sid


# --- read after write --------------------------------------------------------

def test_tap_in_is_seen_by_the_next_read_on_every_instance(base, spawn, operator, traffic):
    """A tap-in invalidates the analytics: the instance that took it answers
    the new figures at once; another instance within the invalidation delay.
    That instance keeps near-cache entries 10 s, so only the published
    invalidation message (not the entry's expiry) can make it fresh in 2 s."""
    other = spawn(NEAR_CACHE_TTL_MS=10000)
    card = new_card(base, operator, balance=10000)
    urls = {"writer": base, "other": other.url}
    before = {}
    for who, url in urls.items():
        for _ in range(2):  # fill Redis and each near-cache
            before[who] = (doc(url, "/analytics/trips/total"), doc(url, "/analytics/revenue"))
    assert before["writer"] == before["other"]
    assert get(other.url, "/analytics/trips/total").headers.get("X-Cache") == "HIT"
    totals0, revenue0 = before["writer"]

    t = tap_in(base, operator, card, 3, 1)
    wrote = time.time()
    assert t["fare_amount"] == FARE, t

    def fresh(url):
        totals, revenue = doc(url, "/analytics/trips/total"), doc(url, "/analytics/revenue")
        return (totals["total_trips"] == totals0["total_trips"] + 1
                and totals["active_trips"] == totals0["active_trips"] + 1
                and totals["total_revenue"] == totals0["total_revenue"] + FARE
                and revenue["total_revenue"] == revenue0["total_revenue"] + FARE)

    # The writer dropped its near-cache and the Redis keys before answering.
    assert fresh(base), "the instance that took the tap-in still answers the old totals"
    # The other instance: the invalidation message reaches its near-cache.
    ok = poll(lambda: fresh(other.url), timeout=2.0, interval=0.01)
    delay_ms = (time.time() - wrote) * 1000
    print("\nread-after-write: second instance saw the tap-in after %.1f ms" % delay_ms)
    assert ok, "second instance still stale 2 s after the tap-in (invalidation message lost?)"

    # Tap-out: the boarding station's top destinations move at once too.
    top0 = doc(base, "/analytics/stations/1/top-destinations")
    count0 = {d["station_id"]: d["trip_count"] for d in top0["destinations"]}.get(13, 0)
    tap_out(base, operator, t["trip_id"], 13)
    top1 = doc(base, "/analytics/stations/1/top-destinations")
    assert {d["station_id"]: d["trip_count"] for d in top1["destinations"]}.get(13) == count0 + 1, top1
    done = doc(base, "/analytics/trips/total")
    assert done["completed_trips"] == totals0["completed_trips"] + 1 and done["active_trips"] == totals0["active_trips"]


# --- single flight -------------------------------------------------------------

def test_single_flight_one_fill_for_200_concurrent_cold_reads(spawn, admin):
    s = spawn(WORKERS=16)
    cold(REDIS_KEY["trips_total"])
    fills0 = cache_stats(s.url, admin)["families"]["trips_total"]["fills"]

    n = 200
    barrier = threading.Barrier(n)

    def one(_):
        barrier.wait(timeout=30)
        r = requests.get(s.url + V1 + "/analytics/trips/total", timeout=30)
        return r.status_code, r.content, r.headers.get("X-Cache")

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(one, range(n)))
    statuses = [st for st, _, _ in results]
    assert statuses == [200] * n, statuses
    assert len({body for _, body, _ in results}) == 1, "different bodies for one key"
    xc = [x for _, _, x in results]
    fills = cache_stats(s.url, admin)["families"]["trips_total"]["fills"]
    print("\nsingle flight: %d MISS, %d HIT, fills %d -> %d" % (xc.count("MISS"), xc.count("HIT"), fills0, fills))
    assert "MISS" in xc and set(xc) <= {"MISS", "HIT"}, xc
    assert fills - fills0 == 1, "200 concurrent misses ran the query %d times" % (fills - fills0)


# --- cache administration -------------------------------------------------------

def test_cache_stats_requires_admin_and_has_its_shape(base, admin, operator, rider, traffic):
    assert_problem(get(base, "/cache/stats"), 401, "unauthorized")
    assert_problem(get(base, "/cache/stats", rider), 403, "forbidden")
    assert_problem(get(base, "/cache/stats", operator), 403, "forbidden")
    assert_problem(post(base, "/cache/clear", None), 401, "unauthorized")
    assert_problem(post(base, "/cache/clear", None, rider), 403, "forbidden")

    doc(base, "/analytics/trips/total")
    doc(base, "/analytics/trips/total")
    r = get(base, "/cache/stats", admin)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"hits", "misses", "hit_ratio", "families", "near_cache_entries", "redis_used_memory"}, body
    assert is_int(body["hits"]) and is_int(body["misses"]) and is_int(body["near_cache_entries"]), body
    assert isinstance(body["hit_ratio"], (int, float)) and 0 <= body["hit_ratio"] <= 1, body
    if body["hits"] + body["misses"]:
        assert abs(body["hit_ratio"] - body["hits"] / (body["hits"] + body["misses"])) < 1e-3, body
    assert is_int(body["redis_used_memory"]) and body["redis_used_memory"] > 0, body
    fams = body["families"]
    for label in ("trips_total", "trips_localities", "revenue", "revenue_localities", "users_active",
                  "top_destinations"):
        assert label in fams, fams.keys()
    for label, f in fams.items():
        assert set(f) == {"hits", "misses", "fills"}, (label, f)
        assert all(is_int(v) and v >= 0 for v in f.values()), (label, f)
    assert fams["trips_total"]["hits"] >= 1
    assert sum(f["hits"] for f in fams.values()) == body["hits"]
    assert sum(f["misses"] for f in fams.values()) == body["misses"]


def test_cache_clear_then_next_read_is_miss(base, spawn, admin, traffic):
    other = spawn()
    for url in (base, other.url):
        doc(url, "/analytics/trips/total")
        assert get(url, "/analytics/trips/total").headers.get("X-Cache") == "HIT"
    r = post(base, "/cache/clear", None, admin)
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert redis_cli("EXISTS", REDIS_KEY["trips_total"]) == "0"
    first = get(base, "/analytics/trips/total")
    assert first.status_code == 200 and first.headers.get("X-Cache") == "MISS", first.headers
    # The other instance's near-cache was emptied by the published "*".
    ok = poll(lambda: get(other.url, "/analytics/revenue").headers.get("X-Cache") == "MISS", timeout=0.5)
    assert ok, "the other instance still served its near-cache after /cache/clear"
    # Sessions survive a clear: the admin token still works.
    assert get(base, "/cache/stats", admin).status_code == 200


# --- Redis down and back under load ---------------------------------------------

def test_redis_killed_and_restarted_under_load(base, db):
    sid = db_scalar(db, "SELECT min(station_id) FROM stations")
    paths = [V1 + "/analytics/trips/total", V1 + "/analytics/revenue", V1 + "/trips/total/localities",
             V1 + "/analytics/users/active", V1 + "/analytics/stations/1/top-destinations",
             V1 + "/stations/%d" % sid, V1 + "/stations"]
    for p in paths:
        requests.get(base + p, timeout=TIMEOUT)
    seen = []  # (time, path, status or exception, X-Cache)
    stop = threading.Event()

    def load(i):
        k = i
        while not stop.is_set():
            p = paths[k % len(paths)]
            k += 1
            try:
                r = requests.get(base + p, timeout=5)
                seen.append((time.time(), p, r.status_code, r.headers.get("X-Cache")))
            except requests.RequestException as e:
                seen.append((time.time(), p, repr(e), None))

    health = []
    pool = ThreadPoolExecutor(8)
    futures = [pool.submit(load, i) for i in range(8)]
    try:
        time.sleep(0.5)
        services("stop", "redis")
        down = time.time()
        try:
            def unhealthy():
                r = requests.get(base + "/health/cache", timeout=5)
                health.append((r.status_code, r.json()))
                return r.status_code == 503 and r.json()["status"] == "unhealthy"
            assert poll(unhealthy, timeout=2.0), "/health/cache still healthy with Redis stopped: %r" % health[-1:]
            time.sleep(max(0, down + 2.5 - time.time()))
        finally:
            services("start", "redis")
        up = time.time()
        time.sleep(1.0)
    finally:
        stop.set()
        for f in futures:
            f.result()
        pool.shutdown()
    assert redis_cli("PING") == "PONG"

    failures = [s for s in seen if not isinstance(s[2], int) or s[2] >= 500]
    assert not failures, "failed reads while Redis was down: %r" % failures[:10]
    outage = [s for s in seen if down <= s[0] <= up]
    print("\nredis outage: %d reads under load, %d during the outage (%s)" % (
        len(seen), len(outage), {x: sum(1 for s in outage if s[3] == x) for x in ("HIT", "MISS", "BYPASS")}))
    assert len(outage) > 20, "the load did not run during the outage"
    assert any(s[3] == "BYPASS" for s in outage), "no BYPASS while Redis was down"
    body = health[-1][1]
    assert body["error"], body

    def hit_again():
        a = requests.get(base + V1 + "/analytics/trips/total", timeout=5)
        b = requests.get(base + V1 + "/analytics/trips/total", timeout=5)
        return a.status_code == 200 and b.headers.get("X-Cache") == "HIT"
    assert poll(hit_again, timeout=10, interval=0.2), "no HIT after Redis came back"
    assert poll(lambda: requests.get(base + "/health/cache", timeout=5).status_code == 200, timeout=10)


# --- trips per day ------------------------------------------------------------

def test_daily_series_matches_the_database(base, traffic, db, operator):
    flush_cache(ANALYTICS_KEYS)
    r = get(base, "/analytics/trips/daily?days=366")
    assert r.status_code == 200 and r.headers["X-Cache"] == "MISS", r.text
    body = r.json()
    days = body["days"]
    assert len(days) == 366 and body["time_zone"] == "America/Bogota" and body["currency"] == "COP"
    assert days[-1]["date"] == body["today"] == db_scalar(db, "SELECT (now() AT TIME ZONE 'America/Bogota')::date::text")
    assert [d["date"] for d in days] == sorted(d["date"] for d in days)
    # Every trip of the suite boarded within a year: the days add up to the totals.
    totals = doc(base, "/analytics/trips/total")
    assert sum(d["total_trips"] for d in days) == totals["total_trips"]
    assert sum(d["completed_trips"] for d in days) == totals["completed_trips"]
    assert sum(d["total_revenue"] for d in days) == totals["total_revenue"]
    today = db_rows(db, """SELECT count(*), count(*) FILTER (WHERE disembarking_time IS NOT NULL),
                                  coalesce(sum(fare_amount), 0)::bigint FROM trips
                           WHERE (boarding_time AT TIME ZONE 'America/Bogota')::date
                                 = (now() AT TIME ZONE 'America/Bogota')::date""")[0]
    assert (days[-1]["total_trips"], days[-1]["completed_trips"], days[-1]["total_revenue"]) == today
    assert get(base, "/analytics/trips/daily?days=366").headers["X-Cache"] == "HIT"
    # A tap-in counts today at once (the write invalidates every variant).
    week = doc(base, "/analytics/trips/daily?days=7")["days"]
    card = new_card(base, operator)
    tap_in(base, operator, card, 1, db_scalar(db, "SELECT station_id FROM route_stops WHERE route_id = 1"
                                                  " ORDER BY stop_sequence LIMIT 1"))
    assert poll(lambda: doc(base, "/analytics/trips/daily?days=7")["days"][-1]["total_trips"]
                == week[-1]["total_trips"] + 1, timeout=NEAR_CACHE_S + 1)


@pytest.mark.parametrize("days", ["0", "367", "x", "-1", "1.5"])
def test_daily_series_bounds(base, days):
    assert_problem(get(base, "/analytics/trips/daily?days=" + days), 422, "validation", "days")


def test_daily_series_default_is_30_days(base):
    assert len(doc(base, "/analytics/trips/daily")["days"]) == 30
