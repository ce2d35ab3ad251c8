"""Payments end to end: riders top up by paying; money enters a card only on a
signed provider confirmation, exactly once.

The suite plays the payment provider: it signs webhook deliveries with the
PAYMENT_WEBHOOK_SECRET that scripts/test.sh generated (HMAC-SHA256 of
"<t>.<raw body>"). Every scenario checks the money in SQL: balance, ledger
rows, recharges rows, and that cards.balance == sum(card_ledger.amount)."""
import hashlib
import hmac
import json
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (RFC3339_UTC, ROOT, assert_problem, bearer, db_rows, db_scalar, free_port, run_bin,
                      run_cli)

V1 = "/api/v1"
WEBHOOK = V1 + "/payments/webhook"
TIMEOUT = 30
SECRET = os.environ["PAYMENT_WEBHOOK_SECRET"].encode()
PAYMENT_KEYS = {"payment_id", "card_id", "amount", "currency", "status", "checkout_url", "created_at", "expires_at"}


# --- the provider's side -----------------------------------------------------

def signature(body, t=None, secret=SECRET):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return "t=%s,v1=%s" % (t, mac)


def event(payment, kind="approved", amount=None, event_id=None, payment_id=None):
    """The raw bytes of a provider event for a payment document."""
    return json.dumps({
        "event_id": event_id or "evt_" + uuid.uuid4().hex,
        "type": "payment." + kind,
        "payment_id": payment["payment_id"] if payment_id is None else payment_id,
        "amount": payment["amount"] if amount is None else amount,
        "provider_reference": "ref_" + uuid.uuid4().hex[:16],
    }).encode()


def deliver(base, body, sig="sign", content_type="application/json", session=None):
    """POSTs body to the webhook, signed now unless sig says otherwise (None: no header)."""
    headers = {"Content-Type": content_type}
    if sig == "sign":
        headers["Payment-Signature"] = signature(body)
    elif sig is not None:
        headers["Payment-Signature"] = sig
    return (session or requests).post(base + WEBHOOK, data=body, headers=headers, timeout=TIMEOUT)


# --- the rider's side --------------------------------------------------------

def post(base, path, body, headers, **kw):
    return requests.post(base + V1 + path, json=body, headers=headers, timeout=TIMEOUT, **kw)


def get(base, path, headers, **kw):
    return requests.get(base + V1 + path, headers=headers, timeout=TIMEOUT, **kw)


def own_card(base, headers):
    """A new card of the caller's (a rider's card is the rider's own)."""
    r = post(base, "/cards", {}, headers)
    assert r.status_code == 201, r.text
    return r.json()["card_id"]


