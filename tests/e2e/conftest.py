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
        e.update({"PORT": str(self.port), "LOG_LEVEL": "warn"})
        e.update({k: str(v) for k, v in env.items()})
        self.log_path = os.path.join(ROOT, ".run", "test", f"server-{self.port}.log")
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
