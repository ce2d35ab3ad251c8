"""Findings of the security audit (issue 14): each test failed before its fix."""
import base64
from concurrent.futures import ThreadPoolExecutor
import datetime
import hashlib
import json
import os
import re
import socket
import time
import uuid

import psycopg2
import pytest
import requests

from conftest import DATABASE_URL, ROOT, assert_problem, db_rows, db_scalar, flush_cache, free_port, parse_response, poll, raw_request, read_response, redis_cli, run_bin

V1 = "/api/v1"


# ------------------------------------------------------------ response headers

def test_nosniff_on_every_kind_of_response(base, server):
    for path in ("/health", V1 + "/localities", V1 + "/no-such-thing", "/openapi.json", "/"):
        r = requests.get(base + path)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (path, r.headers)
    # answers the front end gives before any route: broken framing
    status, headers, _, _ = raw_request(server.port, b"GET / HTTP/1.1\r\n\r\n")
    assert status == 400 and headers.get("x-content-type-options") == "nosniff"


def test_pages_carry_a_policy_that_allows_only_their_own_scripts(base):
    for path in ("/", "/docs"):
        r = requests.get(base + path)
        assert r.status_code == 200
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
        assert r.headers["Referrer-Policy"] == "no-referrer"
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()[1:]
        assert "'unsafe-inline'" not in script_src
        inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
        assert inline or path == "/", path  # the console loads its modules by src; /docs has inline code
        for code in inline:
            digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
            assert "'sha256-%s'" % digest in script_src, (path, csp)
        # a 304 revalidation keeps the policy
        again = requests.get(base + path, headers={"If-None-Match": r.headers["ETag"]})
        assert again.status_code == 304 and "frame-ancestors 'none'" in again.headers["Content-Security-Policy"]


def test_api_answers_are_not_pages(base):
    r = requests.get(base + V1 + "/localities")
    assert "Content-Security-Policy" not in r.headers


# ------------------------------------------------------------ contract edges

def test_out_of_range_real_is_a_validation_error(base, operator):
    for raw in (b'{"card_id": 1, "amount": 1e309}', b'{"card_id": 1, "amount": -1e309}'):
        r = requests.post(base + V1 + "/cards/recharge", data=raw,
                          headers={**operator, "Content-Type": "application/json"})
        assert_problem(r, 422, "validation", field="amount")


# ------------------------------------------------------------ JWT secrets

@pytest.mark.parametrize("secret", [
    "CHANGE-ME-at-least-32-random-bytes",               # deploy/k8s/secret.example.yaml's old value
    "change-me-local-only-0123456789abcdef0123456789",  # deploy/compose.yaml's old default
    "x" * 64,
    "0123456789abcdef" * 3,
])
def test_weak_or_placeholder_jwt_secret_refused_at_start(database, secret):
    out = run_bin("serve", env={"JWT_SECRET": secret, "PORT": str(free_port())})
    assert out.returncode == 2, out
    assert "JWT_SECRET" in out.stderr and "/dev/urandom" in out.stderr, out.stderr


def test_placeholder_secret_gone_from_the_deploy_files():
    for path in ("deploy/k8s/secret.example.yaml", "deploy/compose.yaml"):
        with open(os.path.join(ROOT, path)) as f:
            text = f.read().lower()
        assert "change-me-at-least" not in text and "change-me-local" not in text, path


def test_rail_runs_by_station_name(base):
    day = (datetime.datetime.utcnow() - datetime.timedelta(hours=5) + datetime.timedelta(days=1)).date().isoformat()

    def runs(**params):
        r = requests.get(base + V1 + "/rail/runs", params=dict(params, date=day))
        assert r.status_code == 200, r.text
        return r.json()["runs"]

    by_id = runs(origin=201, destination=210)
    assert by_id
    for origin, destination in (("Estación de la Sabana", "Facatativá"), ("estacion de la sabana", "FACATATIVA"),
                                ("ESTACIÓN DE LA SABANA", "facatativá")):
        assert runs(origin=origin, destination=destination) == by_id, (origin, destination)
    assert runs(origin="Facatativa") == runs(origin=210)
    for bad in ("Atlantis", "0", "99999999999", "Funza "):
        r = requests.get(base + V1 + "/rail/runs", params={"origin": bad})
        assert_problem(r, 422, "validation", field="origin")
    r = requests.get(base + V1 + "/rail/runs", params={"destination": "Usme"})  # a station, not a rail one
    assert_problem(r, 422, "validation", field="destination")