def topup(base, headers, card_id, amount=20000, **kw):
    r = post(base, "/payments/topups", {"card_id": card_id, "amount": amount}, headers, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def payment_row(db, payment_id):
    return db_rows(db, "SELECT status, recharge_id, provider_reference, settled_at IS NOT NULL FROM payments"
                       " WHERE payment_id = %s", payment_id)[0]


def money(db, card_id):
    """(balance, ledger sum, ledger rows, recharge rows) of one card."""
    return db_rows(db, "SELECT c.balance,"
                       " (SELECT coalesce(sum(amount), 0) FROM card_ledger l WHERE l.card_id = c.card_id),"
                       " (SELECT count(*) FROM card_ledger l WHERE l.card_id = c.card_id),"
                       " (SELECT count(*) FROM recharges r WHERE r.card_id = c.card_id)"
                       " FROM cards c WHERE c.card_id = %s", card_id)[0]


def outcomes(db, payment_id):
    return [r[0] for r in db_rows(db, "SELECT outcome FROM payment_events WHERE payment_id = %s"
                                      " ORDER BY delivery_id", payment_id)]


@pytest.fixture(scope="module")
def rider(tokens):
    return bearer(tokens["rider"])


@pytest.fixture(scope="module")
def other(tokens):
    return bearer(tokens["other"])


@pytest.fixture(scope="module")
def operator(tokens):
    return bearer(tokens["operator"])


@pytest.fixture(scope="module")
def admin(tokens):
    return bearer(tokens["admin"])


# --- point of sale only ------------------------------------------------------

def test_rider_recharge_is_forbidden_and_moves_no_money(base, db, rider, operator):
    card = own_card(base, rider)
    r = post(base, "/cards/recharge", {"card_id": card, "amount": 500000}, rider)
    assert_problem(r, 403, "forbidden")
    assert money(db, card) == (0, 0, 0, 0)
    # A point of sale (an operator's terminal) recharges as before.
    r = post(base, "/cards/recharge", {"card_id": card, "amount": 5000, "recharge_point_id": 1}, operator)
    assert r.status_code == 201, r.text
    assert r.json()["new_balance"] == 5000
    assert money(db, card) == (5000, 5000, 1, 1)


# --- top-ups -----------------------------------------------------------------

def test_topup_creates_a_pending_payment_and_moves_no_money(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 20000)
    assert PAYMENT_KEYS <= set(p), p
    assert p["card_id"] == card and p["amount"] == 20000 and p["currency"] == "COP"
    assert p["status"] == "pending" and p["recharge_id"] is None and p["provider"] == "sandbox"
    assert p["checkout_url"] == "/checkout/%d" % p["payment_id"]
    assert RFC3339_UTC.match(p["created_at"]) and RFC3339_UTC.match(p["expires_at"])
    ttl = db_scalar(db, "SELECT extract(epoch FROM expires_at - created_at)::int FROM payments WHERE payment_id = %s",
                    p["payment_id"])
    assert ttl == 1800  # PAYMENT_TTL's default
    assert money(db, card) == (0, 0, 0, 0)
    assert get(base, "/payments/%d" % p["payment_id"], rider).json() == p


@pytest.mark.parametrize("body,field", [
    ({"amount": 20000}, "card_id"),
    ({"card_id": "x", "amount": 20000}, "card_id"),
    ({"card_id": 0, "amount": 20000}, "card_id"),
    ({"card_id": None}, "amount"),
    ({"card_id": None, "amount": 999}, "amount"),
    ({"card_id": None, "amount": 500001}, "amount"),
    ({"card_id": None, "amount": "20000"}, "amount"),
    ({"card_id": None, "amount": 20000.0}, "amount"),
])
def test_topup_validation(base, db, rider, body, field):
    card = own_card(base, rider)
    if "card_id" in body and body["card_id"] is None:
        body = dict(body, card_id=card)
    before = db_scalar(db, "SELECT count(*) FROM payments")
    assert_problem(post(base, "/payments/topups", body, rider), 422, "validation", field=field)
    assert db_scalar(db, "SELECT count(*) FROM payments") == before


def test_topup_unknown_or_blocked_card(base, db, rider, operator):
    assert_problem(post(base, "/payments/topups", {"card_id": 9_000_000_000_000, "amount": 1000}, operator),
                   404, "not-found")
    card = own_card(base, rider)
    assert post(base, "/cards/%d/block" % card, None, rider).status_code == 200
    assert_problem(post(base, "/payments/topups", {"card_id": card, "amount": 1000}, rider), 409, "card-blocked")
    assert db_scalar(db, "SELECT count(*) FROM payments WHERE card_id = %s", card) == 0


def test_topup_idempotency_key(base, db, rider):
    card = own_card(base, rider)
    key = {"Idempotency-Key": "topup-" + uuid.uuid4().hex}
    r1 = requests.post(base + V1 + "/payments/topups", json={"card_id": card, "amount": 7000},
                       headers={**rider, **key}, timeout=TIMEOUT)
    assert r1.status_code == 201 and "Idempotent-Replayed" not in r1.headers, r1.text
    r2 = requests.post(base + V1 + "/payments/topups", json={"card_id": card, "amount": 7000},
                       headers={**rider, **key}, timeout=TIMEOUT)
    assert r2.status_code == 201 and r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.json() == r1.json()
    r3 = requests.post(base + V1 + "/payments/topups", json={"card_id": card, "amount": 8000},
                       headers={**rider, **key}, timeout=TIMEOUT)
    assert_problem(r3, 422, "idempotency-mismatch")
    assert db_scalar(db, "SELECT count(*) FROM payments WHERE card_id = %s", card) == 1


# --- the full path -----------------------------------------------------------

def test_topup_then_signed_approval_credits_once(base, db, rider, operator):
    card = own_card(base, rider)
    # Warm the cached reads, so a missed invalidation would show.
    assert get(base, "/cards/%d/balance" % card, rider).json()["balance"] == 0
    assert get(base, "/cards/%d/history" % card, rider).json()["history"] == []
    p = topup(base, rider, card, 25000)
    body = event(p)
    r = deliver(base, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "outcome": "credited"}

    paid = get(base, "/payments/%d" % p["payment_id"], rider).json()
    assert paid["status"] == "approved" and isinstance(paid["recharge_id"], int)
    assert paid["provider_reference"] == json.loads(body)["provider_reference"]
    assert RFC3339_UTC.match(paid["settled_at"])
    assert "events" not in paid  # riders do not see the deliveries
    assert get(base, "/cards/%d/balance" % card, rider).json()["balance"] == 25000
    history = get(base, "/cards/%d/history" % card, rider).json()["history"]
    assert [(h["recharge_id"], h["amount"]) for h in history] == [(paid["recharge_id"], 25000)]
    ledger = get(base, "/cards/%d/transactions" % card, rider).json()["transactions"]
    assert [(t["kind"], t["amount"], t["balance_after"], t["reference"]) for t in ledger] == [
        ("recharge", 25000, 25000, "recharge:%d" % paid["recharge_id"])]
    assert money(db, card) == (25000, 25000, 1, 1)
    assert db_rows(db, "SELECT payment_id, amount, recharge_point_id FROM recharges WHERE recharge_id = %s",
                   paid["recharge_id"]) == [(p["payment_id"], 25000, None)]
    assert outcomes(db, p["payment_id"]) == ["credited"]

    # Operators see the deliveries, with the signature time.
    staff = get(base, "/payments/%d" % p["payment_id"], operator).json()
    assert [e["outcome"] for e in staff["events"]] == ["credited"]
    e = staff["events"][0]
    assert e["event_id"] == json.loads(body)["event_id"] and e["type"] == "payment.approved"
    assert RFC3339_UTC.match(e["signed_at"]) and RFC3339_UTC.match(e["received_at"])


def test_replays_and_second_approvals_change_nothing(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 10000)
    body = event(p)
    assert deliver(base, body).json()["outcome"] == "credited"
    # The same delivery again (a provider retry), the same bytes re-signed
    # later, another approval event, and a decline: 200, nothing changes.
    sig = signature(body)
    for r in (deliver(base, body, sig), deliver(base, body), deliver(base, event(p)),
              deliver(base, event(p, "declined"))):
        assert r.status_code == 200, r.text
        assert r.json() == {"received": True, "outcome": "no-effect"}
    assert money(db, card) == (10000, 10000, 1, 1)
    assert payment_row(db, p["payment_id"])[0] == "approved"
    assert outcomes(db, p["payment_id"]) == ["credited"] + ["no-effect"] * 4


def test_20_concurrent_approvals_credit_once(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 30000)
    # Ten distinct events and the same event ten times, all signed, all at once.
    same = event(p)
    bodies = [event(p) for _ in range(10)] + [same] * 10
    start = threading.Barrier(len(bodies))

    def one(body):
        s = requests.Session()
        start.wait()
        return deliver(base, body, session=s)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(one, bodies))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers if r.status_code != 200]
    got = sorted(r.json()["outcome"] for r in answers)
    assert got == ["credited"] + ["no-effect"] * 19, got
    assert money(db, card) == (30000, 30000, 1, 1)
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE payment_id = %s", p["payment_id"]) == 1
    assert sorted(outcomes(db, p["payment_id"])) == got
    assert get(base, "/cards/%d/balance" % card, rider).json()["balance"] == 30000


