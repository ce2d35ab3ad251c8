"""Two instances behind HAProxy on a primary and a streaming replica: reads go
to the replica without ever showing a caller less than it wrote, a replica or
an instance that goes away costs no failed request, and a rolling restart
under load completes without an error."""
import json
import os
import signal
import subprocess
import time

import psycopg2
import requests

from conftest import (DIR, FRONT_URL, REDIS, REPLICA, REPLICA_DB_URL, Load, cluster, instance_pid, new_card,
                      poll, scalar, services, url)


def redis(*args):
    return subprocess.run(["redis-cli", "-p", str(REDIS), *args], capture_output=True, text=True,
                          timeout=10).stdout.strip()


def drop_station_cache():
    keys = redis("--scan", "--pattern", "transitd:station*").split()
    if keys:
        redis("UNLINK", *keys)


def replica_reads(n):
    m = requests.get(url(n) + "/metrics", timeout=5).text
    for line in m.splitlines():
        if line.startswith('transitd_db_reads_total{pool="replica"'):
            return int(line.split()[-1])
    return 0


def replica_sql(sql):
    conn = psycopg2.connect(REPLICA_DB_URL)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def ledger_consistent(db):
    return scalar(db, "SELECT count(*) FROM cards c WHERE balance <> "
                      "(SELECT coalesce(sum(amount), 0) FROM card_ledger l WHERE l.card_id = c.card_id)") == 0


def test_health_shows_the_replica_and_its_lag():
    for n in (1, 2):
        doc = requests.get(url(n) + "/health/db", timeout=5).json()
        assert doc["role"] == "primary"
        (rep,) = doc["replicas"]
        assert rep["role"] == "replica" and rep["up"] is True and rep["lag_ms"] is not None
        assert "lsn" in json.dumps(rep)
    m = requests.get(url(1) + "/metrics", timeout=5).text
    assert 'transitd_db_replica_up{replica="0"} 1' in m
    assert 'transitd_db_replica_lag_ms{replica="0"}' in m


def test_cache_fills_are_served_by_the_replica():
    before = replica_reads(1) + replica_reads(2)
    for rnd in range(3):
        drop_station_cache()
        time.sleep(1.2)  # the near-caches expire
        for i in range(1, 30):
            assert requests.get(FRONT_URL + "/api/v1/stations/%d" % i, timeout=5).status_code == 200
    assert replica_reads(1) + replica_reads(2) > before


def test_a_write_is_read_back_on_the_other_instance(admin):
    """Each alert is created on one instance and listed on the other. That
    instance's near-cache lets go when the invalidation message arrives
    (well under 100 ms); its cache fill may use the replica only once the
    replica has replayed the write. Were a fill to read a replica behind the
    write, the old list would stay cached for the family's TTL, not for
    milliseconds: the 500 ms bound tells the two apart."""
    worst = 0.0
    for i in range(30):
        writer, reader = (1, 2) if i % 2 == 0 else (2, 1)
        station = 1 + i % 10
        r = requests.post(url(writer) + "/api/v1/alerts", headers=admin, timeout=10, json={
            "message": "cluster %d" % i, "severity": "INFO", "station_id": station})
        assert r.status_code == 201, r.text
        alert = r.json()["alert_id"]
        t0 = time.time()
        seen = poll(lambda: alert in [a["alert_id"] for a in requests.get(
            url(reader) + "/api/v1/stations/%d/alerts" % station, timeout=10).json()["alerts"]],
            timeout=0.5, interval=0.005)
        assert seen, "alert %d not listed by instance %d after 500 ms" % (alert, reader)
        worst = max(worst, time.time() - t0)
    print("slowest cross-instance read of a write: %.1f ms" % (worst * 1000))


def test_a_paused_replica_is_not_read_past_what_it_replayed(admin):
    """With WAL replay paused, the replica keeps answering but falls behind:
    fills that need a newer write go to the primary, and once it lags more
    than REPLICA_MAX_LAG_MS it serves nothing, until it catches up."""
    replica_sql("SELECT pg_wal_replay_pause()")
    try:
        for i in range(10):
            station = 20 + i
            r = requests.post(url(1) + "/api/v1/alerts", headers=admin, timeout=10, json={
                "message": "paused %d" % i, "severity": "WARNING", "station_id": station})
            assert r.status_code == 201, r.text
            alert = r.json()["alert_id"]
            for n in (1, 2):
                got = requests.get(url(n) + "/api/v1/stations/%d/alerts" % station, timeout=10).json()
                assert alert in [a["alert_id"] for a in got["alerts"]], (i, n)
        time.sleep(1.5)  # past REPLICA_MAX_LAG_MS (1 s) behind the primary
        lag = requests.get(url(1) + "/health/db", timeout=5).json()["replicas"][0]["lag_ms"]
        assert lag > 1000, lag
    finally:
        replica_sql("SELECT pg_wal_replay_resume()")
    assert poll(lambda: requests.get(url(1) + "/health/db", timeout=5).json()["replicas"][0]["lag_ms"] == 0, 10)