# ------------------------------------------------------------ cache keys

def test_equivalent_queries_share_one_cache_entry(base):
    flush_cache(("transitd:stations", "transitd:rail:runs"))
    for q in ("limit=20", "limit=020", "limit=20&cursor=", "", "limit=+20"):
        r = requests.get(base + V1 + "/stations?" + q)
        if q == "limit=+20":
            assert_problem(r, 422, "validation", field="limit")
            continue
        assert r.status_code == 200, (q, r.text)
    assert redis_cli("HLEN", "transitd:stations") == "1", redis_cli("HKEYS", "transitd:stations")
    for q in ("locality=Usaquén", "locality=usaquen", "locality=USAQUEN&limit=20"):
        assert requests.get(base + V1 + "/stations?" + q).status_code == 200
    assert redis_cli("HLEN", "transitd:stations") == "2", redis_cli("HKEYS", "transitd:stations")
    for q in ("origin=Funza", "origin=funza", "origin=206", "origin=0206"):
        assert requests.get(base + V1 + "/rail/runs?" + q).status_code == 200
    assert redis_cli("HLEN", "transitd:rail:runs") == "2", redis_cli("HKEYS", "transitd:rail:runs")


def test_names_fold_alike_in_c_and_sql(db):
    assert db_scalar(db, "SELECT fold_name(%s)", "ÁÉÍÓÚÑÜ àéíóúñü Çç Øø Ÿ ÿ Æ ß Kennedy ") == \
        "aeiounu aeiounu cc oo Ÿ y Æ ß kennedy "


def test_failed_fill_gives_its_lease_back(base):
    for path, key in ((V1 + "/stations/99999999", "transitd:lease:station:99999999"),
                      (V1 + "/routes/99999999", "transitd:lease:route:99999999")):
        r = requests.get(base + path)
        assert_problem(r, 404, "not-found")
        assert redis_cli("EXISTS", key) == "0", (key, redis_cli("HGETALL", key))


# ------------------------------------------------------------ account takeover before provisioning

@pytest.fixture
def fresh_db():
    """An empty database of its own on the test PostgreSQL, migrated: the
    state before anyone ran `seed` or set ADMIN_EMAIL."""
    name = "transitd_takeover_%d" % os.getpid()
    admin = psycopg2.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s" % name)
        cur.execute("CREATE DATABASE %s" % name)
    url = DATABASE_URL.rsplit("/", 1)[0] + "/" + name
    assert run_bin("migrate", env={"DATABASE_URL": url}).returncode == 0
    yield url
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    admin.close()


def takeover_server(spawn, url):
    prefix = "takeover-%s:" % uuid.uuid4().hex[:8]
    s = spawn(DATABASE_URL=url, CACHE_PREFIX=prefix)
    s.prefix = prefix
    return s


