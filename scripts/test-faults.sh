#!/usr/bin/env bash
# `make test-faults`: the faults-under-load suite (tests/faults/faults.py)
# against the release binary, on a private PostgreSQL and Redis of its own
# (TEST_RUN_DIR, default .run/faults; TEST_PG_PORT 15435 and
# TEST_REDIS_PORT 16382 unless set), which the suite restarts and pauses.
# Bounded: about a minute of load (FAULTS_PHASE_S per fault) plus set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/bootstrap.sh
make -s all
source scripts/services.sh

export TEST_RUN_DIR="${TEST_RUN_DIR:-$root/.run/faults}"
export TEST_PG_DIR="$TEST_RUN_DIR/pg" TEST_REDIS_DIR="$TEST_RUN_DIR/redis"
export TEST_PG_PORT="${TEST_PG_PORT:-15435}" TEST_REDIS_PORT="${TEST_REDIS_PORT:-16382}"
export FAULTS_DIR="$TEST_RUN_DIR/work"
cleanup() {
  redis-cli -p "$TEST_REDIS_PORT" DEBUG SLEEP 0 >/dev/null 2>&1 || true
  [ -f "$TEST_REDIS_DIR/redis.pid" ] && kill -CONT "$(cat "$TEST_REDIS_DIR/redis.pid")" 2>/dev/null || true
  redis_stop "$TEST_REDIS_DIR"
  pg_stop "$TEST_PG_DIR"
}
trap cleanup EXIT
cleanup
pg_wipe "$TEST_PG_DIR"
rm -rf "$TEST_RUN_DIR"
pg_start "$TEST_PG_DIR" "$TEST_PG_PORT"
redis_start "$TEST_REDIS_DIR" "$TEST_REDIS_PORT"
export DATABASE_URL="postgresql://transitd@127.0.0.1:$TEST_PG_PORT/transitd"
export REDIS_URL="redis://127.0.0.1:$TEST_REDIS_PORT"
export JWT_SECRET="faults-$(head -c 36 /dev/urandom | base64 | tr -d '/+=\n')"
export PAYMENT_WEBHOOK_SECRET="faults-webhook-$(head -c 36 /dev/urandom | base64 | tr -d '/+=\n')"
export TRANSITD_BIN="${TRANSITD_BIN:-$root/build/transitd}"
"$TRANSITD_BIN" migrate >/dev/null
"$TRANSITD_BIN" seed --demo >/dev/null
echo "== faults under load ($(basename "$TRANSITD_BIN"))"
/usr/bin/python3 tests/faults/faults.py
