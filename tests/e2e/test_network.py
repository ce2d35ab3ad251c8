"""Network reads: localities, stations (filters and keyset paging), one
station, arrivals, alerts, routes, and the cache headers on them."""
import datetime
import urllib.parse

import pytest
import requests

from conftest import RFC3339_UTC, assert_problem, db_rows, db_scalar, flush_cache, get_json

V1 = "/api/v1"

LOCALITIES = [
    "Usaquén", "Chapinero", "Santa Fe", "San Cristóbal", "Usme", "Tunjuelito", "Bosa", "Kennedy",
    "Fontibón", "Engativá", "Suba", "Barrios Unidos", "Teusaquillo", "Los Mártires", "Antonio Nariño",
    "Puente Aranda", "La Candelaria", "Rafael Uribe Uribe", "Ciudad Bolívar", "Sumapaz",
]
STATION_KEYS = {"station_id", "station_code", "name", "station_type", "locality", "latitude", "longitude",
                "is_active"}


def walk_stations(base, query=""):
    """Follows next_cursor to the end; returns every station and the number of pages."""
    stations, cursor, pages = [], None, 0
    while True:
        q = query + ("&" if query else "") + ("cursor=" + urllib.parse.quote(str(cursor)) if cursor else "")
        body = get_json(base + V1 + "/stations" + ("?" + q if q else ""))
        assert set(body) >= {"stations", "next_cursor"}, body
        stations += body["stations"]
        pages += 1
        assert pages <= 1000, "next_cursor never became null"
        if body["next_cursor"] is None:
            return stations, pages
        assert isinstance(body["next_cursor"], str) and body["next_cursor"], body["next_cursor"]
        assert body["stations"], "a page with a next_cursor must not be empty"
        cursor = body["next_cursor"]


def parse_time(s):
    assert RFC3339_UTC.match(s), s
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


# ----------------------------------------------------------------- localities

def test_localities(base, db):
    body = get_json(base + V1 + "/localities")
    locs = body["localities"]
    assert len(locs) == 20
    assert [loc["name"] for loc in locs] == LOCALITIES
    assert [loc["locality_id"] for loc in locs] == list(range(1, 21))
    assert all(isinstance(loc["station_count"], int) for loc in locs)
    # Rail stations outside Bogotá belong to no locality.
    assert sum(loc["station_count"] for loc in locs) == db_scalar(
        db, "SELECT count(*) FROM stations WHERE locality_id IS NOT NULL")
    by_db = dict(db_rows(db, "SELECT locality_id, count(*) FROM stations WHERE locality_id IS NOT NULL GROUP BY 1"))
    assert {loc["locality_id"]: loc["station_count"] for loc in locs if loc["station_count"]} == by_db


# ------------------------------------------------------------------- stations

def test_stations_default_page(base, db):
    total = db_scalar(db, "SELECT count(*) FROM stations")
    assert total > 20, "the demo network should have more than one page of stations"
    body = get_json(base + V1 + "/stations")
    assert len(body["stations"]) == 20
    assert body["next_cursor"] is not None
    for s in body["stations"]:
        assert set(s) >= STATION_KEYS, s
        assert isinstance(s["station_id"], int)
        assert s["station_type"] in ("portal", "trunk", "cable", "zonal")
        assert s["locality"] in LOCALITIES
        assert isinstance(s["is_active"], bool)
        assert -90 <= s["latitude"] <= 90 and -180 <= s["longitude"] <= 180


