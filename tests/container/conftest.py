"""Fixtures of the container suite (scripts/test-image.sh). The image
(TRANSITD_IMAGE) runs under podman with host networking against the private
PostgreSQL and Redis that the script started on IMAGE_TEST_PG_PORT and
IMAGE_TEST_REDIS_PORT, and serves on 127.0.0.1:IMAGE_TEST_HTTP_PORT. The
containers are named after IMAGE_TEST_CONTAINER and removed by that name."""
import os
import secrets
import subprocess
import time

import psycopg2
import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = os.environ.get("TRANSITD_IMAGE", "transitd:0.1.0")
NAME = os.environ.get("IMAGE_TEST_CONTAINER", "transitd-test-image")
PG_PORT = int(os.environ.get("IMAGE_TEST_PG_PORT", "15833"))
REDIS_PORT = int(os.environ.get("IMAGE_TEST_REDIS_PORT", "16780"))
HTTP_PORT = int(os.environ.get("IMAGE_TEST_HTTP_PORT", "18890"))
DATABASE_URL = "postgresql://transitd@127.0.0.1:%d/transitd" % PG_PORT
REDIS_URL = "redis://127.0.0.1:%d" % REDIS_PORT
BASE = "http://127.0.0.1:%d" % HTTP_PORT

# What the Kubernetes manifests ask of the pod, asked of the container too:
# a read-only root filesystem, no capabilities, no privilege escalation.
HARDENING = ["--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges"]


def podman(*args, check=True, timeout=120):
    r = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError("podman %s: exit %d\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def inspect(fmt):
    return podman("inspect", "--format", fmt, NAME).stdout.strip()


def run_once(*command, env):
    """Runs one transitd command in a throw-away container of the image."""
    name = NAME + "-migrate"
    podman("rm", "--force", "--ignore", name)
    e = sum((["-e", "%s=%s" % kv] for kv in env.items()), [])
    return podman("run", "--rm", "--pull=never", "--network=host", "--name", name, *HARDENING, *e,
                  IMAGE, *command, timeout=300)


@pytest.fixture(scope="session")
def env():
    return {"DATABASE_URL": DATABASE_URL, "REDIS_URL": REDIS_URL, "JWT_SECRET": secrets.token_urlsafe(32),
            "PAYMENT_WEBHOOK_SECRET": secrets.token_urlsafe(32)}


@pytest.fixture(scope="session")
def container(env):
    """The image serving on BASE: migrated and seeded by the image itself."""
    run_once("migrate", env=env)
    run_once("seed", "--demo", env=env)
    podman("rm", "--force", "--ignore", NAME)
    e = dict(env, PORT=str(HTTP_PORT), BIND="127.0.0.1")
    # No timer for the HEALTHCHECK: podman would need systemd for it (this
    # machine has none); `podman healthcheck run` runs the image's check.
    podman("run", "--detach", "--pull=never", "--network=host", "--name", NAME, "--health-interval=disable",
           *HARDENING, *sum((["-e", "%s=%s" % kv] for kv in e.items()), []), IMAGE)
    try:
        deadline = time.time() + 30
        while True:
            if inspect("{{.State.Running}}") != "true":
                raise AssertionError("the container stopped:\n" + podman("logs", NAME, check=False).stderr)
            try:
                if requests.get(BASE + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                raise AssertionError("not ready in 30 s:\n" + podman("logs", NAME, check=False).stderr)
            time.sleep(0.2)
        yield NAME
    finally:
        podman("rm", "--force", "--time=10", "--ignore", NAME, check=False)


@pytest.fixture(scope="session")
def db():
    conn = psycopg2.connect(DATABASE_URL)
    conn.autocommit = True
    yield conn
    conn.close()