def register_as(base, email, password="stranger-password-1"):
    r = requests.post(base + V1 + "/auth/register", json={
        "email": email, "password": password, "first_name": "Mallory", "last_name": "X"})
    assert r.status_code == 201, r.text
    r = requests.post(base + V1 + "/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def test_seed_never_elevates_an_account_it_did_not_create(spawn, fresh_db):
    s = takeover_server(spawn, fresh_db)
    stolen = {e: register_as(s.url, e) for e in ("admin@transitd.local", "rider@transitd.local")}
    out = run_bin("seed", "--demo", env={"DATABASE_URL": fresh_db}, timeout=120)
    assert out.returncode == 0, out
    assert "admin@transitd.local" in out.stderr
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    try:
        roles = dict(db_rows(conn, "SELECT email, role FROM users WHERE email LIKE '%%@transitd.local'"))
        assert roles["admin@transitd.local"] == "rider"
        assert roles["operator@transitd.local"] == "operator"  # created by the seed: a demo account
        # The demo rider's cards (and their money) do not go to the stranger.
        owners = db_rows(conn, "SELECT c.card_id FROM cards c JOIN users u USING (user_id)"
                               " WHERE u.email = 'rider@transitd.local'")
        assert owners == []
    finally:
        conn.close()
    # The stranger's password still works and the demo one does not; refresh stays a rider.
    r = requests.post(s.url + V1 + "/auth/login", json={"email": "admin@transitd.local",
                                                         "password": "admin-change-me"})
    assert r.status_code == 401
    r = requests.post(s.url + V1 + "/auth/refresh", json={"refresh_token": stolen["admin@transitd.local"]["refresh_token"]})
    assert r.status_code == 200, r.text
    claims = json.loads(base64.urlsafe_b64decode(r.json()["access_token"].split(".")[1] + "=="))
    assert claims["role"] == "rider"


def test_admin_email_of_a_registered_account_is_refused(spawn, fresh_db):
    s = takeover_server(spawn, fresh_db)
    stolen = register_as(s.url, "boss@transitd.test")
    out = run_bin("migrate", env={"DATABASE_URL": fresh_db, "ADMIN_EMAIL": "boss@transitd.test",
                                  "ADMIN_PASSWORD": "a-strong-admin-password"})
    assert out.returncode != 0 and "ADMIN_EMAIL" in out.stderr, out
    r = requests.post(s.url + V1 + "/auth/refresh", json={"refresh_token": stolen["refresh_token"]})
    assert r.status_code == 200
    claims = json.loads(base64.urlsafe_b64decode(r.json()["access_token"].split(".")[1] + "=="))
    assert claims["role"] == "rider"
    r = requests.post(s.url + V1 + "/auth/login", json={"email": "boss@transitd.test",
                                                       "password": "a-strong-admin-password"})
    assert r.status_code == 401


def test_admin_password_change_ends_its_logins(spawn, fresh_db):
    env = {"DATABASE_URL": fresh_db, "ADMIN_EMAIL": "chief@transitd.test", "ADMIN_PASSWORD": "first-admin-password"}
    assert run_bin("migrate", env=env).returncode == 0
    s = takeover_server(spawn, fresh_db)
    r = requests.post(s.url + V1 + "/auth/login", json={"email": "chief@transitd.test",
                                                       "password": "first-admin-password"})
    assert r.status_code == 200
    old = r.json()
    me = lambda tok: requests.get(s.url + V1 + "/users/me", headers={"Authorization": "Bearer " + tok})  # noqa: E731
    # migrate again with the same password: nothing ends
    assert run_bin("migrate", env=env).returncode == 0
    assert me(old["access_token"]).status_code == 200
    # a new password: the old login is over, on access and refresh alike
    env["ADMIN_PASSWORD"] = "second-admin-password"
    out = run_bin("migrate", env={**env, "CACHE_PREFIX": s.prefix})
    assert out.returncode == 0, out
    assert poll(lambda: me(old["access_token"]).status_code == 401, 5), (out.stderr, redis_cli("ZRANGE", s.prefix + "revoked", "0", "-1", "WITHSCORES"))
    assert requests.post(s.url + V1 + "/auth/refresh", json={"refresh_token": old["refresh_token"]}).status_code == 401
    r = requests.post(s.url + V1 + "/auth/login", json={"email": "chief@transitd.test",
                                                       "password": "second-admin-password"})
    assert r.status_code == 200
    assert me(r.json()["access_token"]).status_code == 200


# ------------------------------------------------------------ client addresses and login limits

def fresh_window(need_s):
    left = 60 - time.time() % 60
    if left < need_s:
        time.sleep(left + 0.3)


def new_account(base):
    email = "sec-%s@transitd.test" % uuid.uuid4().hex[:12]
    password = "the-owners-password-%s" % uuid.uuid4().hex[:6]
    r = requests.post(base + V1 + "/auth/register", json={"email": email, "password": password,
                                                         "first_name": "Ana", "last_name": "B"})
    assert r.status_code == 201, r.text
    return email, password


def login_from(url, address, email, password, header="X-Forwarded-For"):
    value = address if header == "X-Forwarded-For" else 'for="%s"' % address
    return requests.post(url + V1 + "/auth/login", json={"email": email, "password": password},
                         headers={header: value}, timeout=30)


def test_forwarded_address_is_the_client_only_behind_a_trusted_proxy(base, spawn):
    email, _ = new_account(base)
    for trusted in (True, False):
        env = dict(LOGIN_RATE_PER_ADDRESS=3, LOGIN_RATE_PER_EMAIL=100,
                   CACHE_PREFIX="px-%s:" % uuid.uuid4().hex[:8])
        if trusted:
            env["TRUSTED_PROXIES"] = "10.0.0.0/8, 127.0.0.1/32, ::1"
        s = spawn(**env)
        fresh_window(15)
        for _ in range(3):
            assert login_from(s.url, "198.51.100.7", email, "wrong-password").status_code == 401
        assert_problem(login_from(s.url, "198.51.100.7", email, "wrong-password"), 429, "rate-limited")
        other = login_from(s.url, "203.0.113.9", email, "wrong-password")
        v6 = login_from(s.url, "[2001:db8::7]:4711", email, "wrong-password", header="Forwarded")
        if trusted:
            # each address has its own budget; a client cannot pick its own by
            # prepending addresses: the proxy's entry (the rightmost) counts
            assert other.status_code == 401, other.text
            assert v6.status_code == 401, v6.text
            spoof = login_from(s.url, "203.0.113.9, 198.51.100.7", email, "wrong-password")
            assert_problem(spoof, 429, "rate-limited")
        else:
            # without TRUSTED_PROXIES the headers are the client's word: ignored
            assert_problem(other, 429, "rate-limited")
            assert_problem(v6, 429, "rate-limited")


def test_a_stranger_cannot_lock_the_owner_out(base, spawn):
    s = spawn(TRUSTED_PROXIES="127.0.0.1", LOGIN_RATE_PER_EMAIL=10, LOGIN_RATE_PER_ADDRESS=1000,
              LOGIN_SLOWDOWN_AFTER=10, LOGIN_SLOWDOWN_MAX=3, CACHE_PREFIX="lock-%s:" % uuid.uuid4().hex[:8])
    email, password = new_account(base)
    fresh_window(25)
    statuses = [login_from(s.url, "198.51.100.66", email, "guess-%d" % i).status_code for i in range(14)]
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}, statuses
    # the owner, elsewhere, gets in after at most one short turn
    deadline = time.time() + 8
    while True:
        r = login_from(s.url, "203.0.113.20", email, password)
        if r.status_code == 200:
            break
        assert_problem(r, 429, "rate-limited")
        assert int(r.headers["Retry-After"]) <= 3, r.headers
        assert time.time() < deadline, "the owner was locked out"
        time.sleep(int(r.headers["Retry-After"]))
    # a distributed guesser, one try per address, is slowed down: turns, not a free run
    answers = [login_from(s.url, "192.0.2.%d" % i, email, "guess").status_code for i in range(1, 30)]
    assert answers.count(401) <= 13, answers