def test_decline_then_approve_moves_no_money(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 15000)
    r = deliver(base, event(p, "declined"))
    assert r.status_code == 200 and r.json()["outcome"] == "declined", r.text
    assert get(base, "/payments/%d" % p["payment_id"], rider).json()["status"] == "declined"
    r = deliver(base, event(p))
    assert r.status_code == 200 and r.json()["outcome"] == "no-effect", r.text
    assert money(db, card) == (0, 0, 0, 0)
    status, recharge, _, settled = payment_row(db, p["payment_id"])
    assert (status, recharge, settled) == ("declined", None, True)
    assert outcomes(db, p["payment_id"]) == ["declined", "no-effect"]


# --- refused deliveries ------------------------------------------------------

def _bad_deliveries(p):
    body = event(p)
    other = event(p)
    now = int(time.time())
    wrong = hmac.new(b"not-the-secret-" * 3, str(now).encode() + b"." + body, hashlib.sha256).hexdigest()
    good = signature(body, now).split("v1=")[1]
    return {
        "unsigned": (body, None),
        "empty header": (body, ""),
        "wrong secret": (body, "t=%d,v1=%s" % (now, wrong)),
        "tampered body": (body.replace(b'"amount": ', b'"amount": 1'), signature(body, now)),
        "other body's signature": (body, signature(other, now)),
        "stale": (body, signature(body, now - 301)),
        "from the future": (body, signature(body, now + 301)),
        "signed time changed": (body, "t=%d,v1=%s" % (now - 1, good)),
        "no t": (body, "v1=" + good),
        "no v1": (body, "t=%d" % now),
        "t not a number": (body, "t=abc,v1=" + good),
        "short mac": (body, "t=%d,v1=%s" % (now, good[:-2])),
        "mac not hex": (body, "t=%d,v1=%s" % (now, "z" * 64)),
        "garbage": (body, "sha256=" + good),
    }


