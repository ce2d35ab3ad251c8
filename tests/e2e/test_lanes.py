"""A hot card does not hold the service (issue 11, item 3; src/http/lanes.h).

Hundreds of bookings paid from one card at once, on a server of four
workers: they wait in the card's lane without a worker, so a rider of
another card is served meanwhile; they run in batches (one database call and
one commit per batch) and every one is answered; no seat is sold twice, the
card's balance is the sum of its ledger and equals what the bookings took,
and each Idempotency-Key has one effect even when its duplicates wait in the
same batch."""
import concurrent.futures
import threading
import time
import uuid

import requests

from conftest import bearer, db_rows, db_scalar, login, poll

V1 = "/api/v1"
TIMEOUT = 60


def rider_with_card(base, operator, amount):
    email = "lanes.%s@example.test" % uuid.uuid4().hex[:16]
    r = requests.post(base + V1 + "/auth/register", timeout=TIMEOUT, json={
        "email": email, "password": "lanes-password-1", "first_name": "Tarjeta", "last_name": "Caliente"})
    assert r.status_code == 201, r.text
    headers = bearer(login(base, email, "lanes-password-1")["access_token"])
    r = requests.post(base + V1 + "/cards", json={}, headers=headers, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    card = r.json()["card_id"]
    left = amount
    while left > 0:
        step = min(left, 500000)
        r = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": step},
                          headers=operator, timeout=TIMEOUT)
        assert r.status_code == 201, r.text
        left -= step
    return headers, card


def future_runs(db, n):
    return [r[0] for r in db_rows(db, "SELECT run_id FROM rail_runs WHERE departure_time > now() + interval '3 hours'"
                                      " ORDER BY departure_time DESC, run_id LIMIT %s", n)]


def metric(base, name):
    for line in requests.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def money_ok(db, card):
    bal, led = db_rows(db, "SELECT balance, (SELECT coalesce(sum(amount), 0) FROM card_ledger WHERE card_id = %s)"
                           " FROM cards WHERE card_id = %s", card, card)[0]
    assert bal == led, (card, bal, led)
    return bal


def test_hot_card_waits_in_its_lane_and_others_are_served(spawn, db, operator):
    server = spawn(WORKERS=4, JOB_QUEUE_SIZE=4096)
    base = server.url
    hot, hot_card = rider_with_card(base, operator, 3000000)
    cold, cold_card = rider_with_card(base, operator, 100000)
    assert poll(lambda: requests.get(base + V1 + "/cards/%d/balance" % cold_card, headers=cold,
                                     timeout=5).status_code == 200, 15)
    runs = future_runs(db, 8)
    before = money_ok(db, hot_card)
    batches0 = metric(base, "transitd_lane_batched_total")
    statuses, stop = [], threading.Event()

    def book(i):
        r = requests.post(base + V1 + "/rail/bookings", headers=hot, timeout=TIMEOUT,
                          json={"run_id": runs[i % len(runs)], "card_id": hot_card, "seat_count": 1,
                                "class": "standard"})
        return r.status_code, (r.json() if r.status_code == 201 else r.text)

    cold_times = []

    def cold_reader():
        while not stop.is_set():
            t0 = time.time()
            r = requests.post(base + V1 + "/trips/start", headers=cold, timeout=TIMEOUT,
                              json={"card_id": cold_card, "route_id": 3, "boarding_station_id": 1})
            cold_times.append(time.time() - t0)
            assert r.status_code == 201, r.text
            r = requests.post(base + V1 + "/trips/end", headers=cold, timeout=TIMEOUT,
                              json={"trip_id": r.json()["trip_id"], "disembarking_station_id": 13})
            assert r.status_code == 200, r.text

    watcher = threading.Thread(target=cold_reader)
    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        futures = [pool.submit(book, i) for i in range(400)]
        time.sleep(0.3)
        watcher.start()
        for f in futures:
            statuses.append(f.result())
    stop.set()
    watcher.join(60)

    codes = {}
    for code, _ in statuses:
        codes[code] = codes.get(code, 0) + 1
    assert codes == {201: 400}, codes
    # Waiting writes ran in batches.
    assert metric(base, "transitd_lane_batched_total") - batches0 > 0
    # The other card's taps were served while the hot card's bookings waited.
    assert cold_times and max(cold_times) < 5, cold_times
    # Money and seats.
    taken = sum(doc["total_amount"] for _, doc in statuses)
    after = money_ok(db, hot_card)
    assert before - after == taken, (before, after, taken)
    assert db_scalar(db, "SELECT count(*) FROM rail_bookings WHERE card_id = %s AND status = 'confirmed'",
                     hot_card) == 400
    assert db_scalar(db, "SELECT count(*) FROM (SELECT seat_id FROM rail_booking_seats WHERE active"
                         " GROUP BY seat_id HAVING count(*) > 1) x") == 0
    assert metric(base, "transitd_lane_parked") == 0


def test_duplicate_keys_in_one_lane_have_one_effect(spawn, db, operator):
    server = spawn(WORKERS=2)
    base = server.url
    headers, card = rider_with_card(base, operator, 500000)
    assert poll(lambda: requests.get(base + V1 + "/cards/%d/balance" % card, headers=headers,
                                     timeout=5).status_code == 200, 15)
    run = future_runs(db, 1)[0]
    keys = ["dup-%s-%d" % (uuid.uuid4().hex[:8], i) for i in range(10)]
    before = money_ok(db, card)

    def book(i):
        key = keys[i % len(keys)]
        r = requests.post(base + V1 + "/rail/bookings", timeout=TIMEOUT,
                          headers={**headers, "Idempotency-Key": key},
                          json={"run_id": run, "card_id": card, "seat_count": 1, "class": "standard"})
        return key, r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(100) as pool:
        results = list(pool.map(book, range(200)))
    by_key = {}
    for key, code, doc in results:
        assert code in (201, 409), (code, doc)
        if code == 409:
            assert doc["type"] == "/problems/idempotency-in-progress", doc
        else:
            by_key.setdefault(key, set()).add(doc["booking_id"])
    # Each key: one booking, whatever the number of its answers.
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    made = db_scalar(db, "SELECT count(*) FROM rail_bookings WHERE card_id = %s", card)
    assert made == len(by_key) <= len(keys)
    after = money_ok(db, card)
    assert before - after == db_scalar(db, "SELECT coalesce(sum(total_amount), 0) FROM rail_bookings"
                                           " WHERE card_id = %s", card)
