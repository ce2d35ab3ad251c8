#!/usr/bin/env bash
# `make test`: bootstrap, build (normal and sanitizer binaries), a private
# PostgreSQL and Redis on their own ports under .run/test (never the
# `make run` data), unit tests, end-to-end tests, teardown.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/bootstrap.sh
make -s all asan
source scripts/services.sh

# TEST_RUN_DIR and the ports may be overridden to run two suites side by side.
# Fixed ports sit below the kernel's ephemeral range (32768-60999), where a
# client connection of a load test could already hold them.
export TEST_RUN_DIR="${TEST_RUN_DIR:-$root/.run/test}"
export TEST_PG_DIR="$TEST_RUN_DIR/pg" TEST_REDIS_DIR="$TEST_RUN_DIR/redis"
export TEST_PG_PORT="${TEST_PG_PORT:-15433}" TEST_REDIS_PORT="${TEST_REDIS_PORT:-16380}"
cleanup() {
  redis_stop "$TEST_REDIS_DIR"
  pg_stop "$TEST_PG_DIR"
}
trap cleanup EXIT
cleanup
rm -rf "$TEST_RUN_DIR"
pg_start "$TEST_PG_DIR" "$TEST_PG_PORT"
redis_start "$TEST_REDIS_DIR" "$TEST_REDIS_PORT"
export DATABASE_URL="postgresql://transitd@127.0.0.1:$TEST_PG_PORT/transitd"
export REDIS_URL="redis://127.0.0.1:$TEST_REDIS_PORT"
export JWT_SECRET="test-secret-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"

echo "== unit tests"
make -s unit

# The end-to-end suite runs against the sanitizer build: it is the same code
# with every memory error and undefined behaviour turned into a failure.
echo "== end-to-end tests (build/transitd-asan)"
export TRANSITD_BIN="${TRANSITD_BIN:-$root/build/transitd-asan}"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e "$@"