def test_replica_stopped_under_load_costs_no_read(operator):
    card = new_card(operator)
    load = Load(operator, card, threads=6, recharge_every=0,
                paths=["/api/v1/stations?limit=%d&locality=%d" % (1 + i % 25, 1 + i % 19) for i in range(400)])
    with load:
        time.sleep(1.0)
        services("pg_stop %s/pg-replica" % DIR)
        for _ in range(20):
            drop_station_cache()
            time.sleep(0.1)
        down = requests.get(url(1) + "/health/db", timeout=5).json()["replicas"][0]
        services("pg_replica_start %s/pg-replica %d %d transitd_replica" % (DIR, REPLICA, REPLICA - 1))
        time.sleep(1.0)
    assert load.gets > 200
    assert not load.get_failures, load.get_failures[:5]
    assert down["up"] is False
    assert poll(lambda: requests.get(url(2) + "/health/db", timeout=5).json()["replicas"][0]["up"], 10)


def test_instance_killed_under_load(operator, db):
    """SIGKILL one instance mid-load: HAProxy sends what it cannot deliver to
    the other; every GET succeeds and every keyed recharge has one effect."""
    card = new_card(operator)
    with Load(operator, card, threads=8, recharge_every=4) as load:
        time.sleep(1.5)
        os.kill(instance_pid(1), signal.SIGKILL)
        time.sleep(2.5)
    cluster("start", "1")
    assert not load.get_failures, load.get_failures[:5]
    assert load.keys and all(s in (200, 201) for s in load.keys.values()), load.keys
    recharges = scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card)
    assert recharges == len(load.keys), (recharges, len(load.keys), load.post_failures[:5])
    assert scalar(db, "SELECT balance FROM cards WHERE card_id = %s", card) == 1000 * len(load.keys)
    assert ledger_consistent(db)


def test_cache_invalidation_and_revocation_cross_instances(admin):
    r = requests.post(url(1) + "/api/v1/alerts", headers=admin, timeout=10, json={
        "message": "cross", "severity": "INFO", "station_id": 5,
        "start_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))})
    alert = r.json()["alert_id"]
    # read on 2 first so that its near-cache holds the list, then end the alert on 1
    requests.get(url(2) + "/api/v1/stations/5/alerts", timeout=5)
    t0 = time.time()
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    r = requests.patch(url(1) + "/api/v1/alerts/%d" % alert, headers=admin, timeout=10,
                       json={"end_timestamp": now})
    assert r.status_code == 200, r.text
    gone = poll(lambda: alert not in [a["alert_id"] for a in
                                      requests.get(url(2) + "/api/v1/stations/5/alerts", timeout=5).json()["alerts"]],
                timeout=2, interval=0.01)
    assert gone, "instance 2 kept showing an ended alert"
    assert time.time() - t0 < 1.0

    tokens = requests.post(url(1) + "/api/v1/auth/login", timeout=10,
                           json={"email": "operator@transitd.local", "password": "operator-change-me"}).json()
    h = {"Authorization": "Bearer " + tokens["access_token"]}
    assert requests.get(url(2) + "/api/v1/cards/1/balance", headers=h, timeout=5).status_code == 200
    r = requests.post(url(1) + "/api/v1/auth/logout", headers=h, json={"refresh_token": tokens["refresh_token"]},
                      timeout=10)
    assert r.status_code in (200, 204), r.text
    assert poll(lambda: requests.get(url(2) + "/api/v1/cards/1/balance", headers=h, timeout=5).status_code == 401,
                timeout=2, interval=0.01)


def test_rolling_restart_under_load(operator, db):
    """SIGTERM each instance in turn, then start it again, under load: not
    one request fails, and no client has to retry."""
    card = new_card(operator)
    with Load(operator, card, threads=8, recharge_every=4, retry_posts=False) as load:
        time.sleep(1.0)
        for n in (1, 2):
            r = cluster("restart", str(n), check=False)
            assert r.returncode == 0, r.stdout + r.stderr
            time.sleep(1.0)  # HAProxy sees it ready again
        time.sleep(0.5)
    assert load.gets > 300
    assert not load.get_failures, load.get_failures[:5]
    assert load.keys and all(s in (200, 201) for s in load.keys.values()), \
        [s for s in load.keys.values() if s not in (200, 201)][:5]
    assert scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == len(load.keys)
    assert ledger_consistent(db)


def test_async_command_accepted_by_one_instance_is_applied_once(operator, db):
    """Commands accepted through the front are consumed by whichever
    instance takes them from the shared queue, once each."""
    card = new_card(operator)
    locations = []
    for i in range(20):
        r = requests.post(FRONT_URL + "/api/v1/cards/recharge", json={"card_id": card, "amount": 1000},
                          headers={**operator, "Prefer": "respond-async"}, timeout=10)
        assert r.status_code == 202, r.text
        locations.append(r.headers["Location"])
    for loc in locations:
        assert poll(lambda: requests.get(FRONT_URL + loc, headers=operator, timeout=5).json()["status"]
                    == "succeeded", timeout=30), loc
    assert scalar(db, "SELECT count(*) FROM recharges WHERE card_id = %s", card) == 20
    assert ledger_consistent(db)
