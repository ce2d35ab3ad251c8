"""Asynchronous commands through RabbitMQ (a real node, started by
scripts/test.sh): 202 after the broker's confirm, the same outcome as the
synchronous request, exactly one effect through broker restarts and crashes
of transitd, dead-lettering of what cannot be applied, and the operation
readable only by its owner and staff."""
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pika
import pytest
import requests

from conftest import ROOT, admin_headers, assert_problem, bearer, db_scalar, login, poll

V1 = "/api/v1"
ASYNC = {"Prefer": "respond-async"}
RABBIT_DIR = os.environ.get("TEST_RABBITMQ_DIR", "")
RABBIT_PORT = os.environ.get("TEST_RABBITMQ_PORT", "")


def rabbitmq(action):
    args = "%s %s" % (RABBIT_DIR, RABBIT_PORT)
    subprocess.run(["bash", "-c", "source scripts/services.sh && rabbitmq_%s %s" % (action, args)],
                   cwd=ROOT, check=True, timeout=180)


def new_card(base, staff, user_id=None):
    r = requests.post(base + V1 + "/cards", json={"user_id": user_id} if user_id else {}, headers=staff)
    assert r.status_code == 201, r.text
    return r.json()["card_id"]


def recharge_async(base, headers, card_id, amount=1000, key=None, expect=202):
    h = {**headers, **ASYNC}
    if key:
        h["Idempotency-Key"] = key
    r = requests.post(base + V1 + "/cards/recharge", json={"card_id": card_id, "amount": amount}, headers=h,
                      timeout=30)
    assert r.status_code == expect, r.text
    return r


def outcome(base, headers, location, timeout=30):
    """The operation once it is no longer pending."""
    def done():
        r = requests.get(base + location, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        doc = r.json()
        return doc if doc["status"] != "pending" else None
    doc = poll(done, timeout=timeout, interval=0.05)
    assert doc, "operation %s still pending after %d s" % (location, timeout)
    return doc


def ledger_ok(db, card_id):
    return db_scalar(db, "SELECT balance = (SELECT coalesce(sum(amount), 0) FROM card_ledger WHERE card_id = %s)"
                         " FROM cards WHERE card_id = %s", card_id, card_id)


def metric(base, event):
    text = requests.get(base + "/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith('transitd_async_commands_total{event="%s"}' % event):
            return int(line.split()[-1])
    return None


@pytest.fixture
def queue():
    """A queue of its own: only this test's servers consume it."""
    return "transitd.test-%s" % uuid.uuid4().hex[:8]


def test_202_then_the_same_result_as_synchronous(base, operator, db):
    card = new_card(base, operator)
    sync = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 2000}, headers=operator)
    assert sync.status_code == 201
    r = recharge_async(base, operator, card, 3000)
    loc = r.headers["Location"]
    assert loc.startswith("/api/v1/operations/") and r.json()["status"] == "pending"
    assert r.json()["operation_id"] == int(loc.rsplit("/", 1)[1])
    doc = outcome(base, operator, loc)
    assert doc["status"] == "succeeded" and doc["error"] is None
    assert set(doc["result"]) == set(sync.json()), (doc["result"], sync.json())
    assert doc["result"]["card_id"] == card and doc["result"]["amount"] == 3000
    assert doc["result"]["new_balance"] == 5000
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 5000
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 2
    assert ledger_ok(db, card)


def test_without_prefer_it_stays_synchronous(base, operator):
    card = new_card(base, operator)
    r = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 1000}, headers=operator)
    assert r.status_code == 201 and "Location" not in r.headers


@pytest.mark.parametrize("body,field", [({"card_id": 1, "amount": 5}, "amount"),
                                        ({"card_id": "x", "amount": 1000}, "card_id"),
                                        ({"amount": 1000}, "card_id")])
def test_bad_input_is_answered_at_once_and_nothing_is_published(base, operator, db, body, field):
    before = metric(base, "published")
    ops = db_scalar(db, "SELECT count(*) FROM operations")
    r = requests.post(base + V1 + "/cards/recharge", json=body, headers={**operator, **ASYNC})
    assert_problem(r, 422, "validation", field=field)
    assert metric(base, "published") == before
    assert db_scalar(db, "SELECT count(*) FROM operations") == ops


def test_business_failure_ends_the_operation_failed(base, operator, db):
    r = recharge_async(base, operator, 987654321)  # no such card: found out when applied
    doc = outcome(base, operator, r.headers["Location"])
    assert doc["status"] == "failed" and doc["result"] is None
    assert doc["error"]["status"] == 404 and doc["error"]["type"] == "/problems/not-found"


