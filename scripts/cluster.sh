#!/usr/bin/env bash
# `make cluster`: the production shape on one machine. A PostgreSQL primary
# and a streaming replica (pg_basebackup -R, a replication slot), Redis,
# RabbitMQ, two transitd instances reading from the replica and consuming
# the command queue, and HAProxy in front on $PORT
# (8000), checking /readyz. Everything listens on 127.0.0.1 and keeps its
# data under $CLUSTER_DIR (.run/cluster). Ctrl-C stops what it started.
#
#   scripts/cluster.sh            up, print the URLs, wait for Ctrl-C, down
#   scripts/cluster.sh up         start everything and return (tests, benchmarks)
#   scripts/cluster.sh down       stop everything `up` started
#   scripts/cluster.sh restart N  SIGTERM instance N (1 or 2), start it again, wait until ready
#   scripts/cluster.sh start N / stop N   one instance
#
# CLUSTER_DIR, CLUSTER_PORT_BASE (15450: primary, +1 replica, +2 Redis,
# +3 and +4 the instances, +5 HAProxy's stats, +7 RabbitMQ with +8 and +9
# for its Erlang ports) and PORT (HAProxy, 8000).
# Extra environment for the instances passes through (WORKERS, LOG_LEVEL ...).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${CLUSTER_DIR:-$root/.run/cluster}
base=${CLUSTER_PORT_BASE:-15450}
pg_port=$base replica_port=$((base + 1)) redis_port=$((base + 2))
app_ports=($((base + 3)) $((base + 4)))
stats_port=$((base + 5)) rabbitmq_port=$((base + 7))
front=${PORT:-8000}

source scripts/services.sh

