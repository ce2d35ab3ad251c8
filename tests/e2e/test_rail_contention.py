"""Many riders booking the same run at once: 300 clients asking for specific
seats (1-3 random seats each) and 100 asking for any 2 standard seats, all
released together against a 100-seat run. Every answer is 201, 409
seat-taken or 402; afterwards no seat is sold twice, sold + free seats make
the whole train, the money taken is exactly the price of the seats sold,
every card's balance is the sum of its ledger, and neither the server nor
PostgreSQL reports a deadlock."""
import concurrent.futures
import datetime
import os
import random
import threading
import time
import uuid

import requests

from conftest import bearer, db_rows, db_scalar, login, poll

V1 = "/api/v1"
BOGOTA = datetime.timezone(datetime.timedelta(hours=-5))
PRICE = 6500
SEATS = 100
RIDERS = 40
SPECIFIC_CLIENTS = 300
ANY_CLIENTS = 100
BALANCE = 100000
PASSWORD = "contention-password-1"


def utc(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def create_run(base, admin):
    """A run of train 2 (100 standard seats) tomorrow at 23:10 Bogotá, a time
    the demo schedule (05:00-22:00) never uses; a later minute if taken."""
    day = datetime.datetime.now(BOGOTA).date() + datetime.timedelta(days=1)
    for minute in range(10, 30):
        dep = datetime.datetime.combine(day, datetime.time(23, minute), BOGOTA)
        r = requests.post(base + V1 + "/rail/runs", headers=admin, timeout=10, json={
            "train_id": 2, "origin_station_id": 210, "destination_station_id": 201,
            "departure_time": utc(dep), "arrival_time": utc(dep + datetime.timedelta(minutes=58))})
        if r.status_code != 409:
            break
    assert r.status_code == 201, r.text
    return r.json()["run_id"]


def make_rider(base, operator):
    """A registered rider with a card of their own holding BALANCE: (headers, card_id)."""
    email = "rail.contention.%s@example.test" % uuid.uuid4().hex[:16]
    r = requests.post(base + V1 + "/auth/register", timeout=30, json={
        "email": email, "password": PASSWORD, "first_name": "Pasajera", "last_name": "Concurrente"})
    assert r.status_code == 201, r.text
    headers = bearer(login(base, email, PASSWORD)["access_token"])
    r = requests.post(base + V1 + "/cards", json={}, headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    card = r.json()["card_id"]
    r = requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": BALANCE},
                      headers=operator, timeout=10)
    assert r.status_code == 201, r.text
    return headers, card


def pg_log_size():
    path = os.path.join(os.environ["TEST_PG_DIR"], "server.log")
    return path, (os.path.getsize(path) if os.path.exists(path) else 0)


def test_many_riders_book_one_run_at_once(spawn, admin, operator, db):
    server = spawn()
    base = server.url
    # A server just started answers 503 to signed-in requests until it has
    # loaded the token revocations.
    assert poll(lambda: requests.get(base + V1 + "/rail/bookings", headers=admin, params={"limit": 1},
                                     timeout=5).status_code == 200, 15)
    run_id = create_run(base, admin)
    seat_map = requests.get(base + V1 + "/rail/runs/%d/seats" % run_id, timeout=10).json()["seats"]
    seat_ids = [s["seat_id"] for s in seat_map]
    assert len(seat_ids) == SEATS and all(s["status"] == "free" and s["price"] == PRICE for s in seat_map)

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        riders = list(pool.map(lambda _: make_rider(base, operator), range(RIDERS)))
    cards = [card for _, card in riders]

    rng = random.Random(20261125)
    jobs = [("seats", riders[i % RIDERS], sorted(rng.sample(seat_ids, rng.randint(1, 3))))
            for i in range(SPECIFIC_CLIENTS)]
    jobs += [("any", riders[i % RIDERS], None) for i in range(ANY_CLIENTS)]
    rng.shuffle(jobs)
    barrier = threading.Barrier(len(jobs), timeout=60)
    pg_log, pg_log_start = pg_log_size()

    def client(job):
        kind, (headers, card), wanted = job
        body = {"run_id": run_id, "card_id": card}
        if kind == "seats":
            body["seat_ids"] = wanted
        else:
            body.update(seat_count=2, **{"class": "standard"})
        with requests.Session() as s:
            barrier.wait()
            try:
                r = s.post(base + V1 + "/rail/bookings", json=body, headers=headers, timeout=60)
            except requests.RequestException as e:
                return job, None, repr(e)
            try:
                doc = r.json()
            except ValueError:
                doc = r.text
            return job, r.status_code, doc

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(client, jobs))
    elapsed = time.monotonic() - started
    assert elapsed < 60, "the burst took %.1f s" % elapsed

    # Every answer is a booking, a seat taken or a balance short; never a 5xx
    # or a broken connection.
    errors = [(job[0], status, doc) for job, status, doc in results
              if status not in (201, 402, 409)]
    assert errors == [], "unexpected answers: %r" % errors[:10]
    for job, status, doc in results:
        if status == 409:
            assert doc["type"] == "/problems/seat-taken", doc
            assert isinstance(doc.get("seats"), list), doc
            if job[0] == "seats":
                assert doc["seats"] and set(doc["seats"]) <= set(job[2]), (job[2], doc)
        elif status == 402:
            assert doc["type"] == "/problems/insufficient-balance", doc
            assert doc["balance"] < doc["total_amount"], doc
    created = [(job, doc) for job, status, doc in results if status == 201]
    assert created, "no booking succeeded"
    sold_by_api = []
    for job, doc in created:
        assert doc["run_id"] == run_id and doc["status"] == "confirmed", doc
        got = [s["seat_id"] for s in doc["seats"]]
        if job[0] == "seats":
            assert got == job[2], (job[2], doc)
        else:
            assert len(got) == 2 and all(s["class"] == "standard" for s in doc["seats"]), doc
        assert doc["total_amount"] == PRICE * len(got), doc
        sold_by_api += got
    assert len(sold_by_api) == len(set(sold_by_api)), "a seat was sold twice in the answers"
    statuses = {}
    for _, status, _ in results:
        statuses[status] = statuses.get(status, 0) + 1

    print("rail contention: %r in %.1f s" % (statuses, elapsed))
    # The database agrees.
    twice = db_rows(db, "SELECT seat_id FROM rail_booking_seats WHERE active GROUP BY seat_id HAVING count(*) > 1")
    assert twice == [], "seats in two active bookings: %r" % twice
    sold = db_scalar(db, "SELECT count(*) FROM rail_booking_seats bs JOIN rail_seats s USING (seat_id)"
                         " WHERE s.run_id = %s AND bs.active", run_id)
    assert sold == len(sold_by_api), (sold, len(sold_by_api), statuses)
    assert set(r[0] for r in db_rows(db, "SELECT bs.seat_id FROM rail_booking_seats bs JOIN rail_seats s"
                                         " USING (seat_id) WHERE s.run_id = %s AND bs.active", run_id)) \
        == set(sold_by_api)
    after = requests.get(base + V1 + "/rail/runs/%d/seats" % run_id, timeout=10).json()["seats"]
    free = sum(1 for s in after if s["status"] == "free")
    assert sold + free == SEATS, (sold, free)
    assert {s["seat_id"] for s in after if s["status"] == "taken"} == set(sold_by_api)
    total = db_scalar(db, "SELECT coalesce(sum(total_amount), 0) FROM rail_bookings WHERE run_id = %s", run_id)
    assert total == PRICE * sold, (total, sold)
    assert db_scalar(db, "SELECT count(*) FROM rail_bookings WHERE run_id = %s", run_id) == len(created)
    day = datetime.datetime.now(BOGOTA).date() + datetime.timedelta(days=1)
    listed = {x["run_id"]: x for x in requests.get(base + V1 + "/rail/runs", timeout=10, params={
        "origin": 210, "date": day.isoformat()}).json()["runs"]}
    assert listed[run_id]["seats_free"] == free

    # Money: each card's balance is its ledger's sum, and BALANCE less what it paid.
    bad = db_rows(db, "SELECT c.card_id, c.balance, coalesce(sum(l.amount), 0) FROM cards c"
                      " LEFT JOIN card_ledger l USING (card_id) WHERE c.card_id = ANY(%s)"
                      " GROUP BY c.card_id HAVING c.balance <> coalesce(sum(l.amount), 0)", cards)
    assert bad == [], "cards whose balance is not the sum of their ledger: %r" % bad
    paid = dict(db_rows(db, "SELECT card_id, sum(total_amount) FROM rail_bookings WHERE run_id = %s"
                            " GROUP BY card_id", run_id))
    for card in cards:
        bal = db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card)
        assert bal == BALANCE - paid.get(card, 0) and bal >= 0, (card, bal, paid.get(card))
    assert db_scalar(db, "SELECT count(*) FROM card_ledger WHERE card_id = ANY(%s) AND kind = 'booking'",
                     cards) == len(created)

    # No deadlock, no server error in the logs.
    logs = server.logs().lower()
    assert "deadlock" not in logs, server.logs()[-3000:]
    with open(pg_log, errors="replace") as f:
        f.seek(pg_log_start)
        pg = f.read()
    assert "deadlock detected" not in pg, pg[-3000:]


