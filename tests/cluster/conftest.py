"""The cluster suite's fixtures: scripts/cluster.sh brings up a PostgreSQL
primary and streaming replica, Redis, two transitd instances and HAProxy on
test ports under .run/test-cluster; the suite drives them for real."""
import os
import subprocess
import threading
import time
import uuid

import psycopg2
import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DIR = os.environ.get("CLUSTER_DIR", os.path.join(ROOT, ".run", "test-cluster"))
BASE = int(os.environ.get("CLUSTER_PORT_BASE", "15480"))
FRONT = int(os.environ.get("CLUSTER_FRONT_PORT", str(BASE + 6)))
PRIMARY, REPLICA, REDIS = BASE, BASE + 1, BASE + 2
INSTANCES = {1: BASE + 3, 2: BASE + 4}
ENV = dict(os.environ, CLUSTER_DIR=DIR, CLUSTER_PORT_BASE=str(BASE), PORT=str(FRONT), LOG_LEVEL="warn",
           RATE_LIMIT_PER_MINUTE="0", LOGIN_RATE_PER_ADDRESS="100000", LOGIN_RATE_PER_EMAIL="100000")
FRONT_URL = "http://127.0.0.1:%d" % FRONT
DB_URL = "postgresql://transitd@127.0.0.1:%d/transitd" % PRIMARY
REPLICA_DB_URL = "postgresql://transitd@127.0.0.1:%d/transitd" % REPLICA


def url(n):
    return "http://127.0.0.1:%d" % INSTANCES[n]


def cluster(*args, check=True):
    return subprocess.run(["bash", "scripts/cluster.sh", *args], cwd=ROOT, env=ENV, check=check,
                          capture_output=True, text=True, timeout=180)


def services(call):
    """Runs a scripts/services.sh function, e.g. 'pg_stop DIR'."""
    subprocess.run(["bash", "-c", "source scripts/services.sh && " + call], cwd=ROOT, env=ENV, check=True,
                   timeout=120)


def instance_pid(n):
    with open(os.path.join(DIR, "transitd-%d.pid" % n)) as f:
        return int(f.read())


def poll(fn, timeout, interval=0.05):
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
        except requests.RequestException:
            v = None
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


@pytest.fixture(scope="session", autouse=True)
def up():
    cluster("down", check=False)
    services("pg_wipe %s/pg-replica; pg_wipe %s/pg-primary; rm -rf %s" % (DIR, DIR, DIR))
    r = cluster("up", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    yield
    cluster("down", check=False)


def login(email, password, base=FRONT_URL):
    r = requests.post(base + "/api/v1/auth/login", json={"email": email, "password": password}, timeout=15)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="session")
def admin():
    return {"Authorization": "Bearer " + login("admin@transitd.local", "admin-change-me")["access_token"]}


@pytest.fixture(scope="session")
def operator():
    return {"Authorization": "Bearer " + login("operator@transitd.local", "operator-change-me")["access_token"]}


@pytest.fixture
def db():
    conn = psycopg2.connect(DB_URL)
    conn.autocommit = True
    yield conn
    conn.close()


def scalar(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def new_card(operator):
    r = requests.post(FRONT_URL + "/api/v1/cards", json={}, headers=operator, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["card_id"]


class Load:
    """Client threads against the front: GETs (read-only, never retried by
    the client) and keyed recharges (retried by the client with the same
    Idempotency-Key until they get an answer, as a real client would)."""

    def __init__(self, operator, card_id, threads=8, recharge_every=5, paths=None, retry_posts=True):
        self.operator, self.card_id = operator, card_id
        self.threads, self.every, self.retry = threads, recharge_every, retry_posts
        self.paths = paths or ["/api/v1/stations/%d" % (1 + i % 40) for i in range(40)] + [
            "/api/v1/stations?limit=%d" % (1 + i % 30) for i in range(30)]
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.gets, self.get_failures = 0, []
        self.keys = {}            # key -> final status
        self.post_failures = []   # answers a POST got before its final one
        self.workers = []

    def _run(self, t):
        s = requests.Session()
        i = 0
        while not self.stop.is_set():
            i += 1
            if self.every and i % self.every == 0:
                key = str(uuid.uuid4())
                while True:
                    try:
                        r = s.post(FRONT_URL + "/api/v1/cards/recharge", headers={**self.operator,
                                   "Idempotency-Key": key}, json={"card_id": self.card_id, "amount": 1000},
                                   timeout=15)
                        status = r.status_code
                    except requests.RequestException as e:
                        status = repr(e)
                    if status in (200, 201) or not self.retry:
                        break
                    with self.lock:
                        self.post_failures.append(status)
                    time.sleep(0.05)
                with self.lock:
                    self.keys[key] = status
                continue
            path = self.paths[(t * 7 + i) % len(self.paths)]
            try:
                r = s.get(FRONT_URL + path, timeout=15)
                ok = r.status_code == 200
                detail = (path, r.status_code, r.text[:200])
            except requests.RequestException as e:
                ok, detail = False, (path, repr(e))
            with self.lock:
                self.gets += 1
                if not ok:
                    self.get_failures.append(detail)

    def __enter__(self):
        for t in range(self.threads):
            th = threading.Thread(target=self._run, args=(t,), daemon=True)
            th.start()
            self.workers.append(th)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.workers:
            th.join(60)