@pytest.mark.parametrize("limit", [None, 7, 100])
def test_stations_walk_all_pages(base, db, limit):
    total = db_scalar(db, "SELECT count(*) FROM stations")
    stations, pages = walk_stations(base, "limit=%d" % limit if limit else "")
    ids = [s["station_id"] for s in stations]
    assert all(a < b for a, b in zip(ids, ids[1:])), "ids must be strictly increasing across pages"
    assert len(ids) == len(set(ids)) == total
    assert sorted(ids) == [r[0] for r in db_rows(db, "SELECT station_id FROM stations ORDER BY 1")]
    per_page = limit or 20
    assert pages == max(1, -(-total // per_page))


def test_stations_last_page_exactly_full(base, db):
    """A last page holding exactly `limit` stations has next_cursor null; one
    fewer leaves a next page."""
    ids = [r[0] for r in db_rows(db, "SELECT station_id FROM stations ORDER BY 1")]
    cursor = ids[-6]
    body = get_json(base + V1 + "/stations?limit=5&cursor=%d" % cursor)
    assert [s["station_id"] for s in body["stations"]] == ids[-5:]
    assert body["next_cursor"] is None
    body = get_json(base + V1 + "/stations?limit=4&cursor=%d" % cursor)
    assert [s["station_id"] for s in body["stations"]] == ids[-5:-1]
    assert body["next_cursor"] is not None
    body = get_json(base + V1 + "/stations?cursor=%d" % ids[-1])
    assert body == {"stations": [], "next_cursor": None}


def test_stations_filter_type(base, db):
    stations, _ = walk_stations(base, "type=portal&limit=100")
    assert stations, "the demo network has portals"
    assert all(s["station_type"] == "portal" for s in stations)
    assert len(stations) == db_scalar(db, "SELECT count(*) FROM stations WHERE station_type = 'portal'")


def test_stations_filter_locality_by_name_number_and_case(base, db):
    expected = db_scalar(db, "SELECT count(*) FROM stations WHERE locality_id = 8")
    assert expected > 0, "the demo network has stations in Kennedy"
    results = {}
    for value in ("Kennedy", "8", "kennedy", "KENNEDY"):
        stations, _ = walk_stations(base, "limit=100&locality=" + value)
        results[value] = [s["station_id"] for s in stations]
        assert all(s["locality"] == "Kennedy" for s in stations)
    assert len(results["Kennedy"]) == expected
    assert results["8"] == results["Kennedy"] == results["kennedy"] == results["KENNEDY"]


def test_stations_filter_locality_with_accent(base, db):
    expected = db_scalar(db, "SELECT count(*) FROM stations s JOIN localities l USING (locality_id)"
                             " WHERE l.name = 'Usaquén'")
    stations, _ = walk_stations(base, "limit=100&locality=" + urllib.parse.quote("Usaquén"))
    assert len(stations) == expected
    assert all(s["locality"] == "Usaquén" for s in stations)


def test_stations_filter_type_and_locality(base, db):
    row = db_rows(db, "SELECT locality_id, station_type, count(*) FROM stations"
                      " GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 1")[0]
    stations, _ = walk_stations(base, "limit=3&locality=%d&type=%s" % (row[0], row[1]))
    assert len(stations) == row[2]
    assert all(s["station_type"] == row[1] for s in stations)


def test_stations_empty_filters_are_ignored(base, db):
    body = get_json(base + V1 + "/stations?locality=&type=")
    assert len(body["stations"]) == 20


@pytest.mark.parametrize("value", ["Atlantis", "21", "0", "-8", "Kennedy ", "a" * 65])
def test_stations_unknown_locality(base, value):
    r = requests.get(base + V1 + "/stations", params={"locality": value})
    assert_problem(r, 422, "validation", field="locality")


@pytest.mark.parametrize("value", ["bus", "PORTAL", "portal,trunk"])
def test_stations_bad_type(base, value):
    r = requests.get(base + V1 + "/stations", params={"type": value})
    assert_problem(r, 422, "validation", field="type")


@pytest.mark.parametrize("value", ["0", "101", "abc", "1.5", "-1", "1e2", "99999999999999999999999"])
def test_stations_bad_limit(base, value):
    r = requests.get(base + V1 + "/stations", params={"limit": value})
    assert_problem(r, 422, "validation", field="limit")


@pytest.mark.parametrize("value", ["1", "100"])
def test_stations_limit_bounds(base, db, value):
    total = db_scalar(db, "SELECT count(*) FROM stations")
    body = get_json(base + V1 + "/stations?limit=" + value)
    assert len(body["stations"]) == min(int(value), total)


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "99999999999999999999999"])
def test_stations_bad_cursor(base, value):
    r = requests.get(base + V1 + "/stations", params={"cursor": value})
    assert_problem(r, 422, "validation", field="cursor")


# ---------------------------------------------------------------- one station