def test_bad_signatures_are_401_and_move_no_money(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 12000)
    for name, (body, sig) in _bad_deliveries(p).items():
        r = deliver(base, body, sig)
        assert r.status_code == 401, (name, r.status_code, r.text)
        problem = assert_problem(r, 401, "unauthorized")
        assert "Payment-Signature" in r.headers.get("WWW-Authenticate", ""), name
        assert SECRET.decode() not in r.text, name
        assert problem["detail"], name
    assert money(db, card) == (0, 0, 0, 0)
    assert payment_row(db, p["payment_id"])[0] == "pending"
    assert outcomes(db, p["payment_id"]) == []  # refused deliveries are not events
    # Within the tolerance, and with a second (rotated) v1 beside the right one, it is accepted.
    body = event(p)
    t = int(time.time()) - 290
    sig = signature(body, t) + ",v1=" + "0" * 64
    r = deliver(base, body, "t=%d,v1=%s,%s" % (t, "1" * 64, sig.split(",", 1)[1]))
    assert r.status_code == 200 and r.json()["outcome"] == "credited", r.text
    assert money(db, card) == (12000, 12000, 1, 1)


def test_signature_is_checked_before_the_body_is_read(base, db):
    """Unsigned garbage is 401, not 400 or 415: nothing is parsed before the signature."""
    for body, ctype in ((b"{not json", "application/json"), (b"amount=1", "text/plain"), (b"", "application/json")):
        assert_problem(deliver(base, body, None, content_type=ctype), 401, "unauthorized")


