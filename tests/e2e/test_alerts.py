"""Alert writes (admin): POST /api/v1/alerts publishes an alert, PATCH
/api/v1/alerts/{alert_id} ends it. Both invalidate the cached alert lists of
the stations the alert affects (its station, every station of its route), so
GET /api/v1/stations/{id}/alerts shows the change at once, not after a TTL."""
import datetime
import uuid

import psycopg2
import pytest
import requests

from conftest import RFC3339_UTC, assert_problem, db_rows, db_scalar, flush_cache, get_json

V1 = "/api/v1"
ALERT_KEYS = {"alert_id", "severity", "alert_type", "message", "station_id", "route_id", "start_timestamp",
              "end_timestamp"}


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    assert RFC3339_UTC.match(s), s
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def marker():
    return "e2e-alert-" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def created(database):
    """Ids of the alerts the module creates; deleted (and the caches flushed)
    at the end so other modules see the seeded alerts only."""
    ids = []
    yield ids
    conn = psycopg2.connect(database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DELETE FROM alerts WHERE alert_id = ANY(%s) OR message LIKE 'e2e-alert-%%'", (ids,))
    conn.close()
    flush_cache()


@pytest.fixture(scope="module")
def place(base):
    """An active route with at least three stops, three of its stations (first,
    middle, last) and a station the route does not serve."""
    routes = get_json(base + V1 + "/routes")["routes"]
    route = next(r for r in routes if r["is_active"] and r["stop_count"] >= 3)
    stops = [s["station_id"] for s in get_json(base + V1 + "/routes/%d" % route["route_id"])["stops"]]
    on_route = [stops[0], stops[len(stops) // 2], stops[-1]]
    stations = get_json(base + V1 + "/stations?limit=100")["stations"]
    off_route = next(s["station_id"] for s in stations if s["station_id"] not in stops)
    return {"route_id": route["route_id"], "stations": on_route, "off_route": off_route}


def alerts_of(base, station_id, active_only=None):
    """(alert list by id, X-Cache) of a station."""
    params = {} if active_only is None else {"active_only": "true" if active_only else "false"}
    r = requests.get(base + V1 + "/stations/%d/alerts" % station_id, params=params, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["station_id"] == station_id
    return {a["alert_id"]: a for a in body["alerts"]}, r.headers.get("X-Cache")


def warm(base, station_id, active_only=None):
    """Reads a station's alert list until the read is served from a cache, so
    that a later read can only show a change if the write invalidated it."""
    alerts_of(base, station_id, active_only)
    got, x_cache = alerts_of(base, station_id, active_only)
    assert x_cache == "HIT", x_cache
    return got


def create(base, admin, created, body, expect=201):
    r = requests.post(base + V1 + "/alerts", json=body, headers=admin, timeout=10)
    assert r.status_code == expect, r.text
    if expect == 201:
        assert r.headers["Content-Type"].startswith("application/json"), r.headers
        created.append(r.json()["alert_id"])
    return r


def end(base, admin, alert_id, end_timestamp, expect=200):
    r = requests.patch(base + V1 + "/alerts/%d" % alert_id, json={"end_timestamp": end_timestamp},
                       headers=admin, timeout=10)
    assert r.status_code == expect, r.text
    return r


def check_shape(a):
    assert set(a) == ALERT_KEYS, a
    assert isinstance(a["alert_id"], int) and a["alert_id"] >= 1
    assert a["severity"] in ("INFO", "WARNING", "CRITICAL")
    parse_time(a["start_timestamp"])
    if a["end_timestamp"] is not None:
        parse_time(a["end_timestamp"])


# ------------------------------------------------------------------ create

def test_create_on_route_shows_at_once_at_every_station_of_the_route(base, admin, created, place):
    for sid in place["stations"] + [place["off_route"]]:
        warm(base, sid)
        warm(base, sid, active_only=False)
    msg = marker()
    t0 = now()
    r = create(base, admin, created, {"message": msg, "severity": "WARNING", "route_id": place["route_id"]})
    a = r.json()
    check_shape(a)
    assert a["severity"] == "WARNING"
    assert a["alert_type"] == "service"
    assert a["message"] == msg
    assert a["station_id"] is None and a["route_id"] == place["route_id"]
    assert a["end_timestamp"] is None
    start = parse_time(a["start_timestamp"])
    assert t0 - datetime.timedelta(seconds=5) <= start <= now() + datetime.timedelta(seconds=5)
    # No TTL wait: both variants of every station of the route show it now.
    for sid in place["stations"]:
        for active_only in (None, False):
            got, _ = alerts_of(base, sid, active_only)
            assert a["alert_id"] in got, (sid, active_only, sorted(got))
            assert got[a["alert_id"]] == a
    got, _ = alerts_of(base, place["off_route"])
    assert a["alert_id"] not in got


def test_create_on_station_with_times_and_type(base, admin, created, place, db):
    sid = place["off_route"]
    warm(base, sid)
    msg = marker()
    start = now() - datetime.timedelta(hours=1)
    stop = now() + datetime.timedelta(days=1)
    # Given with a −05:00 zone; answered in UTC.
    local = datetime.timezone(datetime.timedelta(hours=-5))
    body = {"message": msg, "severity": "CRITICAL", "alert_type": "closure", "station_id": sid,
            "start_timestamp": start.astimezone(local).strftime("%Y-%m-%dT%H:%M:%S-05:00"),
            "end_timestamp": stop.astimezone(local).strftime("%Y-%m-%dT%H:%M:%S-05:00")}
    a = create(base, admin, created, body).json()
    check_shape(a)
    assert (a["severity"], a["alert_type"], a["message"], a["station_id"], a["route_id"]) == \
        ("CRITICAL", "closure", msg, sid, None)
    assert a["start_timestamp"] == iso(start) and a["end_timestamp"] == iso(stop)
    got, _ = alerts_of(base, sid)
    assert got.get(a["alert_id"]) == a
    row = db_rows(db, "SELECT severity, alert_type, message, station_id, route_id FROM alerts"
                      " WHERE alert_id = %s", a["alert_id"])
    assert row == [("CRITICAL", "closure", msg, sid, None)]


def test_create_on_station_and_route(base, admin, created, place):
    warm(base, place["stations"][1])
    warm(base, place["off_route"])
    a = create(base, admin, created, {"message": marker(), "severity": "INFO", "station_id": place["off_route"],
                                      "route_id": place["route_id"]}).json()
    assert (a["station_id"], a["route_id"]) == (place["off_route"], place["route_id"])
    assert a["alert_id"] in alerts_of(base, place["off_route"])[0]
    assert a["alert_id"] in alerts_of(base, place["stations"][1])[0]


def test_create_without_place(base, admin, created):
    a = create(base, admin, created, {"message": marker(), "severity": "INFO"}).json()
    check_shape(a)
    assert a["station_id"] is None and a["route_id"] is None


def test_future_alert_is_not_active(base, admin, created, place):
    sid = place["off_route"]
    warm(base, sid)
    warm(base, sid, active_only=False)
    start = now() + datetime.timedelta(days=1)
    a = create(base, admin, created, {"message": marker(), "severity": "INFO", "station_id": sid,
                                      "start_timestamp": iso(start)}).json()
    assert a["start_timestamp"] == iso(start)
    assert a["alert_id"] not in alerts_of(base, sid)[0]
    assert a["alert_id"] in alerts_of(base, sid, active_only=False)[0]


def test_end_equal_to_start_is_accepted(base, admin, created):
    t = iso(now() - datetime.timedelta(hours=3))
    a = create(base, admin, created, {"message": marker(), "severity": "INFO", "start_timestamp": t,
                                      "end_timestamp": t}).json()
    assert a["start_timestamp"] == a["end_timestamp"] == t


@pytest.mark.parametrize("message", ["x", "m" * 2000, "é" * 2000, "🚇" * 2000],
                         ids=["1-char", "2000-ascii", "2000-two-byte", "2000-four-byte"])
def test_message_length_bounds_are_characters(base, admin, created, db, message):
    """1 to 2000 characters, whatever their UTF-8 size."""
    a = create(base, admin, created, {"message": message, "severity": "INFO"}).json()
    assert a["message"] == message
    assert db_scalar(db, "SELECT message FROM alerts WHERE alert_id = %s", a["alert_id"]) == message


@pytest.mark.parametrize("message", [
    "'); DROP TABLE alerts; --",
    "x' OR '1'='1",
    "Robert'); DELETE FROM alerts WHERE ('1'='1",
    "$1::text; SELECT pg_sleep(5); -- \\ \" % _ \n\t ñ",
], ids=["drop", "or-true", "delete", "placeholders"])
def test_sql_in_message_is_stored_verbatim(base, admin, created, db, place, message):
    sid = place["off_route"]
    before = db_scalar(db, "SELECT count(*) FROM alerts")
    a = create(base, admin, created, {"message": message, "severity": "WARNING", "station_id": sid}).json()
    assert a["message"] == message
    assert db_scalar(db, "SELECT message FROM alerts WHERE alert_id = %s", a["alert_id"]) == message
    assert db_scalar(db, "SELECT count(*) FROM alerts") == before + 1
    assert alerts_of(base, sid)[0][a["alert_id"]]["message"] == message


# -------------------------------------------------------------- validation

def _t(hours):
    return iso(now() + datetime.timedelta(hours=hours))


CREATE_INVALID = [
    ("message-missing", {"severity": "INFO"}, "message"),
    ("message-null", {"message": None, "severity": "INFO"}, "message"),
    ("message-empty", {"message": "", "severity": "INFO"}, "message"),
    ("message-2001", {"message": "m" * 2001, "severity": "INFO"}, "message"),
    ("message-number", {"message": 42, "severity": "INFO"}, "message"),
    ("severity-missing", {"message": "M"}, "severity"),
    ("severity-lowercase", {"message": "M", "severity": "info"}, "severity"),
    ("severity-unknown", {"message": "M", "severity": "URGENT"}, "severity"),
    ("severity-empty", {"message": "M", "severity": ""}, "severity"),
    ("severity-number", {"message": "M", "severity": 1}, "severity"),
    ("alert-type-41", {"message": "M", "severity": "INFO", "alert_type": "t" * 41}, "alert_type"),
    ("alert-type-number", {"message": "M", "severity": "INFO", "alert_type": 5}, "alert_type"),
    ("station-unknown", {"message": "M", "severity": "INFO", "station_id": 999999}, "station_id"),
    ("station-zero", {"message": "M", "severity": "INFO", "station_id": 0}, "station_id"),
    ("station-string", {"message": "M", "severity": "INFO", "station_id": "101"}, "station_id"),
    ("station-fraction", {"message": "M", "severity": "INFO", "station_id": 1.5}, "station_id"),
    ("station-huge", {"message": "M", "severity": "INFO", "station_id": 2 ** 40}, "station_id"),
    ("route-unknown", {"message": "M", "severity": "INFO", "route_id": 999999}, "route_id"),
    ("route-negative", {"message": "M", "severity": "INFO", "route_id": -1}, "route_id"),
    ("start-word", {"message": "M", "severity": "INFO", "start_timestamp": "tomorrow"}, "start_timestamp"),
    ("start-no-zone", {"message": "M", "severity": "INFO", "start_timestamp": "2026-01-01T10:00:00"},
     "start_timestamp"),
    ("start-space", {"message": "M", "severity": "INFO", "start_timestamp": "2026-01-01 10:00:00Z"},
     "start_timestamp"),
    ("start-number", {"message": "M", "severity": "INFO", "start_timestamp": 1767261600}, "start_timestamp"),
    ("start-month-13", {"message": "M", "severity": "INFO", "start_timestamp": "2026-13-01T10:00:00Z"},
     "start_timestamp"),
    ("start-feb-30", {"message": "M", "severity": "INFO", "start_timestamp": "2026-02-30T10:00:00Z"},
     "start_timestamp"),
    ("end-word", {"message": "M", "severity": "INFO", "end_timestamp": "infinity"}, "end_timestamp"),
    ("end-hour-25", {"message": "M", "severity": "INFO", "end_timestamp": "2026-01-01T25:00:00Z"},
     "end_timestamp"),
    ("end-before-start", {"message": "M", "severity": "INFO", "start_timestamp": _t(-1),
                          "end_timestamp": _t(-2)}, "end_timestamp"),
    ("end-before-default-start", {"message": "M", "severity": "INFO", "end_timestamp": _t(-1)},
     "end_timestamp"),
]


@pytest.mark.parametrize("body,field", [(b, f) for _, b, f in CREATE_INVALID], ids=[i for i, _, _ in CREATE_INVALID])
def test_create_invalid(base, admin, db, body, field):
    body = dict(body)
    if isinstance(body.get("message"), str) and body["message"] == "M":
        body["message"] = marker()
    before = db_scalar(db, "SELECT count(*) FROM alerts")
    r = requests.post(base + V1 + "/alerts", json=body, headers=admin, timeout=10)
    assert_problem(r, 422, "validation", field=field)
    assert db_scalar(db, "SELECT count(*) FROM alerts") == before


def test_create_body_not_an_object(base, admin):
    r = requests.post(base + V1 + "/alerts", data="[1, 2]", headers=dict(admin, **{"Content-Type": "application/json"}))
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code)


# ------------------------------------------------------------------ end

def test_end_hides_it_from_active_list_at_once(base, admin, created, place):
    """A route alert, ended by PATCH with a past end after its start: gone from
    every route station's active list, kept in the full list, without a TTL wait."""
    start = now() - datetime.timedelta(hours=2)
    a = create(base, admin, created, {"message": marker(), "severity": "CRITICAL", "route_id": place["route_id"],
                                      "start_timestamp": iso(start)}).json()
    for sid in place["stations"]:
        assert a["alert_id"] in warm(base, sid)
        assert a["alert_id"] in warm(base, sid, active_only=False)
    stop = now() - datetime.timedelta(minutes=10)
    r = end(base, admin, a["alert_id"], iso(stop))
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    ended = r.json()
    check_shape(ended)
    assert ended == dict(a, end_timestamp=iso(stop))
    for sid in place["stations"]:
        assert a["alert_id"] not in alerts_of(base, sid)[0], sid
        assert a["alert_id"] not in alerts_of(base, sid, active_only=True)[0], sid
        full, _ = alerts_of(base, sid, active_only=False)
        assert full.get(a["alert_id"]) == ended, sid


def test_end_station_alert(base, admin, created, place, db):
    sid = place["off_route"]
    a = create(base, admin, created, {"message": marker(), "severity": "WARNING", "station_id": sid,
                                      "start_timestamp": _t(-1)}).json()
    assert a["alert_id"] in warm(base, sid)
    stop = now() - datetime.timedelta(minutes=1)
    # Given with a zone offset; answered in UTC.
    local = datetime.timezone(datetime.timedelta(hours=-5))
    ended = end(base, admin, a["alert_id"], stop.astimezone(local).strftime("%Y-%m-%dT%H:%M:%S-05:00")).json()
    assert ended["end_timestamp"] == iso(stop)
    assert a["alert_id"] not in alerts_of(base, sid)[0]
    assert db_scalar(db, "SELECT end_timestamp <= now() FROM alerts WHERE alert_id = %s", a["alert_id"])


def test_end_in_the_future_keeps_it_active(base, admin, created, place):
    sid = place["off_route"]
    a = create(base, admin, created, {"message": marker(), "severity": "INFO", "station_id": sid}).json()
    warm(base, sid)
    stop = iso(now() + datetime.timedelta(hours=1))
    got = alerts_of(base, sid)[0]
    assert a["alert_id"] in got
    ended = end(base, admin, a["alert_id"], stop).json()
    assert ended["end_timestamp"] == stop
    got = alerts_of(base, sid)[0]
    assert got[a["alert_id"]]["end_timestamp"] == stop


def test_end_unknown_alert(base, admin):
    r = requests.patch(base + V1 + "/alerts/987654321", json={"end_timestamp": iso(now())}, headers=admin)
    assert_problem(r, 404, "not-found")


@pytest.mark.parametrize("alert_id", ["x", "0", "-1", "1.5", "99999999999999999999"])
def test_end_bad_alert_id(base, admin, alert_id):
    r = requests.patch(base + V1 + "/alerts/" + alert_id, json={"end_timestamp": iso(now())}, headers=admin)
    assert_problem(r, 422, "validation", field="alert_id")


END_INVALID = [
    ("missing", {}),
    ("null", {"end_timestamp": None}),
    ("word", {"end_timestamp": "now"}),
    ("no-zone", {"end_timestamp": "2026-01-01T10:00:00"}),
    ("number", {"end_timestamp": 1767261600}),
    ("month-13", {"end_timestamp": "2026-13-01T10:00:00Z"}),
    ("before-start", {"end_timestamp": "2000-01-01T00:00:00Z"}),
]


@pytest.mark.parametrize("body", [b for _, b in END_INVALID], ids=[i for i, _ in END_INVALID])
def test_end_invalid(base, admin, created, db, body):
    a = create(base, admin, created, {"message": marker(), "severity": "INFO",
                                      "start_timestamp": _t(-1)}).json()
    r = requests.patch(base + V1 + "/alerts/%d" % a["alert_id"], json=body, headers=admin, timeout=10)
    assert_problem(r, 422, "validation", field="end_timestamp")
    assert db_scalar(db, "SELECT end_timestamp FROM alerts WHERE alert_id = %s", a["alert_id"]) is None


# ------------------------------------------------------------------ roles

def test_roles(base, admin, operator, rider, created, db):
    a = create(base, admin, created, {"message": marker(), "severity": "INFO"}).json()
    count = db_scalar(db, "SELECT count(*) FROM alerts")
    post = {"message": marker(), "severity": "INFO"}
    patch = {"end_timestamp": iso(now())}
    for who, headers, status, slug in (("rider", rider, 403, "forbidden"), ("operator", operator, 403, "forbidden"),
                                       ("none", {}, 401, "unauthorized")):
        r = requests.post(base + V1 + "/alerts", json=post, headers=headers)
        assert_problem(r, status, slug)
        r = requests.patch(base + V1 + "/alerts/%d" % a["alert_id"], json=patch, headers=headers)
        assert_problem(r, status, slug)
        if status == 401:
            assert "bearer" in r.headers.get("WWW-Authenticate", "").lower(), (who, r.headers)
    assert db_scalar(db, "SELECT count(*) FROM alerts") == count
    assert db_scalar(db, "SELECT end_timestamp FROM alerts WHERE alert_id = %s", a["alert_id"]) is None
