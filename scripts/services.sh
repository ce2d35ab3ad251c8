#!/usr/bin/env bash
# Private PostgreSQL and Redis servers on loopback, each under a folder of the
# project's. Sourced by run.sh and test.sh; every function takes (dir, port).
# PostgreSQL refuses to run as root, so as root the cluster belongs to the
# 'postgres' system user that Debian's package creates. That user cannot enter
# a checkout inside a private folder (a home directory of mode 0700): then the
# cluster's data lives under $TRANSITD_STATE_DIR (/var/lib/transitd), in a
# folder named after the checkout's path, and DIR is a symbolic link to it.
# The next start finds the same data through the link; removing DIR (or all of
# .run) still means "start afresh".

TRANSITD_STATE_DIR=${TRANSITD_STATE_DIR:-/var/lib/transitd}

pg_bindir() {
  local v
  for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rn); do
    [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ] && { echo "/usr/lib/postgresql/$v/bin"; return; }
  done
  dirname "$(command -v pg_ctl)"
}

# as_pg_owner CMD...: runs CMD as the user that owns the clusters. As root
# that is 'postgres', from / (the caller's folder may be closed to it).
as_pg_owner() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# pg_reachable DIR: whether the postgres user can enter DIR (and every folder above it).
pg_reachable() {
  as_pg_owner test -x "$1" 2>/dev/null
}

# pg_absolute DIR: DIR with its parent's real path, so that one folder has one name.
pg_absolute() {
  local parent
  parent=$(dirname "$1")
  mkdir -p "$parent"
  echo "$(cd "$parent" && pwd -P)/$(basename "$1")"
}

# pg_relocated DIR: where the data of DIR lives when postgres cannot reach DIR.
pg_relocated() {
  local dir
  dir=$(pg_absolute "$1")
  echo "$TRANSITD_STATE_DIR/$(printf %s "$dir" | sha256sum | cut -c1-16)/$(basename "$dir")"
}

# pg_discard DATA: stops a cluster under $TRANSITD_STATE_DIR and removes it.
pg_discard() {
  local data=$1
  case $data in "$TRANSITD_STATE_DIR"/?*/?*) ;; *) return 0 ;; esac
  if [ -f "$data/postmaster.pid" ]; then
    as_pg_owner "$(pg_bindir)/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$(dirname "$data")"
}

# pg_state_folder DATA: the folders above DATA under $TRANSITD_STATE_DIR, open to postgres.
pg_state_folder() {
  mkdir -p "$(dirname "$1")"
  chmod 755 "$TRANSITD_STATE_DIR" "$(dirname "$1")"
}

