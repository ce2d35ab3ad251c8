"""The HTTP/1.1 front end: strict framing, pipelining, Expect, timeouts for
slow clients, connection caps, many connections at once, and static files."""
import gzip
import json
import resource
import socket
import threading
import time

import pytest
import requests

from conftest import parse_response, raw_request

ALERT_BODY = json.dumps({"title": "x", "message": "y", "severity": "info",
                         "station_ids": [1]}).encode()


def port_of(base):
    return int(base.rsplit(":", 1)[1])


class Reader:
    """Reads HTTP/1.1 responses one after another from one socket."""

    def __init__(self, sock, timeout=10):
        self.sock = sock
        self.buf = b""
        sock.settimeout(timeout)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            return False
        self.buf += chunk
        return True

    def response(self, head_only=False):
        """(status, headers, body), or None when the connection ended first."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status, headers, _ = parse_response(head + b"\r\n\r\n")
        n = 0 if head_only or status in (100, 204, 304) else int(headers.get("content-length", 0))
        while len(rest) < n:
            if not self._fill():
                return None
            rest = self.buf.partition(b"\r\n\r\n")[2]
        self.buf = rest[n:]
        return status, headers, rest[:n]

    def closed(self, timeout=5):
        """True when the server closes the connection within timeout (no more bytes)."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False


def connect(port, timeout=10):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def assert_problem_raw(status, headers, body, expect_status):
    assert status == expect_status, (status, body[:200])
    assert headers["content-type"].startswith("application/problem+json")
    doc = json.loads(body)
    assert doc["status"] == expect_status and doc["type"].startswith("/problems/")
    assert doc["request_id"] == headers["x-request-id"]
    return doc


# ------------------------------------------------------------------ framing

def test_http11_without_host_is_400_even_with_a_valid_token(base, admin):
    """The request that was once answered 201 on POST /alerts."""
    data = (b"POST /api/v1/alerts HTTP/1.1\r\nContent-Type: application/json\r\n"
            b"Authorization: " + admin["Authorization"].encode() + b"\r\n"
            b"Content-Length: %d\r\n\r\n" % len(ALERT_BODY) + ALERT_BODY)
    with connect(port_of(base)) as s:
        s.sendall(data)
        r = Reader(s)
        status, headers, body = r.response()
        doc = assert_problem_raw(status, headers, body, 400)
        assert "Host" in doc["detail"]
        assert headers["connection"] == "close"
        assert r.closed()


