"""Travel cards under concurrency and with Redis in trouble: many recharges
of one card at once, one Idempotency-Key sent many times at once, recharges
while Redis is stopped, dropped Redis connections, and cached balances that
must not go stale while writes and reads race.

Requests go as the local admin."""
import base64
import hashlib
import json
import os
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import admin_headers, assert_problem, poll, services

V1 = "/api/v1"
TIMEOUT = 60
AUTH = {}  # filled by the autouse fixture below



@pytest.fixture(scope="module", autouse=True)
def _as_admin(base):
    AUTH.clear()
    AUTH.update(admin_headers(base))


# ---------------------------------------------------------------------------
# Helpers (local to this file)

_local = threading.local()


def session():
    """One requests.Session per thread."""
    s = getattr(_local, "s", None)
    if s is None:
        s = _local.s = requests.Session()
    return s


def new_card(base, user_id=None):
    r = requests.post(base + V1 + "/cards", json={} if user_id is None else {"user_id": user_id}, headers=AUTH,
                      timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    return r.json()


def money(db, card_id):
    """(balance, ledger rows, ledger sum, recharge rows, recharge sum)."""
    with db.cursor() as cur:
        cur.execute(
            "SELECT c.balance,"
            " (SELECT count(*) FROM card_ledger l WHERE l.card_id = c.card_id),"
            " (SELECT coalesce(sum(amount), 0) FROM card_ledger l WHERE l.card_id = c.card_id),"
            " (SELECT count(*) FROM recharges r WHERE r.card_id = c.card_id),"
            " (SELECT coalesce(sum(amount), 0) FROM recharges r WHERE r.card_id = c.card_id)"
            " FROM cards c WHERE c.card_id = %s", (card_id,))
        return cur.fetchone()


def assert_ledger_consistent(db, card_id):
    """balance == ledger sum; balance_after is the running sum; recharges match ledger rows."""
    balance, _, ledger_sum, _, _ = money(db, card_id)
    assert balance == ledger_sum, (balance, ledger_sum)
    with db.cursor() as cur:
        cur.execute("SELECT amount, balance_after FROM card_ledger WHERE card_id = %s ORDER BY entry_id",
                    (card_id,))
        running = 0
        for amount, after in cur.fetchall():
            running += amount
            assert after == running, (after, running)
        cur.execute("SELECT count(*) FROM recharges r JOIN card_ledger l ON l.entry_id = r.ledger_entry_id"
                    " WHERE r.card_id = %s AND l.card_id = r.card_id AND l.kind = 'recharge'"
                    " AND l.amount = r.amount", (card_id,))
        joined = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM card_ledger WHERE card_id = %s AND kind = 'recharge'", (card_id,))
        assert joined == cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM recharges WHERE card_id = %s", (card_id,))
        assert joined == cur.fetchone()[0]


def recharge_call(base, card_id, amount, key=None):
    h = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    r = session().post(base + V1 + "/cards/recharge", json={"card_id": card_id, "amount": amount}, headers=h,
                       timeout=TIMEOUT)
    return r.status_code, r.headers, r.text


def balance_call(base, card_id):
    r = session().get(base + V1 + f"/cards/{card_id}/balance", headers=AUTH, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()["balance"], r.headers.get("X-Cache")


def try_balance(base, card_id):
    """(balance, X-Cache), or (None, status) when the read was refused."""
    r = session().get(base + V1 + f"/cards/{card_id}/balance", headers=AUTH, timeout=TIMEOUT)
    if r.status_code != 200:
        return None, r.status_code
    return r.json()["balance"], r.headers.get("X-Cache")


def redis_cli(*args):
    out = subprocess.run(["redis-cli", "-p", os.environ["TEST_REDIS_PORT"], *args], capture_output=True,
                         text=True, timeout=10)
    return out.stdout.strip()


def redis_up():
    return redis_cli("PING") == "PONG"


def settle_cache(base, card_id, timeout=30):
    """Waits until every worker of the server at base uses Redis again: rounds
    of concurrent balance reads until two rounds in a row are all 200 and none
    BYPASS. Returns the seconds it took. Leaves the server healthy for the
    tests that follow."""
    start = time.time()
    clean = 0
    with ThreadPoolExecutor(max_workers=32) as pool:
        while time.time() - start < timeout:
            got = list(pool.map(lambda _: try_balance(base, card_id), range(64)))
            ok = all(b is not None and x in ("HIT", "MISS") for b, x in got)
            clean = clean + 1 if ok else 0
            if clean == 2:
                return time.time() - start
            time.sleep(0.2)
    raise AssertionError(f"the server at {base} still bypassed the cache {timeout} s after Redis came back")


def warm_all_workers(base, card_id):
    """Makes every worker open its Redis connection (concurrent reads)."""
    with ThreadPoolExecutor(max_workers=48) as pool:
        list(pool.map(lambda _: balance_call(base, card_id), range(300)))



# ---------------------------------------------------------------------------

def test_200_concurrent_recharges_of_one_card(base, db):
    cid = new_card(base)["card_id"]
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda _: recharge_call(base, cid, 1000), range(200)))
    statuses = [s for s, _, _ in results]
    assert statuses == [201] * 200, {s: statuses.count(s) for s in set(statuses)}
    bodies = [json.loads(t) for _, _, t in results]
    assert len({b["recharge_id"] for b in bodies}) == 200
    # Each new_balance is one of 1000..200000, each exactly once (the row update serialises them).
    assert sorted(b["new_balance"] for b in bodies) == list(range(1000, 200001, 1000))
    assert money(db, cid) == (200000, 200, 200000, 200, 200000)
    assert_ledger_consistent(db, cid)
    assert balance_call(base, cid)[0] == 200000