# pg_datadir DIR: prepares and prints the folder that holds DIR's cluster:
# DIR itself, or (as root, when postgres cannot reach DIR) its folder under
# $TRANSITD_STATE_DIR, with DIR as a link to it.
pg_datadir() {
  local dir data
  dir=$(pg_absolute "$1")
  if [ "$(id -u)" -ne 0 ]; then
    mkdir -p "$dir"
    chmod 700 "$dir"
    echo "$dir"
    return 0
  fi
  if [ -L "$dir" ]; then
    data=$(readlink -m "$dir")
  elif pg_reachable "$(dirname "$dir")"; then
    data=$dir
  else
    data=$(pg_relocated "$dir")
    # Data at that place whose link is gone belongs to a removed DIR.
    pg_discard "$data"
    pg_state_folder "$data"
    printf '%s\n' "$dir" >"$(dirname "$data")/origin"
    if [ -d "$dir" ]; then # a folder from before (made by hand, or by another user): keep its data
      mv "$dir" "$data"
      chown -R postgres: "$data"
    fi
    ln -s "$data" "$dir"
  fi
  case $data in "$TRANSITD_STATE_DIR"/*) pg_state_folder "$data" ;; esac
  mkdir -p "$data"
  chown postgres: "$data"
  chmod 700 "$data"
  echo "$data"
}

# pg_start DIR PORT: initdb on first use, then start; database 'transitd', user 'transitd'.
pg_start() {
  local dir port=$2 bin data
  dir=$(pg_absolute "$1")
  bin=$(pg_bindir)
  data=$(pg_datadir "$dir")
  if [ "$data" != "$dir" ]; then
    echo "transitd: PostgreSQL data for ${dir#"$PWD/"} lives in $data (the postgres user cannot reach the checkout)"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg_owner "$bin/initdb" -D "$data" -U transitd --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
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
  as_pg_owner "$bin/pg_ctl" -D "$data" -o "-p $port" -l "$data/server.log" -w -t 60 start >/dev/null
  as_pg_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U transitd -d postgres -tAq \
    -c "SELECT 1 FROM pg_database WHERE datname = 'transitd'" | grep -q 1 ||
    as_pg_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U transitd -d postgres -q -c "CREATE DATABASE transitd"
}

# pg_replica_start DIR PORT PRIMARY_PORT SLOT: on first use a streaming replica
# of the primary on PRIMARY_PORT (pg_basebackup -R through the physical
# replication slot SLOT, created when missing), then start it.
pg_replica_start() {
  local dir port=$2 primary=$3 slot=$4 bin data
  dir=$(pg_absolute "$1")
  bin=$(pg_bindir)
  data=$(pg_datadir "$dir")
  if [ ! -f "$data/PG_VERSION" ]; then
    as_pg_owner "$bin/psql" -h 127.0.0.1 -p "$primary" -U transitd -d postgres -tAq \
      -c "SELECT 1 FROM pg_replication_slots WHERE slot_name = '$slot'" | grep -q 1 ||
      as_pg_owner "$bin/psql" -h 127.0.0.1 -p "$primary" -U transitd -d postgres -tAq \
        -c "SELECT pg_create_physical_replication_slot('$slot')" >/dev/null
    as_pg_owner "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary" -U transitd -D "$data" -R -S "$slot" \
      -X stream -c fast
  fi
  as_pg_owner "$bin/pg_ctl" -D "$data" -o "-p $port" -l "$data/server.log" -w -t 60 start >/dev/null
}

pg_stop() {
  local dir=$1
  [ -f "$dir/postmaster.pid" ] || return 0
  as_pg_owner "$(pg_bindir)/pg_ctl" -D "$(readlink -m "$dir")" -m fast -w stop >/dev/null 2>&1 || true
}

# pg_wipe DIR: stops DIR's cluster and removes its data, wherever it lives.
pg_wipe() {
  local dir=$1
  pg_stop "$dir"
  [ -L "$dir" ] && pg_discard "$(readlink -m "$dir")"
  rm -rf "$dir"
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

# A private RabbitMQ node: data, logs and its Erlang cookie under DIR; AMQP on
# 127.0.0.1:PORT, its Erlang port mapper on PORT+1 and distribution on
# PORT+2, so it shares nothing with another node on the machine. It has a
# user 'transitd' (password in DIR/password) on the vhost 'transitd', and no
# 'guest' at all.
rabbitmq_bin=/usr/lib/rabbitmq/bin

# rabbitmq_run DIR PORT CMD...: CMD with the node's environment.
rabbitmq_run() {
  local dir=$1 port=$2
  shift 2
  HOME=$dir RABBITMQ_NODENAME=transitd-$port@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$((port + 2)) ERL_EPMD_PORT=$((port + 1)) \
    RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/rabbitmq.pid \
    RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins \
    ERL_CRASH_DUMP=$dir/erl_crash.dump "$@"
}

# rabbitmq_ctl DIR PORT ARGS...: rabbitmqctl against the node.
rabbitmq_ctl() {
  local dir=$1 port=$2
  shift 2
  rabbitmq_run "$dir" "$port" "$rabbitmq_bin/rabbitmqctl" -q -n "transitd-$port@localhost" "$@"
}

# rabbitmq_start DIR PORT: starts the node (set up on first use).
rabbitmq_start() {
  local dir port=$2 password
  dir=$(pg_absolute "$1")
  mkdir -p "$dir"
  chmod 700 "$dir"
  cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$port
loopback_users = none
log.console = false
log.file.level = warning
CONF
  echo "[]." >"$dir/enabled_plugins"
  rabbitmq_run "$dir" "$port" "$rabbitmq_bin/rabbitmq-server" -detached >/dev/null 2>&1
  if ! rabbitmq_ctl "$dir" "$port" wait "$dir/rabbitmq.pid" --timeout 90 >/dev/null 2>&1; then
    echo "RabbitMQ did not start on port $port; see $dir/log and $dir/erl_crash.dump" \
      "(it also needs ports $((port + 1)) and $((port + 2)))" >&2
    return 1
  fi
  [ -f "$dir/password" ] || (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '\n/+=' >"$dir/password")
  password=$(cat "$dir/password")
  rabbitmq_ctl "$dir" "$port" add_vhost transitd >/dev/null 2>&1 || true
  rabbitmq_ctl "$dir" "$port" add_user transitd "$password" >/dev/null 2>&1 ||
    rabbitmq_ctl "$dir" "$port" change_password transitd "$password" >/dev/null
  rabbitmq_ctl "$dir" "$port" set_permissions -p transitd transitd ".*" ".*" ".*" >/dev/null
  rabbitmq_ctl "$dir" "$port" delete_user guest >/dev/null 2>&1 || true
}

# rabbitmq_url DIR PORT: the AMQP_URL of the node's transitd user.
rabbitmq_url() {
  echo "amqp://transitd:$(cat "$1/password")@127.0.0.1:$2/transitd"
}

# rabbitmq_stop DIR PORT: stops the node and its port mapper.
rabbitmq_stop() {
  local dir=$1 port=$2
  [ -f "$dir/rabbitmq.pid" ] || return 0
  rabbitmq_ctl "$dir" "$port" stop "$dir/rabbitmq.pid" >/dev/null 2>&1 || true
  rm -f "$dir/rabbitmq.pid"
  ERL_EPMD_PORT=$((port + 1)) epmd -kill >/dev/null 2>&1 || true
}
