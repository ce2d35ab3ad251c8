"""Own-card reads from memory (issue 11, item 1), on two instances.

A card's document, balance and recharge history are answered on the I/O
thread from the near-cache, for staff and for the card's owner (the card ->
owner map), once every invalidation that reached the instance is applied.
Every write that changes a card drops those reads on every instance, and its
answer comes only after the drop has reached every instance's socket, so a
read that follows a write's answer, on either instance, shows the write.

A read served from memory is told apart from a worker's by taking the Redis
key away behind the servers' backs (no invalidation published): the memory
still answers HIT with the value, where a worker would answer MISS."""
import hashlib
import hmac
import json
import os
import threading
import time
import uuid

import pytest
import requests

from conftest import assert_problem, bearer, db_rows, db_scalar, login, redis_cli

V1 = "/api/v1"
TIMEOUT = 10
SECRET = os.environ["PAYMENT_WEBHOOK_SECRET"].encode()


def get(url, path, headers):
    return requests.get(url + V1 + path, headers=headers, timeout=TIMEOUT)


def post(url, path, body, headers):
    return requests.post(url + V1 + path, json=body, headers=headers, timeout=TIMEOUT)


def doc(url, path, headers):
    r = get(url, path, headers)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json(), r.headers.get("X-Cache")


def new_rider(url):
    email = "cardreads.%s@example.test" % uuid.uuid4().hex[:16]
    r = post(url, "/auth/register", {"email": email, "password": "card-reads-password",
                                     "first_name": "Lectora", "last_name": "Memoria"}, None)
    assert r.status_code == 201, r.text
    return r.json()["user_id"], bearer(login(url, email, "card-reads-password")["access_token"])


def new_card(url, rider, operator, amount=50000):
    r = post(url, "/cards", {}, rider)
    assert r.status_code == 201, r.text
    card = r.json()["card_id"]
    r = post(url, "/cards/recharge", {"card_id": card, "amount": amount}, operator)
    assert r.status_code == 201, r.text
    return card


@pytest.fixture
def pair(base, spawn):
    """Two instances: the session's and another, sharing PostgreSQL and Redis."""
    return base, spawn().url


@pytest.fixture
def owner(base, operator):
    uid, headers = new_rider(base)
    return {"user_id": uid, "headers": headers, "card": new_card(base, headers, operator)}


def in_memory(url, path, headers):
    """Whether url answers path from memory: warmed, then the Redis key taken
    away without an invalidation, the answer is still a HIT."""
    first, _ = doc(url, path, headers)
    again, xc = doc(url, path, headers)
    if xc != "HIT":
        return False
    key = "transitd:" + path.strip("/").replace("cards/", "card:").replace("/", ":")
    redis_cli("UNLINK", key)
    body, xc = doc(url, path, headers)
    return xc == "HIT" and body == again


@pytest.mark.parametrize("path", ["/cards/%d", "/cards/%d/balance", "/cards/%d/history"])
def test_owner_and_staff_read_from_memory(base, owner, operator, path):
    p = path % owner["card"]
    assert in_memory(base, p, owner["headers"]), p
    assert in_memory(base, p, operator), p


def test_another_riders_card_is_404_before_and_after_the_owner_is_known(base, owner, other):
    p = "/cards/%d/balance" % owner["card"]
    stranger = other
    assert_problem(get(base, p, stranger), 404, "not-found")  # owner unknown: a worker says so
    doc(base, p, owner["headers"])                             # now known in memory
    for _ in range(3):
        body = assert_problem(get(base, p, stranger), 404, "not-found")
        assert "does not exist" in body["detail"]
    for q in ("/cards/%d" % owner["card"], "/cards/%d/history" % owner["card"]):
        assert_problem(get(base, q, stranger), 404, "not-found")


@pytest.fixture
def other(tokens):
    return bearer(tokens["other"])


def warm(url, card, headers):
    for path in ("/cards/%d" % card, "/cards/%d/balance" % card, "/cards/%d/history" % card):
        doc(url, path, headers)
        _, xc = doc(url, path, headers)
        assert xc == "HIT", path