def test_concurrent_recharges_of_many_cards(base, db):
    """Recharges of different cards interleave without touching each other."""
    cards = [new_card(base)["card_id"] for _ in range(10)]
    jobs = [(cid, 1000 * (i + 1)) for i, cid in enumerate(cards) for _ in range(10)]
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda j: recharge_call(base, j[0], j[1]), jobs))
    assert all(s == 201 for s, _, _ in results), [t for s, _, t in results if s != 201][:3]
    for i, cid in enumerate(cards):
        amount = 1000 * (i + 1)
        assert money(db, cid) == (10 * amount, 10, 10 * amount, 10, 10 * amount)
        assert_ledger_consistent(db, cid)


def test_100_concurrent_requests_one_idempotency_key(base, db):
    cid = new_card(base)["card_id"]
    key = "burst-" + uuid.uuid4().hex
    barrier = threading.Barrier(20)

    def call(i):
        if i < 20:
            barrier.wait(timeout=30)  # the first wave really arrives together
        return recharge_call(base, cid, 5000, key)

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(100)))
    created = [(h, t) for s, h, t in results if s == 201]
    in_progress = [(h, t) for s, h, t in results if s == 409]
    other = [(s, t) for s, h, t in results if s not in (201, 409)]
    assert other == [], other[:3]
    assert len(created) >= 1
    assert len({t for _, t in created}) == 1, "201 answers with different bodies"
    first = [h for h, _ in created if h.get("Idempotent-Replayed") != "true"]
    assert len(first) == 1, "not exactly one request ran for the key"
    for h, t in in_progress:
        p = json.loads(t)
        assert p["type"] == "/problems/idempotency-in-progress", p
        assert h["Content-Type"].startswith("application/problem+json")
    assert money(db, cid) == (5000, 1, 5000, 1, 5000)
    # Replay once more: the stored 201.
    s, h, t = recharge_call(base, cid, 5000, key)
    assert s == 201, t
    assert h.get("Idempotent-Replayed") == "true"
    assert t == created[0][1]
    assert money(db, cid) == (5000, 1, 5000, 1, 5000)
    assert_ledger_consistent(db, cid)


def idempotency_lock_id(method, pattern, user_id, key):
    """The advisory lock a request with this Idempotency-Key takes while it
    runs (lock_id in src/api/idempotency.c): the first 64 bits, little-endian,
    of BLAKE2b-256 over the scope (method, route pattern, caller) and the
    key, each followed by a newline."""
    scope = f"{method} {pattern} {user_id}"
    h = hashlib.blake2b((scope + "\n" + key + "\n").encode(), digest_size=32).digest()
    return int.from_bytes(h[:8], "little", signed=True)


