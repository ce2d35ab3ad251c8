"""Dependencies failing and coming back; start-up refusals. Every test that
stops a service starts it again in a finally."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import (NEAR_CACHE_S, assert_problem, db_scalar, flush_cache, free_port, poll, redis_cli, run_bin,
                      services)

V1 = "/api/v1"


def redis_up():
    return redis_cli("PING") == "PONG"


def warm_up(url, rounds=3, width=64, timeout=30):
    """After a PostgreSQL restart every worker of a server may still hold a dead
    connection (see test_postgres_restart_no_failed_request_after_it_is_back).
    Sends rounds of concurrent requests until `rounds` rounds in a row come back
    all 200 (bounded), so that later tests meet a server that has reconnected."""
    deadline = time.time() + timeout
    clean = 0
    seen = []

    def one(_):
        try:
            return requests.get(url, timeout=10).status_code
        except requests.RequestException:
            return None

    with ThreadPoolExecutor(width) as pool:
        while clean < rounds and time.time() < deadline:
            statuses = list(pool.map(one, range(width)))
            seen += statuses
            clean = clean + 1 if all(st == 200 for st in statuses) else 0
    assert clean >= rounds, "server did not recover: %r" % seen[-width:]


@pytest.fixture
def session_recovers(base):
    """Stopping PostgreSQL breaks the session server's connections too."""
    yield
    warm_up(base + "/health/db")


# ---------------------------------------------------------------------- Redis

def test_redis_down_reads_bypass_then_recover(base, db):
    sid = db_scalar(db, "SELECT min(station_id) FROM stations")
    paths = [V1 + "/localities", V1 + "/stations/%d" % sid, V1 + "/routes"]
    for p in paths:
        requests.get(base + p)  # cached in Redis and the near-cache
    try:
        services("stop", "redis")
        time.sleep(NEAR_CACHE_S)  # near-cache entries expire; nothing is refilled without Redis
        for _ in range(2):
            for p in paths:
                t0 = time.time()
                r = requests.get(base + p, timeout=10)
                assert r.status_code == 200, r.text
                assert r.headers["X-Cache"] == "BYPASS", (p, r.headers.get("X-Cache"))
                assert time.time() - t0 < 2, "a read must not wait long for a dead Redis"
        r = requests.get(base + "/health/cache", timeout=10)
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unhealthy" and body["error"]
        assert "Retry-After" in r.headers
        assert requests.get(base + "/health").status_code == 200
        assert requests.get(base + "/health/db").status_code == 200
    finally:
        services("start", "redis")
    assert redis_up()

    def miss_then_hit():
        first = requests.get(base + V1 + "/localities", timeout=5)
        if first.headers.get("X-Cache") != "MISS":
            return False
        second = requests.get(base + V1 + "/localities", timeout=5)
        return second.headers.get("X-Cache") == "HIT"

    assert poll(miss_then_hit, timeout=10, interval=0.3), "reads did not return to MISS then HIT"
    assert poll(lambda: requests.get(base + "/health/cache").status_code == 200, timeout=10)
    for p in paths[1:]:
        assert poll(lambda: requests.get(base + p).headers.get("X-Cache") == "HIT", timeout=10), p


def test_redis_down_metrics_show_breaker(base):
    try:
        services("stop", "redis")
        time.sleep(NEAR_CACHE_S)

        def breaker_open():
            # failures open it once they have lasted REDIS_BREAKER_WINDOW_MS (1 s)
            requests.get(base + V1 + "/routes")
            text = requests.get(base + "/metrics").text
            line = [l for l in text.splitlines() if l.startswith("transitd_redis_breaker_state ")][0]
            return float(line.split()[1]) in (1, 2)

        assert poll(breaker_open, timeout=10, interval=0.2), "the breaker stayed closed with Redis down"
    finally:
        services("start", "redis")
    assert poll(lambda: requests.get(base + "/health/cache").status_code == 200, timeout=10)


# ----------------------------------------------------------------- PostgreSQL