def test_trusted_proxy_is_not_capped_per_address(spawn, server):
    for trusted in (True, False):
        env = dict(MAX_CONNECTIONS_PER_CLIENT=2)
        if trusted:
            env["TRUSTED_PROXIES"] = "127.0.0.0/8"
        s = spawn(**env)
        time.sleep(0.5)  # the start-up probe's connection is gone
        socks = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(4)]
        try:
            statuses = []
            for sock in socks:
                sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
                statuses.append(parse_response(read_response(sock, 5))[0])
            if trusted:
                assert statuses == [200] * 4, statuses
            else:
                assert statuses[0] == 200 and statuses.count(429) >= 2, statuses
        finally:
            for sock in socks:
                sock.close()


def test_trusted_proxies_must_parse(database):
    for bad in ("10.0.0.0/33", "banana", "10.1.2.3/8", "::1/129"):
        out = run_bin("serve", env={"TRUSTED_PROXIES": bad, "PORT": str(free_port())})
        assert out.returncode == 2 and "TRUSTED_PROXIES" in out.stderr, (bad, out)


# ------------------------------------------------------------ registration

def test_registration_has_a_per_address_budget(spawn):
    s = spawn(REGISTER_RATE_PER_ADDRESS=3, CACHE_PREFIX="reg-%s:" % uuid.uuid4().hex[:8])
    fresh_window(15)
    for i in range(3):
        new_account(s.url)
    r = requests.post(s.url + V1 + "/auth/register", json={
        "email": "one-more-%s@transitd.test" % uuid.uuid4().hex[:8], "password": "long-enough-password",
        "first_name": "A", "last_name": "B"})
    assert_problem(r, 429, "rate-limited")
    assert "register-address" in r.headers["RateLimit-Policy"] and int(r.headers["Retry-After"]) >= 1


