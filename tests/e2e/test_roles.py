"""The role matrix: every served route (`transitd routes`) against no token,
the demo rider, another rider, the operator and the admin. A route the
server serves that is missing from the table fails the suite."""
import hashlib
import hmac
import json
import os
import time
import uuid

import pytest
import requests

from conftest import DEMO_ACCOUNTS, OTHER_RIDER, assert_problem, bearer, login, run_cli

V1 = "/api/v1"
WHO = ("none", "rider", "other", "operator", "admin")
OK = "2xx"

# Expected answer per caller; OK is any 2xx.
PUBLIC = dict.fromkeys(WHO, OK)
ANY = dict(PUBLIC, none=401)                                               # any signed-in user
ADMIN = dict(none=401, rider=403, other=403, operator=403, admin=OK)
STAFF = dict(none=401, rider=403, other=403, operator=OK, admin=OK)
OWNER = dict(none=401, rider=OK, other=404, operator=OK, admin=OK)         # the rider owns the card
BOOKER = dict(none=401, rider=OK, other=404, operator=403, admin=OK)       # rail: the rider's card or booking


DEFAULT_IDS = {"card_id": "card", "user_id": "patch_user", "trip_id": "trip", "station_id": "station_id",
               "route_id": "route_id", "payment_id": "payment"}


class PerCaller(dict):
    """A path id that differs by caller (callers not named use the rider's)."""

    def of(self, who):
        return self.get(who, self["rider"])


class Row:
    def __init__(self, expect, body=None, fresh=False, raw=None, **ids):
        self.expect = expect
        self.body = body      # callable(ctx, who) -> JSON body, or None
        self.raw = raw        # callable(ctx, who) -> (bytes, headers): a body sent as is
        self.fresh = fresh    # use a throwaway login (the request revokes it)
        self.ids = dict(DEFAULT_IDS, **ids)  # path placeholder -> ctx key


def _register_body(ctx, who):
    return {"email": "matrix.%s@example.test" % uuid.uuid4().hex[:12], "password": "matrix-password",
            "first_name": "Matriz", "last_name": "Prueba"}


def _refresh_body(ctx, who):
    return {"refresh_token": login(ctx["base"], ctx["user_email"], ctx["user_password"])["refresh_token"]}


def _trip_start_body(ctx, who):
    # Each caller boards with its own card (one open trip per card); the
    # other rider tries the demo rider's card.
    card = ctx["start_cards"].get(who, ctx["start_cards"]["rider"])
    return {"card_id": card, "route_id": ctx["route_id"], "boarding_station_id": ctx["board_station"]}


def _rail_run_body(ctx, who):
    # A run of train 2 at a random time 20-60 days ahead: never the demo
    # schedule's (14 days), never twice the same.
    start = int(time.time()) + 20 * 86400 + uuid.uuid4().int % (40 * 86400)
    return {"train_id": 2, "origin_station_id": 210, "destination_station_id": 201,
            "departure_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
            "arrival_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 3480))}


def _rail_booking_body(ctx, who):
    # Any one standard seat, paid from the demo rider's card (the other rider
    # gets 404 for it).
    return {"run_id": ctx["rail_run"], "card_id": ctx["rail_card"], "seat_count": 1, "class": "standard"}


def _alert_body(ctx, who):
    # An alert on the matrix station that has already ended: it shows in no
    # active list of another test.
    past = lambda h: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - h * 3600))
    return {"message": "matrix alert (%s)" % who, "severity": "INFO", "station_id": ctx["station_id"],
            "start_timestamp": past(2), "end_timestamp": past(1)}