def test_postgres_down_503_fast_then_recover(spawn, db, session_recovers):
    s = spawn(DB_CONNECT_TIMEOUT=2)
    with db.cursor() as cur:
        cur.execute("SELECT station_id FROM stations ORDER BY station_id DESC LIMIT 3")
        sids = [r[0] for r in cur.fetchall()]
    db.close()
    flush_cache()  # nothing these reads need may come from Redis
    try:
        services("stop", "pg")
        for path in (V1 + "/stations/%d" % sids[0], V1 + "/routes/1", V1 + "/stations/%d/arrivals" % sids[1]):
            t0 = time.time()
            r = requests.get(s.url + path, timeout=15)
            elapsed = time.time() - t0
            assert_problem(r, 503, "unavailable")
            assert int(r.headers["Retry-After"]) >= 1
            assert elapsed < 5, "%s took %.1f s with the database down" % (path, elapsed)
        for path in ("/health/db", V1 + "/health/db", "/readyz"):
            t0 = time.time()
            r = requests.get(s.url + path, timeout=15)
            assert time.time() - t0 < 5
            assert r.status_code == 503, (path, r.text)
            assert r.headers["Content-Type"].startswith("application/json")
            assert r.json()["status"] in ("unhealthy", "not-ready")
            assert r.json()["error"]
            assert int(r.headers["Retry-After"]) >= 1
        # What needs no database still answers.
        assert requests.get(s.url + "/livez", timeout=5).status_code == 200
        assert requests.get(s.url + "/health", timeout=5).status_code == 200
        assert requests.get(s.url + "/metrics", timeout=5).status_code == 200
    finally:
        services("start", "pg")
    assert poll(lambda: requests.get(s.url + V1 + "/stations/%d" % sids[0], timeout=10).status_code == 200,
                timeout=20), "the spawned server did not recover after PostgreSQL came back"
    assert poll(lambda: requests.get(s.url + "/health/db", timeout=10).status_code == 200, timeout=20)
    assert requests.get(s.url + "/readyz", timeout=10).status_code == 200


def test_postgres_restart_no_failed_request_after_it_is_back(spawn, session_recovers):
    """Once PostgreSQL is back, a server whose connections all died while it
    was down must not answer 503 to the requests that find them dead: it
    reconnects and retries (each worker holds one connection)."""
    s = spawn(WORKERS=4)
    for _ in range(8):
        assert requests.get(s.url + "/health/db").status_code == 200
    try:
        services("stop", "pg")
    finally:
        services("start", "pg")
    statuses = [requests.get(s.url + "/health/db", timeout=10).status_code for _ in range(12)]
    assert statuses == [200] * 12, statuses


# ------------------------------------------------------------ start-up checks

@pytest.mark.parametrize("env,name", [({"PORT": "abc"}, "PORT"), ({"PORT": "70000"}, "PORT"),
                                      ({"MAX_BODY_BYTES": "abc"}, "MAX_BODY_BYTES"),
                                      ({"WORKERS": "0"}, "WORKERS"),
                                      ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
                                      ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
                                      ({"REDIS_URL": "http://x"}, "REDIS_URL")])
def test_bad_config_exits_2(env, name):
    p = run_bin("serve", env=env)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert name in p.stderr


def test_newer_schema_refused(db, base):
    with db.cursor() as cur:
        cur.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'e2e_future.sql')")
    try:
        p = run_bin("serve", env={"PORT": str(free_port())})
        assert p.returncode != 0
        assert "schema" in p.stderr.lower(), p.stderr
        assert "9999" in p.stderr
        r = requests.get(base + "/readyz")
        assert r.status_code == 503
        assert "newer" in r.json()["error"]
    finally:
        with db.cursor() as cur:
            cur.execute("DELETE FROM schema_migrations WHERE version = 9999")
    assert requests.get(base + "/readyz").status_code == 200


def test_unreachable_database_refused():
    p = run_bin("serve", env={"DATABASE_URL": "postgresql://transitd@127.0.0.1:1/transitd",
                              "DB_CONNECT_TIMEOUT": "1"})
    assert p.returncode == 1, p.stderr
    assert "database" in p.stderr.lower()