def test_idempotency_key_works_as_synchronously(base, operator, db):
    card = new_card(base, operator)
    key = str(uuid.uuid4())
    first = recharge_async(base, operator, card, 1000, key=key)
    again = recharge_async(base, operator, card, 1000, key=key)
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 2000},
                          headers={**operator, **ASYNC, "Idempotency-Key": key})
    assert_problem(other, 422, "idempotency-mismatch")
    outcome(base, operator, first.headers["Location"])
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 1


def test_1000_async_recharges_on_one_card(base, operator, db):
    card = new_card(base, operator)
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: recharge_async(base, operator, card, 1000), range(1000)))
    locations = [r.headers["Location"] for r in answers]
    assert len(set(locations)) == 1000
    assert poll(lambda: db_scalar(db, "SELECT count(*) FROM operations WHERE operation_id = ANY(%s)"
                                      " AND status = 'pending'",
                                  [int(l.rsplit("/", 1)[1]) for l in locations]) == 0, timeout=120)
    assert db_scalar(db, "SELECT count(*) FROM operations WHERE operation_id = ANY(%s) AND status = 'succeeded'",
                     [int(l.rsplit("/", 1)[1]) for l in locations]) == 1000
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 1000 * 1000
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 1000
    assert ledger_ok(db, card)


def test_a_rider_cannot_read_another_riders_operation(base, operator, tokens, db):
    rider = bearer(tokens["rider"])
    other = bearer(tokens["other"])
    rider_id = db_scalar(db, "SELECT user_id FROM users WHERE email = 'rider@transitd.local'")
    card = new_card(base, operator, rider_id)
    requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 10000}, headers=operator)
    route, station = 3, 1
    r = requests.post(base + V1 + "/trips/start", headers={**rider, **ASYNC},
                      json={"card_id": card, "route_id": route, "boarding_station_id": station})
    assert r.status_code == 202, r.text
    loc = r.headers["Location"]
    doc = outcome(base, rider, loc)
    assert doc["status"] == "succeeded" and doc["result"]["status"] == "in_progress"
    assert requests.get(base + loc, headers=other).status_code == 404
    assert requests.get(base + loc, headers=operator).status_code == 200
    assert requests.get(base + loc).status_code == 401
    end = requests.post(base + V1 + "/trips/end", headers={**rider, **ASYNC},
                        json={"trip_id": doc["result"]["trip_id"], "disembarking_station_id": 11})
    assert end.status_code == 202, end.text
    assert outcome(base, rider, end.headers["Location"])["result"]["status"] == "completed"


def test_health_queue_and_metrics(base):
    r = requests.get(base + "/health/queue")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "healthy" and doc["consumers"] >= 1
    for key in ("ready", "unacked", "dead_lettered", "queue"):
        assert key in doc
    m = requests.get(base + "/metrics").text
    for event in ("published", "confirmed", "consumed", "failed", "dead_lettered"):
        assert 'transitd_async_commands_total{event="%s"}' % event in m
    assert "transitd_async_apply_seconds_count" in m


def test_poison_message_is_dead_lettered_and_its_operation_fails(spawn, db, queue):
    """A command naming a route no instance serves (as after a downgrade) is
    given back at each delivery until the queue dead-letters it."""
    spawn(AMQP_QUEUE=queue, ASYNC_CONSUMERS=1, AMQP_DELIVERY_LIMIT=3)
    with db.cursor() as cur:
        cur.execute("INSERT INTO operations (role, method, route, path, request)"
                    " VALUES ('admin', 'POST', '/api/v1/teleport', '/api/v1/teleport', '{}')"
                    " RETURNING operation_id")
        op = cur.fetchone()[0]
    params = pika.URLParameters(os.environ["AMQP_URL"])
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.basic_publish("", queue, json.dumps({"operation_id": op}).encode(),
                     pika.BasicProperties(delivery_mode=2))
    conn.close()
    status = poll(lambda: db_scalar(db, "SELECT status FROM operations WHERE operation_id = %s", op) == "failed",
                  timeout=30)
    assert status, "the poison command's operation did not end failed"
    err = db_scalar(db, "SELECT error FROM operations WHERE operation_id = %s", op)
    assert err["type"] == "/problems/dead-lettered" and "3 deliveries" in err["detail"], err


def test_sigkill_between_202_and_consumption(spawn, operator, db, queue):
    publisher = spawn(AMQP_QUEUE=queue, ASYNC_CONSUMERS=0)
    card = new_card(publisher.url, operator)
    answers = [recharge_async(publisher.url, operator, card, 1000) for _ in range(50)]
    publisher.proc.send_signal(signal.SIGKILL)
    publisher.proc.wait()
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 0
    consumer = spawn(AMQP_QUEUE=queue)
    for r in answers:
        assert outcome(consumer.url, operator, r.headers["Location"])["status"] == "succeeded"
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 50
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 50000
    assert ledger_ok(db, card)


