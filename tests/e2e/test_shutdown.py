"""Graceful shutdown: SIGTERM stops accepting, finishes every accepted request,
and exits 0."""
import json
import re
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

from conftest import DATABASE_URL, flush_cache, parse_response, poll, read_response

N = 200


def inflight(url):
    text = requests.get(url + "/metrics", timeout=5).text
    m = re.search(r"^transitd_inflight_requests (\S+)$", text, re.M)
    return float(m.group(1))


def test_sigterm_drains_in_flight_requests(spawn, database):
    """200 connections each send a complete request that needs the database;
    the database is held (a table lock) so that all of them are accepted and
    in flight when SIGTERM arrives. Every one must get its 200."""
    s = spawn(WORKERS=2, DB_STATEMENT_TIMEOUT_MS=30000, RATE_LIMIT_PER_MINUTE=0)
    lock = psycopg2.connect(DATABASE_URL)
    with lock.cursor() as cur:
        cur.execute("SELECT station_id FROM stations ORDER BY station_id")
        ids = [r[0] for r in cur.fetchall()]
    lock.rollback()
    flush_cache()  # every request below must reach PostgreSQL
    socks = []
    try:
        with lock.cursor() as cur:
            cur.execute("SET lock_timeout = '5s'")
            cur.execute("LOCK TABLE stations IN ACCESS EXCLUSIVE MODE")
        for i in range(N):
            sk = socket.create_connection(("127.0.0.1", s.port), timeout=10)
            sk.sendall(("GET /api/v1/stations/%d HTTP/1.1\r\nHost: e2e\r\nX-Request-ID: shut-%d\r\n\r\n"
                        % (ids[i % len(ids)], i)).encode())
            socks.append(sk)
        # All requests accepted, parsed and waiting (the /metrics request counts itself).
        assert poll(lambda: inflight(s.url) >= N, timeout=10), "requests did not all reach the server"
        assert s.proc.poll() is None
        s.proc.send_signal(signal.SIGTERM)

        def refused():
            try:
                socket.create_connection(("127.0.0.1", s.port), timeout=1).close()
                return False
            except (ConnectionRefusedError, ConnectionResetError):  # reset: left in the closed backlog
                return True
        assert poll(refused, timeout=3, interval=0.05), "the listen socket stayed open after SIGTERM"
        assert s.proc.poll() is None, "the server exited with requests in flight"
    finally:
        lock.rollback()  # releases the table: the held requests now complete
        lock.close()

    failures = []
    for i, sk in enumerate(socks):
        raw = read_response(sk, timeout=20)
        sk.close()
        status, headers, body = parse_response(raw)
        if status != 200:
            failures.append((i, status, raw[:120]))
            continue
        assert headers["x-request-id"] == "shut-%d" % i
        assert json.loads(body)["station_id"] == ids[i % len(ids)]
        assert headers.get("connection", "").lower() == "close"
    assert not failures, "%d of %d accepted requests were not answered: %r" % (len(failures), N, failures[:5])
    try:
        code = s.proc.wait(timeout=30)
    except Exception:
        pytest.fail("transitd did not exit within 30 s of SIGTERM:\n" + s.logs()[-3000:])
    assert code == 0, s.logs()[-3000:]


def test_sigterm_with_concurrent_clients(spawn, database):
    """Many clients in flight on keep-alive connections; every request that got
    an answer got a complete one, and the process exits 0."""
    s = spawn(WORKERS=2, RATE_LIMIT_PER_MINUTE=0)
    barrier = threading.Barrier(51)
    results = []

    def client(i):
        sess = requests.Session()
        out = []
        try:
            r = sess.get(s.url + "/health/db", timeout=10)
            out.append(r.status_code if r.status_code == 200 else (r.status_code, r.text))
        except requests.RequestException as e:
            out.append(repr(e))
        barrier.wait(timeout=10)
        for _ in range(20):
            try:
                r = sess.get(s.url + "/api/v1/stations?limit=%d" % (1 + i % 50), timeout=10)
                out.append(r.status_code)
                if r.status_code == 200:
                    r.json()  # complete body
            except requests.ConnectionError:
                out.append("refused")  # after the listen socket closed
                break
        return out

    with ThreadPoolExecutor(50) as pool:
        futs = [pool.submit(client, i) for i in range(50)]
        barrier.wait(timeout=10)
        time.sleep(0.05)
        s.proc.send_signal(signal.SIGTERM)
        for f in futs:
            results.append(f.result(timeout=60))
    code = s.proc.wait(timeout=30)
    assert code == 0, s.logs()[-3000:]
    for out in results:
        assert out[0] == 200, out
        for st in out[1:]:
            assert st in (200, "refused"), out


def test_idle_keepalive_connection_does_not_delay_exit(spawn, database):
    s = spawn()
    sk = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sk.sendall(b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
    status, _, _ = parse_response(read_response(sk, 5))
    assert status == 200
    t0 = time.time()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0
    assert time.time() - t0 < 5
    sk.close()


def test_sigint_exits_0(spawn, database):
    s = spawn()
    assert requests.get(s.url + "/health").status_code == 200
    s.proc.send_signal(signal.SIGINT)
    assert s.proc.wait(timeout=10) == 0


def test_request_on_idle_keepalive_connection_during_shutdown(spawn, database):
    """A request arriving on an already open keep-alive connection while the
    server drains is either served (200, Connection: close) or the connection
    is closed without an answer (the client may retry it); it is never refused
    with a 503 "at capacity"."""
    s = spawn()
    sk = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    sk.sendall(b"GET /api/v1/localities HTTP/1.1\r\nHost: e2e\r\n\r\n")
    status, headers, _ = parse_response(read_response(sk, 5))
    assert status == 200 and headers.get("connection", "").lower() != "close"
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.01)
    try:
        sk.sendall(b"GET /health/db HTTP/1.1\r\nHost: e2e\r\n\r\n")
        raw = read_response(sk, 10)
    except (BrokenPipeError, ConnectionResetError):
        raw = b""
    sk.close()
    status, headers, body = parse_response(raw)
    assert status in (None, 200), raw.decode("latin-1")
    assert s.proc.wait(timeout=10) == 0
