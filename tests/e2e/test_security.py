"""Findings of the security audit (issue 14): each test failed before its fix."""
import base64
import datetime
import hashlib
import os
import re

import pytest
import requests

from conftest import ROOT, assert_problem, db_scalar, flush_cache, free_port, raw_request, redis_cli, run_bin

V1 = "/api/v1"


# ------------------------------------------------------------ response headers

def test_nosniff_on_every_kind_of_response(base, server):
    for path in ("/health", V1 + "/localities", V1 + "/no-such-thing", "/openapi.json", "/"):
        r = requests.get(base + path)
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (path, r.headers)
    # answers the front end gives before any route: broken framing
    status, headers, _, _ = raw_request(server.port, b"GET / HTTP/1.1\r\n\r\n")
    assert status == 400 and headers.get("x-content-type-options") == "nosniff"


def test_pages_carry_a_policy_that_allows_only_their_own_scripts(base):
    for path in ("/", "/docs"):
        r = requests.get(base + path)
        assert r.status_code == 200
        csp = r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
        assert r.headers["Referrer-Policy"] == "no-referrer"
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src")).split()[1:]
        assert "'unsafe-inline'" not in script_src
        inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
        assert inline, path
        for code in inline:
            digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
            assert "'sha256-%s'" % digest in script_src, (path, csp)
        # a 304 revalidation keeps the policy
        again = requests.get(base + path, headers={"If-None-Match": r.headers["ETag"]})
        assert again.status_code == 304 and "frame-ancestors 'none'" in again.headers["Content-Security-Policy"]


def test_api_answers_are_not_pages(base):
    r = requests.get(base + V1 + "/localities")
    assert "Content-Security-Policy" not in r.headers


# ------------------------------------------------------------ contract edges

def test_out_of_range_real_is_a_validation_error(base, operator):
    for raw in (b'{"card_id": 1, "amount": 1e309}', b'{"card_id": 1, "amount": -1e309}'):
        r = requests.post(base + V1 + "/cards/recharge", data=raw,
                          headers={**operator, "Content-Type": "application/json"})
        assert_problem(r, 422, "validation", field="amount")


# ------------------------------------------------------------ JWT secrets

@pytest.mark.parametrize("secret", [
    "CHANGE-ME-at-least-32-random-bytes",               # deploy/k8s/secret.example.yaml's old value
    "change-me-local-only-0123456789abcdef0123456789",  # deploy/compose.yaml's old default
    "x" * 64,
    "0123456789abcdef" * 3,
])
def test_weak_or_placeholder_jwt_secret_refused_at_start(database, secret):
    out = run_bin("serve", env={"JWT_SECRET": secret, "PORT": str(free_port())})
    assert out.returncode == 2, out
    assert "JWT_SECRET" in out.stderr and "/dev/urandom" in out.stderr, out.stderr


def test_placeholder_secret_gone_from_the_deploy_files():
    for path in ("deploy/k8s/secret.example.yaml", "deploy/compose.yaml"):
        with open(os.path.join(ROOT, path)) as f:
            text = f.read().lower()
        assert "change-me-at-least" not in text and "change-me-local" not in text, path


def test_rail_runs_by_station_name(base):
    day = (datetime.datetime.utcnow() - datetime.timedelta(hours=5) + datetime.timedelta(days=1)).date().isoformat()

    def runs(**params):
        r = requests.get(base + V1 + "/rail/runs", params=dict(params, date=day))
        assert r.status_code == 200, r.text
        return r.json()["runs"]

    by_id = runs(origin=201, destination=210)
    assert by_id
    for origin, destination in (("Estación de la Sabana", "Facatativá"), ("estacion de la sabana", "FACATATIVA"),
                                ("ESTACIÓN DE LA SABANA", "facatativá")):
        assert runs(origin=origin, destination=destination) == by_id, (origin, destination)
    assert runs(origin="Facatativa") == runs(origin=210)
    for bad in ("Atlantis", "0", "99999999999", "Funza "):
        r = requests.get(base + V1 + "/rail/runs", params={"origin": bad})
        assert_problem(r, 422, "validation", field="origin")
    r = requests.get(base + V1 + "/rail/runs", params={"destination": "Usme"})  # a station, not a rail one
    assert_problem(r, 422, "validation", field="destination")


# ------------------------------------------------------------ cache keys

def test_equivalent_queries_share_one_cache_entry(base):
    flush_cache(("transitd:stations", "transitd:rail:runs"))
    for q in ("limit=20", "limit=020", "limit=20&cursor=", "", "limit=+20"):
        r = requests.get(base + V1 + "/stations?" + q)
        if q == "limit=+20":
            assert_problem(r, 422, "validation", field="limit")
            continue
        assert r.status_code == 200, (q, r.text)
    assert redis_cli("HLEN", "transitd:stations") == "1", redis_cli("HKEYS", "transitd:stations")
    for q in ("locality=Usaquén", "locality=usaquen", "locality=USAQUEN&limit=20"):
        assert requests.get(base + V1 + "/stations?" + q).status_code == 200
    assert redis_cli("HLEN", "transitd:stations") == "2", redis_cli("HKEYS", "transitd:stations")
    for q in ("origin=Funza", "origin=funza", "origin=206", "origin=0206"):
        assert requests.get(base + V1 + "/rail/runs?" + q).status_code == 200
    assert redis_cli("HLEN", "transitd:rail:runs") == "2", redis_cli("HKEYS", "transitd:rail:runs")


def test_names_fold_alike_in_c_and_sql(db):
    assert db_scalar(db, "SELECT fold_name(%s)", "ÁÉÍÓÚÑÜ àéíóúñü Çç Øø Ÿ ÿ Æ ß Kennedy ") == \
        "aeiounu aeiounu cc oo Ÿ y Æ ß kennedy "


def test_failed_fill_gives_its_lease_back(base):
    for path, key in ((V1 + "/stations/99999999", "transitd:lease:station:99999999"),
                      (V1 + "/routes/99999999", "transitd:lease:route:99999999")):
        r = requests.get(base + path)
        assert_problem(r, 404, "not-found")
        assert redis_cli("EXISTS", key) == "0", (key, redis_cli("HGETALL", key))
