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

# TEST_RUN_DIR and the ports may be overridden to run two suites side by side
# (and STARTUP_PORT_BASE, 25500, of the start-up test below: base+1..+15).
# Fixed ports sit below the kernel's ephemeral range (32768-60999), where a
# client connection of a load test could already hold them.
export TEST_RUN_DIR="${TEST_RUN_DIR:-$root/.run/test}"
export TEST_PG_DIR="$TEST_RUN_DIR/pg" TEST_REDIS_DIR="$TEST_RUN_DIR/redis"
export TEST_PG_PORT="${TEST_PG_PORT:-15433}" TEST_REDIS_PORT="${TEST_REDIS_PORT:-16380}"
export TEST_RABBITMQ_DIR="$TEST_RUN_DIR/rabbitmq" TEST_RABBITMQ_PORT="${TEST_RABBITMQ_PORT:-15690}"
cleanup() {
  rabbitmq_stop "$TEST_RABBITMQ_DIR" "$TEST_RABBITMQ_PORT"
  redis_stop "$TEST_REDIS_DIR"
  pg_stop "$TEST_PG_DIR"
}
trap cleanup EXIT
cleanup
pg_wipe "$TEST_PG_DIR" # also its data outside the checkout, if it lives there (see services.sh)
rm -rf "$TEST_RUN_DIR"
pg_start "$TEST_PG_DIR" "$TEST_PG_PORT"
redis_start "$TEST_REDIS_DIR" "$TEST_REDIS_PORT"
rabbitmq_start "$TEST_RABBITMQ_DIR" "$TEST_RABBITMQ_PORT"
export DATABASE_URL="postgresql://transitd@127.0.0.1:$TEST_PG_PORT/transitd"
export REDIS_URL="redis://127.0.0.1:$TEST_REDIS_PORT"
export AMQP_URL
AMQP_URL=$(rabbitmq_url "$TEST_RABBITMQ_DIR" "$TEST_RABBITMQ_PORT")
export JWT_SECRET="test-secret-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
# The webhook key; the payment tests sign provider events with it.
export PAYMENT_WEBHOOK_SECRET="test-webhook-$(head -c 33 /dev/urandom | base64 | tr -d '/+=')"
mkdir -p "$TEST_RUN_DIR"
(umask 077 && cat >"$TEST_RUN_DIR/env" <<ENV
DATABASE_URL='$DATABASE_URL'
REDIS_URL='$REDIS_URL'
JWT_SECRET='$JWT_SECRET'
PAYMENT_WEBHOOK_SECRET='$PAYMENT_WEBHOOK_SECRET'
ENV
)

echo "== unit tests"
make -s unit
echo "== unit tests under ASan and UBSan"
make -s unit-asan

# Every libFuzzer harness for a few seconds, so that they keep building and
# the seed corpora keep passing (`make fuzz` runs them a minute each).
echo "== fuzzing (${TEST_FUZZ_SECONDS:-3} s per harness)"
make -s fuzz-build
FUZZ_SECONDS=${TEST_FUZZ_SECONDS:-3} bash scripts/fuzz.sh

# `make run` and the test services from a mode-0700 folder, as root and as an
# ordinary user (tests/startup/test_any_directory.sh). TEST_STARTUP=0 skips it.
if [ "${TEST_STARTUP:-1}" != 0 ]; then
  bash tests/startup/test_any_directory.sh
fi

# The end-to-end suite runs twice: against the release binary, then against
# the sanitizer build, where every memory error, leak and undefined behaviour
# becomes a failure. TRANSITD_BIN picks one binary and runs the suite once.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if [ -n "${TRANSITD_BIN:-}" ]; then
  bins=("$TRANSITD_BIN")
else
  bins=("$root/build/transitd" "$root/build/transitd-asan")
fi
fresh=""
for bin in "${bins[@]}"; do
  if [ -n "$fresh" ]; then # each run starts from an empty database and Redis
    redis-cli -p "$TEST_REDIS_PORT" FLUSHALL >/dev/null
    as_pg_owner "$(pg_bindir)/psql" -h 127.0.0.1 -p "$TEST_PG_PORT" -U transitd -d postgres -q \
      -c "DROP DATABASE transitd" -c "CREATE DATABASE transitd"
  fi
  fresh=1
  echo "== end-to-end tests ($(basename "$bin"))"
  TRANSITD_BIN=$bin /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e "$@"
done