def test_signed_but_malformed_events(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 3000)
    assert_problem(deliver(base, b"{not json"), 400, "malformed-json")
    assert_problem(deliver(base, event(p), content_type="text/plain"), 415, "unsupported-media-type")
    good = json.loads(event(p))
    for field, value in (("event_id", None), ("event_id", ""), ("event_id", 7), ("event_id", "e" * 129),
                         ("type", None), ("type", "payment.refunded"), ("payment_id", None),
                         ("payment_id", "1"), ("payment_id", 0), ("amount", None), ("amount", 3000.0),
                         ("amount", "3000"), ("provider_reference", 42)):
        doc = dict(good)
        if value is None:
            del doc[field]
        else:
            doc[field] = value
        assert_problem(deliver(base, json.dumps(doc).encode()), 422, "validation", field=field)
    assert money(db, card) == (0, 0, 0, 0)
    assert payment_row(db, p["payment_id"])[0] == "pending"


def test_wrong_amount_is_422_and_recorded(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 20000)
    for amount in (19999, 20001, 2000000):
        assert_problem(deliver(base, event(p, amount=amount)), 422, "validation", field="amount")
    assert money(db, card) == (0, 0, 0, 0)
    assert payment_row(db, p["payment_id"])[0] == "pending"
    assert outcomes(db, p["payment_id"]) == ["amount-mismatch"] * 3
    # The right amount still goes through.
    assert deliver(base, event(p)).json()["outcome"] == "credited"
    assert money(db, card) == (20000, 20000, 1, 1)


def test_unknown_payment_is_404_and_recorded(base, db):
    fake = {"payment_id": 9_000_000_000_000, "amount": 5000}
    before = db_scalar(db, "SELECT sum(balance) FROM cards")
    for kind in ("approved", "declined"):
        assert_problem(deliver(base, event(fake, kind)), 404, "not-found")
    assert db_scalar(db, "SELECT sum(balance) FROM cards") == before
    assert outcomes(db, fake["payment_id"]) == ["unknown-payment"] * 2


# --- expiry ------------------------------------------------------------------

def test_expiry(base, db, rider, spawn):
    srv = spawn(PAYMENT_TTL="2")
    card = own_card(base, rider)
    late, swept = topup(srv.url, rider, card, 4000), topup(srv.url, rider, card, 6000)
    assert db_scalar(db, "SELECT extract(epoch FROM expires_at - created_at)::int FROM payments"
                         " WHERE payment_id = %s", late["payment_id"]) == 2
    time.sleep(2.5)
    # Readers see them expired before anything has written it.
    for p in (late, swept):
        assert get(base, "/payments/%d" % p["payment_id"], rider).json()["status"] == "expired"
        assert payment_row(db, p["payment_id"])[0] == "pending"
    # An approval that comes too late expires the payment and moves no money.
    r = deliver(base, event(late))
    assert r.status_code == 200 and r.json()["outcome"] == "expired", r.text
    assert payment_row(db, late["payment_id"])[::3] == ("expired", True)
    # The other is swept by the periodic command.
    out = run_cli("payments", "expire").stdout
    assert re.fullmatch(r"\d+ pending payments expired\n", out) and int(out.split()[0]) >= 1, out
    assert payment_row(db, swept["payment_id"])[::3] == ("expired", True)
    assert run_cli("payments", "expire").stdout == "0 pending payments expired\n"
    for p in (late, swept):
        r = deliver(base, event(p))
        assert r.status_code == 200 and r.json()["outcome"] == "no-effect", r.text
        assert_problem(post(base, "/payments/%d/sandbox" % p["payment_id"], {"decision": "approve"}, rider),
                       409, "conflict")
    assert money(db, card) == (0, 0, 0, 0)
    assert outcomes(db, late["payment_id"]) == ["expired", "no-effect"]


def test_expire_command_usage():
    p = run_cli("payments", check=False)
    assert p.returncode == 2 and "payments expire" in p.stderr


# --- who may see what --------------------------------------------------------

