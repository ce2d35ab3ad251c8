#!/usr/bin/env bash
# `make test-image`: the image as it ships, run for real.
#  1. tests/container/test_manifests.py: every variable, port, probe path and
#     command that deploy/compose.yaml, deploy/k8s/ and the Dockerfile name
#     exists in transitd (src/core/config.c, `transitd routes`, `--help`).
#  2. `make image` (seconds when nothing changed; see scripts/image.sh).
#  3. tests/container/test_image.py: the image against a private PostgreSQL
#     and Redis under .run/test-image, on host networking (both listen on
#     loopback only). Migrations and the demo seed run inside the image, then
#     the server: HTTP checks, uid, HEALTHCHECK, and a clean SIGTERM stop.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

[ "$(id -u)" -eq 0 ] || { echo "test-image: podman runs rootful here: run as root or with sudo" >&2; exit 1; }
bash scripts/bootstrap.sh --image
make -s all
source scripts/services.sh

export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/deploy/containers.conf}
version=$(sed -n 's/^#define TRANSITD_VERSION "\(.*\)"$/\1/p' src/version.h)
export TRANSITD_IMAGE=${TRANSITD_IMAGE:-transitd:$version}
export IMAGE_TEST_DIR=${IMAGE_TEST_DIR:-$root/.run/test-image}
export IMAGE_TEST_PG_PORT=${IMAGE_TEST_PG_PORT:-15833}
export IMAGE_TEST_REDIS_PORT=${IMAGE_TEST_REDIS_PORT:-16780}
export IMAGE_TEST_HTTP_PORT=${IMAGE_TEST_HTTP_PORT:-18890}
# One name per port, so that two checkouts on their own ports never meet.
export IMAGE_TEST_CONTAINER=${IMAGE_TEST_CONTAINER:-transitd-test-image-$IMAGE_TEST_HTTP_PORT}

echo "== manifest consistency"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/container/test_manifests.py

echo "== image"
bash scripts/image.sh

pg_dir=$IMAGE_TEST_DIR/pg redis_dir=$IMAGE_TEST_DIR/redis
cleanup() {
  # The suite removes its containers; this is for a run cut short.
  local c
  for c in "$IMAGE_TEST_CONTAINER" "$IMAGE_TEST_CONTAINER-migrate"; do
    if podman container exists "$c" 2>/dev/null; then podman rm -f -t 5 "$c" >/dev/null || true; fi
  done
  redis_stop "$redis_dir"
  pg_stop "$pg_dir"
}
trap cleanup EXIT
cleanup
pg_wipe "$pg_dir"
rm -rf "$IMAGE_TEST_DIR"
pg_start "$pg_dir" "$IMAGE_TEST_PG_PORT"
redis_start "$redis_dir" "$IMAGE_TEST_REDIS_PORT"

echo "== image tests ($TRANSITD_IMAGE)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/container/test_image.py "$@"
