#!/usr/bin/env bash
# Private PostgreSQL and Redis servers on loopback, each under a folder of the
# project's. Sourced by run.sh and test.sh; every function takes (dir, port).
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# 'postgres' system user that Debian's package creates.

pg_bindir() {
  local v
  for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rn); do
    [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] && { echo "/usr/lib/postgresql/$v/bin"; return; }
  done
  dirname "$(command -v pg_ctl)"
}

as_pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pg_start DIR PORT: initdb on first use, then start; database 'transitd', user 'transitd'.
pg_start() {
  local dir=$1 port=$2 bin
  bin=$(pg_bindir)
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  if [ ! -f "$dir/PG_VERSION" ]; then
    as_pg_owner "$bin/initdb" -D "$dir" -U transitd --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
shared_buffers = 512MB
work_mem = 16MB
maintenance_work_mem = 256MB
wal_level = replica
max_wal_senders = 4
checkpoint_timeout = 15min
max_wal_size = 4GB
log_min_duration_statement = 1000
CONF
  fi
  as_pg_owner "$bin/pg_ctl" -D "$dir" -o "-p $port" -l "$dir/server.log" -w -t 60 start >/dev/null
  as_pg_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U transitd -d postgres -tAq \
    -c "SELECT 1 FROM pg_database WHERE datname = 'transitd'" | grep -q 1 ||
    as_pg_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U transitd -d postgres -q -c "CREATE DATABASE transitd"
}

pg_stop() {
  local dir=$1
  [ -f "$dir/postmaster.pid" ] || return 0
  as_pg_owner "$(pg_bindir)/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
}

# redis_start DIR PORT: no persistence needed (Redis holds only what can be rebuilt).
redis_start() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save '' --appendonly no \
    --maxmemory 512mb --maxmemory-policy allkeys-lru >/dev/null
  local i
  for i in $(seq 1 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis did not start on port $port; see $dir/redis.log" >&2
  return 1
}

redis_stop() {
  local dir=$1 pid
  [ -f "$dir/redis.pid" ] || return 0
  pid=$(cat "$dir/redis.pid")
  kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$dir/redis.pid"
}