def caller_id(headers):
    """The user id (the "sub" claim) of the bearer token in headers."""
    payload = headers["Authorization"].split()[1].split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def test_idempotency_in_progress_problem_shape(base, db):
    """A duplicate that arrives while the request with its key runs is
    answered 409 at once, with Retry-After, and changes nothing. The test
    holds the key's advisory lock itself, as the running request would, so
    the duplicate meets it every time; once the lock is gone the same key
    runs, once, and a replay gets its answer."""
    cid = new_card(base)["card_id"]
    key = "held-" + uuid.uuid4().hex
    lock = idempotency_lock_id("POST", V1 + "/cards/recharge", caller_id(AUTH), key)
    with db.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (lock,))
    try:
        for _ in range(3):
            r = session().post(base + V1 + "/cards/recharge", json={"card_id": cid, "amount": 1000},
                               headers={**AUTH, "Idempotency-Key": key}, timeout=TIMEOUT)
            assert_problem(r, 409, "idempotency-in-progress")
            assert r.headers.get("Retry-After") == "1"
            assert r.headers.get("Idempotent-Replayed") is None
        assert money(db, cid) == (0, 0, 0, 0, 0), "a request refused as in progress changed the card"
    finally:
        with db.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (lock,))
    s, h, t = recharge_call(base, cid, 1000, key)
    assert s == 201, t
    assert h.get("Idempotent-Replayed") is None
    s2, h2, t2 = recharge_call(base, cid, 1000, key)
    assert (s2, h2.get("Idempotent-Replayed"), t2) == (201, "true", t)
    assert money(db, cid) == (1000, 1, 1000, 1, 1000)
    assert_ledger_consistent(db, cid)


