"""Static files: the console under /console/, the npm files it imports under
/vendor/, from memory with content types, ETag/304, gzip and caching rules;
no path a client sends reaches a file outside what was loaded at start."""
import gzip
import json
import os

import pytest
import requests

from conftest import ROOT, raw_request


def port_of(url):
    return int(url.rsplit(":", 1)[1])


def test_root_is_the_console(base):
    r = requests.get(base + "/")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/console/app.js">' in r.text
    assert "Content-Security-Policy" in r.text and "default-src 'self'" in r.text
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.text == requests.get(base + "/console/index.html").text


@pytest.mark.parametrize("path,ctype,cache", [
    ("/console/app.js", "text/javascript; charset=utf-8", "no-cache"),
    ("/console/pages/board.js", "text/javascript; charset=utf-8", "no-cache"),
    ("/console/console.css", "text/css; charset=utf-8", "no-cache"),
    ("/console/icon.svg", "image/svg+xml", "no-cache"),
    ("/vendor/uplot/uPlot.esm.js", "text/javascript; charset=utf-8", "public, max-age=86400"),
    ("/vendor/uplot/uPlot.min.css", "text/css; charset=utf-8", "public, max-age=86400"),
])
def test_files_have_their_type_etag_and_caching(base, path, ctype, cache):
    r = requests.get(base + path, headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == ctype
    assert r.headers["Cache-Control"] == cache
    assert "Content-Encoding" not in r.headers
    etag = r.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = requests.get(base + path, headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert again.status_code == 304 and not again.content
    assert requests.head(base + path).status_code == 200


def test_the_access_log_counts_a_static_file_s_bytes(spawn):
    s = spawn(LOG_LEVEL="info")
    r = requests.get(s.url + "/vendor/uplot/uPlot.esm.js", headers={"Accept-Encoding": "identity",
                                                                   "X-Request-ID": "static-bytes"})
    assert r.status_code == 200 and len(r.content) > 1000
    assert s.stop() == 0, s.logs()[-3000:]
    lines = [json.loads(x) for x in s.logs().splitlines() if '"static-bytes"' in x]
    assert [line["bytes"] for line in lines if line["msg"] == "request"] == [len(r.content)], lines


def test_gzip_when_accepted(base):
    plain = requests.get(base + "/vendor/uplot/uPlot.esm.js", headers={"Accept-Encoding": "identity"})
    status, headers, body, _ = raw_request(port_of(base), (
        b"GET /vendor/uplot/uPlot.esm.js HTTP/1.1\r\nHost: e2e\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"))
    assert status == 200
    assert headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert headers["etag"] != plain.headers["ETag"]
    assert gzip.decompress(body) == plain.content
    assert len(body) < len(plain.content) / 2


def test_the_module_graph_is_served(base):
    """Every module the console imports (statically or on demand) answers 200."""
    with open(os.path.join(ROOT, "web", "vendor.json")) as f:
        vendor = json.load(f)
    for name in vendor:
        assert requests.get(base + "/vendor/" + name).status_code == 200, name
    console = os.path.join(ROOT, "web", "console")
    for d, _, files in os.walk(console):
        for name in files:
            rel = os.path.relpath(os.path.join(d, name), console)
            assert requests.get(base + "/console/" + rel).status_code == 200, rel


@pytest.mark.parametrize("target", [
    b"/console/../docs.html", b"/console/%2e%2e/docs.html", b"/console/..%2fvendor.json",
    b"/console/pages/../app.js", b"/console/./app.js", b"/console/.hidden", b"/console//app.js",
    b"/vendor/../package.json", b"/vendor/node_modules/uplot/package.json", b"/vendor/uplot/package.json",
    b"/console/app.js%00.html", b"/console/APP.JS", b"/console", b"/vendor/",
])
def test_no_path_escapes(base, target):
    status, headers, body, _ = raw_request(port_of(base),
                                           b"GET " + target + b" HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
    assert status in (400, 404), (target, status, body[:200])
    assert headers["content-type"].startswith("application/problem+json")


def test_only_safe_files_are_loaded(spawn, tmp_path):
    """A WEB_DIR with a symbolic link out of the tree, hidden files, unknown
    extensions and vendor.json entries that leave node_modules: none is served."""
    web = tmp_path / "web"
    (web / "console" / "deep" / "er").mkdir(parents=True)
    (web / "console" / "index.html").write_text("<!DOCTYPE html><title>t</title>")
    (web / "console" / "deep" / "er" / "mod.js").write_text("export const x = 1;")
    (web / "console" / ".secret.js").write_text("secret")
    (web / "console" / "notes.exe").write_text("binary")
    (web / "console" / "passwd.txt").symlink_to("/etc/passwd")
    (web / "console" / "linked").symlink_to(str(tmp_path))
    (web / "node_modules" / "lib").mkdir(parents=True)
    (web / "node_modules" / "lib" / "lib.js").write_text("export default 1;")
    (tmp_path / "outside.js").write_text("outside")
    (web / "vendor.json").write_text(json.dumps({
        "lib/lib.js": "node_modules/lib/lib.js",
        "out.js": "node_modules/../../outside.js",
        "abs.js": "/etc/passwd",
        "../up.js": "node_modules/lib/lib.js",
        ".dot.js": "node_modules/lib/lib.js",
    }))
    s = spawn(WEB_DIR=str(web))
    ok = lambda p: requests.get(s.url + p).status_code
    assert ok("/") == 200
    assert ok("/console/deep/er/mod.js") == 200
    assert ok("/vendor/lib/lib.js") == 200
    for p in ("/console/.secret.js", "/console/notes.exe", "/console/passwd.txt", "/console/linked/outside.js",
              "/vendor/out.js", "/vendor/abs.js", "/vendor/.dot.js", "/console/vendor.json", "/docs"):
        assert ok(p) == 404, p
