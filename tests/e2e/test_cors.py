"""CORS per CORS_ORIGINS, on a server of its own."""
import pytest
import requests

ALLOWED = "http://allowed.example"
OTHER = "http://evil.example"


@pytest.fixture(scope="module")
def cors_server(database):
    from conftest import Server
    s = Server(CORS_ORIGINS=ALLOWED + ", http://second.example")
    yield s
    assert s.stop() == 0, s.logs()


def test_allowed_origin(cors_server):
    r = requests.get(cors_server.url + "/api/v1/localities", headers={"Origin": ALLOWED})
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in [v.strip() for v in r.headers["Vary"].split(",")]
    exposed = [v.strip().lower() for v in r.headers["Access-Control-Expose-Headers"].split(",")]
    assert "x-request-id" in exposed and "x-cache" in exposed


def test_second_allowed_origin(cors_server):
    r = requests.get(cors_server.url + "/health", headers={"Origin": "http://second.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "http://second.example"


@pytest.mark.parametrize("origin", [OTHER, "http://allowed.example.evil.com", "https://allowed.example",
                                    "http://allowed.example:8080", "null"])
def test_other_origin(cors_server, origin):
    r = requests.get(cors_server.url + "/api/v1/localities", headers={"Origin": origin})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Expose-Headers" not in r.headers


def test_no_origin(cors_server):
    r = requests.get(cors_server.url + "/api/v1/localities")
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_on_errors(cors_server):
    """A browser can read the problem body only if the error carries ACAO too."""
    r = requests.get(cors_server.url + "/api/v1/stations/999999", headers={"Origin": ALLOWED})
    assert r.status_code == 404
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    r = requests.get(cors_server.url + "/api/v1/stations?limit=0", headers={"Origin": ALLOWED})
    assert r.status_code == 422
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_preflight_allowed(cors_server):
    r = requests.options(cors_server.url + "/api/v1/stations",
                         headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET",
                                  "Access-Control-Request-Headers": "X-Request-ID"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    methods = {m.strip() for m in r.headers["Access-Control-Allow-Methods"].split(",")}
    assert "GET" in methods
    allowed_headers = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert "x-request-id" in allowed_headers
    assert int(r.headers["Access-Control-Max-Age"]) > 0
    assert r.content == b""


def test_preflight_on_item_path(cors_server):
    r = requests.options(cors_server.url + "/api/v1/stations/1/arrivals",
                         headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "GET" in r.headers["Access-Control-Allow-Methods"]


def test_preflight_other_origin(cors_server):
    r = requests.options(cors_server.url + "/api/v1/stations",
                         headers={"Origin": OTHER, "Access-Control-Request-Method": "GET"})
    assert r.status_code in (204, 403)
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Methods" not in r.headers


def test_preflight_unknown_path(cors_server):
    r = requests.options(cors_server.url + "/no/such/thing",
                         headers={"Origin": ALLOWED, "Access-Control-Request-Method": "GET"})
    assert r.status_code == 404


def test_session_server_has_no_cors(base):
    r = requests.get(base + "/api/v1/localities", headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in r.headers