def test_two_host_headers_are_400(base):
    status, headers, body, _ = raw_request(port_of(base), b"GET /livez HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    assert_problem_raw(status, headers, body, 400)


def test_invalid_host_is_400(base):
    status, headers, body, _ = raw_request(port_of(base), b"GET /livez HTTP/1.1\r\nHost: a b/c\r\n\r\n")
    assert_problem_raw(status, headers, body, 400)


def test_http10_without_host_is_served_and_closed(base):
    with connect(port_of(base)) as s:
        s.sendall(b"GET /livez HTTP/1.0\r\n\r\n")
        r = Reader(s)
        status, headers, _ = r.response()
        assert status == 200 and headers["connection"] == "close"
        assert r.closed()


def test_http10_keep_alive_is_honoured(base):
    with connect(port_of(base)) as s:
        r = Reader(s)
        for _ in range(2):
            s.sendall(b"GET /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            status, headers, _ = r.response()
            assert status == 200 and headers["connection"].lower() == "keep-alive"


@pytest.mark.parametrize("order", ["cl-first", "te-first"])
def test_content_length_with_transfer_encoding_is_400_and_closes(base, admin, order):
    """A request-smuggling shape: the bytes after the first body must never be
    read as a second request."""
    smuggled = b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n"
    chunked = b"%x\r\n" % len(ALERT_BODY) + ALERT_BODY + b"\r\n0\r\n\r\n"
    cl = b"Content-Length: %d\r\n" % len(chunked)
    te = b"Transfer-Encoding: chunked\r\n"
    head = (b"POST /api/v1/alerts HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
            b"Authorization: " + admin["Authorization"].encode() + b"\r\n" +
            (cl + te if order == "cl-first" else te + cl) + b"\r\n")
    with connect(port_of(base)) as s:
        s.sendall(head + chunked + smuggled)
        r = Reader(s)
        status, headers, body = r.response()
        doc = assert_problem_raw(status, headers, body, 400)
        assert "Transfer-Encoding" in doc["detail"]
        assert headers["connection"] == "close"
        assert r.closed()
        assert r.buf == b"", "a second response was sent: %r" % r.buf[:100]


@pytest.mark.parametrize("cl", [b"Content-Length: abc\r\n", b"Content-Length: -1\r\n",
                                b"Content-Length: 1, 1\r\n", b"Content-Length: 2\r\nContent-Length: 2\r\n",
                                b"Content-Length: 99999999999999999999999\r\n"])
def test_bad_or_repeated_content_length_is_400(base, cl):
    status, headers, body, _ = raw_request(
        port_of(base), b"POST /api/v1/auth/login HTTP/1.1\r\nHost: e2e\r\n" + cl + b"\r\n{}")
    assert_problem_raw(status, headers, body, 400)


@pytest.mark.parametrize("te", [b"gzip", b"chunked, gzip", b"identity"])
def test_transfer_coding_other_than_chunked_is_400(base, te):
    status, headers, body, _ = raw_request(
        port_of(base), b"POST /api/v1/auth/login HTTP/1.1\r\nHost: e2e\r\nTransfer-Encoding: " + te + b"\r\n\r\n")
    assert_problem_raw(status, headers, body, 400)


def test_obs_fold_is_400(base):
    status, headers, body, _ = raw_request(
        port_of(base), b"GET /livez HTTP/1.1\r\nHost: e2e\r\nX-Folded: a\r\n  b\r\n\r\n")
    doc = assert_problem_raw(status, headers, body, 400)
    assert "obs-fold" in doc["detail"]


def test_obs_fold_split_across_packets_is_400(base):
    """The fold is found however the bytes arrive."""
    with connect(port_of(base)) as s:
        for piece in (b"GET /livez HTTP/1.1\r\nHost: e2e\r\nX-Folded: a", b"\r\n", b" b\r\n\r\n"):
            s.sendall(piece)
            time.sleep(0.05)
        status, headers, body = Reader(s).response()
        assert_problem_raw(status, headers, body, 400)


def test_value_split_across_packets_is_not_a_fold(base):
    with connect(port_of(base)) as s:
        for piece in (b"GET /livez HTTP/1.1\r\nHost: e2e\r\nX-Long: a", b" b", b" c\r\n\r\n"):
            s.sendall(piece)
            time.sleep(0.05)
        status, _, _ = Reader(s).response()
        assert status == 200


def test_space_before_colon_is_400(base):
    status, headers, body, _ = raw_request(port_of(base), b"GET /livez HTTP/1.1\r\nHost : e2e\r\n\r\n")
    assert_problem_raw(status, headers, body, 400)


@pytest.mark.parametrize("line", [b"GET /livez HTTP/2.0", b"GET /livez HTTP/1.2", b"GET /livez HTTP/0.9"])
def test_other_http_versions_are_505(base, line):
    status, headers, body, _ = raw_request(port_of(base), line + b"\r\nHost: e2e\r\n\r\n")
    assert_problem_raw(status, headers, body, 505)


def test_head_over_limit_is_431_problem(base):
    status, headers, body, _ = raw_request(
        port_of(base), b"GET /livez HTTP/1.1\r\nHost: e2e\r\n" + b"X-A: " + b"a" * 70000 + b"\r\n\r\n")
    assert_problem_raw(status, headers, body, 431)


def test_too_many_header_fields_is_431(base):
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(150))
    status, headers, body, _ = raw_request(port_of(base), b"GET /livez HTTP/1.1\r\nHost: e2e\r\n" + fields + b"\r\n")
    assert_problem_raw(status, headers, body, 431)


def test_target_over_limit_is_414(base):
    status, headers, body, _ = raw_request(
        port_of(base), b"GET /livez?q=" + b"a" * 40000 + b" HTTP/1.1\r\nHost: e2e\r\n\r\n")
    assert_problem_raw(status, headers, body, 414)


def test_absolute_form_target_is_served(base):
    status, _, body, _ = raw_request(
        port_of(base), b"GET http://e2e/api/v1/stations/1?x=1 HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
    assert status == 200 and json.loads(body)["station_id"] == 1


def test_asterisk_target_is_400(base):
    status, headers, body, _ = raw_request(port_of(base), b"OPTIONS * HTTP/1.1\r\nHost: e2e\r\n\r\n")
    assert_problem_raw(status, headers, body, 400)


def test_chunked_request_body_is_read(base):
    body = json.dumps({"email": "nobody@transitd.test", "password": "not-the-password"}).encode()
    data = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    for i in range(0, len(body), 7):
        piece = body[i:i + 7]
        data += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
    data += b"0\r\nX-Trailer: t\r\n\r\n"
    status, _, resp, _ = raw_request(port_of(base), data)
    assert status == 401, resp  # the body was read whole: the credentials were checked


def test_head_has_length_and_no_body(base):
    get = requests.get(base + "/api/v1/stations/1")
    with connect(port_of(base)) as s:
        s.sendall(b"HEAD /api/v1/stations/1 HTTP/1.1\r\nHost: e2e\r\n\r\nGET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
        r = Reader(s)
        status, headers, _ = r.response(head_only=True)
        assert status == 200 and int(headers["content-length"]) == len(get.content)
        status, _, body = r.response()  # the next response follows the head at once
        assert status == 200 and json.loads(body) == {"status": "alive"}


# --------------------------------------------------------------- pipelining

def test_pipelined_requests_are_answered_in_order(base):
    """Inline, near-cached and worker-served requests in one write: the answers
    come back in the order asked, whichever finishes first."""
    paths = ["/health/db", "/livez", "/api/v1/stations/1", "/api/v1/localities", "/livez", "/health/db",
             "/api/v1/stations/2", "/nope"] * 3
    data = b"".join(b"GET %s HTTP/1.1\r\nHost: e2e\r\nX-Request-ID: pipe-%d\r\n\r\n" % (p.encode(), i)
                    for i, p in enumerate(paths))
    with connect(port_of(base)) as s:
        s.sendall(data)
        r = Reader(s)
        for i, p in enumerate(paths):
            status, headers, _ = r.response()
            assert headers["x-request-id"] == "pipe-%d" % i
            assert status == (404 if p == "/nope" else 200), (p, status)


def test_pipelined_bodies_in_many_small_writes(base):
    body = json.dumps({"email": "nobody@transitd.test", "password": "not-the-password"}).encode()
    one = (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body) + body)
    data = one * 5 + b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n"
    with connect(port_of(base)) as s:
        for i in range(0, len(data), 13):
            s.sendall(data[i:i + 13])
        r = Reader(s)
        statuses = [r.response()[0] for _ in range(6)]
        assert statuses == [401] * 5 + [200]


# ------------------------------------------------------------------- Expect

def test_expect_100_continue(base):
    body = json.dumps({"email": "nobody@transitd.test", "password": "x" * 12}).encode()
    with connect(port_of(base)) as s:
        s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        r = Reader(s)
        status, _, _ = r.response()
        assert status == 100  # sent before the body
        s.sendall(body)
        status, headers, _ = r.response()
        assert status == 401


def test_expect_100_continue_over_limit_is_413_without_continue(base):
    with connect(port_of(base)) as s:
        s.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
                  b"Expect: 100-continue\r\nContent-Length: 10000000\r\n\r\n")
        status, headers, body = Reader(s).response()
        assert_problem_raw(status, headers, body, 413)


def test_unknown_expectation_is_417(base):
    status, headers, body, _ = raw_request(
        port_of(base), b"POST /api/v1/auth/login HTTP/1.1\r\nHost: e2e\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}")
    assert_problem_raw(status, headers, body, 417)


# ------------------------------------------------------------ slow clients

def latency_of_other_clients(url, stop, out):
    sess = requests.Session()
    while not stop.is_set():
        t0 = time.time()
        r = sess.get(url + "/livez", timeout=5)
        out.append((r.status_code, time.time() - t0))
        time.sleep(0.02)


def test_one_byte_a_second_is_closed_at_the_header_timeout(spawn):
    """Slowloris: the head must be complete within HTTP_HEADER_TIMEOUT_MS of
    the connection's start, however steadily the bytes come; others are
    served meanwhile."""
    s = spawn(HTTP_HEADER_TIMEOUT_MS=2000)
    stop, others = threading.Event(), []
    t = threading.Thread(target=latency_of_other_clients, args=(s.url, stop, others))
    t.start()
    try:
        sock = connect(s.port)
        t0 = time.time()
        data = b"GET /livez HTTP/1.1\r\nHost: e2e\r\nX-Slow: " + b"a" * 100
        answer = b""
        sock.settimeout(0.05)
        for ch in data:
            try:
                sock.sendall(bytes([ch]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                got = sock.recv(65536)
                answer += got
                if not got:
                    break
            except socket.timeout:
                pass
            time.sleep(1.0)
            if time.time() - t0 > 8:
                break
        elapsed = time.time() - t0
        sock.settimeout(5)
        try:
            while True:
                got = sock.recv(65536)
                if not got:
                    break
                answer += got
        except (ConnectionResetError, socket.timeout):
            pass
        sock.close()
    finally:
        stop.set()
        t.join()
    assert 1.5 <= elapsed <= 5, elapsed
    status, headers, body = parse_response(answer)
    assert_problem_raw(status, headers, body, 408)
    assert others and all(code == 200 for code, _ in others)
    assert max(lat for _, lat in others) < 1.0, max(lat for _, lat in others)


def test_slow_body_is_408_at_the_body_timeout(spawn):
    s = spawn(HTTP_BODY_TIMEOUT_MS=1500)
    with connect(s.port) as sock:
        t0 = time.time()
        sock.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"email\":")
        status, headers, body = Reader(sock, timeout=10).response()
        elapsed = time.time() - t0
    assert_problem_raw(status, headers, body, 408)
    assert 1.2 <= elapsed <= 4, elapsed


def test_idle_keep_alive_connection_is_closed_at_the_idle_timeout(spawn):
    s = spawn(HTTP_IDLE_TIMEOUT_MS=1000)
    with connect(s.port) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
        r = Reader(sock)
        assert r.response()[0] == 200
        t0 = time.time()
        assert r.closed(timeout=5)
        assert 0.7 <= time.time() - t0 <= 3


def test_a_fresh_connection_that_sends_nothing_is_closed_silently(spawn):
    s = spawn(HTTP_HEADER_TIMEOUT_MS=1000)
    with connect(s.port) as sock:
        r = Reader(sock)
        assert r.closed(timeout=5)
        assert r.buf == b""


def test_client_that_does_not_read_is_dropped_at_the_send_timeout(spawn):
    """Responses pile up unread: the server stops parsing more of them and
    drops the connection once writing makes no progress for the timeout."""
    s = spawn(HTTP_SEND_TIMEOUT_MS=1000)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", s.port))
    one = b"GET /docs/swagger-ui-bundle.js HTTP/1.1\r\nHost: e2e\r\n\r\n"
    sock.sendall(one * 40)  # about 60 MB of answers
    time.sleep(3)
    sock.settimeout(5)
    got = 0
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    sock.close()
    assert got < 40 * 1_000_000, got
    assert requests.get(s.url + "/livez").status_code == 200


# ------------------------------------------------------------------ caps

def test_per_address_cap_answers_429(spawn):
    s = spawn(MAX_CONNECTIONS_PER_CLIENT=8)
    socks = []
    try:
        for _ in range(8):
            sk = connect(s.port)
            sk.sendall(b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
            assert Reader(sk).response()[0] == 200
            socks.append(sk)
        with connect(s.port) as extra:
            extra.sendall(b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
            r = Reader(extra)
            status, headers, body = r.response()
            doc = assert_problem_raw(status, headers, body, 429)
            assert doc["type"] == "/problems/too-many-connections"
            assert headers["retry-after"] and headers["connection"] == "close"
            assert r.closed()
        socks.pop().close()
        time.sleep(0.2)
        with connect(s.port) as again:  # a slot freed by the close
            again.sendall(b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
            assert Reader(again).response()[0] == 200
    finally:
        for sk in socks:
            sk.close()


def test_global_cap_answers_503_rather_than_refusing(spawn):
    s = spawn(MAX_CONNECTIONS=8, MAX_CONNECTIONS_PER_CLIENT=0)
    socks = []
    try:
        for _ in range(8):
            sk = connect(s.port)
            sk.sendall(b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
            assert Reader(sk).response()[0] == 200
            socks.append(sk)
        with connect(s.port) as extra:
            extra.sendall(b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
            status, headers, body = Reader(extra).response()
            assert_problem_raw(status, headers, body, 503)
            assert headers["retry-after"]
        metrics = None
        socks.pop().close()
        time.sleep(0.2)
        metrics = requests.get(s.url + "/metrics").text
        assert 'transitd_http_connections_refused_total{reason="capacity"} 1' in metrics
    finally:
        for sk in socks:
            sk.close()


# ------------------------------------------------------- many connections

def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_1000_concurrent_connections(base):
    """1,000 connections open at once, each with a request in flight (a mix
    of inline, near-cached and database reads): every one is answered, and
    each connection then serves a second request."""
    n = 1000
    # A client that cannot hold the connections has not tested the server:
    # that fails too, naming the limit to raise.
    nofile = raise_nofile(n + 200)
    assert nofile >= n + 100, "RLIMIT_NOFILE allows %d descriptors; the test needs %d (ulimit -Hn)" % (nofile, n + 100)
    paths = [b"/livez", b"/api/v1/stations/1", b"/health/db", b"/api/v1/routes/1"]
    socks = [connect(port_of(base), timeout=30) for _ in range(n)]
    try:
        for i, sk in enumerate(socks):
            sk.sendall(b"GET %s HTTP/1.1\r\nHost: e2e\r\nX-Request-ID: many-%d\r\n\r\n" % (paths[i % 4], i))
        readers = [Reader(sk, timeout=30) for sk in socks]
        for i, r in enumerate(readers):
            status, headers, _ = r.response()
            assert status == 200 and headers["x-request-id"] == "many-%d" % i
        for sk in socks:
            sk.sendall(b"GET /livez HTTP/1.1\r\nHost: e2e\r\n\r\n")
        assert all(r.response()[0] == 200 for r in readers)
    finally:
        for sk in socks:
            sk.close()


# ----------------------------------------------------------- static files

def test_static_files_carry_etag_and_cache_control(base):
    r = requests.get(base + "/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and len(r.content) > 100_000
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert "max-age" in r.headers["Cache-Control"]
    plain = {"Accept-Encoding": "identity"}
    again = requests.get(base + "/docs/swagger-ui-bundle.js", headers={"If-None-Match": etag, **plain})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["ETag"] == etag
    weak = requests.get(base + "/docs/swagger-ui-bundle.js", headers={"If-None-Match": 'W/"x", ' + etag, **plain})
    assert weak.status_code == 304
    other = requests.get(base + "/docs/swagger-ui-bundle.js", headers={"If-None-Match": '"other"', **plain})
    assert other.status_code == 200
    # the gzip representation has its own tag
    gz = requests.get(base + "/docs/swagger-ui-bundle.js", headers={"If-None-Match": etag})
    assert gz.status_code == 200 and gz.headers["Content-Encoding"] == "gzip"


def test_static_files_are_gzipped_when_accepted(base):
    plain = requests.get(base + "/docs/swagger-ui-bundle.js", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    with connect(port_of(base)) as s:
        s.sendall(b"GET /docs/swagger-ui-bundle.js HTTP/1.1\r\nHost: e2e\r\nAccept-Encoding: br, gzip\r\n\r\n")
        status, headers, body = Reader(s, timeout=30).response()
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert "accept-encoding" in headers["vary"].lower()
    assert len(body) < len(plain.content) / 2
    assert gzip.decompress(body) == plain.content
    assert headers["etag"] != plain.headers["ETag"]  # another representation, another tag


def test_gzip_refused_with_q0_is_not_used(base):
    r = requests.get(base + "/docs/swagger-ui.css", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert r.status_code == 200 and "Content-Encoding" not in r.headers


def test_openapi_document_has_etag(base):
    r = requests.get(base + "/openapi.json")
    assert r.status_code == 200 and r.headers.get("ETag")
    assert requests.get(base + "/openapi.json", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
