"""The command line: help, version, route table, bad configuration."""
import re

import pytest

from conftest import free_port, run_bin, run_cli


def test_help():
    p = run_cli("--help")
    assert p.returncode == 0
    assert p.stdout.startswith("usage: transitd")
    for word in ("serve", "migrate", "seed", "routes", "DATABASE_URL", "PORT"):
        assert word in p.stdout


def test_version():
    p = run_cli("--version")
    assert p.returncode == 0
    assert re.fullmatch(r"transitd \S+\n", p.stdout), p.stdout


def test_routes_command():
    lines = run_cli("routes").stdout.splitlines()
    assert "GET /health" in lines
    assert "GET /api/v1/stations/{station_id}" in lines
    assert all(re.fullmatch(r"[A-Z]+ /\S*", l) for l in lines), lines
    assert len(lines) == len(set(lines)), "duplicate routes"


def test_routes_table_names_each_routes_handler_and_cache():
    plain = run_cli("routes").stdout.splitlines()
    lines = run_cli("routes", "--table").stdout.splitlines()
    assert lines[0].startswith("| route | handler |"), lines[:2]
    rows = [[c.strip() for c in l.strip("|").split("|")] for l in lines[2:]]
    assert [r[0] for r in rows] == ["`%s`" % p for p in plain]
    assert all(re.fullmatch(r"`[a-z_]+`", r[1]) for r in rows), rows
    by_route = {r[0]: r for r in rows}
    assert by_route["`GET /api/v1/cards/{card_id}/balance`"][3].startswith("`card:{}:balance`")
    assert "card lane" in by_route["`POST /api/v1/cards/recharge`"][4]
    assert by_route["`GET /health`"][4] == "I/O thread"


@pytest.mark.parametrize("value", ["abc", "100", "-1", "1e9", "64k", "99999999999999999999"])
def test_bad_max_body_bytes_exits_2(value):
    p = run_bin("serve", env={"MAX_BODY_BYTES": value, "PORT": str(free_port())})
    assert p.returncode == 2, p.stderr
    assert "MAX_BODY_BYTES" in p.stderr


def test_unknown_command():
    p = run_cli("frobnicate", check=False)
    assert p.returncode == 2
    assert "frobnicate" in p.stderr


def test_seed_without_demo_flag():
    p = run_cli("seed", check=False)
    assert p.returncode == 2
