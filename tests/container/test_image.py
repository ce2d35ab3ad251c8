"""The image as it ships: it serves the API against a real PostgreSQL and
Redis, runs as uid 10001, passes its own HEALTHCHECK and stops cleanly on
SIGTERM. The tests run in file order; the last one stops the container."""
import os

import requests
import yaml

from conftest import BASE, IMAGE, NAME, ROOT, inspect, podman


def test_health(container):
    r = requests.get(BASE + "/health", timeout=5)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "healthy", r.text
    assert requests.get(BASE + "/livez", timeout=5).status_code == 200
    # From inside the container, PostgreSQL and Redis are both reached.
    for path in ("/health/db", "/health/cache"):
        r = requests.get(BASE + path, timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "healthy", (path, r.text)


def test_network_read(container):
    r = requests.get(BASE + "/api/v1/stations/1", timeout=5)
    assert r.status_code == 200, r.text
    station = r.json()
    assert station["station_id"] == 1 and station["name"], station


def test_web_files_from_the_image(container):
    """WEB_DIR points at the files the image carries: the console, its npm
    files, Swagger UI."""
    for path in ("/", "/console/app.js", "/console/pages/board.js", "/console/console.css",
                 "/vendor/uplot/uPlot.esm.js", "/vendor/uplot/uPlot.min.css",
                 "/docs", "/docs/swagger-ui.css", "/docs/swagger-ui-bundle.js",
                 "/docs/swagger-ui-standalone-preset.js", "/docs/favicon-32x32.png", "/openapi.json"):
        r = requests.get(BASE + path, timeout=5)
        assert r.status_code == 200, (path, r.status_code)


def test_login_and_recharge(container, db):
    r = requests.post(BASE + "/api/v1/auth/login", timeout=10,
                      json={"email": "operator@transitd.local", "password": "operator-change-me"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    with db.cursor() as cur:
        cur.execute("SELECT balance FROM cards WHERE card_id = 1")
        (before,) = cur.fetchone()
        cur.execute("SELECT coalesce(max(entry_id), 0) FROM card_ledger")
        (last_entry,) = cur.fetchone()

    r = requests.post(BASE + "/api/v1/cards/recharge", timeout=10, json={"card_id": 1, "amount": 5000},
                      headers={"Authorization": "Bearer " + token})
    assert r.status_code == 201, r.text
    assert r.json()["new_balance"] == before + 5000, r.text

    with db.cursor() as cur:
        cur.execute("SELECT balance FROM cards WHERE card_id = 1")
        assert cur.fetchone() == (before + 5000,)
        cur.execute("SELECT card_id, kind, amount, balance_after FROM card_ledger WHERE entry_id > %s",
                    (last_entry,))
        assert cur.fetchall() == [(1, "recharge", 5000, before + 5000)]
    r = requests.get(BASE + "/api/v1/cards/1/balance", timeout=5, headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200 and r.json()["balance"] == before + 5000, r.text


def test_runs_as_uid_10001(container):
    assert inspect("{{.Config.User}}") == "10001:10001"
    # The server process itself, seen from the host (rootful, no user namespace).
    pid = inspect("{{.State.Pid}}")
    with open("/proc/%s/status" % pid) as f:
        ids = dict(line.split(":", 1) for line in f if line.startswith(("Uid:", "Gid:")))
    assert ids["Uid"].split() == ["10001"] * 4, ids
    assert ids["Gid"].split() == ["10001"] * 4, ids
    assert podman("exec", NAME, "id", "-u").stdout.strip() == "10001"


def test_healthcheck_passes(container):
    test = inspect("{{json .Config.Healthcheck.Test}}")
    assert "/livez" in test, "the image has lost its HEALTHCHECK: " + test
    r = podman("healthcheck", "run", NAME, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert inspect("{{.State.Health.Status}}") == "healthy"


def test_manifest_commands_exist_in_image(container):
    """The programs the manifests run inside this image (a preStop hook, the
    compose migrate service's shell) are in it."""
    programs = set()
    with open(os.path.join(ROOT, "deploy", "k8s", "deployment.yaml")) as f:
        for c in yaml.safe_load(f)["spec"]["template"]["spec"]["containers"]:
            for hook in c.get("lifecycle", {}).values():
                if "exec" in hook:
                    programs.add(hook["exec"]["command"][0])
    with open(os.path.join(ROOT, "deploy", "compose.yaml")) as f:
        for svc in yaml.safe_load(f)["services"].values():
            if str(svc.get("image", "")).startswith("transitd") and svc.get("entrypoint"):
                programs.add(svc["entrypoint"][0])
    assert programs, "no command found in the manifests"
    for p in sorted(programs):
        r = podman("exec", NAME, "bash", "-c", "command -v " + p, check=False)
        assert r.returncode == 0, "%s is not in %s" % (p, IMAGE)


def test_sigterm_stops_cleanly(container):
    """`podman stop` sends the image's STOPSIGNAL (SIGTERM): transitd drains and exits 0."""
    podman("stop", "--time=40", NAME, timeout=60)
    assert inspect("{{.State.ExitCode}}") == "0", podman("logs", NAME, check=False).stderr
