"""The OpenAPI document describes every served route; Swagger UI is served."""
import json
import os
import re

import pytest
import requests

from conftest import ROOT, run_cli

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def served_routes():
    out = run_cli("routes").stdout
    routes = []
    for line in out.splitlines():
        if not line.strip():
            continue
        m = re.match(r"^([A-Z]+) (/\S*)$", line)
        assert m, "unexpected line from `transitd routes`: %r" % line
        routes.append((m.group(1), m.group(2)))
    assert routes
    return routes


def segments(path):
    return [("{}" if re.fullmatch(r"\{[^/{}]+\}", seg) else seg) for seg in path.strip("/").split("/")]


def same_path(doc_path, route_path):
    """Paths are the same with {param} names normalised. One exception: a
    templated segment of the document (`/docs/{file}`) covers a route segment
    that names a file (`/docs/swagger-ui.css`); a literal such as
    `/trips/total` must be documented on its own, not as `/trips/{trip_id}`."""
    have, want = segments(doc_path), segments(route_path)
    if len(have) != len(want):
        return False
    return all(a == b or (a == "{}" and "." in b) for a, b in zip(have, want))


def documented(doc, method, path):
    return any(same_path(p, path) and method.lower() in item for p, item in doc["paths"].items())


def test_path_matching_rules():
    assert same_path("/api/v1/stations/{id}", "/api/v1/stations/{station_id}")
    assert same_path("/docs/{file}", "/docs/swagger-ui.css")
    assert same_path("/", "/")
    assert not same_path("/api/v1/trips/{trip_id}", "/api/v1/trips/total")
    assert not same_path("/api/v1/stations", "/api/v1/stations/{station_id}")
    assert not same_path("/health", "/api/v1/health")


@pytest.fixture(scope="module")
def doc(base):
    r = requests.get(base + "/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def test_openapi_version(doc):
    assert re.fullmatch(r"3\.1\.\d+", doc["openapi"]), doc["openapi"]
    assert doc["info"]["title"] and doc["info"]["version"]
    assert isinstance(doc["paths"], dict) and doc["paths"]


def test_served_document_is_the_repository_file(doc):
    with open(os.path.join(ROOT, "docs", "openapi.json")) as f:
        assert json.load(f) == doc


def test_every_route_is_documented(doc):
    missing = [m + " " + p for m, p in served_routes() if not documented(doc, m, p)]
    assert not missing, "routes served but missing from /openapi.json: %s" % ", ".join(missing)


def test_every_documented_operation_is_served(doc):
    """The reverse: the document promises nothing the server does not answer."""
    routes = served_routes()
    extra = []
    for p, item in doc["paths"].items():
        for method in item:
            if method not in METHODS:
                continue
            if not any(m.lower() == method and same_path(p, rp) for m, rp in routes):
                extra.append(method.upper() + " " + p)
    assert not extra, "documented but not served: %s" % ", ".join(extra)


def test_path_parameters_are_declared(doc):
    """Each {param} in a path is declared as an `in: path` parameter."""
    problems = []
    for p, item in doc["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", p))
        if not names:
            continue
        for method, op in item.items():
            if method not in METHODS:
                continue
            params = list(item.get("parameters", [])) + list(op.get("parameters", []))
            declared = set()
            for prm in params:
                if "$ref" in prm:
                    ref = prm["$ref"].split("/")[-1]
                    prm = doc.get("components", {}).get("parameters", {}).get(ref, {})
                if prm.get("in") == "path":
                    declared.add(prm.get("name"))
            if names - declared:
                problems.append("%s %s: %s" % (method.upper(), p, sorted(names - declared)))
    assert not problems, problems


def test_operations_have_responses(doc):
    for p, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                assert op.get("responses"), "%s %s has no responses" % (method, p)


def test_docs_page(base):
    r = requests.get(base + "/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert "/docs/swagger-ui-bundle.js" in r.text
    assert "/openapi.json" in r.text


@pytest.mark.parametrize("asset,ctype", [("/docs/swagger-ui-bundle.js", "javascript"),
                                         ("/docs/swagger-ui-standalone-preset.js", "javascript"),
                                         ("/docs/swagger-ui.css", "text/css"),
                                         ("/docs/favicon-32x32.png", "image/png")])
def test_docs_assets(base, asset, ctype):
    r = requests.get(base + asset)
    assert r.status_code == 200
    assert ctype in r.headers["Content-Type"]
    assert len(r.content) > 100


def test_dashboard(base):
    r = requests.get(base + "/")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