def test_registration_burst_does_not_take_the_workers(spawn):
    """Hashes run on a pool of their own: when it is full, registrations get
    503 + Retry-After, and other routes keep their workers."""
    s = spawn(WORKERS=2, PASSWORD_HASHERS=1, PASSWORD_QUEUE=2, REGISTER_RATE_PER_ADDRESS=100000)

    def register(i):
        return requests.post(s.url + V1 + "/auth/register", timeout=60, json={
            "email": "burst-%d-%s@transitd.test" % (i, uuid.uuid4().hex[:8]),
            "password": "long-enough-password", "first_name": "A", "last_name": "B"})

    with ThreadPoolExecutor(48) as pool:
        burst = [pool.submit(register, i) for i in range(96)]
        time.sleep(0.2)
        slowest = 0.0
        for _ in range(10):
            t0 = time.time()
            assert requests.get(s.url + "/health/db", timeout=10).status_code == 200
            slowest = max(slowest, time.time() - t0)
        statuses = [f.result().status_code for f in burst]
    assert slowest < 0.5, "a worker route waited %.2f s behind registrations" % slowest
    assert set(statuses) <= {201, 503}, statuses
    assert statuses.count(201) >= 1 and statuses.count(503) >= 1, statuses
    busy = next(f.result() for f in burst if f.result().status_code == 503)
    assert_problem(busy, 503, "unavailable")
    assert busy.headers["Retry-After"] == "1"


# ------------------------------------------------------------ credit and cards per person

ROUTE = 17  # an active trunk route of the demo network


def route_stops(base):
    r = requests.get(base + V1 + "/routes/%d" % ROUTE)
    assert r.status_code == 200, r.text
    return [s["station_id"] for s in r.json()["stops"] if s.get("is_active", True)]


def staff_card(base, operator, user_id):
    r = requests.post(base + V1 + "/cards", json={"user_id": user_id}, headers=operator)
    assert r.status_code == 201, r.text
    return r.json()["card_id"]


def board(base, headers, card_id, station):
    return requests.post(base + V1 + "/trips/start", headers=headers, timeout=30, json={
        "card_id": card_id, "route_id": ROUTE, "boarding_station_id": station})


def assert_balanced(db, cards):
    for card in cards:
        bal, total = db_rows(db, "SELECT c.balance, coalesce((SELECT sum(amount) FROM card_ledger l"
                                 " WHERE l.card_id = c.card_id), 0) FROM cards c WHERE card_id = %s", card)[0]
        assert bal == total, (card, bal, total)


def test_credit_trips_are_counted_per_person(base, operator, db):
    """Two trips on credit per person: a rider's third card rode free before."""
    _, _, uid = register_rider(base)
    first, last = route_stops(base)[0], route_stops(base)[-1]
    cards = [staff_card(base, operator, uid) for _ in range(3)]
    for card in cards[:2]:
        r = board(base, operator, card, first)
        assert r.status_code == 201 and r.json()["on_credit"] is True, r.text
        end = requests.post(base + V1 + "/trips/end", headers=operator,
                            json={"trip_id": r.json()["trip_id"], "disembarking_station_id": last})
        assert end.status_code == 200, end.text
    r = board(base, operator, cards[2], first)
    assert_problem(r, 402, "insufficient-balance")
    # a recharge of one card repays its credit; the person may ride on credit once more
    r = requests.post(base + V1 + "/cards/recharge", headers=operator, json={"card_id": cards[0], "amount": 3200})
    assert r.status_code == 201, r.text
    r = board(base, operator, cards[2], first)
    assert r.status_code == 201 and r.json()["on_credit"] is True, r.text
    assert_balanced(db, cards)


