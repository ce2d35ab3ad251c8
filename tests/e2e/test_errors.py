"""Errors as problem+json, request ids, tracing headers, hostile input."""
import json
import urllib.parse

import pytest
import requests

from conftest import HEX32, assert_problem, db_scalar, raw_request

V1 = "/api/v1"


@pytest.mark.parametrize("path", ["/no/such/thing", "/api/v1/nope", "/api/v2/stations", "/healthz",
                                  "/api/v1/stations/1/nope", "/api/v1//stations"])
def test_unknown_path_404(base, path):
    body = assert_problem(requests.get(base + path), 404, "not-found")
    assert body["title"]
    assert body["instance"] == path


def test_404_problem_shape(base):
    r = requests.get(base + "/no/such/thing")
    body = assert_problem(r, 404, "not-found")
    assert r.headers["Content-Type"] == "application/problem+json" or \
        r.headers["Content-Type"].startswith("application/problem+json;")
    assert isinstance(body["detail"], str) and body["detail"]
    assert HEX32.match(body["request_id"])


@pytest.mark.parametrize("method,path", [("POST", V1 + "/stations"), ("DELETE", V1 + "/stations/1"),
                                         ("PUT", "/health"), ("PATCH", V1 + "/routes/1")])
def test_405_with_allow(base, method, path):
    r = requests.request(method, base + path)
    assert_problem(r, 405, "method-not-allowed")
    allow = {m.strip() for m in r.headers["Allow"].split(",")}
    assert {"GET", "HEAD"} <= allow
    assert method not in allow


@pytest.mark.parametrize("method", ["BREW", "TRACE", "CONNECTX"])
def test_unsupported_method(base, method):
    r = requests.request(method, base + V1 + "/stations")
    assert r.status_code in (400, 405), r.status_code
    assert_problem(r, r.status_code)


def test_options_without_cors_is_204_with_allow(base):
    r = requests.options(base + V1 + "/stations")
    assert r.status_code == 204
    assert {"GET", "HEAD", "OPTIONS"} <= {m.strip() for m in r.headers["Allow"].split(",")}
    assert "Access-Control-Allow-Origin" not in r.headers


# ------------------------------------------------------------------ request id

@pytest.mark.parametrize("rid", ["abc-123", "req_1.2:3", "A" * 128, "0af7651916cd43dd8448eb211c80319c"])
def test_request_id_echoed(base, rid):
    r = requests.get(base + "/health", headers={"X-Request-ID": rid})
    assert r.headers["X-Request-ID"] == rid
    r = requests.get(base + "/no/such/thing", headers={"X-Request-ID": rid})
    assert r.headers["X-Request-ID"] == rid
    assert assert_problem(r, 404)["request_id"] == rid


@pytest.mark.parametrize("rid", [None, "", "has spaces", "x" * 129, "x" * 200, "semi;colon", "quote\"d",
                                 "<script>", "caf\u00e9"])
def test_request_id_generated(base, rid):
    headers = {} if rid is None else {"X-Request-ID": rid.encode("utf-8")}
    r = requests.get(base + "/no/such/thing", headers=headers)
    got = r.headers["X-Request-ID"]
    assert HEX32.match(got), got
    assert assert_problem(r, 404)["request_id"] == got


def test_request_ids_are_unique(base):
    ids = {requests.get(base + "/health").headers["X-Request-ID"] for _ in range(20)}
    assert len(ids) == 20


