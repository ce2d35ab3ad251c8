"""Travel cards end to end: issue, read (card, balance, history, ledger),
recharge with every kind of bad input, block/unblock, Idempotency-Key.

Every test issues its own cards, so tests do not depend on each other or on
the demo data. Where money is involved the database is checked directly:
cards.balance == sum(card_ledger.amount), each recharges row matches its
ledger 'recharge' row, and a refused request changes nothing.

Requests go as the local admin, which may use every card route; what
riders and operators may do is tested in test_roles.py."""
import json
import os
import re
import socket
import subprocess
import time
import uuid

import pytest
import requests

from conftest import admin_headers, assert_problem

V1 = "/api/v1"
TIMEOUT = 15
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
CARD_KEYS = {"card_id", "card_number", "user_id", "status", "balance", "credit_trips_used", "last_used_date",
             "created_at"}
BALANCE_KEYS = {"card_id", "balance", "status", "last_used_date", "credit_trips_used"}
RECHARGE_KEYS = {"recharge_id", "card_id", "amount", "new_balance", "recharge_timestamp"}
UNKNOWN_CARD = 9_000_000_000_000  # far beyond anything a test creates
AUTH = {}  # the admin's Authorization header, filled by the module fixture below



@pytest.fixture(scope="module", autouse=True)
def _as_admin_with_cache(base):
    """Every request of this file goes as the admin. The X-Cache assertions
    also need every worker of the suite's server back on Redis: concurrent
    reads until two rounds in a row show no BYPASS (at most 30 s)."""
    from concurrent.futures import ThreadPoolExecutor
    AUTH.clear()
    AUTH.update(admin_headers(base))
    r = requests.post(base + V1 + "/cards", json={}, headers=AUTH, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    url = base + V1 + f"/cards/{r.json()['card_id']}/balance"

    def read(_):
        try:
            rr = requests.get(url, headers=AUTH, timeout=TIMEOUT)
            return rr.status_code == 200 and rr.headers.get("X-Cache") in ("HIT", "MISS")
        except requests.RequestException:
            return False

    clean, deadline = 0, time.time() + 30
    with ThreadPoolExecutor(max_workers=32) as pool:
        while clean < 2 and time.time() < deadline:
            clean = clean + 1 if all(pool.map(read, range(64))) else 0
            time.sleep(0.1 if clean else 0.3)
    assert clean == 2, "the suite's server did not get back to using Redis within 30 s"


# ---------------------------------------------------------------------------
# Helpers

def luhn_ok(number):
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def post(base, path, body=None, raw=None, headers=None, **kw):
    """POSTs JSON (body) or raw bytes (raw, Content-Type application/json unless
    headers say otherwise)."""
    h = {**AUTH, **(headers or {})}
    if raw is not None:
        h.setdefault("Content-Type", "application/json")
        return requests.post(base + V1 + path, data=raw, headers=h, timeout=TIMEOUT, **kw)
    return requests.post(base + V1 + path, json=body, headers=h, timeout=TIMEOUT, **kw)


def get(base, path, headers=None, **kw):
    return requests.get(base + V1 + path, headers={**AUTH, **(headers or {})}, timeout=TIMEOUT, **kw)


def get_ok(base, path, **kw):
    r = get(base, path, **kw)
    assert r.status_code == 200, (path, r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    return r


def new_card(base, user_id=None):
    r = post(base, "/cards", {} if user_id is None else {"user_id": user_id})
    assert r.status_code == 201, r.text
    return r.json()


def recharge(base, card_id, amount, **extra):
    r = post(base, "/cards/recharge", {"card_id": card_id, "amount": amount, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def q1(db, sql, *args):
    with db.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def rows(db, sql, *args):
    with db.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def money(db, card_id):
    """(balance, status, ledger rows, ledger sum, recharge rows) of one card."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT c.balance, c.status,"
            " (SELECT count(*) FROM card_ledger l WHERE l.card_id = c.card_id),"
            " (SELECT coalesce(sum(amount), 0) FROM card_ledger l WHERE l.card_id = c.card_id),"
            " (SELECT count(*) FROM recharges r WHERE r.card_id = c.card_id)"
            " FROM cards c WHERE c.card_id = %s", (card_id,))
        return cur.fetchone()


def totals(db):
    """Row counts of the money tables, for 'nothing changed anywhere'."""
    return rows(db, "SELECT (SELECT count(*) FROM cards), (SELECT count(*) FROM card_ledger),"
                    " (SELECT count(*) FROM recharges), (SELECT coalesce(sum(balance), 0) FROM cards)")[0]


def assert_invariant(db, card_id):
    balance, _, _, ledger_sum, _ = money(db, card_id)
    assert balance == ledger_sum, f"card {card_id}: balance {balance} != ledger sum {ledger_sum}"
    # Every recharge row points at a ledger 'recharge' row of the same card and amount, and back.
    bad = rows(db, """
        SELECT r.recharge_id, l.entry_id FROM recharges r
          FULL JOIN (SELECT * FROM card_ledger WHERE card_id = %s AND kind = 'recharge') l
            ON l.entry_id = r.ledger_entry_id
         WHERE (r.card_id = %s OR l.card_id = %s)
           AND (r.recharge_id IS NULL OR l.entry_id IS NULL OR r.amount <> l.amount
                OR r.card_id <> l.card_id)""", card_id, card_id, card_id)
    assert bad == [], f"card {card_id}: recharges and ledger disagree: {bad}"
    # balance_after is the running sum in entry order.
    running = 0
    for amount, after in rows(db, "SELECT amount, balance_after FROM card_ledger WHERE card_id = %s"
                                  " ORDER BY entry_id", card_id):
        running += amount
        assert after == running, f"card {card_id}: balance_after {after}, running sum {running}"


def redis_get(key):
    out = subprocess.run(["redis-cli", "-p", os.environ["TEST_REDIS_PORT"], "--raw", "GET", key],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def raw_http(port, data, timeout=10):
    """Sends raw bytes; returns (status, headers, body) of the first response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(timeout)
        buf = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                m = re.search(rb"\r\ncontent-length:\s*(\d+)", buf[:end], re.I)
                if m and len(buf) >= end + 4 + int(m.group(1)):
                    break
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"^HTTP/1\.[01] (\d{3})", lines[0])
    assert m, buf[:200]
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body


@pytest.fixture
def card(base, db):
    """A fresh anonymous card holding 5,000 (one recharge)."""
    c = new_card(base)
    recharge(base, c["card_id"], 5000)
    assert money(db, c["card_id"])[:5] == (5000, "active", 1, 5000, 1)
    return c


# ---------------------------------------------------------------------------
# Issuing cards

def test_create_anonymous_card(base, db):
    r = post(base, "/cards", {})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    c = r.json()
    assert set(c) >= CARD_KEYS, c
    assert isinstance(c["card_id"], int) and c["card_id"] > 0
    assert c["user_id"] is None
    assert c["balance"] == 0
    assert c["status"] == "active"
    assert c["credit_trips_used"] == 0
    assert c["last_used_date"] is None
    assert RFC3339_Z.match(c["created_at"]), c["created_at"]
    n = c["card_number"]
    assert isinstance(n, str) and re.fullmatch(r"[1-9][0-9]{15}", n), n
    assert luhn_ok(n), n
    assert rows(db, "SELECT card_number, user_id, balance, status FROM cards WHERE card_id = %s",
                c["card_id"]) == [(n, None, 0, "active")]
    assert money(db, c["card_id"])[2] == 0  # no ledger rows


def test_create_cards_get_distinct_numbers(base):
    cards = [new_card(base) for _ in range(10)]
    assert len({c["card_id"] for c in cards}) == 10
    assert len({c["card_number"] for c in cards}) == 10
    assert all(luhn_ok(c["card_number"]) for c in cards)


def test_create_owned_card(base, db):
    c = new_card(base, user_id=3)
    assert c["user_id"] == 3
    assert c["balance"] == 0 and c["status"] == "active"
    assert q1(db, "SELECT user_id FROM cards WHERE card_id = %s", c["card_id"]) == 3
    # Unknown fields are ignored.
    c2 = post(base, "/cards", {"user_id": 3, "colour": "red"})
    assert c2.status_code == 201, c2.text
    assert c2.json()["user_id"] == 3


@pytest.mark.parametrize("body", [
    {"user_id": 999999},
    {"user_id": "3"},
    {"user_id": 0},
    {"user_id": -3},
    {"user_id": 3.5},
    {"user_id": True},
    {"user_id": [3]},
    {"user_id": "3 OR 1=1; DROP TABLE cards; --"},
], ids=lambda b: repr(b["user_id"]))
def test_create_card_bad_user_id(base, db, body):
    before = totals(db)
    body_ = assert_problem(post(base, "/cards", body), 422, "validation", field="user_id")
    assert body_["instance"] == V1 + "/cards"
    assert totals(db) == before


def test_create_card_user_id_float_text_is_422(base, db):
    before = totals(db)
    for raw in ('{"user_id": 3.0}', '{"user_id": 1e0}', '{"user_id": 99999999999999999999}'):
        assert_problem(post(base, "/cards", raw=raw), 422, "validation", field="user_id")
    assert totals(db) == before


@pytest.mark.parametrize("raw,slug", [
    ("not json", "malformed-json"),
    ('{"user_id": 3', "malformed-json"),
    ('{"user_id": 3,}', "malformed-json"),
    ("{'user_id': 3}", "malformed-json"),
    ('{"user_id": 3} trailing', "malformed-json"),
    ("", "malformed-json"),
], ids=["text", "truncated", "trailing-comma", "single-quotes", "trailing-garbage", "empty"])
def test_create_card_malformed_body(base, db, raw, slug):
    before = totals(db)
    assert_problem(post(base, "/cards", raw=raw), 400, slug)
    assert totals(db) == before


def test_create_card_needs_json_content_type(base, db):
    before = totals(db)
    # No Content-Type at all (requests sends none for raw bytes without headers).
    r = requests.post(base + V1 + "/cards", data=b"{}", headers=AUTH, timeout=TIMEOUT)
    assert "Content-Type" not in r.request.headers
    assert_problem(r, 415, "unsupported-media-type")
    for ct in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx", "json"):
        assert_problem(post(base, "/cards", raw=b"{}", headers={"Content-Type": ct}), 415,
                       "unsupported-media-type")
    assert totals(db) == before
    # Parameters and +json media types are JSON.
    for ct in ("application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"):
        r = post(base, "/cards", raw=b"{}", headers={"Content-Type": ct})
        assert r.status_code == 201, (ct, r.text)


def test_create_card_body_too_large(base, server, db):
    before = totals(db)
    big = '{"user_id": 3, "pad": "' + "x" * (64 * 1024) + '"}'
    assert len(big) > 64 * 1024
    assert_problem(post(base, "/cards", raw=big), 413, "payload-too-large")
    # Declared by Content-Length and refused before the body is read.
    data = big.encode()
    status, headers, body = raw_http(server.port, (
        f"POST {V1}/cards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in AUTH.items()) +
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data)
    assert status == 413
    assert headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["type"] == "/problems/payload-too-large"
    # Exactly at the limit is not "too large" (it is still a valid object here).
    at_limit = '{"pad": "' + "x" * (64 * 1024 - 11) + '"}'
    assert len(at_limit) == 64 * 1024
    r = post(base, "/cards", raw=at_limit)
    assert r.status_code == 201, r.text[:300]
    after = totals(db)
    assert after[0] == before[0] + 1 and after[1:] == before[1:]


# ---------------------------------------------------------------------------
# Reading cards

def test_get_card(base, db):
    c = new_card(base, user_id=3)
    r = get_ok(base, f"/cards/{c['card_id']}")
    assert r.json() == c
    recharge(base, c["card_id"], 7000)
    got = get_ok(base, f"/cards/{c['card_id']}").json()
    assert got["balance"] == 7000
    assert {k: v for k, v in got.items() if k != "balance"} == {k: v for k, v in c.items() if k != "balance"}


def test_demo_cards_readable(base):
    # Demo cards 1..6 exist; 5 and 6 are anonymous, 1 and 2 belong to the rider (user 3).
    for cid, owner in ((1, 3), (2, 3), (5, None), (6, None)):
        c = get_ok(base, f"/cards/{cid}").json()
        assert c["card_id"] == cid and c["user_id"] == owner, c
        assert luhn_ok(c["card_number"]), c


def test_balance_cached_miss_then_hit(base, db):
    c = new_card(base)
    cid = c["card_id"]
    recharge(base, cid, 12000)
    r1 = get_ok(base, f"/cards/{cid}/balance")
    assert r1.headers.get("X-Cache") == "MISS", r1.headers
    b = r1.json()
    assert set(b) == BALANCE_KEYS, b
    assert b == {"card_id": cid, "balance": 12000, "status": "active", "last_used_date": None,
                 "credit_trips_used": 0}
    # Stored in Redis as a plain string under the documented key.
    assert json.loads(redis_get(f"transitd:card:{cid}:balance")) == b
    r2 = get_ok(base, f"/cards/{cid}/balance")
    assert r2.headers.get("X-Cache") == "HIT", r2.headers
    assert r2.json() == b
    assert money(db, cid)[0] == 12000


def test_recharge_invalidates_cached_balance(base, db):
    c = new_card(base)
    cid = c["card_id"]
    assert get_ok(base, f"/cards/{cid}/balance").json()["balance"] == 0
    assert get_ok(base, f"/cards/{cid}/balance").headers["X-Cache"] == "HIT"
    rc = recharge(base, cid, 3000)
    assert rc["new_balance"] == 3000
    r = get_ok(base, f"/cards/{cid}/balance")
    assert r.json()["balance"] == 3000, "stale balance served after a recharge"
    assert r.headers["X-Cache"] == "MISS"
    # Several in a row, each read right after the write.
    for i in range(1, 6):
        recharge(base, cid, 1000)
        assert get_ok(base, f"/cards/{cid}/balance").json()["balance"] == 3000 + 1000 * i
    assert money(db, cid)[0] == 8000
    assert_invariant(db, cid)


def test_history_newest_first_and_paging(base, db):
    c = new_card(base)
    cid = c["card_id"]
    empty = get_ok(base, f"/cards/{cid}/history").json()
    assert empty["history"] == [] and empty["next_cursor"] is None, empty
    made = [recharge(base, cid, 1000 * (i + 1)) for i in range(7)]
    newest_first = list(reversed(made))

    full = get_ok(base, f"/cards/{cid}/history").json()
    assert full["next_cursor"] is None
    hist = full["history"]
    assert [h["recharge_id"] for h in hist] == [m["recharge_id"] for m in newest_first]
    for h, m in zip(hist, newest_first):
        assert set(h) == {"recharge_id", "card_id", "amount", "recharge_timestamp"}, h
        assert h == {"recharge_id": m["recharge_id"], "card_id": cid, "amount": m["amount"],
                     "recharge_timestamp": m["recharge_timestamp"]}
        assert RFC3339_Z.match(h["recharge_timestamp"])

    # Paging with limit=3 until next_cursor is null: 3 + 3 + 1.
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        page = get_ok(base, f"/cards/{cid}/history", params=params).json()
        pages += 1
        assert pages <= 10, "next_cursor never became null"
        assert len(page["history"]) <= 3
        seen += page["history"]
        if page["next_cursor"] is None:
            break
        assert page["history"], "a page with a next_cursor must not be empty"
        cursor = page["next_cursor"]
    assert pages == 3
    assert seen == hist
    # limit equal to the count: one page, no cursor.
    p = get_ok(base, f"/cards/{cid}/history", params={"limit": 7}).json()
    assert len(p["history"]) == 7 and p["next_cursor"] is None
    # Matches the database.
    assert [r[0] for r in rows(db, "SELECT recharge_id FROM recharges WHERE card_id = %s ORDER BY recharge_id DESC",
                               cid)] == [h["recharge_id"] for h in hist]
    assert_invariant(db, cid)


def test_history_cache_invalidated_by_recharge(base):
    c = new_card(base)
    cid = c["card_id"]
    recharge(base, cid, 1000)
    r1 = get_ok(base, f"/cards/{cid}/history")
    assert r1.headers["X-Cache"] == "MISS"
    assert get_ok(base, f"/cards/{cid}/history").headers["X-Cache"] == "HIT"
    p1 = get_ok(base, f"/cards/{cid}/history", params={"limit": 1})  # another variant
    assert p1.headers["X-Cache"] == "MISS"
    assert get_ok(base, f"/cards/{cid}/history", params={"limit": 1}).headers["X-Cache"] == "HIT"
    rc = recharge(base, cid, 2000)
    r2 = get_ok(base, f"/cards/{cid}/history")
    assert [h["amount"] for h in r2.json()["history"]] == [2000, 1000]
    assert r2.json()["history"][0]["recharge_id"] == rc["recharge_id"]
    p2 = get_ok(base, f"/cards/{cid}/history", params={"limit": 1}).json()
    assert p2["history"][0]["recharge_id"] == rc["recharge_id"], "stale history page after a recharge"


@pytest.mark.parametrize("path", ["history", "transactions"])
@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"), ("limit=-1", "limit"),
    ("limit=1.5", "limit"), ("limit=", "limit"), ("limit=99999999999999999999", "limit"),
    ("cursor=abc", "cursor"), ("cursor=-5", "cursor"), ("cursor=0", "cursor"), ("cursor=1.0", "cursor"),
    ("cursor=1%20OR%201%3D1", "cursor"),
])
def test_paging_parameters_validated(base, card, path, query, field):
    body = assert_problem(get(base, f"/cards/{card['card_id']}/{path}?{query}"), 422, "validation", field=field)
    assert body["instance"].startswith(f"{V1}/cards/{card['card_id']}/{path}")


@pytest.mark.parametrize("limit", [1, 100])
def test_paging_limit_bounds_accepted(base, card, limit):
    for path, key in (("history", "history"), ("transactions", "transactions")):
        page = get_ok(base, f"/cards/{card['card_id']}/{path}", params={"limit": limit}).json()
        assert len(page[key]) == 1 and page["next_cursor"] is None


def test_transactions_are_ledger_entries(base, db):
    c = new_card(base)
    cid = c["card_id"]
    empty = get_ok(base, f"/cards/{cid}/transactions").json()
    assert empty["transactions"] == [] and empty["next_cursor"] is None
    made = [recharge(base, cid, a) for a in (1000, 2500, 40000, 1000, 500000)]
    body = get_ok(base, f"/cards/{cid}/transactions").json()
    assert body["next_cursor"] is None
    tx = body["transactions"]
    assert len(tx) == 5
    ledger = rows(db, "SELECT entry_id, kind, amount, balance_after, reference FROM card_ledger"
                      " WHERE card_id = %s ORDER BY entry_id DESC", cid)
    for t, m, l in zip(tx, reversed(made), ledger):
        assert set(t) == {"entry_id", "kind", "amount", "balance_after", "reference", "created_at"}, t
        assert t["kind"] == "recharge"
        assert t["amount"] == m["amount"] and t["amount"] > 0
        assert t["balance_after"] == m["new_balance"]
        assert t["reference"] == f"recharge:{m['recharge_id']}"
        assert RFC3339_Z.match(t["created_at"]), t["created_at"]
        assert (t["entry_id"], t["kind"], t["amount"], t["balance_after"], t["reference"]) == l
    assert [t["balance_after"] for t in tx] == [544500, 44500, 43500, 3500, 1000]
    # Paging: 2 + 2 + 1.
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = get_ok(base, f"/cards/{cid}/transactions", params=params).json()
        seen += page["transactions"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert cursor is None and seen == tx
    assert_invariant(db, cid)


@pytest.mark.parametrize("path", ["", "/balance", "/history", "/transactions"])
def test_unknown_card_is_404(base, path):
    r = get(base, f"/cards/{UNKNOWN_CARD}{path}")
    body = assert_problem(r, 404, "not-found")
    assert body["instance"] == f"{V1}/cards/{UNKNOWN_CARD}{path}"
    # Still 404 the second time (a miss is not cached as something else).
    assert_problem(get(base, f"/cards/{UNKNOWN_CARD}{path}"), 404, "not-found")
    assert_problem(get(base, f"/cards/9223372036854775807{path}"), 404, "not-found")


@pytest.mark.parametrize("bad", ["abc", "0", "-1", "1.5", "99999999999999999999", "1%20OR%201=1"])
def test_bad_card_id_in_path_is_422(base, bad):
    for path in ("", "/balance", "/history", "/transactions"):
        assert_problem(get(base, f"/cards/{bad}{path}"), 422, "validation", field="card_id")


@pytest.mark.parametrize("action", ["block", "unblock"])
def test_block_unknown_card_is_404(base, db, action):
    before = totals(db)
    assert_problem(post(base, f"/cards/{UNKNOWN_CARD}/{action}"), 404, "not-found")
    assert totals(db) == before


# ---------------------------------------------------------------------------
# Recharging

def test_recharge_response_and_database(base, db):
    c = new_card(base)
    cid = c["card_id"]
    r = post(base, "/cards/recharge", {"card_id": cid, "amount": 20000, "recharge_point_id": 1})
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    rc = r.json()
    assert set(rc) == RECHARGE_KEYS, rc
    assert rc["card_id"] == cid and rc["amount"] == 20000 and rc["new_balance"] == 20000
    assert isinstance(rc["recharge_id"], int) and rc["recharge_id"] > 0
    assert RFC3339_Z.match(rc["recharge_timestamp"]), rc
    assert rows(db, "SELECT card_id, amount, recharge_point_id, rfc3339(recharge_timestamp) FROM recharges"
                    " WHERE recharge_id = %s", rc["recharge_id"]) == [(cid, 20000, 1, rc["recharge_timestamp"])]
    rc2 = recharge(base, cid, 1500)
    assert rc2["new_balance"] == 21500 and rc2["recharge_id"] > rc["recharge_id"]
    assert q1(db, "SELECT recharge_point_id FROM recharges WHERE recharge_id = %s", rc2["recharge_id"]) is None
    assert money(db, cid) == (21500, "active", 2, 21500, 2)
    assert_invariant(db, cid)


@pytest.mark.parametrize("amount", [1000, 500000])
def test_recharge_amount_bounds_accepted(base, db, amount):
    c = new_card(base)
    rc = recharge(base, c["card_id"], amount)
    assert rc["amount"] == amount and rc["new_balance"] == amount
    assert get_ok(base, f"/cards/{c['card_id']}/balance").json()["balance"] == amount
    assert money(db, c["card_id"]) == (amount, "active", 1, amount, 1)
    assert_invariant(db, c["card_id"])


def test_demo_cards_keep_the_ledger_invariant(db):
    for cid in range(1, 7):
        assert_invariant(db, cid)


# Bodies are written as text so that 1000.0, 1e3 and huge numbers reach the server as written.
AMOUNT_422 = ["999", "500001", "0", "-1000", "-1", "1000.0", "1000.5", '"1000"', "1e3", "1E3", "true", "false",
              "null", "[1000]", '{"v": 1000}', "99999999999999999999", "-99999999999999999999",
              "9223372036854775807", "9223372036854775808"]


@pytest.mark.parametrize("amount", AMOUNT_422)
def test_recharge_bad_amount_is_422(base, db, card, amount):
    cid = card["card_id"]
    before = money(db, cid)
    raw = '{"card_id": %d, "amount": %s}' % (cid, amount)
    body = assert_problem(post(base, "/cards/recharge", raw=raw), 422, "validation", field="amount")
    assert body["instance"] == V1 + "/cards/recharge"
    assert money(db, cid) == before
    assert get_ok(base, f"/cards/{cid}/balance").json()["balance"] == 5000


def test_recharge_missing_amount_is_422(base, db, card):
    cid = card["card_id"]
    before = money(db, cid)
    for body in ({"card_id": cid}, {"card_id": cid, "Amount": 1000}, {"card_id": cid, "monto": 1000}):
        assert_problem(post(base, "/cards/recharge", body), 422, "validation", field="amount")
    assert money(db, cid) == before


@pytest.mark.parametrize("raw", [
    '{"card_id": %d, "amount": NaN}',
    '{"card_id": %d, "amount": Infinity}',
    '{"card_id": %d, "amount": -Infinity}',
    '{"card_id": %d, "amount": 1000} garbage',
    '{"card_id": %d, "amount": 1000}}',
    '{"card_id": %d, "amount": 1000}{"card_id": 1, "amount": 1000}',
    '{"card_id": %d, "amount": 01000}',
    '{"card_id": %d, "amount": +1000}',
    '{"card_id": %d, "amount": 1000,}',
    '{"card_id": %d, "amount": 1000',
    '{"card_id": %d, "amount": 1000, "amount": 2000}',
], ids=["nan", "inf", "-inf", "trailing-garbage", "extra-brace", "two-objects", "leading-zero", "plus",
        "trailing-comma", "truncated", "duplicate-key"])
def test_recharge_malformed_json_is_400(base, db, card, raw):
    cid = card["card_id"]
    before = money(db, cid)
    assert_problem(post(base, "/cards/recharge", raw=raw % cid), 400, "malformed-json")
    assert money(db, cid) == before


@pytest.mark.parametrize("body", [
    {"amount": 1000},
    {"card_id": None, "amount": 1000},
    {"card_id": "CARD", "amount": 1000},
    {"card_id": 0, "amount": 1000},
    {"card_id": -5, "amount": 1000},
    {"card_id": 1.5, "amount": 1000},
], ids=["missing", "null", "string", "zero", "negative", "float"])
def test_recharge_bad_card_id_is_422(base, db, body):
    before = totals(db)
    assert_problem(post(base, "/cards/recharge", body), 422, "validation", field="card_id")
    assert totals(db) == before


def test_recharge_card_id_as_string_of_real_card_is_422(base, db, card):
    cid = card["card_id"]
    before = money(db, cid)
    assert_problem(post(base, "/cards/recharge", {"card_id": str(cid), "amount": 1000}), 422, "validation",
                   field="card_id")
    assert_problem(post(base, "/cards/recharge", raw='{"card_id": %d.0, "amount": 1000}' % cid), 422,
                   "validation", field="card_id")
    assert money(db, cid) == before


def test_recharge_unknown_card_is_404(base, db):
    before = totals(db)
    body = assert_problem(post(base, "/cards/recharge", {"card_id": UNKNOWN_CARD, "amount": 1000}), 404,
                          "not-found")
    assert str(UNKNOWN_CARD) in body["detail"]
    assert totals(db) == before
    assert q1(db, "SELECT count(*) FROM card_ledger WHERE card_id = %s", UNKNOWN_CARD) == 0
    # The largest 64-bit id is a well-formed id of no card; one more does not fit.
    assert_problem(post(base, "/cards/recharge", {"card_id": 2**63 - 1, "amount": 1000}), 404, "not-found")
    assert_problem(post(base, "/cards/recharge", {"card_id": 2**63, "amount": 1000}), 422, "validation",
                   field="card_id")
    assert totals(db) == before


@pytest.mark.parametrize("point", [999, 0, -1, "1", 1.5, 2**31])
def test_recharge_bad_recharge_point_is_422(base, db, card, point):
    cid = card["card_id"]
    before = money(db, cid)
    assert_problem(post(base, "/cards/recharge", {"card_id": cid, "amount": 1000, "recharge_point_id": point}),
                   422, "validation", field="recharge_point_id")
    assert money(db, cid) == before


def test_recharge_inactive_recharge_point_is_422(base, db, card):
    cid = card["card_id"]
    point = q1(db, "INSERT INTO recharge_points (name, is_active) VALUES ('closed booth (test)', false)"
                   " RETURNING recharge_point_id")
    try:
        before = money(db, cid)
        assert_problem(post(base, "/cards/recharge", {"card_id": cid, "amount": 1000, "recharge_point_id": point}),
                       422, "validation", field="recharge_point_id")
        assert money(db, cid) == before
    finally:
        rows_left = q1(db, "SELECT count(*) FROM recharges WHERE recharge_point_id = %s", point)
        if rows_left == 0:
            with db.cursor() as cur:
                cur.execute("DELETE FROM recharge_points WHERE recharge_point_id = %s", (point,))
    # Each active seeded point is accepted.
    for p in (1, 2, 3, 4):
        assert recharge(base, cid, 1000, recharge_point_id=p)["amount"] == 1000
    assert money(db, cid)[0] == 9000
    assert_invariant(db, cid)


INJECTIONS = [
    "1; DROP TABLE card_ledger; --",
    "1 OR 1=1",
    "' OR '1'='1",
    "1); UPDATE cards SET balance = 99999999; --",
]


@pytest.mark.parametrize("inj", INJECTIONS)
def test_recharge_sql_injection_changes_nothing(base, db, card, inj):
    cid = card["card_id"]
    before_all, before = totals(db), money(db, cid)
    for body, field in (({"card_id": inj, "amount": 1000}, "card_id"),
                        ({"card_id": cid, "amount": inj}, "amount"),
                        ({"card_id": cid, "amount": 1000, "recharge_point_id": inj}, "recharge_point_id")):
        assert_problem(post(base, "/cards/recharge", body), 422, "validation", field=field)
    assert_problem(post(base, "/cards", {"user_id": inj}), 422, "validation", field="user_id")
    assert totals(db) == before_all
    assert money(db, cid) == before
    assert q1(db, "SELECT to_regclass('card_ledger') IS NOT NULL AND to_regclass('cards') IS NOT NULL")
    assert get_ok(base, f"/cards/{cid}/balance").json()["balance"] == 5000


def test_recharge_requires_json(base, db, card):
    cid = card["card_id"]
    before = money(db, cid)
    body = json.dumps({"card_id": cid, "amount": 1000}).encode()
    r = requests.post(base + V1 + "/cards/recharge", data=body, headers=AUTH, timeout=TIMEOUT)
    assert_problem(r, 415, "unsupported-media-type")
    r = requests.post(base + V1 + "/cards/recharge", data={"card_id": cid, "amount": 1000}, headers=AUTH,
                      timeout=TIMEOUT)
    assert_problem(r, 415, "unsupported-media-type")
    big = '{"card_id": %d, "amount": 1000, "pad": "%s"}' % (cid, "x" * 70000)
    assert_problem(post(base, "/cards/recharge", raw=big), 413, "payload-too-large")
    assert money(db, cid) == before


def test_recharge_wrong_method(base):
    r = get(base, "/cards/recharge")
    assert_problem(r, 405, "method-not-allowed")
    assert "POST" in r.headers["Allow"]


def test_recharge_repays_credit_trips(base, db):
    """A card that travelled on credit (negative balance, credit_trips_used > 0)
    keeps the count until a recharge brings the balance back to zero or more."""
    c = new_card(base, user_id=3)
    cid = c["card_id"]
    # The state after two trips on credit, made with one 'adjustment' ledger row
    # (not 'fare' rows, which analytics would count as revenue without trips).
    with db.cursor() as cur:
        cur.execute("INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)"
                    " VALUES (%s, 'adjustment', -6400, -6400, 'test:credit-trips')", (cid,))
        cur.execute("UPDATE cards SET balance = -6400, credit_trips_used = 2 WHERE card_id = %s", (cid,))
    assert_invariant(db, cid)
    assert get_ok(base, f"/cards/{cid}/balance").json()["credit_trips_used"] == 2
    rc = recharge(base, cid, 5000)
    assert rc["new_balance"] == -1400
    b = get_ok(base, f"/cards/{cid}/balance").json()
    assert (b["balance"], b["credit_trips_used"]) == (-1400, 2)
    rc = recharge(base, cid, 1400)
    assert rc["new_balance"] == 0
    b = get_ok(base, f"/cards/{cid}/balance").json()
    assert (b["balance"], b["credit_trips_used"]) == (0, 0)
    assert rows(db, "SELECT balance, credit_trips_used FROM cards WHERE card_id = %s", cid) == [(0, 0)]
    tx = get_ok(base, f"/cards/{cid}/transactions").json()["transactions"]
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in tx] == [
        ("recharge", 1400, 0), ("recharge", 5000, -1400), ("adjustment", -6400, -6400)]
    assert_invariant(db, cid)


# ---------------------------------------------------------------------------
# Block / unblock

def test_block_and_unblock(base, db):
    c = new_card(base, user_id=3)
    cid = c["card_id"]
    recharge(base, cid, 4000)
    # Populate the cached balance first.
    assert get_ok(base, f"/cards/{cid}/balance").json()["status"] == "active"
    assert get_ok(base, f"/cards/{cid}/balance").headers["X-Cache"] == "HIT"

    r = post(base, f"/cards/{cid}/block")
    assert r.status_code == 200, r.text
    blocked = r.json()
    assert set(blocked) >= CARD_KEYS
    assert blocked["card_id"] == cid and blocked["status"] == "blocked" and blocked["balance"] == 4000
    assert blocked["card_number"] == c["card_number"] and blocked["user_id"] == 3
    assert q1(db, "SELECT status FROM cards WHERE card_id = %s", cid) == "blocked"
    bal = get_ok(base, f"/cards/{cid}/balance").json()
    assert bal["status"] == "blocked", "cached balance still says active after block"
    assert bal["balance"] == 4000
    assert get_ok(base, f"/cards/{cid}").json()["status"] == "blocked"

    # Blocking again is not an error.
    r = post(base, f"/cards/{cid}/block")
    assert r.status_code == 200 and r.json()["status"] == "blocked"

    # A blocked card cannot be recharged; nothing changes.
    before = money(db, cid)
    body = assert_problem(post(base, "/cards/recharge", {"card_id": cid, "amount": 1000}), 409, "card-blocked")
    assert str(cid) in body["detail"]
    assert money(db, cid) == before
    assert get_ok(base, f"/cards/{cid}/balance").json()["balance"] == 4000

    r = post(base, f"/cards/{cid}/unblock")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "active"
    assert get_ok(base, f"/cards/{cid}/balance").json()["status"] == "active", "cached status stale after unblock"
    r = post(base, f"/cards/{cid}/unblock")  # again: fine
    assert r.status_code == 200 and r.json()["status"] == "active"

    rc = recharge(base, cid, 1000)
    assert rc["new_balance"] == 5000
    assert get_ok(base, f"/cards/{cid}/balance").json() == {
        "card_id": cid, "balance": 5000, "status": "active", "last_used_date": None, "credit_trips_used": 0}
    assert money(db, cid) == (5000, "active", 2, 5000, 2)
    assert_invariant(db, cid)


def test_block_with_body_is_fine(base, db):
    c = new_card(base)
    r = post(base, f"/cards/{c['card_id']}/block", {"reason": "lost"})
    assert r.status_code == 200 and r.json()["status"] == "blocked"
    assert_problem(post(base, "/cards/recharge", {"card_id": c["card_id"], "amount": 5000}), 409, "card-blocked")
    assert money(db, c["card_id"])[:3] == (0, "blocked", 0)


def test_blocked_check_comes_after_validation(base, db):
    c = new_card(base)
    cid = c["card_id"]
    assert post(base, f"/cards/{cid}/block").status_code == 200
    assert_problem(post(base, "/cards/recharge", {"card_id": cid, "amount": 999}), 422, "validation",
                   field="amount")
    assert_problem(post(base, "/cards/recharge", {"card_id": cid, "amount": 1000, "recharge_point_id": 999}),
                   422, "validation", field="recharge_point_id")
    assert money(db, cid)[:3] == (0, "blocked", 0)


# ---------------------------------------------------------------------------
# Idempotency-Key

def idem(key):
    return {"Idempotency-Key": key}


def test_recharge_idempotent_replay(base, db):
    c = new_card(base)
    cid = c["card_id"]
    key = "recharge-" + uuid.uuid4().hex
    body = {"card_id": cid, "amount": 7000}
    r1 = post(base, "/cards/recharge", body, headers=idem(key))
    assert r1.status_code == 201, r1.text
    assert "Idempotent-Replayed" not in r1.headers
    for _ in range(3):
        r = post(base, "/cards/recharge", body, headers=idem(key))
        assert r.status_code == 201, r.text
        assert r.headers.get("Idempotent-Replayed") == "true", r.headers
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json() == r1.json()
        assert r.text == r1.text
    assert money(db, cid) == (7000, "active", 1, 7000, 1)
    assert get_ok(base, f"/cards/{cid}/balance").json()["balance"] == 7000
    assert len(get_ok(base, f"/cards/{cid}/history").json()["history"]) == 1
    assert_invariant(db, cid)


def test_recharge_idempotency_mismatch(base, db):
    c = new_card(base)
    other = new_card(base)
    cid = c["card_id"]
    key = "recharge-" + uuid.uuid4().hex
    assert post(base, "/cards/recharge", {"card_id": cid, "amount": 7000}, headers=idem(key)).status_code == 201
    before, before_other = money(db, cid), money(db, other["card_id"])
    for body in ({"card_id": cid, "amount": 8000},
                 {"card_id": other["card_id"], "amount": 7000},
                 {"card_id": cid, "amount": 7000, "recharge_point_id": 1}):
        r = post(base, "/cards/recharge", body, headers=idem(key))
        assert_problem(r, 422, "idempotency-mismatch")
        assert "Idempotent-Replayed" not in r.headers
    assert money(db, cid) == before
    assert money(db, other["card_id"]) == before_other
    # The original request still replays.
    r = post(base, "/cards/recharge", {"card_id": cid, "amount": 7000}, headers=idem(key))
    assert r.status_code == 201 and r.headers.get("Idempotent-Replayed") == "true"


@pytest.mark.parametrize("key", ["k" * 256, "k" * 300, "has space", "tab\tkey", "ключ"],
                         ids=["256", "300", "space", "tab", "non-ascii"])
def test_recharge_bad_idempotency_key_is_422(base, db, card, key):
    cid = card["card_id"]
    before = money(db, cid)
    headers = {"Idempotency-Key": key.encode("utf-8") if not key.isascii() else key}
    r = post(base, "/cards/recharge", {"card_id": cid, "amount": 1000}, headers=headers)
    assert_problem(r, 422, None, field="Idempotency-Key")
    assert money(db, cid) == before


def test_recharge_idempotency_key_255_chars_ok(base, db, card):
    cid = card["card_id"]
    key = uuid.uuid4().hex + "k" * (255 - 32)
    r1 = post(base, "/cards/recharge", {"card_id": cid, "amount": 1000}, headers=idem(key))
    assert r1.status_code == 201, r1.text
    r2 = post(base, "/cards/recharge", {"card_id": cid, "amount": 1000}, headers=idem(key))
    assert r2.status_code == 201 and r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.json() == r1.json()
    assert money(db, cid)[:3] == (6000, "active", 2)


def test_recharge_different_keys_are_different_recharges(base, db):
    c = new_card(base)
    cid = c["card_id"]
    body = {"card_id": cid, "amount": 2000}
    r1 = post(base, "/cards/recharge", body, headers=idem(uuid.uuid4().hex))
    r2 = post(base, "/cards/recharge", body, headers=idem(uuid.uuid4().hex))
    assert r1.status_code == r2.status_code == 201
    assert "Idempotent-Replayed" not in r1.headers and "Idempotent-Replayed" not in r2.headers
    assert r1.json()["recharge_id"] != r2.json()["recharge_id"]
    assert r2.json()["new_balance"] == 4000
    assert money(db, cid) == (4000, "active", 2, 4000, 2)
    # Without a key the same body is a new recharge every time.
    post(base, "/cards/recharge", body)
    post(base, "/cards/recharge", body)
    assert money(db, cid) == (8000, "active", 4, 8000, 4)
    assert_invariant(db, cid)


def test_recharge_failure_is_not_recorded_under_the_key(base, db):
    """Only 2xx responses are recorded: a refused request may be retried as is."""
    c = new_card(base)
    cid = c["card_id"]
    key = uuid.uuid4().hex
    body = {"card_id": cid, "amount": 3000}
    assert post(base, f"/cards/{cid}/block").status_code == 200
    r = post(base, "/cards/recharge", body, headers=idem(key))
    assert_problem(r, 409, "card-blocked")
    assert "Idempotent-Replayed" not in r.headers
    assert money(db, cid)[2] == 0
    assert post(base, f"/cards/{cid}/unblock").status_code == 200
    r = post(base, "/cards/recharge", body, headers=idem(key))
    assert r.status_code == 201, r.text
    assert "Idempotent-Replayed" not in r.headers
    r2 = post(base, "/cards/recharge", body, headers=idem(key))
    assert r2.status_code == 201 and r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.json() == r.json()
    assert money(db, cid) == (3000, "active", 1, 3000, 1)
    # A refused validation does not consume the key either.
    key2 = uuid.uuid4().hex
    assert_problem(post(base, "/cards/recharge", {"card_id": cid, "amount": 1}, headers=idem(key2)), 422,
                   "validation", field="amount")
    r3 = post(base, "/cards/recharge", {"card_id": cid, "amount": 1000}, headers=idem(key2))
    assert r3.status_code == 201 and "Idempotent-Replayed" not in r3.headers
    assert money(db, cid) == (4000, "active", 2, 4000, 2)


def test_recharge_idempotent_replay_after_cached_read(base, db):
    """A replay changes nothing, so the balance read after it is still right."""
    c = new_card(base)
    cid = c["card_id"]
    key = uuid.uuid4().hex
    r1 = post(base, "/cards/recharge", {"card_id": cid, "amount": 6000}, headers=idem(key))
    assert r1.status_code == 201
    assert get_ok(base, f"/cards/{cid}/balance").json()["balance"] == 6000
    recharge(base, cid, 1000)
    r2 = post(base, "/cards/recharge", {"card_id": cid, "amount": 6000}, headers=idem(key))
    assert r2.status_code == 201 and r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.json()["new_balance"] == 6000  # the first response, as it was
    assert get_ok(base, f"/cards/{cid}/balance").json()["balance"] == 7000
    assert money(db, cid) == (7000, "active", 2, 7000, 2)


def test_create_card_idempotent(base, db):
    key = "card-" + uuid.uuid4().hex
    before = totals(db)[0]
    r1 = post(base, "/cards", {"user_id": 3}, headers=idem(key))
    assert r1.status_code == 201, r1.text
    assert "Idempotent-Replayed" not in r1.headers
    r2 = post(base, "/cards", {"user_id": 3}, headers=idem(key))
    assert r2.status_code == 201
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.json() == r1.json()
    assert totals(db)[0] == before + 1
    assert_problem(post(base, "/cards", {}, headers=idem(key)), 422, "idempotency-mismatch")
    assert_problem(post(base, "/cards", {"user_id": 4}, headers=idem(key)), 422, "idempotency-mismatch")
    assert totals(db)[0] == before + 1
    assert_problem(post(base, "/cards", {}, headers=idem("x" * 300)), 422, None, field="Idempotency-Key")
    assert totals(db)[0] == before + 1
    # Another key issues another card.
    r3 = post(base, "/cards", {"user_id": 3}, headers=idem(uuid.uuid4().hex))
    assert r3.status_code == 201 and r3.json()["card_id"] != r1.json()["card_id"]
    assert totals(db)[0] == before + 2


def test_create_card_failure_not_recorded_under_key(base, db):
    key = uuid.uuid4().hex
    before = totals(db)[0]
    assert_problem(post(base, "/cards", {"user_id": 999999}, headers=idem(key)), 422, "validation",
                   field="user_id")
    assert totals(db)[0] == before
    # Same key, other body: the failed attempt left no record, so this is a first use.
    r = post(base, "/cards", {}, headers=idem(key))
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert totals(db)[0] == before + 1


def test_same_key_on_different_routes_is_independent(base, db):
    key = uuid.uuid4().hex
    r1 = post(base, "/cards", {}, headers=idem(key))
    assert r1.status_code == 201 and "Idempotent-Replayed" not in r1.headers
    cid = r1.json()["card_id"]
    r2 = post(base, "/cards/recharge", {"card_id": cid, "amount": 1000}, headers=idem(key))
    assert r2.status_code == 201 and "Idempotent-Replayed" not in r2.headers, r2.text
    assert money(db, cid) == (1000, "active", 1, 1000, 1)


def test_idempotency_keys_are_per_caller(base, db, rider):
    """One key sent by two callers is two requests: keys are scoped to the caller."""
    key = uuid.uuid4().hex
    before = totals(db)[0]
    r1 = post(base, "/cards", {}, headers=idem(key))
    r2 = requests.post(base + V1 + "/cards", json={}, headers={**rider, **idem(key)}, timeout=TIMEOUT)
    assert r1.status_code == r2.status_code == 201, (r1.text, r2.text)
    assert "Idempotent-Replayed" not in r1.headers and "Idempotent-Replayed" not in r2.headers
    assert r1.json()["card_id"] != r2.json()["card_id"]
    assert r1.json()["user_id"] is None and r2.json()["user_id"] == 3
    assert totals(db)[0] == before + 2
    # Each caller's replay is its own.
    r3 = requests.post(base + V1 + "/cards", json={}, headers={**rider, **idem(key)}, timeout=TIMEOUT)
    assert r3.status_code == 201 and r3.headers.get("Idempotent-Replayed") == "true"
    assert r3.json() == r2.json()
    assert totals(db)[0] == before + 2
