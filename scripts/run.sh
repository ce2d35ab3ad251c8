#!/usr/bin/env bash
# `make run`: everything a new user needs, then serve on $PORT (8000).
# Without DATABASE_URL / REDIS_URL it starts a private PostgreSQL and Redis
# under .run/ (kept between runs) and stops them again on Ctrl-C. As root, when
# the 'postgres' user cannot enter the checkout, PostgreSQL's data lives under
# /var/lib/transitd and .run/pg links to it (scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash scripts/bootstrap.sh
make -s all
source scripts/services.sh
mkdir -p .run

started_pg="" started_redis="" started_rabbitmq="" server="" simulator=""
cleanup() {
  trap - EXIT INT TERM
  for pid in $simulator $server; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  [ -n "$started_rabbitmq" ] && rabbitmq_stop "$root/.run/rabbitmq" "${RUN_RABBITMQ_PORT:-15680}"
  [ -n "$started_redis" ] && redis_stop "$root/.run/redis"
  [ -n "$started_pg" ] && pg_stop "$root/.run/pg"
  echo "transitd: stopped"
}
trap cleanup EXIT INT TERM

if [ -z "${DATABASE_URL:-}" ]; then
  pg_start "$root/.run/pg" "${RUN_PG_PORT:-15432}"
  started_pg=1
  export DATABASE_URL="postgresql://transitd@127.0.0.1:${RUN_PG_PORT:-15432}/transitd"
fi
if [ -z "${REDIS_URL:-}" ]; then
  redis_start "$root/.run/redis" "${RUN_REDIS_PORT:-16379}"
  started_redis=1
  export REDIS_URL="redis://127.0.0.1:${RUN_REDIS_PORT:-16379}"
fi
if [ -z "${AMQP_URL:-}" ]; then
  # A set AMQP_URL names an external broker; otherwise a private node.
  rabbitmq_start "$root/.run/rabbitmq" "${RUN_RABBITMQ_PORT:-15680}"
  started_rabbitmq=1
  AMQP_URL=$(rabbitmq_url "$root/.run/rabbitmq" "${RUN_RABBITMQ_PORT:-15680}")
  export AMQP_URL
fi
if [ -z "${JWT_SECRET:-}" ]; then
  # One secret per checkout, kept so that tokens survive a restart.
  if [ -f .run/jwt_secret ]; then
    JWT_SECRET=$(cat .run/jwt_secret)
  else
    JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
    (umask 077 && echo "$JWT_SECRET" >.run/jwt_secret)
  fi
  export JWT_SECRET
fi
if [ -z "${PAYMENT_WEBHOOK_SECRET:-}" ]; then
  # The key the payment provider signs its webhook with (the sandbox provider
  # is transitd itself); kept like the JWT secret.
  if [ -f .run/payment_webhook_secret ]; then
    PAYMENT_WEBHOOK_SECRET=$(cat .run/payment_webhook_secret)
  else
    PAYMENT_WEBHOOK_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
    (umask 077 && echo "$PAYMENT_WEBHOOK_SECRET" >.run/payment_webhook_secret)
  fi
  export PAYMENT_WEBHOOK_SECRET
fi
export PORT="${PORT:-8000}"
(umask 077 && cat >.run/env <<ENV
DATABASE_URL='$DATABASE_URL'
REDIS_URL='$REDIS_URL'
AMQP_URL='$AMQP_URL'
JWT_SECRET='$JWT_SECRET'
PAYMENT_WEBHOOK_SECRET='$PAYMENT_WEBHOOK_SECRET'
PORT='$PORT'
ENV
)

build/transitd migrate
build/transitd seed --demo

cat <<MSG

  transitd is starting on http://127.0.0.1:$PORT
    console     http://127.0.0.1:$PORT/   (sign in as admin@transitd.local / admin-change-me)
    payments    sandbox checkout at http://127.0.0.1:$PORT/checkout/<payment_id> (POST /api/v1/payments/topups)
    API docs    http://127.0.0.1:$PORT/docs
    health      http://127.0.0.1:$PORT/health
    metrics     http://127.0.0.1:$PORT/metrics
  services: .run/env (source it to reach the same database and Redis)
  the arrivals simulator (transitd simulate) moves the demo's vehicles every ${SIMULATE_INTERVAL_MS:-5000} ms
  Ctrl-C stops everything this command started.

MSG
build/transitd serve &
server=$!
# The demo's vehicles move: a step every SIMULATE_INTERVAL_MS, through the
# same cache invalidation as the API's writes, so boards and streams follow.
build/transitd simulate &
simulator=$!
wait "$server" || true