def test_concurrent_cancels_refund_once(base, admin, rider, operator, db):
    """Twenty cancellations of one booking at once: one 200, the rest 409
    conflict, one refund."""
    run_id = create_run(base, admin)
    card = requests.post(base + V1 + "/cards", json={}, headers=rider, timeout=10).json()["card_id"]
    requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 20000}, headers=operator,
                  timeout=10).raise_for_status()
    r = requests.post(base + V1 + "/rail/bookings", headers=rider, timeout=10,
                      json={"run_id": run_id, "card_id": card, "seat_count": 3, "class": "standard"})
    assert r.status_code == 201, r.text
    booking = r.json()["booking_id"]
    barrier = threading.Barrier(20, timeout=30)

    def cancel(_):
        with requests.Session() as s:
            barrier.wait()
            r = s.post(base + V1 + "/rail/bookings/%d/cancel" % booking, headers=rider, timeout=30)
            return r.status_code, r.json()["type"] if r.status_code != 200 else "ok"

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        got = list(pool.map(cancel, range(20)))
    assert sorted(got) == [(200, "ok")] + [(409, "/problems/conflict")] * 19, got
    assert db_scalar(db, "SELECT count(*) FROM card_ledger WHERE reference = %s AND kind = 'refund'",
                     "booking:%d" % booking) == 1
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 20000
    assert db_scalar(db, "SELECT count(*) FROM rail_booking_seats WHERE booking_id = %s AND active", booking) == 0