def _alert_end_body(ctx, who):
    return {"end_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1800))}


def _webhook_delivery(ctx, who):
    # The provider's approval of the matrix payment, signed: whoever sends it
    # (a bearer token changes nothing), it is answered 200; the first credits,
    # the others change nothing.
    body = json.dumps({"event_id": "evt_matrix_" + uuid.uuid4().hex, "type": "payment.approved",
                       "payment_id": ctx["webhook_payment"]["payment_id"],
                       "amount": ctx["webhook_payment"]["amount"], "provider_reference": "matrix"}).encode()
    t = str(int(time.time())).encode()
    mac = hmac.new(os.environ["PAYMENT_WEBHOOK_SECRET"].encode(), t + b"." + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "Payment-Signature": "t=%s,v1=%s" % (t.decode(), mac)}


def _trip_end_body(ctx, who):
    # The other rider tries the admin's open trip, which the admin ends afterwards.
    trip = ctx["open_trips"].get(who, ctx["open_trips"]["admin"])
    return {"trip_id": trip, "disembarking_station_id": ctx["alight_station"]}


ROUTES = {
    # health, metrics, docs
    "GET /health": Row(PUBLIC),
    "GET /api/v1/health": Row(PUBLIC),
    "GET /health/db": Row(PUBLIC),
    "GET /api/v1/health/db": Row(PUBLIC),
    "GET /health/cache": Row(PUBLIC),
    "GET /api/v1/health/cache": Row(PUBLIC),
    "GET /health/queue": Row(PUBLIC),
    "GET /api/v1/health/queue": Row(PUBLIC),
    "GET /livez": Row(PUBLIC),
    "GET /readyz": Row(PUBLIC),
    "GET /metrics": Row(PUBLIC),
    "GET /openapi.json": Row(PUBLIC),
    "GET /docs": Row(PUBLIC),
    "GET /docs/swagger-ui.css": Row(PUBLIC),
    "GET /docs/swagger-ui-bundle.js": Row(PUBLIC),
    "GET /docs/swagger-ui-standalone-preset.js": Row(PUBLIC),
    "GET /docs/favicon-32x32.png": Row(PUBLIC),
    "GET /": Row(PUBLIC),
    "GET /console/{*file}": Row(PUBLIC, **{"*file": "console_file"}),
    "GET /vendor/{*file}": Row(PUBLIC, **{"*file": "vendor_file"}),
    # network
    "GET /api/v1/localities": Row(PUBLIC),
    "GET /api/v1/stations": Row(PUBLIC),
    "GET /api/v1/stations/{station_id}": Row(PUBLIC),
    "GET /api/v1/stations/{station_id}/arrivals": Row(PUBLIC),
    "GET /api/v1/stations/{station_id}/alerts": Row(PUBLIC),
    "GET /api/v1/stations/{station_id}/live": Row(PUBLIC),
    "GET /api/v1/routes": Row(PUBLIC),
    "GET /api/v1/routes/{route_id}": Row(PUBLIC),
    "POST /api/v1/alerts": Row(ADMIN, body=_alert_body),
    "PATCH /api/v1/alerts/{alert_id}": Row(ADMIN, body=_alert_end_body, alert_id="alert"),
    # auth and users
    "POST /api/v1/auth/register": Row(PUBLIC, body=_register_body),
    "POST /api/v1/auth/login": Row(PUBLIC, body=lambda ctx, who: {"email": ctx["user_email"],
                                                                  "password": ctx["user_password"]}),
    "POST /api/v1/auth/refresh": Row(PUBLIC, body=_refresh_body),
    "POST /api/v1/auth/logout": Row(ANY, fresh=True),
    "GET /api/v1/users/me": Row(ANY),
    "GET /api/v1/users": Row(ADMIN),
    "GET /api/v1/users/count": Row(PUBLIC),
    "GET /api/v1/users/active/count": Row(PUBLIC),
    "GET /api/v1/analytics/users/active": Row(PUBLIC),
    "GET /api/v1/users/latest": Row(ADMIN),
    "PATCH /api/v1/users/{user_id}": Row(ADMIN, body=lambda ctx, who: {"role": "rider"}),
    # cards
    "POST /api/v1/cards": Row(ANY, body=lambda ctx, who: {}),
    # a point of sale: riders top up through payments
    "POST /api/v1/cards/recharge": Row(STAFF, body=lambda ctx, who: {"card_id": ctx["card"], "amount": 1000}),
    "GET /api/v1/cards/{card_id}": Row(OWNER),
    "GET /api/v1/cards/{card_id}/balance": Row(OWNER),
    "GET /api/v1/cards/{card_id}/history": Row(OWNER),
    "GET /api/v1/cards/{card_id}/transactions": Row(OWNER),
    "POST /api/v1/cards/{card_id}/block": Row(OWNER, card_id="block_card"),
    "POST /api/v1/cards/{card_id}/unblock": Row(STAFF, card_id="block_card"),
    # payments: the rider's own card's; the webhook answers a signature, not a token
    "POST /api/v1/payments/topups": Row(OWNER, body=lambda ctx, who: {"card_id": ctx["card"], "amount": 1000}),
    "GET /api/v1/payments": Row(STAFF),
    "GET /api/v1/payments/{payment_id}": Row(OWNER),
    "POST /api/v1/payments/webhook": Row(PUBLIC, raw=_webhook_delivery),
    "POST /api/v1/payments/{payment_id}/sandbox": Row(OWNER, body=lambda ctx, who: {"decision": "decline"}),
    "GET /checkout/{payment_id}": Row(PUBLIC),
    # trips and fares
    "POST /api/v1/trips/start": Row(OWNER, body=_trip_start_body),
    "POST /api/v1/trips/end": Row(OWNER, body=_trip_end_body),
    "GET /api/v1/trips/{trip_id}": Row(OWNER),
    "GET /api/v1/trips/card/{card_id}": Row(OWNER),
    "GET /api/v1/trips/user/{user_id}": Row(OWNER, user_id="rider_id"),
    "GET /api/v1/fares": Row(PUBLIC),
    # analytics (public) and the cache (admin)
    "GET /api/v1/analytics/trips/total": Row(PUBLIC),
    "GET /api/v1/analytics/trips/daily": Row(PUBLIC),
    "GET /api/v1/trips/total": Row(PUBLIC),
    "GET /api/v1/analytics/trips/localities": Row(PUBLIC),
    "GET /api/v1/trips/total/localities": Row(PUBLIC),
    "GET /api/v1/analytics/revenue": Row(PUBLIC),
    "GET /api/v1/finance/revenue": Row(PUBLIC),
    "GET /api/v1/analytics/revenue/localities": Row(PUBLIC),
    "GET /api/v1/finance/revenue/localities": Row(PUBLIC),
    "GET /api/v1/analytics/stations/{station_id}/top-destinations": Row(PUBLIC),
    "GET /api/v1/cache/stats": Row(ADMIN),
    "POST /api/v1/cache/clear": Row(ADMIN),
    # regional rail: reads public, bookings the rider's (or any, for the admin)
    "GET /api/v1/rail/trains": Row(PUBLIC),
    "GET /api/v1/rail/runs": Row(PUBLIC),
    "POST /api/v1/rail/runs": Row(ADMIN, body=_rail_run_body),
    "GET /api/v1/rail/runs/{run_id}/seats": Row(PUBLIC, run_id="rail_run"),
    "POST /api/v1/rail/bookings": Row(BOOKER, body=_rail_booking_body),
    "GET /api/v1/rail/bookings": Row(dict(BOOKER, other=OK)),              # the other rider's own (none)
    "GET /api/v1/rail/bookings/{booking_id}": Row(BOOKER, booking_id="rail_booking"),
    # a booking per caller that may cancel it (a cancelled booking is 409)
    "POST /api/v1/rail/bookings/{booking_id}/cancel": Row(BOOKER, booking_id="rail_cancel"),
    # asynchronous commands: the demo rider's operation
    "GET /api/v1/operations/{operation_id}": Row(OWNER, operation_id="operation"),
}

CREDENTIALS = dict(DEMO_ACCOUNTS, other=OTHER_RIDER)


def served_routes():
    return set(run_cli("routes").stdout.splitlines())


def test_every_served_route_is_in_the_matrix():
    served = served_routes()
    missing = sorted(served - set(ROUTES))
    stale = sorted(set(ROUTES) - served)
    assert not missing, "served routes missing from the role matrix: %s" % missing
    assert not stale, "role matrix rows for routes the server does not serve: %s" % stale


@pytest.fixture(scope="module")
def ctx(base, tokens):
    """What the matrix acts on: cards issued to the demo rider for the test (one
    to recharge and read, one to block, one per caller to board with, one per
    caller with a trip in progress to end), a user to PATCH, a station, a route,
    an (ended) alert to end again."""
    rider, operator = bearer(tokens["rider"]), bearer(tokens["operator"])

    def new_card(balance=0):
        r = requests.post(base + V1 + "/cards", json={}, headers=rider)
        assert r.status_code == 201, r.text
        card = r.json()["card_id"]
        if balance:
            r = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": balance},
                              headers=operator)
            assert r.status_code == 201, r.text
        return card

    email, password = "matrix.user.%s@example.test" % uuid.uuid4().hex[:10], "matrix-user-password"
    r = requests.post(base + V1 + "/auth/register", json={
        "email": email, "password": password, "first_name": "Matriz", "last_name": "Usuario"})
    assert r.status_code == 201, r.text
    c = {"base": base, "card": new_card(), "block_card": new_card(), "patch_user": r.json()["user_id"],
         "console_file": "pages/board.js", "vendor_file": "uplot/uPlot.esm.js",
         "user_email": email, "user_password": password,
         "rider_id": requests.get(base + V1 + "/users/me", headers=rider).json()["user_id"]}
    c["station_id"] = requests.get(base + V1 + "/stations", params={"limit": 1}).json()["stations"][0]["station_id"]
    r = requests.post(base + V1 + "/alerts", json=_alert_body(c, "setup"), headers=bearer(tokens["admin"]))
    assert r.status_code == 201, r.text
    c["alert"] = r.json()["alert_id"]
    routes = [x for x in requests.get(base + V1 + "/routes").json()["routes"] if x.get("is_active", True)]
    c["route_id"] = routes[0]["route_id"]
    stops = requests.get(base + V1 + "/routes/%d" % c["route_id"]).json()["stops"]
    c["board_station"], c["alight_station"] = stops[0]["station_id"], stops[-1]["station_id"]
    callers = ("rider", "operator", "admin")
    c["start_cards"] = {who: new_card(20000) for who in callers}
    c["open_trips"] = {}
    for who in callers:
        r = requests.post(base + V1 + "/trips/start", headers=operator, json={
            "card_id": new_card(20000), "route_id": c["route_id"], "boarding_station_id": c["board_station"]})
        assert r.status_code == 201, r.text
        c["open_trips"][who] = r.json()["trip_id"]
    c["trip"] = c["open_trips"]["rider"]
    # Rail: a card of the demo rider's with money, a run of tomorrow, one of
    # the rider's bookings to read and one per caller to cancel.
    c["rail_card"] = new_card(100000)
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 5 * 3600 + 86400))
    runs = requests.get(base + V1 + "/rail/runs", params={"origin": 201, "date": tomorrow}).json()["runs"]
    c["rail_run"] = runs[-1]["run_id"]

    def book():
        r = requests.post(base + V1 + "/rail/bookings", headers=rider, json=_rail_booking_body(c, "rider"))
        assert r.status_code == 201, r.text
        return r.json()["booking_id"]

    c["rail_booking"] = book()
    c["rail_cancel"] = PerCaller(rider=book(), admin=book())
    # An operation of the demo rider's: an asynchronous tap-in.
    r = requests.post(base + V1 + "/trips/start", headers={**rider, "Prefer": "respond-async"}, json={
        "card_id": new_card(20000), "route_id": c["route_id"], "boarding_station_id": c["board_station"]})
    assert r.status_code in (201, 202), r.text
    c["operation"] = int(r.headers["Location"].rsplit("/", 1)[1]) if r.status_code == 202 else 0
    # Payments: one of the rider's to read and sign for, one for the webhook.
    for key in ("payment", "webhook_payment"):
        r = requests.post(base + V1 + "/payments/topups", json={"card_id": c["card"], "amount": 2000}, headers=rider)
        assert r.status_code == 201, r.text
        c[key] = r.json()
    c["payment"] = c["payment"]["payment_id"]
    return c