def test_concurrent_credit_on_two_cards_is_taken_once(base, operator, db):
    _, _, uid = register_rider(base)
    first, last = route_stops(base)[0], route_stops(base)[-1]
    cards = [staff_card(base, operator, uid) for _ in range(3)]
    r = board(base, operator, cards[0], first)
    assert r.status_code == 201 and r.json()["on_credit"] is True, r.text
    with ThreadPoolExecutor(2) as pool:
        rs = list(pool.map(lambda c: board(base, operator, c, first), cards[1:]))
    assert sorted(r.status_code for r in rs) == [201, 402], [r.text for r in rs]
    assert db_scalar(db, "SELECT sum(credit_trips_used) FROM cards WHERE user_id = %s", uid) == 2
    assert_balanced(db, cards)


def register_rider(base):
    email, password = new_account(base)
    r = requests.post(base + V1 + "/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    tok = r.json()["access_token"]
    me = requests.get(base + V1 + "/users/me", headers={"Authorization": "Bearer " + tok}).json()
    return {"Authorization": "Bearer " + tok}, email, me["user_id"]


def test_riders_hold_a_limited_number_of_cards(spawn, operator):
    s = spawn(MAX_CARDS_PER_RIDER=3)
    headers, _, uid = register_rider(s.url)
    with ThreadPoolExecutor(8) as pool:
        rs = list(pool.map(lambda _: requests.post(s.url + V1 + "/cards", json={}, headers=headers, timeout=30),
                           range(8)))
    assert sorted(r.status_code for r in rs) == [201] * 3 + [409] * 5, [r.text for r in rs]
    limited = next(r for r in rs if r.status_code == 409)
    assert_problem(limited, 409, "card-limit")
    # blocking one does not make room; staff may still issue a replacement
    card = next(r for r in rs if r.status_code == 201).json()["card_id"]
    assert requests.post(s.url + V1 + "/cards/%d/block" % card, headers=headers).status_code == 200
    assert_problem(requests.post(s.url + V1 + "/cards", json={}, headers=headers), 409, "card-limit")
    r = requests.post(s.url + V1 + "/cards", json={"user_id": uid}, headers=operator)
    assert r.status_code == 201, r.text


# ------------------------------------------------------------ found by the hostile stream

def test_ids_past_the_column_and_bytes_that_are_not_utf8_are_client_errors(base):
    """A path id past 2^31 on an integer key, and a query value that is not
    UTF-8, reached PostgreSQL and came back 500."""
    for path in ("/stations/9223372036854775807", "/routes/2147483648",
                 "/stations/9223372036854775807/arrivals", "/analytics/stations/4294967296/top-destinations"):
        r = requests.get(base + V1 + path)
        assert r.status_code in (404, 422), (path, r.status_code, r.text)
        assert_problem(r, r.status_code)
    r = requests.get(base + V1 + "/stations?locality=%C3%A9%ff")
    assert_problem(r, 422, "validation", field="locality")
    r = requests.get(base + V1 + "/stations?%ff=1")
    assert_problem(r, 422, "validation", field="query")


def test_a_malformed_version_is_400_and_another_version_505(server):
    status, _, _, _ = raw_request(server.port, b"GET /livez HTTP/1.1x\r\nHost: a\r\n\r\n")
    assert status == 400
    status, _, _, _ = raw_request(server.port, b"GET /livez HTTP/2.0\r\nHost: a\r\n\r\n")
    assert status == 505


def test_an_admin_from_before_the_mark_is_adopted_not_refused(fresh_db):
    """Upgrading: the admin an earlier `migrate` created has no provisioned_by;
    the next `migrate` with the same ADMIN_EMAIL must still succeed."""
    env = {"DATABASE_URL": fresh_db, "ADMIN_EMAIL": "old-admin@transitd.test",
           "ADMIN_PASSWORD": "an-old-admin-password"}
    assert run_bin("migrate", env=env).returncode == 0
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE users SET provisioned_by = NULL WHERE email = 'old-admin@transitd.test'")
        out = run_bin("migrate", env=env)
        assert out.returncode == 0, out
        assert db_scalar(conn, "SELECT provisioned_by FROM users WHERE email = 'old-admin@transitd.test'") == "admin-env"
    finally:
        conn.close()
