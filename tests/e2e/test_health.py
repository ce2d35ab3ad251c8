"""Health, readiness and metrics endpoints."""
import re

import pytest
import requests

from conftest import db_scalar, get_json, run_cli


@pytest.mark.parametrize("path", ["/health", "/api/v1/health"])
def test_health(base, path):
    body = get_json(base + path)
    assert body["status"] == "healthy"
    assert isinstance(body["version"], str) and body["version"]
    assert isinstance(body["uptime_s"], int) and body["uptime_s"] >= 0


def test_health_version_matches_binary(base):
    out = run_cli("--version").stdout.strip()
    assert out == "transitd " + get_json(base + "/health")["version"]


@pytest.mark.parametrize("path", ["/health/db", "/api/v1/health/db", "/health/cache", "/api/v1/health/cache"])
def test_dependency_health(base, path):
    body = get_json(base + path)
    assert body["status"] == "healthy"
    assert isinstance(body["latency_ms"], (int, float)) and body["latency_ms"] >= 0


@pytest.mark.parametrize("path", ["/health/queue", "/api/v1/health/queue"])
def test_queue_health_disabled_without_broker(spawn, path):
    s = spawn(AMQP_URL="")
    assert get_json(s.url + path) == {"status": "disabled"}


@pytest.mark.parametrize("path", ["/health/queue", "/api/v1/health/queue"])
def test_queue_health_with_the_broker(base, path):
    body = get_json(base + path)
    assert body["status"] == "healthy" and body["consumers"] >= 1
    assert isinstance(body["latency_ms"], (int, float)) and body["ready"] >= 0


def test_livez(base):
    assert get_json(base + "/livez")["status"] == "alive"


def test_readyz(base, db):
    body = get_json(base + "/readyz")
    assert body["status"] == "ready"
    assert isinstance(body["schema_version"], int) and not isinstance(body["schema_version"], bool)
    assert body["schema_version"] == db_scalar(db, "SELECT max(version) FROM schema_migrations")


LABELS = r'\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\}'
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(' + LABELS + r')? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def parse_metrics(text):
    """Checks the Prometheus 0.0.4 text format line by line; returns
    {name: [(labels dict, value)]} and {name: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
            continue
        if line.startswith("#"):
            assert line.startswith("# HELP "), line
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    return samples, types


def test_metrics(base):
    for _ in range(3):
        assert requests.get(base + "/api/v1/localities").status_code == 200
    requests.get(base + "/no/such/path")
    r = requests.get(base + "/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples, types = parse_metrics(r.text)

    assert types["transitd_http_requests_total"] == "counter"
    loc = [v for lab, v in samples["transitd_http_requests_total"]
           if lab.get("route") == "GET /api/v1/localities" and lab.get("status") == "200"]
    assert loc and loc[0] >= 3, samples["transitd_http_requests_total"]
    assert any(lab.get("route") == "unmatched" and lab.get("status") == "404"
               for lab, _ in samples["transitd_http_requests_total"])

    assert types["transitd_http_request_duration_seconds"] == "histogram"
    buckets = [(lab, v) for lab, v in samples["transitd_http_request_duration_seconds_bucket"]
               if lab.get("route") == "GET /api/v1/localities"]
    assert len(buckets) >= 2 and buckets[-1][0]["le"] == "+Inf"
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "histogram buckets must be cumulative"
    total = [v for lab, v in samples["transitd_http_request_duration_seconds_count"]
             if lab.get("route") == "GET /api/v1/localities"]
    assert total == [counts[-1]]
    assert any(lab.get("route") == "GET /api/v1/localities"
               for lab, _ in samples["transitd_http_request_duration_seconds_sum"])

    assert types["transitd_job_queue_depth"] == "gauge"
    assert samples["transitd_job_queue_depth"][0][1] >= 0
    for name in ("transitd_workers", "transitd_inflight_requests", "transitd_uptime_seconds",
                 "transitd_cache_requests_total"):
        assert name in samples, name