def test_recharges_read_back_on_both_instances(pair, owner, operator):
    """After each recharge on A answers, the owner's next reads on B (warm,
    from memory) show it: balance, card document and history."""
    a, b = pair
    card, rider = owner["card"], owner["headers"]
    warm(b, card, rider)
    for i in range(30):
        r = post(a, "/cards/recharge", {"card_id": card, "amount": 1000 + i}, operator)
        assert r.status_code == 201, r.text
        rc = r.json()
        bal, _ = doc(b, "/cards/%d/balance" % card, rider)
        assert bal["balance"] == rc["new_balance"], (i, bal, rc)
        card_doc, _ = doc(b, "/cards/%d" % card, rider)
        assert card_doc["balance"] == rc["new_balance"], (i, card_doc, rc)
        hist, _ = doc(b, "/cards/%d/history" % card, rider)
        assert hist["history"][0]["recharge_id"] == rc["recharge_id"], (i, hist, rc)
        # and the writer's own instance
        bal, _ = doc(a, "/cards/%d/balance" % card, rider)
        assert bal["balance"] == rc["new_balance"], (i, bal, rc)


def test_fares_read_back_on_both_instances(pair, owner):
    """The rider boards on A; B's balance and card document show the fare at once."""
    a, b = pair
    card, rider = owner["card"], owner["headers"]
    warm(b, card, rider)
    for i in range(10):
        r = post(a, "/trips/start", {"card_id": card, "route_id": 3, "boarding_station_id": 1}, rider)
        assert r.status_code == 201, r.text
        trip = r.json()
        bal, _ = doc(b, "/cards/%d/balance" % card, rider)
        assert bal["balance"] == trip["remaining_balance"], (i, bal, trip)
        assert bal["last_used_date"] == trip["boarding_time"], (i, bal, trip)
        card_doc, _ = doc(b, "/cards/%d" % card, rider)
        assert card_doc["balance"] == trip["remaining_balance"], (i, card_doc)
        r = post(b if i % 2 else a, "/trips/end", {"trip_id": trip["trip_id"], "disembarking_station_id": 13}, rider)
        assert r.status_code == 200, r.text


def test_concurrent_writers_read_their_writes_on_the_other_instance(pair, operator):
    """Eight riders at once, each writing on one instance and reading on the other."""
    a, b = pair
    riders = []
    for _ in range(8):
        uid, h = new_rider(a)
        riders.append((h, new_card(a, h, operator, 20000)))
    errors = []

    def run(n, headers, card):
        write, read = (a, b) if n % 2 else (b, a)
        try:
            warm(read, card, headers)
            for i in range(15):
                r = post(write, "/cards/recharge", {"card_id": card, "amount": 1000}, operator)
                if r.status_code != 201:
                    errors.append(r.text)
                    return
                want = r.json()["new_balance"]
                got, xc = doc(read, "/cards/%d/balance" % card, headers)
                if got["balance"] != want:
                    errors.append((card, i, got["balance"], want, xc))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(n, h, c)) for n, (h, c) in enumerate(riders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]


def test_block_and_unblock_read_back_on_both_instances(pair, owner, operator):
    a, b = pair
    card, rider = owner["card"], owner["headers"]
    warm(b, card, rider)
    r = post(a, "/cards/%d/block" % card, None, rider)
    assert r.status_code == 200, r.text
    assert doc(b, "/cards/%d/balance" % card, rider)[0]["status"] == "blocked"
    assert doc(b, "/cards/%d" % card, rider)[0]["status"] == "blocked"
    # The owner still reads a blocked card (and from memory once warm again).
    assert in_memory(b, "/cards/%d/balance" % card, rider)
    r = post(b, "/cards/%d/unblock" % card, None, operator)
    assert r.status_code == 200, r.text
    assert doc(a, "/cards/%d/balance" % card, rider)[0]["status"] == "active"
    assert doc(a, "/cards/%d" % card, rider)[0]["status"] == "active"