def test_station_with_routes(base, db):
    sid = db_scalar(db, "SELECT rs.station_id FROM route_stops rs JOIN routes r USING (route_id)"
                        " WHERE r.is_active GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    body = get_json(base + V1 + "/stations/%d" % sid)
    assert set(body) >= STATION_KEYS | {"routes"}
    assert body["station_id"] == sid
    assert body["name"] == db_scalar(db, "SELECT name FROM stations WHERE station_id = %s", sid)
    expected = [r[0] for r in db_rows(db, "SELECT r.route_id FROM route_stops rs JOIN routes r USING (route_id)"
                                          " WHERE rs.station_id = %s AND r.is_active ORDER BY r.route_code", sid)]
    assert expected
    assert [r["route_id"] for r in body["routes"]] == expected
    for r in body["routes"]:
        assert set(r) >= {"route_id", "route_code", "name", "route_type"}


def test_station_not_found(base):
    body = assert_problem(requests.get(base + V1 + "/stations/999999"), 404, "not-found")
    assert body["instance"] == V1 + "/stations/999999"


@pytest.mark.parametrize("sid", ["abc", "0", "-1", "1.5", "99999999999999999999999"])
def test_station_bad_id(base, sid):
    assert_problem(requests.get(base + V1 + "/stations/" + sid), 422, "validation", field="station_id")


# ------------------------------------------------------------------- arrivals

def test_arrivals_next_hour_sorted(base, db):
    sid = db_scalar(db, "SELECT station_id FROM arrivals WHERE estimated_arrival_time"
                        " BETWEEN now() + interval '1 minute' AND now() + interval '50 minutes'"
                        " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    assert sid, "the demo network has arrivals in the next hour"
    body = get_json(base + V1 + "/stations/%d/arrivals" % sid)
    assert body["station_id"] == sid
    arrivals = body["arrivals"]
    assert arrivals
    now = datetime.datetime.now(datetime.timezone.utc)
    times = []
    for a in arrivals:
        assert set(a) >= {"route_code", "vehicle_id", "estimated_arrival_time", "status"}, a
        assert a["status"] in ("on_time", "delayed", "arriving", "cancelled")
        t = parse_time(a["estimated_arrival_time"])
        # The arrivals cache lives 15 s: allow that much in the past.
        assert now - datetime.timedelta(seconds=20) <= t <= now + datetime.timedelta(minutes=60, seconds=5), t
        times.append(t)
    assert times == sorted(times)


def test_arrivals_unknown_station(base):
    assert_problem(requests.get(base + V1 + "/stations/999999/arrivals"), 404, "not-found")


def test_arrivals_bad_station_id(base):
    assert_problem(requests.get(base + V1 + "/stations/x/arrivals"), 422, "validation", field="station_id")


# --------------------------------------------------------------------- alerts

@pytest.fixture
def station_alerts(db):
    """A station with three alerts of its own: active, expired, not yet started."""
    sid = db_scalar(db, "SELECT max(station_id) FROM stations")
    ids = {}
    with db.cursor() as cur:
        for kind, start, end in (("active", "now() - interval '1 hour'", "now() + interval '1 day'"),
                                 ("open", "now() - interval '5 minutes'", "NULL"),
                                 ("expired", "now() - interval '2 days'", "now() - interval '1 day'"),
                                 ("future", "now() + interval '1 day'", "now() + interval '2 days'")):
            cur.execute("INSERT INTO alerts (severity, message, station_id, start_timestamp, end_timestamp)"
                        " VALUES ('WARNING', %s, %s, " + start + ", " + end + ") RETURNING alert_id",
                        ("e2e " + kind, sid))
            ids[kind] = cur.fetchone()[0]
    flush_cache()
    yield sid, ids
    with db.cursor() as cur:
        cur.execute("DELETE FROM alerts WHERE alert_id = ANY(%s)", (list(ids.values()),))
    flush_cache()


def test_alerts_active_only_default(base, station_alerts):
    sid, ids = station_alerts
    body = get_json(base + V1 + "/stations/%d/alerts" % sid)
    assert body["station_id"] == sid
    got = {a["alert_id"] for a in body["alerts"]}
    assert {ids["active"], ids["open"]} <= got
    assert ids["expired"] not in got and ids["future"] not in got
    explicit = get_json(base + V1 + "/stations/%d/alerts?active_only=true" % sid)
    assert {a["alert_id"] for a in explicit["alerts"]} == got
    for a in body["alerts"]:
        assert set(a) >= {"alert_id", "severity", "message", "start_timestamp", "end_timestamp"}
        assert a["severity"] in ("INFO", "WARNING", "CRITICAL")
        parse_time(a["start_timestamp"])
        if a["end_timestamp"] is not None:
            parse_time(a["end_timestamp"])
    opened = [a for a in body["alerts"] if a["alert_id"] == ids["open"]][0]
    assert opened["end_timestamp"] is None and opened["message"] == "e2e open"


def test_alerts_active_only_false_includes_expired(base, station_alerts):
    sid, ids = station_alerts
    body = get_json(base + V1 + "/stations/%d/alerts?active_only=false" % sid)
    got = {a["alert_id"] for a in body["alerts"]}
    assert set(ids.values()) <= got


def test_alert_inserted_shows_after_cache_flush(base, db):
    sid = db_scalar(db, "SELECT min(station_id) FROM stations")
    before = get_json(base + V1 + "/stations/%d/alerts" % sid)["alerts"]
    with db.cursor() as cur:
        cur.execute("INSERT INTO alerts (severity, message, station_id) VALUES ('CRITICAL', 'e2e new', %s)"
                    " RETURNING alert_id", (sid,))
        aid = cur.fetchone()[0]
    try:
        flush_cache()
        after = get_json(base + V1 + "/stations/%d/alerts" % sid)["alerts"]
        assert aid in {a["alert_id"] for a in after}
        assert len(after) == len(before) + 1
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM alerts WHERE alert_id = %s", (aid,))
        flush_cache()


def test_alerts_seeded_active_and_expired(base, db):
    """The demo network carries some active and some expired alerts."""
    assert db_scalar(db, "SELECT count(*) FROM alerts WHERE end_timestamp <= now()") > 0
    assert db_scalar(db, "SELECT count(*) FROM alerts WHERE start_timestamp <= now()"
                         " AND (end_timestamp IS NULL OR end_timestamp > now())") > 0


@pytest.mark.parametrize("value", ["maybe", "1", "TRUE", ""])
def test_alerts_bad_active_only(base, db, value):
    sid = db_scalar(db, "SELECT min(station_id) FROM stations")
    r = requests.get(base + V1 + "/stations/%d/alerts" % sid, params={"active_only": value})
    assert_problem(r, 422, "validation", field="active_only")


def test_alerts_unknown_station(base):
    assert_problem(requests.get(base + V1 + "/stations/999999/alerts"), 404, "not-found")


# --------------------------------------------------------------------- routes

def test_routes_list(base, db):
    body = get_json(base + V1 + "/routes")
    routes = body["routes"]
    assert len(routes) == db_scalar(db, "SELECT count(*) FROM routes")
    ids = [r["route_id"] for r in routes]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for r in routes:
        assert set(r) >= {"route_id", "route_code", "name", "route_type", "is_active"}, r
        assert r["route_type"] in ("trunk", "zonal", "feeder", "cable")


def test_route_with_ordered_stops(base, db):
    rows = db_rows(db, "SELECT route_id, count(*) FROM route_stops GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 3")
    assert rows, "the demo routes have stops"
    for rid, n in rows:
        body = get_json(base + V1 + "/routes/%d" % rid)
        assert body["route_id"] == rid
        stops = body["stops"]
        assert [s["stop_sequence"] for s in stops] == list(range(1, n + 1))
        assert body.get("stop_count", n) == n
        expected = [r[0] for r in db_rows(db, "SELECT station_id FROM route_stops WHERE route_id = %s"
                                              " ORDER BY stop_sequence", rid)]
        assert [s["station_id"] for s in stops] == expected
        for s in stops:
            assert set(s) >= {"stop_sequence", "station_id", "name"}


def test_every_route_has_contiguous_stop_sequence(db):
    bad = db_rows(db, "SELECT route_id FROM route_stops GROUP BY 1"
                      " HAVING min(stop_sequence) <> 1 OR max(stop_sequence) <> count(*)")
    assert not bad, "routes whose stops are not numbered 1..n: %r" % bad


def test_route_not_found(base):
    assert_problem(requests.get(base + V1 + "/routes/999999"), 404, "not-found")


def test_route_bad_id(base):
    assert_problem(requests.get(base + V1 + "/routes/abc"), 422, "validation", field="route_id")


# ---------------------------------------------------------- cache and HTTP

def test_x_cache_miss_then_hit(base, db):
    flush_cache()
    sid = db_scalar(db, "SELECT min(station_id) FROM stations")
    for path in ("/localities", "/stations?type=trunk&limit=3", "/stations/%d" % sid, "/routes"):
        first = requests.get(base + V1 + path)
        second = requests.get(base + V1 + path)
        assert first.status_code == second.status_code == 200
        assert first.headers["X-Cache"] == "MISS", path
        assert second.headers["X-Cache"] == "HIT", path
        assert first.json() == second.json()


def test_query_parameters_are_part_of_the_cache_key(base):
    flush_cache()
    a = requests.get(base + V1 + "/stations?limit=2")
    b = requests.get(base + V1 + "/stations?limit=3")
    assert a.headers["X-Cache"] == b.headers["X-Cache"] == "MISS"
    assert len(a.json()["stations"]) == 2 and len(b.json()["stations"]) == 3


def test_head(base):
    get = requests.get(base + V1 + "/localities")
    head = requests.head(base + V1 + "/localities")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Type"].startswith("application/json")
    if "Content-Length" in head.headers:
        assert int(head.headers["Content-Length"]) == len(get.content)
    assert requests.head(base + "/health").status_code == 200
    assert requests.head(base + V1 + "/stations/999999").status_code == 404


@pytest.mark.parametrize("path", ["/localities/", "/stations/", "/routes/"])
def test_trailing_slash(base, path):
    assert get_json(base + V1 + path) == get_json(base + V1 + path.rstrip("/"))


def test_trailing_slash_on_item(base, db):
    sid = db_scalar(db, "SELECT min(station_id) FROM stations")
    assert get_json(base + V1 + "/stations/%d/" % sid)["station_id"] == sid