def test_recharges_with_redis_stopped(base, db, spawn):
    # With authentication, the default is to refuse tokens while the
    # revocation list cannot be kept current (Redis down); this server accepts them.
    srv = spawn(AUTH_FAIL_OPEN="1").url
    cid = new_card(srv)["card_id"]
    settle_cache(srv, cid)
    assert balance_call(srv, cid) == (0, "HIT")  # cached before Redis goes away
    services("stop", "redis")
    try:
        assert not redis_up()
        for _ in range(10):
            s, _, t = recharge_call(srv, cid, 2000)
            assert s == 201, t
        # Concurrent ones too.
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda _: recharge_call(srv, cid, 1000), range(20)))
        assert [s for s, _, _ in results] == [201] * 20, [t for s, _, t in results if s != 201][:3]
        bodies = [json.loads(t) for _, _, t in results]
        assert sorted(b["new_balance"] for b in bodies) == list(range(21000, 40001, 1000))
        assert money(db, cid) == (40000, 30, 40000, 30, 40000)
        for _ in range(3):
            assert balance_call(srv, cid) == (40000, "BYPASS")
        # Other cards are issued, recharged and read as well.
        other = new_card(srv)["card_id"]
        assert recharge_call(srv, other, 1000)[0] == 201
        assert balance_call(srv, other) == (1000, "BYPASS")
        # A blocked card is still refused without Redis.
        r = requests.post(srv + V1 + f"/cards/{other}/block", headers=AUTH, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert recharge_call(srv, other, 1000)[0] == 409
        assert money(db, other) == (1000, 1, 1000, 1, 1000)
    finally:
        services("start", "redis")
    assert poll(redis_up, 10)
    # Right after the restart every read is correct, whether it bypasses the cache or not.
    deadline = time.time() + 3
    while time.time() < deadline:
        assert balance_call(srv, cid)[0] == 40000
        time.sleep(0.05)
    # The breaker closes by itself; then reads are cached again.
    settle_cache(srv, cid)
    assert poll(lambda: balance_call(srv, cid) == (40000, "HIT"), 10), balance_call(srv, cid)
    s, _, t = recharge_call(srv, cid, 1000)
    assert s == 201, t
    assert balance_call(srv, cid)[0] == 41000
    assert money(db, cid) == (41000, 31, 41000, 31, 41000)
    assert_ledger_consistent(db, cid)
    assert_ledger_consistent(db, other)
    # The suite's server is back too, for the tests that follow.
    settle_cache(base, cid)
    assert balance_call(base, cid)[0] == 41000


def test_cached_balance_not_stale_after_racing_reads(base, db):
    """Readers fill the cache while recharges commit. Whatever the interleaving,
    once the writes are done the balance served must be the committed one: a
    reader that read the row before a recharge committed must not store that
    old value after the recharge invalidated the key (cache-aside fill race).
    The race needs an unlucky schedule, so this runs rounds for about 5 s; it
    does not catch the race every time."""
    stale = []
    started, rounds = time.time(), 0
    while rounds < 5 or time.time() - started < 5:
        rounds += 1
        cid = new_card(base)["card_id"]
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                balance_call(base, cid)

        with ThreadPoolExecutor(max_workers=12) as pool:
            readers = [pool.submit(reader) for _ in range(6)]
            writes = list(pool.map(lambda _: recharge_call(base, cid, 1000), range(30)))
            stop.set()
            for f in readers:
                f.result(timeout=TIMEOUT)
        assert all(s == 201 for s, _, _ in writes)
        expected = money(db, cid)[0]
        assert expected == 30000
        served = [balance_call(base, cid) for _ in range(3)]
        if any(b != expected for b, _ in served):
            stale.append((cid, expected, served))
    assert stale == [], ("in %d of %d rounds the cached balance differed from the committed one after all "
                         "writes finished (card, db balance, [(served, X-Cache)]): %r" % (len(stale), rounds, stale))


def test_recharge_refused_cleanly_while_tokens_cannot_be_checked(base, db):
    """The suite's server keeps the default AUTH_FAIL_OPEN=0: while Redis is
    down it cannot know about revoked tokens, so an authenticated recharge is
    refused with 503 and Retry-After (a valid token is not 'invalid'), and
    nothing is written. Once Redis is back the same request goes through."""
    cid = new_card(base)["card_id"]
    assert recharge_call(base, cid, 1000)[0] == 201
    services("stop", "redis")
    try:
        # The subscriber notices the lost connection within moments.
        poll(lambda: try_balance(base, cid)[0] is None, 5)
        r = session().post(base + V1 + "/cards/recharge", json={"card_id": cid, "amount": 1000}, headers=AUTH,
                           timeout=TIMEOUT)
        assert money(db, cid) == (1000, 1, 1000, 1, 1000), "a refused recharge changed the card"
        assert_problem(r, 503, "unavailable")
        assert r.headers.get("Retry-After"), r.headers
    finally:
        services("start", "redis")
        # Whatever happened above, leave the server usable for the tests that follow.
        assert poll(redis_up, 10)
        back = poll(lambda: try_balance(base, cid)[0] is not None, 20)
        settle_cache(base, cid)
    assert back, "authenticated requests still refused 20 s after Redis came back"
    assert recharge_call(base, cid, 1000)[0] == 201
    assert money(db, cid) == (2000, 2, 2000, 2, 2000)


def test_recharge_invalidates_after_redis_connections_drop(base, db, spawn):
    """Redis stays up with its data, but the server's connections to it are
    dropped (a network blip, a Redis failover, `CLIENT KILL`). A recharge
    right after must still invalidate the cached balance: no balance read
    after the recharge may show the old value.

    Rate limiting is off (RATE_LIMIT_PER_MINUTE=0), so the invalidation is the
    first command a worker sends on its dead connection; with rate limiting
    on, the rate-limit INCR happens to absorb the dead connection first."""
    srv = spawn(RATE_LIMIT_PER_MINUTE="0").url
    cid = new_card(srv)["card_id"]
    assert recharge_call(srv, cid, 1000)[0] == 201
    settle_cache(srv, cid)
    assert balance_call(srv, cid) == (1000, "HIT")
    warm_all_workers(srv, cid)  # every worker now holds a Redis connection
    try:
        killed = redis_cli("CLIENT", "KILL", "TYPE", "normal")
        assert killed.isdigit() and int(killed) >= 1, killed
        s, _, t = recharge_call(srv, cid, 1000)
        assert s == 201, t
        assert json.loads(t)["new_balance"] == 2000
        assert money(db, cid)[0] == 2000
        # Read until the cache is in use again (the breaker may flap for a few
        # seconds while workers reconnect), then some more.
        seen = []
        deadline = time.time() + 15
        while time.time() < deadline and sum(x in ("HIT", "MISS") for _, x in seen) < 20:
            seen.append(try_balance(srv, cid))
            time.sleep(0.05)
        stale = [x for x in seen if x[0] != 2000]
        cached = redis_cli("GET", f"transitd:card:{cid}:balance")
        assert stale == [], (
            f"{len(stale)} of {len(seen)} balance reads after the recharge did not return the new balance, "
            f"e.g. {stale[0]}; db balance 2000; Redis holds {cached}")
        assert sum(x in ("HIT", "MISS") for _, x in seen) >= 20, "the cache was not used again within 15 s"
    finally:
        settle_cache(srv, cid)
        settle_cache(base, cid)  # its connections were dropped too