def test_concurrent_bookings_on_one_card_never_overdraw(base, admin, rider, operator, db):
    """Ten bookings of one seat each, at once, from a card that pays for two:
    two 201, eight 402; the balance never goes below zero."""
    run_id = create_run(base, admin)
    card = requests.post(base + V1 + "/cards", json={}, headers=rider, timeout=10).json()["card_id"]
    requests.post(base + V1 + "/cards/recharge", json={"card_id": card, "amount": 2 * PRICE + 1000},
                  headers=operator, timeout=10).raise_for_status()
    seats = [s["seat_id"] for s in requests.get(base + V1 + "/rail/runs/%d/seats" % run_id, timeout=10).json()["seats"]]
    barrier = threading.Barrier(10, timeout=30)

    def book(i):
        with requests.Session() as s:
            barrier.wait()
            r = s.post(base + V1 + "/rail/bookings", headers=rider, timeout=30,
                       json={"run_id": run_id, "card_id": card, "seat_ids": [seats[i]]})
            return r.status_code

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        got = sorted(pool.map(book, range(10)))
    assert got == [201, 201] + [402] * 8, got
    assert db_scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 1000
    assert db_scalar(db, "SELECT count(*) FROM rail_bookings WHERE card_id = %s", card) == 2
    assert db_scalar(db, "SELECT count(*) FROM rail_booking_seats bs JOIN rail_seats s USING (seat_id)"
                         " WHERE s.run_id = %s AND bs.active", run_id) == 2
    assert db_rows(db, "SELECT c.balance - coalesce(sum(l.amount), 0) FROM cards c LEFT JOIN card_ledger l"
                       " USING (card_id) WHERE c.card_id = %s GROUP BY c.balance", card) == [(0,)]