def headers_for(who, tokens, base, fresh):
    if who == "none":
        return {}
    if fresh:
        return bearer(login(base, *CREDENTIALS[who])["access_token"])
    return bearer(tokens[who])


def check(r, expected):
    """None when r is what the cell expects, else a description."""
    s = r.status_code
    if expected == OK:
        return None if 200 <= s < 300 else "expected 2xx, got %d %s" % (s, r.text[:200])
    if s != expected:
        return "expected %d, got %d %s" % (expected, s, r.text[:200])
    slug = {401: "unauthorized", 403: "forbidden", 404: "not-found"}[expected]
    try:
        assert_problem(r, expected, slug)
    except AssertionError as e:
        return "bad %d problem: %s" % (expected, e)
    if expected == 401 and "bearer" not in r.headers.get("WWW-Authenticate", "").lower():
        return "401 without WWW-Authenticate: Bearer"
    return None


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_role_matrix(base, tokens, ctx, route):
    if route not in served_routes():
        pytest.fail("matrix row for a route the server does not serve: " + route)
    row = ROUTES[route]
    method, pattern = route.split(" ", 1)
    failures = []
    for who in WHO:
        url = base + pattern.format(**{k: ctx[v].of(who) if isinstance(ctx[v], PerCaller) else ctx[v]
                                       for k, v in row.ids.items()})
        kw = {"headers": headers_for(who, tokens, base, row.fresh), "timeout": 30}
        if row.body is not None:
            kw["json"] = row.body(ctx, who)
        if row.raw is not None:
            kw["data"], extra = row.raw(ctx, who)
            kw["headers"] = dict(kw["headers"], **extra)
        # an event stream never ends: its status and headers are the answer
        r = requests.request(method, url, stream=pattern.endswith("/live"), **kw)
        r.close()
        problem = check(r, row.expect[who])
        if problem:
            failures.append("%s as %s: %s" % (route, who, problem))
    assert not failures, "\n".join(failures)


