"""End-to-end fixtures: the real transitd binary against the test PostgreSQL
and Redis that scripts/test.sh started (DATABASE_URL, REDIS_URL,
TEST_PG_DIR, TEST_REDIS_DIR, TRANSITD_BIN)."""
import os
import signal
import socket
import subprocess
import time

import psycopg2
import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("TRANSITD_BIN", os.path.join(ROOT, "build", "transitd"))
DATABASE_URL = os.environ["DATABASE_URL"]
REDIS_URL = os.environ["REDIS_URL"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def services(action, kind):
    """Stops or starts the test PostgreSQL ('pg') or Redis ('redis')."""
    d = os.environ["TEST_PG_DIR"] if kind == "pg" else os.environ["TEST_REDIS_DIR"]
    port = os.environ["TEST_PG_PORT"] if kind == "pg" else os.environ["TEST_REDIS_PORT"]
    args = f"{d} {port}" if action == "start" else d
    subprocess.run(["bash", "-c", f"source scripts/services.sh && {kind}_{action} {args}"],
                   cwd=ROOT, check=True)


def run_cli(*args, env=None, check=True):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([BIN, *args], cwd=ROOT, env=e, capture_output=True, text=True, check=check)


class Server:
    """One transitd process on its own port; stop() sends SIGTERM."""

    def __init__(self, **env):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        e = dict(os.environ)
        e.update({"PORT": str(self.port), "LOG_LEVEL": "warn",
                  # The suite sends far more than a client's budget from one
                  # address; the rate-limit tests spawn servers with the defaults.
                  "RATE_LIMIT_PER_MINUTE": "10000000", "LOGIN_RATE_PER_ADDRESS": "100000",
                  "LOGIN_RATE_PER_EMAIL": "100000", "REGISTER_RATE_PER_ADDRESS": "100000",
                  "LOGIN_SLOWDOWN_AFTER": "100000", "MAX_CARDS_PER_RIDER": "1000"})
        e.update({k: str(v) for k, v in env.items()})
        self.log_path = os.path.join(os.environ.get("TEST_RUN_DIR", os.path.join(ROOT, ".run", "test")),
                                     f"server-{self.port}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BIN, "serve"], cwd=ROOT, env=e, stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transitd exited with {self.proc.returncode}: {self.logs()}")
            try:
                if requests.get(self.url + "/livez", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("transitd did not start: " + self.logs())

    def logs(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def database():
    """A migrated database holding the demo network."""
    run_cli("migrate")
    run_cli("seed", "--demo")
    return DATABASE_URL


@pytest.fixture(scope="session")
def server(database):
    s = Server()
    yield s
    code = s.stop()
    assert code == 0, "transitd did not exit cleanly:\n" + s.logs()


@pytest.fixture(scope="session")
def base(server):
    return server.url


@pytest.fixture
def db(database):
    conn = psycopg2.connect(database)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def spawn():
    """Starts extra servers for a test (custom env); stops what is left."""
    started = []

    def make(**env):
        s = Server(**env)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def assert_problem(resp, status, slug=None, field=None):
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/problem+json"), resp.headers
    body = resp.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    if slug:
        assert body["type"] == "/problems/" + slug, body
    for key in ("title", "detail", "instance", "request_id"):
        assert key in body, body
    assert body["request_id"] == resp.headers["X-Request-ID"]
    if field:
        assert any(e["field"] == field for e in body.get("errors", [])), body
    return body


# ---------------------------------------------------------------------------
# Helpers shared by the test files (added with the end-to-end suite).

import re  # noqa: E402

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
NEAR_CACHE_S = 1.2  # the server's near-cache keeps entries about 1 s


def redis_cli(*args):
    """Runs redis-cli against the test Redis; returns its stdout."""
    out = subprocess.run(["redis-cli", "-p", os.environ["TEST_REDIS_PORT"], *args],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


NETWORK_CACHE_KEYS = ("transitd:localities", "transitd:stations", "transitd:station:*",
                      "transitd:routes", "transitd:route:*")


def flush_cache(patterns=NETWORK_CACHE_KEYS):
    """Drops the cached network reads from Redis (only those: Redis holds other
    state, such as tokens and rate-limit counters) and waits out the servers'
    near-caches."""
    keys = []
    for p in patterns:
        keys += redis_cli("--scan", "--pattern", p).split()
    if keys:
        redis_cli("UNLINK", *keys)
    time.sleep(NEAR_CACHE_S)


def poll(fn, timeout, interval=0.1):
    """Calls fn until it returns a true value or timeout seconds pass;
    returns the last value (which may be false)."""
    deadline = time.time() + timeout
    while True:
        try:
            v = fn()
        except requests.RequestException:
            v = None
        if v or time.time() >= deadline:
            return v
        time.sleep(interval)


def admin_headers(base, timeout=30):
    """Authorization headers of the local admin, logging in and retrying while
    the server answers 503 (logins need Redis, which some tests stop)."""
    deadline = time.time() + timeout
    while True:
        try:
            r = requests.post(base + "/api/v1/auth/login", timeout=15,
                              json={"email": "admin@transitd.local", "password": "admin-change-me"})
            if r.status_code == 200:
                return {"Authorization": "Bearer " + r.json()["access_token"]}
            assert r.status_code == 503 and time.time() < deadline, r.text
        except requests.ConnectionError:
            assert time.time() < deadline, "the server did not answer"
        time.sleep(0.3)


def raw_request(port, data, timeout=10):
    """Sends raw bytes to 127.0.0.1:port and returns (status, headers, body, raw)
    for the first response; status is None when nothing parseable came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        raw = read_response(s, timeout)
    return parse_response(raw) + (raw,)


def read_response(sock, timeout=10):
    """Reads one HTTP/1.1 response (Content-Length framed, or until EOF)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            m = re.search(rb"\r\ncontent-length:\s*(\d+)", data[:head_end], re.I)
            if m and len(data) >= head_end + 4 + int(m.group(1)):
                break
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    return data


def parse_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"^HTTP/1\.[01] (\d{3})", lines[0]) if lines else None
    if not m:
        return None, {}, b""
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body


def db_scalar(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchone()[0]


def db_rows(conn, sql, *args):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def get_json(url, expect=200, **kw):
    r = requests.get(url, timeout=kw.pop("timeout", 10), **kw)
    assert r.status_code == expect, (url, r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    return r.json()


def run_bin(*args, env=None, timeout=20):
    """Runs transitd with a time limit: a command that should refuse to start
    but serves instead fails the test rather than hanging it."""
    e = dict(os.environ)
    e.update(env or {})
    try:
        return subprocess.run([BIN, *args], cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("transitd %s did not exit within %d s" % (" ".join(args), timeout))


@pytest.fixture(scope="session")
def admin_auth(base):
    """Authorization headers of the local admin account once the server has
    /auth/login; none before (the routes were public then)."""
    if "POST /api/v1/auth/login" not in run_cli("routes").stdout.splitlines():
        return {}
    r = requests.post(base + "/api/v1/auth/login",
                      json={"email": "admin@transitd.local", "password": "admin-change-me"})
    assert r.status_code == 200, r.text
    return {"Authorization": "Bearer " + r.json()["access_token"]}


# --- accounts and tokens -------------------------------------------------

DEMO_ACCOUNTS = {
    "admin": ("admin@transitd.local", "admin-change-me"),
    "operator": ("operator@transitd.local", "operator-change-me"),
    "rider": ("rider@transitd.local", "rider-change-me"),
}
OTHER_RIDER = ("other.rider@transitd.test", "other-rider-password")


def login(base, email, password):
    r = requests.post(base + "/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


def bearer(token):
    return {"Authorization": "Bearer " + token}


@pytest.fixture(scope="session")
def tokens(base):
    """Access tokens of the demo admin, operator and rider, and of a second rider."""
    out = {role: login(base, *cred)["access_token"] for role, cred in DEMO_ACCOUNTS.items()}
    requests.post(base + "/api/v1/auth/register", json={
        "email": OTHER_RIDER[0], "password": OTHER_RIDER[1], "first_name": "Otra", "last_name": "Pasajera"})
    out["other"] = login(base, *OTHER_RIDER)["access_token"]
    return out


@pytest.fixture(scope="session")
def admin(tokens):
    """Headers of the demo admin (every route allows the admin)."""
    return bearer(tokens["admin"])


@pytest.fixture(scope="session")
def operator(tokens):
    return bearer(tokens["operator"])


@pytest.fixture(scope="session")
def rider(tokens):
    return bearer(tokens["rider"])