def test_strangers_cannot_read_or_top_up(base, db, rider, other, operator, admin):
    card = own_card(base, rider)
    p = topup(base, rider, card, 5000)
    path = "/payments/%d" % p["payment_id"]
    unknown = "/payments/9000000000000"
    mine, theirs = assert_problem(get(base, path, other), 404, "not-found"), \
        assert_problem(get(base, unknown, other), 404, "not-found")
    assert (mine["type"], mine["title"]) == (theirs["type"], theirs["title"])
    assert_problem(post(base, path + "/sandbox", {"decision": "approve"}, other), 404, "not-found")
    assert_problem(post(base, "/payments/topups", {"card_id": card, "amount": 5000}, other), 404, "not-found")
    assert_problem(post(base, "/payments/topups", {"card_id": 5, "amount": 5000}, rider), 404, "not-found")  # anonymous
    assert_problem(get(base, path, {}), 401, "unauthorized")
    assert_problem(get(base, "/payments", rider), 403, "forbidden")
    for staff in (operator, admin):
        assert get(base, path, staff).status_code == 200
    # Staff may start a top-up of any card (a call centre); the rider still owns it.
    q = topup(base, operator, card, 1000)
    assert get(base, "/payments/%d" % q["payment_id"], rider).status_code == 200
    assert db_scalar(db, "SELECT count(*) FROM payments WHERE card_id = %s", card) == 2