wait_ready() { # URL SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

instance_start() {
  local n=$1 port=${app_ports[$(($1 - 1))]}
  (
    # shellcheck disable=SC1091
    source "$dir/env"
    export DATABASE_URL REDIS_URL JWT_SECRET AMQP_URL PAYMENT_WEBHOOK_SECRET
    export DATABASE_REPLICA_URLS="postgresql://transitd@127.0.0.1:$replica_port/transitd"
    export PORT=$port BIND=127.0.0.1
    # HAProxy's health checks see a draining instance before it closes.
    export SHUTDOWN_DELAY_MS=${SHUTDOWN_DELAY_MS:-1500}
    # Every connection comes from HAProxy, on 127.0.0.1.
    export MAX_CONNECTIONS_PER_CLIENT=0 TRUSTED_PROXIES=${TRUSTED_PROXIES:-127.0.0.1/32}
    exec build/transitd serve >>"$dir/transitd-$n.log" 2>&1
  ) &
  echo $! >"$dir/transitd-$n.pid"
  wait_ready "http://127.0.0.1:$port/readyz" 30 ||
    { tail -5 "$dir/transitd-$n.log" >&2; echo "cluster: instance $n did not become ready" >&2; return 1; }
}

instance_stop() { # N [SIGNAL]
  local f=$dir/transitd-$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  fi
  rm -f "$f"
}

haproxy_conf() {
  cat >"$dir/haproxy.cfg" <<CONF
global
  maxconn 8000
  pidfile $dir/haproxy.pid
  stats socket $dir/haproxy.sock mode 600 level admin

defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 30s
  timeout http-keep-alive 10s
  # A request that found its instance gone is sent to the other one: GET and
  # HEAD always, a POST or PATCH only with an Idempotency-Key, which makes
  # the replay harmless (transitd answers it from the stored first answer).
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response response-timeout 503
  option forwardfor

frontend api
  bind 127.0.0.1:$front
  http-request disable-l7-retry if !METH_GET !METH_HEAD !{ req.hdr(idempotency-key) -m found }
  default_backend transitd

backend transitd
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 300ms fall 2 rise 2
  server t1 127.0.0.1:${app_ports[0]} check
  server t2 127.0.0.1:${app_ports[1]} check

listen stats
  bind 127.0.0.1:$stats_port
  stats enable
  stats uri /
CONF
}

up() {
  bash scripts/bootstrap.sh --cluster
  make -s all
  mkdir -p "$dir"
  pg_start "$dir/pg-primary" "$pg_port"
  pg_replica_start "$dir/pg-replica" "$replica_port" "$pg_port" transitd_replica
  redis_start "$dir/redis" "$redis_port"
  rabbitmq_start "$dir/rabbitmq" "$rabbitmq_port"
  local secret
  for secret in jwt_secret payment_webhook_secret; do
    [ -f "$dir/$secret" ] ||
      (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48 >"$dir/$secret")
  done
  (umask 077 && cat >"$dir/env" <<ENV
DATABASE_URL='postgresql://transitd@127.0.0.1:$pg_port/transitd'
DATABASE_REPLICA_URLS='postgresql://transitd@127.0.0.1:$replica_port/transitd'
REDIS_URL='redis://127.0.0.1:$redis_port'
AMQP_URL='$(rabbitmq_url "$dir/rabbitmq" "$rabbitmq_port")'
JWT_SECRET='$(cat "$dir/jwt_secret")'
PAYMENT_WEBHOOK_SECRET='$(cat "$dir/payment_webhook_secret")'
PORT='$front'
ENV
  )
  (
    source "$dir/env"
    export DATABASE_URL REDIS_URL JWT_SECRET PAYMENT_WEBHOOK_SECRET
    build/transitd migrate >"$dir/migrate.log" 2>&1 && build/transitd seed --demo >>"$dir/migrate.log" 2>&1
  ) || { cat "$dir/migrate.log" >&2; return 1; }
  instance_start 1
  instance_start 2
  haproxy_conf
  haproxy -W -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 &
  echo $! >"$dir/haproxy.master.pid"
  wait_ready "http://127.0.0.1:$front/readyz" 30 ||
    { cat "$dir/haproxy.log" >&2; echo "cluster: HAProxy did not answer on $front" >&2; return 1; }
}

down() {
  local pid
  if [ -f "$dir/haproxy.master.pid" ]; then
    pid=$(cat "$dir/haproxy.master.pid")
    # SIGUSR1: a soft stop; requests in flight finish.
    kill -USR1 "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -TERM "$pid" 2>/dev/null || true
    rm -f "$dir/haproxy.master.pid"
  fi
  instance_stop 1
  instance_stop 2
  redis_stop "$dir/redis"
  rabbitmq_stop "$dir/rabbitmq" "$rabbitmq_port"
  pg_stop "$dir/pg-replica"
  pg_stop "$dir/pg-primary"
}

case "${1:-run}" in
up) up ;;
down) down ;;
start) instance_start "$2" ;;
stop) instance_stop "$2" "${3:-TERM}" ;;
restart)
  instance_stop "$2"
  instance_start "$2"
  ;;
run)
  trap 'trap - EXIT INT TERM; down; echo "cluster: stopped"' EXIT INT TERM
  up
  cat <<MSG

  transitd cluster on http://127.0.0.1:$front (HAProxy; stats on http://127.0.0.1:$stats_port/)
    instances   http://127.0.0.1:${app_ports[0]}  http://127.0.0.1:${app_ports[1]}
    PostgreSQL  primary 127.0.0.1:$pg_port, streaming replica 127.0.0.1:$replica_port
    Redis       127.0.0.1:$redis_port
    RabbitMQ    127.0.0.1:$rabbitmq_port (amqp; the URL is in the env file)
  data and logs under ${dir#"$root/"}; $dir/env holds the URLs and the JWT secret.
  Ctrl-C stops everything this command started.

MSG
  while true; do sleep 3600; done
  ;;
*)
  echo "usage: scripts/cluster.sh [up|down|start N|stop N [SIGNAL]|restart N]" >&2
  exit 2
  ;;
esac