CARD_BODY_ROUTES = ("/cards/recharge", "/payments/topups")  # the card is named in the body
CARD_ROUTES = [r for r, row in ROUTES.items() if "{card_id}" in r or r.endswith(CARD_BODY_ROUTES)]


@pytest.mark.parametrize("route", sorted(CARD_ROUTES))
def test_rider_sees_no_other_riders_card(base, rider, route):
    """Card 3 belongs to user 4: to the demo rider it does not exist, exactly
    like a card that does not exist (same status and problem type)."""
    method, pattern = route.split(" ", 1)

    def call(card_id):
        if pattern.endswith(CARD_BODY_ROUTES):
            return requests.request(method, base + pattern, headers=rider, json={"card_id": card_id, "amount": 1000})
        return requests.request(method, base + pattern.format(card_id=card_id), headers=rider)

    theirs = call(3)
    if route.endswith(("/unblock", "/cards/recharge")):
        assert_problem(theirs, 403, "forbidden")  # riders never unblock, nor recharge at a point of sale
        return
    body = assert_problem(theirs, 404, "not-found")
    nobody = assert_problem(call(987654321), 404, "not-found")
    assert (body["type"], body["title"]) == (nobody["type"], nobody["title"])


def test_card_3_still_untouched(base, operator):
    """The 404s above changed nothing: card 3 is active with its balance."""
    card = requests.get(base + V1 + "/cards/3", headers=operator).json()
    assert card["user_id"] == 4
    assert card["status"] == "active"


def test_rider_card_create_for_someone_else_403(base, rider):
    assert_problem(requests.post(base + V1 + "/cards", json={"user_id": 4}, headers=rider), 403, "forbidden")


def test_card_owners_by_role(base, tokens, ctx):
    """A rider's new card is the rider's; staff issue anonymous cards."""
    me = requests.get(base + V1 + "/users/me", headers=bearer(tokens["other"])).json()
    r = requests.post(base + V1 + "/cards", json={}, headers=bearer(tokens["other"]))
    assert r.status_code == 201 and r.json()["user_id"] == me["user_id"], r.text
    for who in ("operator", "admin"):
        r = requests.post(base + V1 + "/cards", json={}, headers=bearer(tokens[who]))
        assert r.status_code == 201 and r.json()["user_id"] is None, r.text
    r = requests.post(base + V1 + "/cards", json={"user_id": ctx["patch_user"]}, headers=bearer(tokens["operator"]))
    assert r.status_code == 201 and r.json()["user_id"] == ctx["patch_user"], r.text