def test_payment_list_for_reconciliation(base, db, rider, operator):
    card = own_card(base, rider)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 2))
    made = [topup(base, rider, card, 1000 * (i + 1)) for i in range(5)]
    for p in made[:2]:
        assert deliver(base, event(p)).json()["outcome"] == "credited"
    assert deliver(base, event(made[2], "declined")).json()["outcome"] == "declined"
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    ids = {p["payment_id"] for p in made}

    def listed(**params):
        r = get(base, "/payments", operator, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def mine(doc):
        return [p["payment_id"] for p in doc["payments"] if p["payment_id"] in ids]

    newest_first = sorted(ids, reverse=True)
    assert mine(listed(**{"from": since, "to": until, "limit": 100})) == newest_first
    assert mine(listed(status="approved", **{"from": since})) == sorted((p["payment_id"] for p in made[:2]),
                                                                        reverse=True)
    assert mine(listed(status="declined", **{"from": since})) == [made[2]["payment_id"]]
    assert mine(listed(status="pending", **{"from": since})) == sorted((p["payment_id"] for p in made[3:]),
                                                                       reverse=True)
    assert mine(listed(**{"to": since})) == []
    # Paging: two at a time over the window.
    seen, cursor = [], None
    while True:
        page = listed(**{"from": since, "to": until, "limit": 2, **({"cursor": cursor} if cursor else {})})
        assert len(page["payments"]) <= 2
        seen += mine(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == newest_first
    for params, field in (({"status": "paid"}, "status"), ({"from": "yesterday"}, "from"),
                          ({"to": "2026-13-01T00:00:00Z"}, "to"), ({"limit": 0}, "limit"),
                          ({"cursor": "x"}, "cursor")):
        assert_problem(get(base, "/payments", operator, params=params), 422, "validation", field=field)


# --- the sandbox checkout page -----------------------------------------------

def checkout_page(base, payment):
    r = requests.get(base + payment["checkout_url"], timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/html")
    assert "frame-ancestors 'none'" in r.headers.get("Content-Security-Policy", "")
    return r.text


def test_checkout_page_is_self_contained(base, rider):
    p = topup(base, rider, own_card(base, rider), 1000)
    page = checkout_page(base, p)
    # No CDN: every script and stylesheet is inline.
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page), "the page loads something from elsewhere"
    # What the test below does is what the page does.
    for needle in ('"/sandbox"', "webhook_url", "Payment-Signature", "/payments/", 'id="approve"',
                   'id="decline"'):
        assert needle in page, needle


def sandbox_click(base, headers, payment, decision):
    """The page's approve / decline button: the sandbox provider signs the
    event, then the page delivers it to the webhook with no rider token."""
    r = post(base, "/payments/%d/sandbox" % payment["payment_id"], {"decision": decision}, headers)
    assert r.status_code == 200, r.text
    signed = r.json()
    assert set(signed) == {"webhook_url", "body", "signature"} and signed["webhook_url"] == WEBHOOK
    return requests.post(base + signed["webhook_url"], data=signed["body"].encode(), timeout=TIMEOUT,
                         headers={"Content-Type": "application/json", "Payment-Signature": signed["signature"]})


def test_sandbox_approve_button_credits_the_card(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 40000)
    checkout_page(base, p)
    r = sandbox_click(base, rider, p, "approve")
    assert r.status_code == 200 and r.json() == {"received": True, "outcome": "credited"}, r.text
    assert get(base, "/payments/%d" % p["payment_id"], rider).json()["status"] == "approved"
    assert get(base, "/cards/%d/balance" % card, rider).json()["balance"] == 40000
    assert money(db, card) == (40000, 40000, 1, 1)
    # Paid: the buttons answer 409, and money stays as it is.
    assert_problem(post(base, "/payments/%d/sandbox" % p["payment_id"], {"decision": "approve"}, rider),
                   409, "conflict")
    assert money(db, card) == (40000, 40000, 1, 1)
    assert db_scalar(db, "SELECT provider FROM payment_events WHERE payment_id = %s", p["payment_id"]) == "sandbox"


def test_sandbox_decline_button(base, db, rider):
    card = own_card(base, rider)
    p = topup(base, rider, card, 40000)
    r = sandbox_click(base, rider, p, "decline")
    assert r.status_code == 200 and r.json()["outcome"] == "declined", r.text
    assert money(db, card) == (0, 0, 0, 0)
    assert_problem(post(base, "/payments/%d/sandbox" % p["payment_id"], {"decision": "approve"}, rider),
                   409, "conflict")
    assert_problem(post(base, "/payments/%d/sandbox" % p["payment_id"], {"decision": "maybe"}, rider),
                   422, "validation", field="decision")


def test_external_provider_has_no_sandbox(base, db, rider, spawn):
    srv = spawn(PAYMENT_PROVIDER="external", PAYMENT_CHECKOUT_URL="https://pay.example.test/c?ref={payment_id}&x=1")
    card = own_card(base, rider)
    p = topup(srv.url, rider, card, 9000)
    assert p["provider"] == "external"
    assert p["checkout_url"] == "https://pay.example.test/c?ref=%d&x=1" % p["payment_id"]
    assert_problem(post(srv.url, "/payments/%d/sandbox" % p["payment_id"], {"decision": "approve"}, rider),
                   404, "not-found")
    # Its webhook is the same code: a signed approval credits.
    assert deliver(srv.url, event(p)).json()["outcome"] == "credited"
    assert money(db, card) == (9000, 9000, 1, 1)


# --- configuration -----------------------------------------------------------

@pytest.mark.parametrize("secret", ["", "short", "a" * 64, "abcdefgh" * 8])
def test_weak_webhook_secret_stops_serve(database, secret):
    p = run_bin("serve", env={"PAYMENT_WEBHOOK_SECRET": secret, "PORT": str(free_port())})
    assert p.returncode == 2, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "PAYMENT_WEBHOOK_SECRET" in lines[0], p.stderr
    if secret:
        assert secret not in p.stderr


@pytest.mark.parametrize("env,name", [
    ({"PAYMENT_PROVIDER": "wompi"}, "PAYMENT_PROVIDER"),
    ({"PAYMENT_TTL": "0"}, "PAYMENT_TTL"),
    ({"PAYMENT_TTL": "1h"}, "PAYMENT_TTL"),
    ({"PAYMENT_PROVIDER": "external"}, "PAYMENT_CHECKOUT_URL"),
    ({"PAYMENT_PROVIDER": "external", "PAYMENT_CHECKOUT_URL": "http://pay.example.test/{payment_id}"},
     "PAYMENT_CHECKOUT_URL"),
    ({"PAYMENT_PROVIDER": "external", "PAYMENT_CHECKOUT_URL": "https://pay.example.test/"}, "PAYMENT_CHECKOUT_URL"),
])
def test_bad_payment_settings_stop_serve(database, env, name):
    p = run_bin("serve", env=dict(env, PORT=str(free_port())))
    assert p.returncode == 2, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and name in lines[0], p.stderr


def test_local_env_files_hold_the_secret():
    """scripts/test.sh writes the secret beside the others (as run.sh does in .run/env)."""
    run_dir = os.environ.get("TEST_RUN_DIR", os.path.join(ROOT, ".run", "test"))
    with open(os.path.join(run_dir, "env")) as f:
        text = f.read()
    assert "PAYMENT_WEBHOOK_SECRET='%s'" % SECRET.decode() in text
    assert "JWT_SECRET=" in text
    assert oct(os.stat(os.path.join(run_dir, "env")).st_mode & 0o777) == "0o600"
    with open(os.path.join(ROOT, "scripts", "run.sh")) as f:
        assert "PAYMENT_WEBHOOK_SECRET='$PAYMENT_WEBHOOK_SECRET'" in f.read()


# --- the guarantees under it -------------------------------------------------

def test_exactly_once_is_a_database_constraint(base, db, rider):
    """Whatever the code does, a second recharge of one payment cannot commit."""
    import psycopg2
    card = own_card(base, rider)
    p = topup(base, rider, card, 2000)
    assert deliver(base, event(p)).json()["outcome"] == "credited"
    conn = psycopg2.connect(db.dsn)
    try:
        with pytest.raises(psycopg2.errors.UniqueViolation):
            with conn.cursor() as cur:
                cur.execute("""
                    WITH l AS (INSERT INTO card_ledger (card_id, kind, amount, balance_after, reference)
                               VALUES (%s, 'recharge', 2000, 4000, 'test') RETURNING entry_id)
                    INSERT INTO recharges (card_id, amount, payment_id, ledger_entry_id)
                    SELECT %s, 2000, %s, entry_id FROM l""", (card, card, p["payment_id"]))
        conn.rollback()
        # And a payment cannot be approved without its recharge, or pending once settled.
        for sql in ("UPDATE payments SET recharge_id = NULL WHERE payment_id = %s",
                    "UPDATE payments SET status = 'pending' WHERE payment_id = %s"):
            with pytest.raises(psycopg2.errors.CheckViolation):
                with conn.cursor() as cur:
                    cur.execute(sql, (p["payment_id"],))
            conn.rollback()
    finally:
        conn.close()
    assert money(db, card) == (2000, 2000, 1, 1)


def test_ledger_equals_balance_on_every_card(db):
    """After all of the above (and everything before it in the suite)."""
    bad = db_rows(db, "SELECT c.card_id, c.balance, coalesce(sum(l.amount), 0) FROM cards c"
                      " LEFT JOIN card_ledger l USING (card_id) GROUP BY c.card_id, c.balance"
                      " HAVING c.balance <> coalesce(sum(l.amount), 0)")
    assert bad == []
    # Every approved payment has exactly its one recharge, of its amount, on its card.
    wrong = db_rows(db, "SELECT p.payment_id FROM payments p LEFT JOIN recharges r ON r.payment_id = p.payment_id"
                        " WHERE (p.status = 'approved') <> (r.recharge_id IS NOT NULL)"
                        " OR (r.recharge_id IS NOT NULL AND (r.recharge_id <> p.recharge_id"
                        "     OR r.amount <> p.amount OR r.card_id <> p.card_id))")
    assert wrong == []
    assert db_scalar(db, "SELECT count(*) FROM payment_events WHERE outcome = 'credited'") == \
        db_scalar(db, "SELECT count(*) FROM payments WHERE status = 'approved'")
