import requests

from conftest import assert_problem


def test_health(base):
    r = requests.get(base + "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "healthy"
    assert isinstance(body["uptime_s"], int)


def test_unknown_route_is_problem(base):
    assert_problem(requests.get(base + "/no/such/thing"), 404, "not-found")