def test_owner_change_reaches_every_instances_memory(pair, owner, operator, db):
    """The card -> owner map is kept true by invalidation: a card given to
    another rider (as an operator's tool would, in SQL, then publishing what
    card_cache_invalidate publishes for a change of owner) is refused to its
    old owner and shown to its new one, on both instances, at once."""
    a, b = pair
    card, old = owner["card"], owner["headers"]
    new_uid, new = new_rider(a)
    for url in (a, b):
        warm(url, card, old)
        assert_problem(get(url, "/cards/%d/balance" % card, new), 404, "not-found")
    db_rows(db, "UPDATE cards SET user_id = %s WHERE card_id = %s RETURNING card_id", new_uid, card)
    keys = ["transitd:card:%d" % card, "transitd:card:%d:balance" % card, "transitd:card:%d:owner" % card,
            "transitd:analytics:users:active"]
    redis_cli("UNLINK", *keys)
    redis_cli("PUBLISH", "transitd:invalidate", "\n".join(keys))
    for url in (a, b):
        assert_problem(get(url, "/cards/%d/balance" % card, old), 404, "not-found")
        assert_problem(get(url, "/cards/%d" % card, old), 404, "not-found")
        body, _ = doc(url, "/cards/%d" % card, new)
        assert body["user_id"] == new_uid
        assert doc(url, "/cards/%d/balance" % card, new)[0]["card_id"] == card


def future_run(db):
    return db_scalar(db, "SELECT run_id FROM rail_runs WHERE departure_time > now() + interval '2 hours'"
                         " ORDER BY departure_time, run_id LIMIT 1")


def test_bookings_and_cancellations_read_back_on_both_instances(pair, owner, db):
    a, b = pair
    card, rider = owner["card"], owner["headers"]
    run = future_run(db)
    warm(b, card, rider)
    r = post(a, "/rail/bookings", {"run_id": run, "card_id": card, "seat_count": 1, "class": "standard"}, rider)
    assert r.status_code == 201, r.text
    booking = r.json()
    assert doc(b, "/cards/%d/balance" % card, rider)[0]["balance"] == booking["new_balance"]
    assert doc(b, "/cards/%d" % card, rider)[0]["balance"] == booking["new_balance"]
    warm(a, card, rider)
    r = post(b, "/rail/bookings/%d/cancel" % booking["booking_id"], None, rider)
    assert r.status_code == 200, r.text
    refunded = r.json()["new_balance"]
    assert doc(a, "/cards/%d/balance" % card, rider)[0]["balance"] == refunded
    assert doc(a, "/cards/%d" % card, rider)[0]["balance"] == refunded


def test_payment_credit_reads_back_on_both_instances(pair, owner):
    a, b = pair
    card, rider = owner["card"], owner["headers"]
    before = doc(b, "/cards/%d/balance" % card, rider)[0]["balance"]
    warm(b, card, rider)
    r = post(a, "/payments/topups", {"card_id": card, "amount": 25000}, rider)
    assert r.status_code == 201, r.text
    pid = r.json()["payment_id"]
    body = json.dumps({"event_id": "evt_" + uuid.uuid4().hex, "type": "payment.approved", "payment_id": pid,
                       "amount": 25000, "provider_reference": "ref_" + uuid.uuid4().hex[:12]}).encode()
    t = int(time.time())
    sig = "t=%d,v1=%s" % (t, hmac.new(SECRET, b"%d." % t + body, hashlib.sha256).hexdigest())
    r = requests.post(a + V1 + "/payments/webhook", data=body, timeout=TIMEOUT,
                      headers={"Content-Type": "application/json", "Payment-Signature": sig})
    assert r.status_code == 200 and r.json()["outcome"] == "credited", r.text
    assert doc(b, "/cards/%d/balance" % card, rider)[0]["balance"] == before + 25000
    assert doc(b, "/cards/%d" % card, rider)[0]["balance"] == before + 25000
    assert doc(b, "/cards/%d/history" % card, rider)[0]["history"][0]["amount"] == 25000


def test_replayed_write_changes_nothing_and_reads_stay(pair, owner, operator):
    """A replay (same Idempotency-Key) answers the first answer, writes nothing."""
    a, b = pair
    card, rider = owner["card"], owner["headers"]
    key = {"Idempotency-Key": "reads-" + uuid.uuid4().hex}
    r1 = requests.post(a + V1 + "/cards/recharge", json={"card_id": card, "amount": 3000},
                       headers={**operator, **key}, timeout=TIMEOUT)
    assert r1.status_code == 201, r1.text
    warm(b, card, rider)
    r2 = requests.post(b + V1 + "/cards/recharge", json={"card_id": card, "amount": 3000},
                       headers={**operator, **key}, timeout=TIMEOUT)
    assert r2.status_code == 201 and r2.headers.get("Idempotent-Replayed") == "true", r2.text
    assert r2.json() == r1.json()
    assert doc(b, "/cards/%d/balance" % card, rider)[0]["balance"] == r1.json()["new_balance"]