@pytest.mark.parametrize("tp", ["00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                "garbage", "00-XYZ-b7ad6b7169203331-01", ""])
def test_traceparent_accepted(base, tp):
    r = requests.get(base + V1 + "/localities", headers={"traceparent": tp})
    assert r.status_code == 200
    assert HEX32.match(r.headers["X-Request-ID"])


# --------------------------------------------------------------- hostile input

@pytest.mark.parametrize("value", ["' OR 1=1 --", "Kennedy' OR '1'='1", "8; DROP TABLE stations; --",
                                   "8)) OR ((1=1", "%", "_", "\\"])
def test_sql_in_locality(base, db, value):
    before = db_scalar(db, "SELECT count(*) FROM stations")
    r = requests.get(base + V1 + "/stations", params={"locality": value})
    assert_problem(r, 422, "validation", field="locality")
    assert db_scalar(db, "SELECT count(*) FROM stations") == before


def test_nul_byte_in_query_value_rejected(base):
    """A NUL byte must not silently cut a value short: `Kennedy%00junk` is not
    the locality Kennedy."""
    r = requests.get(base + V1 + "/stations?locality=Kennedy%00junk")
    assert 400 <= r.status_code < 500, r.text[:300]


def test_nul_byte_in_path_rejected(base):
    """`/stations/1%00junk` is not station 1."""
    r = requests.get(base + V1 + "/stations/1%00junk")
    assert 400 <= r.status_code < 500, r.text[:300]


def test_sql_in_type(base):
    r = requests.get(base + V1 + "/stations", params={"type": "portal' OR '1'='1"})
    assert_problem(r, 422, "validation", field="type")


@pytest.mark.parametrize("segment", ["1;DROP TABLE stations", "1 OR 1=1", "1'--", "(SELECT 1)"])
def test_sql_in_path(base, db, segment):
    before = db_scalar(db, "SELECT count(*) FROM stations")
    r = requests.get(base + V1 + "/stations/" + urllib.parse.quote(segment, safe=";'()%"))
    assert r.status_code in (404, 422), r.text
    assert_problem(r, r.status_code)
    assert db_scalar(db, "SELECT to_regclass('public.stations') IS NOT NULL")
    assert db_scalar(db, "SELECT count(*) FROM stations") == before


@pytest.mark.parametrize("name,size,status", [("locality", 4096, 422), ("locality", 16384, 422),
                                              ("limit", 4096, 422), ("cursor", 4096, 422),
                                              ("type", 4096, 422)])
def test_huge_query_values(base, name, size, status):
    r = requests.get(base + V1 + "/stations", params={name: "9" * size})
    assert_problem(r, status, "validation", field=name)


def test_very_huge_query_is_4xx(base):
    r = requests.get(base + V1 + "/stations", params={"locality": "a" * 200_000})
    assert 400 <= r.status_code < 500, r.status_code


def test_many_query_parameters(base):
    params = [("p%d" % i, "x") for i in range(100)] + [("limit", "3")]
    r = requests.get(base + V1 + "/stations", params=params)
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        assert len(r.json()["stations"]) in (3, 20)


def test_repeated_query_parameter_first_wins(base):
    r = requests.get(base + V1 + "/stations?limit=2&limit=500")
    assert r.status_code == 200
    assert len(r.json()["stations"]) == 2


def test_unknown_query_parameters_ignored(base):
    r = requests.get(base + V1 + "/stations?limit=2&color=red")
    assert r.status_code == 200 and len(r.json()["stations"]) == 2


def test_path_traversal(base):
    for path in ("/docs/../../etc/passwd", "/docs/%2e%2e/%2e%2e/etc/passwd", "/api/v1/../../etc/passwd"):
        status, _, body, _ = raw_request(int(base.rsplit(":", 1)[1]),
                                         b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status is not None and 400 <= status < 500, (path, status)
        assert b"root:" not in body


def test_oversized_header_is_4xx(base):
    port = int(base.rsplit(":", 1)[1])
    req = (b"GET /api/v1/localities HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 +
           b"\r\nConnection: close\r\n\r\n")
    status, _, _, raw = raw_request(port, req)
    assert status is not None, raw[:200]
    assert 400 <= status < 500, status
    # The server is still fine afterwards.
    assert requests.get(base + "/livez").status_code == 200


def test_oversized_header_via_requests(base):
    """An ordinary client gets the 4xx: the server reads off what the client
    still sends before it closes, so the answer is not lost to a reset (a
    connection error here is that failure)."""
    r = requests.get(base + V1 + "/localities", headers={"X-Big": "a" * 100_000}, timeout=10)
    assert 400 <= r.status_code < 500, r.status_code


@pytest.mark.parametrize("raw", [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
                                 b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"])
def test_broken_framing_is_4xx_or_closed(base, raw):
    port = int(base.rsplit(":", 1)[1])
    status, _, _, data = raw_request(port, raw + b"")
    assert status is None or 400 <= status < 600 and status != 500, (status, data[:200])
    assert requests.get(base + "/livez").status_code == 200


# ------------------------------------------------------ request bodies (POST)
# The dispatcher checks size, media type and JSON syntax before any handler,
# on every route that takes a JSON body; POST /api/v1/cards/recharge is one.

BODY_ROUTE = V1 + "/cards/recharge"


@pytest.fixture(scope="module")
def body_route():
    """BODY_ROUTE, once `transitd routes` confirms it is served: renamed or
    gone, every test using it fails, naming it (pick another POST route
    with a JSON body)."""
    from conftest import run_cli
    routes = [line.split()[:2] for line in run_cli("routes").stdout.splitlines()]
    assert ["POST", BODY_ROUTE] in routes, (
        "POST %s is not in `transitd routes`: the body tests need a POST route with a JSON body" % BODY_ROUTE)
    return BODY_ROUTE


def test_body_too_large_413_declared(base, body_route, admin_auth):
    """A Content-Length over the limit is refused before the body is read."""
    port = int(base.rsplit(":", 1)[1])
    head = ("POST %s HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000\r\nX-Request-ID: big-1\r\n%s\r\n"
            % (body_route, "".join("%s: %s\r\n" % kv for kv in admin_auth.items()))).encode()
    status, headers, body, raw = raw_request(port, head + b"{" + b" " * 1000)
    assert status == 413, raw[:300]
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["type"] == "/problems/payload-too-large"
    assert problem["request_id"] == "big-1"


def test_body_too_large_413_chunked(base, body_route, admin_auth):
    """Without a Content-Length the limit applies to the bytes received."""
    port = int(base.rsplit(":", 1)[1])
    chunk = b"x" * 8192
    data = ("POST %s HTTP/1.1\r\nHost: e2e\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n%s\r\n"
            % (body_route, "".join("%s: %s\r\n" % kv for kv in admin_auth.items()))).encode()
    data += (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 10 + b"0\r\n\r\n"
    status, headers, body, raw = raw_request(port, data)
    assert status == 413, raw[:300]
    assert json.loads(body)["type"] == "/problems/payload-too-large"


def test_body_limit_configurable(spawn, body_route, admin_auth):
    s = spawn(MAX_BODY_BYTES=1024)
    r = requests.post(s.url + body_route, data=json.dumps({"card_id": 1, "amount": 5000, "pad": "x" * 2000}),
                      headers={"Content-Type": "application/json", **admin_auth})
    assert_problem(r, 413, "payload-too-large")
    r = requests.post(s.url + body_route, data=json.dumps({"card_id": 1, "amount": 5000, "pad": "x" * 500}),
                      headers={"Content-Type": "text/plain", **admin_auth})
    assert_problem(r, 415)  # under the limit: the next check answers


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "application/jsonx", "multipart/form-data; boundary=x"])
def test_not_json_415(base, body_route, admin_auth, ctype):
    headers = dict(admin_auth)
    if ctype:
        headers["Content-Type"] = ctype
    r = requests.post(base + body_route, data=b'{"card_id": 1, "amount": 5000}', headers=headers)
    assert_problem(r, 415, "unsupported-media-type")


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "Application/JSON", "application/merge-patch+json"])
def test_json_media_types_accepted(base, body_route, admin_auth, ctype):
    r = requests.post(base + body_route, data=b"{not json", headers={"Content-Type": ctype, **admin_auth})
    assert_problem(r, 400, "malformed-json")  # past the media-type check


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"card_id": 1,', b"\xff\xfe", b'{"a": 1} trailing',
                                  b"[" * 100_00])
def test_malformed_json_400(base, body_route, admin_auth, body):
    r = requests.post(base + body_route, data=body,
                      headers={"Content-Type": "application/json", **admin_auth})
    assert_problem(r, 400, "malformed-json")