def test_sigkill_between_apply_and_ack(spawn, operator, db, queue):
    """The consumer commits the effect and dies before its ack: the broker
    delivers again, the command finds its stored answer, and the card is
    credited once."""
    crashing = spawn(AMQP_QUEUE=queue, ASYNC_CONSUMERS=1, TRANSITD_TEST_CRASH_BEFORE_ACK=1)
    card = new_card(crashing.url, operator)
    r = recharge_async(crashing.url, operator, card, 7000)
    assert poll(lambda: crashing.proc.poll() is not None, timeout=30), "the consumer did not crash"
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 1
    healthy = spawn(AMQP_QUEUE=queue)
    doc = outcome(healthy.url, operator, r.headers["Location"])
    assert doc["status"] == "succeeded" and doc["result"]["new_balance"] == 7000
    time.sleep(0.5)
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 1
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 7000
    assert ledger_ok(db, card)


def test_lost_confirm_of_a_delivered_command_answers_202(spawn, operator, db, queue):
    """The broker took the command and a consumer claimed it, but the
    publisher never got the confirm: the command is in effect, so the caller
    is told 202 (never 503 for something that happened)."""
    lossy = spawn(AMQP_QUEUE=queue, TRANSITD_TEST_LOSE_CONFIRMS=1500)
    card = new_card(lossy.url, operator)
    r = recharge_async(lossy.url, operator, card, 3000)
    assert outcome(lossy.url, operator, r.headers["Location"])["status"] == "succeeded"
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 3000
    assert ledger_ok(db, card)


def test_lost_confirm_of_an_unclaimed_command_has_no_effect(spawn, operator, db, queue):
    """No consumer had claimed the command when the publisher gave up on its
    confirm: the caller is told 503, and the message delivered later is
    skipped; a retry with the same key then applies it once."""
    lossy = spawn(AMQP_QUEUE=queue, ASYNC_CONSUMERS=0, TRANSITD_TEST_LOSE_CONFIRMS=1)
    card = new_card(lossy.url, operator)
    key = uuid.uuid4().hex
    r = recharge_async(lossy.url, operator, card, 3000, key=key, expect=503)
    assert r.headers["Retry-After"]
    op = db_scalar(db, "SELECT operation_id FROM operations WHERE idempotency_key = %s", key)
    consumer = spawn(AMQP_QUEUE=queue)
    assert poll(lambda: db_scalar(db, "SELECT claimed_at IS NOT NULL FROM operations WHERE operation_id = %s",
                                  op), timeout=30), "the late message was never delivered"
    assert db_scalar(db, "SELECT status FROM operations WHERE operation_id = %s", op) == "failed"
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 0
    r = recharge_async(consumer.url, operator, card, 3000, key=key)
    assert outcome(consumer.url, operator, r.headers["Location"])["status"] == "succeeded"
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 3000
    assert ledger_ok(db, card)


def test_broker_restart_during_a_burst(base, operator, db):
    """Every 202 is applied exactly once; what the broker could not confirm
    was answered 503 and has no effect."""
    card = new_card(base, operator)
    stop = threading.Event()
    answers, lock = [], threading.Lock()

    def client():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 1000},
                           headers={**operator, **ASYNC}, timeout=30)
                with lock:
                    answers.append((r.status_code, r.headers.get("Location")))
            except requests.RequestException as e:
                with lock:
                    answers.append((repr(e), None))
            time.sleep(0.01)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        rabbitmq("stop")
        time.sleep(1.0)
        rabbitmq("start")
        time.sleep(2.0)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    accepted = [loc for status, loc in answers if status == 202]
    others = {status for status, _ in answers if status != 202}
    assert accepted and others <= {503}, others
    for loc in accepted:
        assert outcome(base, operator, loc, timeout=60)["status"] == "succeeded"
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == len(accepted)
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 1000 * len(accepted)
    assert ledger_ok(db, card)


def test_broker_down_503_or_synchronous_fallback(spawn, base, operator, db):
    fallback = spawn(ASYNC_FALLBACK="sync")
    card = new_card(base, operator)
    rabbitmq("stop")
    try:
        r = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 1000},
                          headers={**operator, **ASYNC}, timeout=30)
        assert_problem(r, 503, "unavailable")
        assert r.headers["Retry-After"]
        assert requests.get(base + "/health/queue", timeout=30).status_code == 503
        r = requests.post(fallback.url + V1 + "/cards/recharge", json={"card_id": card, "amount": 1000},
                          headers={**operator, **ASYNC}, timeout=30)
        assert r.status_code == 201, r.text  # answered synchronously
        # synchronous requests are unaffected
        r = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 1000}, headers=operator)
        assert r.status_code == 201
    finally:
        rabbitmq("start")
    assert db_scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 2
    assert poll(lambda: requests.get(base + "/health/queue").status_code == 200, timeout=30)
