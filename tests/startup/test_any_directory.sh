#!/usr/bin/env bash
# `make run` and the test services from a private folder (mode 0700), the way
# a new user tries them after cloning:
#   (a) as root, a copy of this checkout inside a fresh 0700 folder owned by
#       root, which the 'postgres' user cannot enter;
#   (b) as an ordinary user (created if missing), in a copy of their own.
# For each, the real `make run` runs in the background on its own ports until
# /health answers 200; then Ctrl-C (SIGINT to its process group), after which
# nothing it started may be left. Case (a) runs it twice: the second run must
# reuse the data. Then scripts/services.sh's pg_start/pg_stop/redis_* with a
# TEST_RUN_DIR inside the copy, as scripts/test.sh and the end-to-end suite's
# services() helper (tests/e2e/conftest.py) use them.
#
# The copy is this checkout's files (tracked and untracked, not ignored) plus
# its build outputs with their times, so nothing is rebuilt. Run by
# scripts/test.sh; alone: bash tests/startup/test_any_directory.sh
# Ports: STARTUP_PORT_BASE (25500) + 1..8 and + 11..18; the user: STARTUP_USER.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3

# --- the test services path, run inside a copy as the user of the case -----
if [ "${1:-}" = "--services" ]; then
  expect=$4 # relocated | in-place
  export TEST_RUN_DIR=$PWD/.run/test
  export TEST_PG_DIR=$TEST_RUN_DIR/pg TEST_REDIS_DIR=$TEST_RUN_DIR/redis
  export TEST_PG_PORT=$2 TEST_REDIS_PORT=$3
  source scripts/services.sh
  fail() { echo "FAIL (services, $(id -un)): $*" >&2; exit 1; }
  sql() { as_pg_owner "$(pg_bindir)/psql" -h 127.0.0.1 -p "$TEST_PG_PORT" -U transitd -d transitd -tAq -c "$1"; }
  open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  conftest() { # the e2e suite's own helper: services(action, kind)
    DATABASE_URL=unused REDIS_URL=unused $PY -B -c \
      'import sys; sys.path.insert(0, "tests/e2e"); import conftest; conftest.services(sys.argv[1], sys.argv[2])' "$@"
  }

  pg_wipe "$TEST_PG_DIR" # as scripts/test.sh starts
  rm -rf "$TEST_RUN_DIR"
  pg_start "$TEST_PG_DIR" "$TEST_PG_PORT"
  redis_start "$TEST_REDIS_DIR" "$TEST_REDIS_PORT"
  if [ "$expect" = relocated ]; then
    [ -L "$TEST_PG_DIR" ] || fail "$TEST_PG_DIR is not a link to data outside the checkout"
    [ "$(stat -c %U "$(readlink -m "$TEST_PG_DIR")")" = postgres ] || fail "the relocated data does not belong to postgres"
  else
    [ -d "$TEST_PG_DIR" ] && [ ! -L "$TEST_PG_DIR" ] || fail "$TEST_PG_DIR is not a folder in the checkout"
    [ "$(stat -c %U "$TEST_PG_DIR")" = "$(id -un)" ] || fail "$TEST_PG_DIR does not belong to $(id -un)"
  fi
  sql "CREATE TABLE startup_marker (x int)"

  conftest stop pg
  ! open "$TEST_PG_PORT" || fail "services('stop', 'pg') left PostgreSQL listening"
  [ ! -f "$TEST_PG_DIR/postmaster.pid" ] || fail "postmaster.pid left after services('stop', 'pg')"
  conftest start pg
  [ "$(sql "SELECT count(*) FROM pg_tables WHERE tablename = 'startup_marker'")" = 1 ] ||
    fail "the restarted cluster lost its data"
  conftest stop redis
  ! open "$TEST_REDIS_PORT" || fail "services('stop', 'redis') left Redis listening"
  conftest start redis
  [ "$(redis-cli -p "$TEST_REDIS_PORT" ping)" = PONG ] || fail "Redis did not come back"

  redis_stop "$TEST_REDIS_DIR" # as scripts/test.sh ends
  pg_stop "$TEST_PG_DIR"
  ! open "$TEST_PG_PORT" && ! open "$TEST_REDIS_PORT" || fail "pg_stop/redis_stop left a server listening"

  pg_wipe "$TEST_PG_DIR" # the next scripts/test.sh: an empty cluster
  rm -rf "$TEST_RUN_DIR"
  pg_start "$TEST_PG_DIR" "$TEST_PG_PORT"
  [ "$(sql "SELECT count(*) FROM pg_tables WHERE tablename = 'startup_marker'")" = 0 ] ||
    fail "a wiped TEST_RUN_DIR came back with the old data"
  pg_wipe "$TEST_PG_DIR"
  rm -rf "$TEST_RUN_DIR"
  exit 0
fi

# --- the driver ---------------------------------------------------------------
src=$PWD
port_base=${STARTUP_PORT_BASE:-25500}
test_user=${STARTUP_USER:-transitd-test}
state_dir=${TRANSITD_STATE_DIR:-/var/lib/transitd}
t0=$SECONDS

# Python as a launcher: the background `make run` gets its own process group
# (as in a terminal) and default SIGINT, SIGPIPE and SIGXFSZ handling, even
# when this script was itself started with SIGINT ignored.
LAUNCH='import os, signal, sys
for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(s, signal.SIG_DFL)
os.setpgid(0, 0)
os.execvp(sys.argv[1], sys.argv[1:])'

tmps=() groups=() clones=()
log="" # the log of the step under way, shown on failure

fail() {
  echo "FAIL: $*" >&2
  if [ -n "$log" ] && [ -f "$log" ]; then
    echo "--- $log (last 40 lines)" >&2
    tail -40 "$log" >&2
  fi
  exit 1
}

# alive PID: PID runs (a zombie does not: it waits for whoever reaps orphans).
alive() { kill -0 "$1" 2>/dev/null && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# gone PID: waits up to 10 s for PID to end (pg_ctl stop returns as the
# postmaster removes its pid file, a moment before it exits).
gone() { local i; for i in $(seq 1 100); do alive "$1" || return 0; sleep 0.1; done; return 1; }
open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pidfile() { [ -f "$1" ] && head -1 "$1" || true; }

# Stops by PID what this script started and is still running, and removes
# the copies and their data outside them.
cleanup() {
  local g c f pid i
  for g in "${groups[@]}"; do
    if kill -0 -- "-$g" 2>/dev/null; then
      kill -TERM -- "-$g" 2>/dev/null || true
      for i in $(seq 1 100); do kill -0 -- "-$g" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  for c in "${clones[@]}"; do
    for f in "$c/.run/pg/postmaster.pid" "$c/.run/test/pg/postmaster.pid" \
             "$c/.run/redis/redis.pid" "$c/.run/test/redis/redis.pid"; do
      pid=$(pidfile "$f")
      [ -n "$pid" ] && alive "$pid" || continue
      kill -INT "$pid" 2>/dev/null || true # PostgreSQL: fast shutdown; Redis: exit
      for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    done
    pid=$(pidfile "$c/.run/rabbitmq/rabbitmq.pid")
    if [ -n "$pid" ] && alive "$pid"; then
      kill -TERM "$pid" 2>/dev/null || true
      for i in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    fi
    for f in "$c/.run/pg" "$c/.run/test/pg"; do
      [ -L "$f" ] || continue
      case $(readlink -m "$f") in "$state_dir"/?*/?*) rm -rf "$(dirname "$(readlink -m "$f")")" ;; esac
    done
  done
  [ ${#tmps[@]} -eq 0 ] || rm -rf "${tmps[@]}"
}
trap cleanup EXIT

# copy_checkout DEST: this checkout's files and build outputs, times kept.
copy_checkout() {
  mkdir -p "$1"
  {
    if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git -C "$src" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$src/$f" ] && printf '%s\0' "$f"; done
    else
      find . -path ./.run -prune -o -path ./build -prune -o -path ./web/node_modules -prune -o \
        ! -type d -printf '%P\0'
    fi
    printf '%s\0' build/transitd build/obj build/gen web/node_modules
  } | tar -C "$src" --null -T - -cf - | tar -C "$1" -xf -
}

# as_case USER HOME: sets AS to the command prefix that runs a command as
# USER (as this script's user when USER is empty) from a clean environment
# like a new login's; NAME=VALUE words may follow it.
as_case() {
  local u=${1:-$(id -un)}
  AS=(env -i "PATH=$PATH" "HOME=$2" "LANG=C.UTF-8" "USER=$u" "LOGNAME=$u")
  [ -z "$1" ] || AS=(setpriv --reuid="$1" --regid="$1" --init-groups "${AS[@]}")
}

health() {
  $PY -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)' "http://127.0.0.1:$1/health"
}

# make_run NAME USER HOME CLONE BASE: `make run` in CLONE until /health
# answers, then Ctrl-C; checks that it stopped all it started.
make_run() {
  local name=$1 u=$2 home=$3 clone=$4 b=$5
  local pg=$((b + 1)) redis=$((b + 2)) http=$((b + 3)) rabbitmq=$((b + 6)) pid i pg_pid redis_pid rabbitmq_pid
  local t=$SECONDS
  log="$(dirname "$clone")/make-run-${name//[^a-z0-9]/-}.log"
  for i in $pg $redis $http $rabbitmq; do ! open "$i" || fail "port $i is in use (set STARTUP_PORT_BASE)"; done
  as_case "$u" "$home"
  (cd "$clone" && exec $PY -c "$LAUNCH" "${AS[@]}" RUN_PG_PORT=$pg RUN_REDIS_PORT=$redis RUN_RABBITMQ_PORT=$rabbitmq \
    PORT=$http make run) \
    >"$log" 2>&1 &
  pid=$!
  groups+=("$pid")
  for i in $(seq 1 1200); do
    alive "$pid" || fail "$name: make run exited before /health answered"
    health "$http" && break
    [ "$i" -lt 1200 ] || fail "$name: /health did not answer 200 within 120 s"
    sleep 0.1
  done
  pg_pid=$(pidfile "$clone/.run/pg/postmaster.pid")
  redis_pid=$(pidfile "$clone/.run/redis/redis.pid")
  rabbitmq_pid=$(pidfile "$clone/.run/rabbitmq/rabbitmq.pid")
  [ -n "$rabbitmq_pid" ] && alive "$rabbitmq_pid" || fail "$name: no RabbitMQ running for .run/rabbitmq"
  [ -n "$pg_pid" ] && alive "$pg_pid" || fail "$name: no PostgreSQL running for .run/pg"
  [ -n "$redis_pid" ] && alive "$redis_pid" || fail "$name: no Redis running for .run/redis"
  if [ -z "$u" ] && [ "$(id -u)" -eq 0 ]; then
    [ -L "$clone/.run/pg" ] || fail "$name: .run/pg should link to data outside the private folder"
    local data
    data=$(readlink -m "$clone/.run/pg")
    case $data in "$state_dir"/?*/pg) ;; *) fail "$name: .run/pg links to $data, not under $state_dir" ;; esac
    grep -qxF "transitd: PostgreSQL data for .run/pg lives in $data (the postgres user cannot reach the checkout)" "$log" ||
      fail "$name: no line saying where the data lives"
    [ "$(stat -c %U "/proc/$pg_pid")" = postgres ] || fail "$name: PostgreSQL does not run as postgres"
  else
    [ ! -L "$clone/.run/pg" ] && [ -d "$clone/.run/pg" ] || fail "$name: .run/pg should be a folder in the checkout"
    [ "$(stat -c %U "/proc/$pg_pid")" = "${u:-$(id -un)}" ] || fail "$name: PostgreSQL does not run as ${u:-$(id -un)}"
    ! grep -q "lives in" "$log" || fail "$name: data moved out of .run although ${u:-$(id -un)} owns it"
  fi

  kill -INT -- "-$pid" # Ctrl-C: the terminal signals the whole foreground group
  for i in $(seq 1 600); do alive "$pid" || break; sleep 0.1; done
  alive "$pid" && fail "$name: make run did not exit within 60 s of Ctrl-C"
  wait "$pid" || true
  groups=() # reaped: its number may be reused from now on
  grep -q '^transitd: stopped$' "$log" || fail "$name: make run did not report 'transitd: stopped'"
  ! kill -0 -- "-$pid" 2>/dev/null || fail "$name: processes of make run's group survived Ctrl-C"
  gone "$pg_pid" || fail "$name: PostgreSQL ($pg_pid) still runs after Ctrl-C"
  gone "$redis_pid" || fail "$name: Redis ($redis_pid) still runs after Ctrl-C"
  gone "$rabbitmq_pid" || fail "$name: RabbitMQ ($rabbitmq_pid) still runs after Ctrl-C"
  for i in $pg $redis $http; do ! open "$i" || fail "$name: port $i still open after Ctrl-C"; done
  [ ! -e "$clone/.run/pg/postmaster.pid" ] || fail "$name: postmaster.pid left behind"
  ! grep -Eq 'could not change directory|Permission denied' "$log" || fail "$name: permission warnings in the output"
  echo "  $name: make run served /health and stopped on Ctrl-C ($((SECONDS - t)) s)"
}

# services NAME USER HOME CLONE BASE EXPECT: the test services path in CLONE.
services() {
  local name=$1 u=$2 home=$3 clone=$4 b=$5 expect=$6 t=$SECONDS
  log="$(dirname "$clone")/services-${name//[^a-z0-9]/-}.log"
  ! open $((b + 4)) && ! open $((b + 5)) || fail "port $((b + 4)) or $((b + 5)) is in use (set STARTUP_PORT_BASE)"
  as_case "$u" "$home"
  (cd "$clone" && "${AS[@]}" bash tests/startup/test_any_directory.sh --services \
    $((b + 4)) $((b + 5)) "$expect") >"$log" 2>&1 || fail "$name: the test services path failed"
  ! grep -Eq 'could not change directory|Permission denied' "$log" || fail "$name: permission warnings in the output"
  echo "  $name: test services (pg_start/pg_stop, conftest's services()) work ($((SECONDS - t)) s)"
}

echo "== start-up from a private folder"
make -s -C "$src" all # what the copies reuse; nothing to do after scripts/test.sh's build

if [ "$(id -u)" -eq 0 ]; then
  # (a) root, a checkout inside a fresh 0700 folder of root's
  dir_a=$(mktemp -d /tmp/transitd-startup-root.XXXXXX)
  tmps+=("$dir_a")
  chmod 700 "$dir_a"
  clone_a=$dir_a/transitd
  clones+=("$clone_a")
  copy_checkout "$clone_a"
  if (cd / && runuser -u postgres -- test -x "$clone_a") 2>/dev/null; then
    fail "postgres can enter $clone_a; the case needs a folder closed to it"
  fi
  make_run "root" "" "$dir_a" "$clone_a" "$port_base"
  make_run "root, second run" "" "$dir_a" "$clone_a" "$port_base"
  log="$dir_a/make-run-root--second-run.log"
  ! grep -q '^migrated ' "$log" || fail "the second make run did not reuse the data (migrations ran again)"
  services "root" "" "$dir_a" "$clone_a" "$port_base" relocated

  # (b) an ordinary user, in a copy of their own
  if ! id -u "$test_user" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$test_user"
  fi
  user_b=$test_user
else
  # The root case needs root (it runs make as root and creates a system
  # user); it cannot run here, and says so. The ordinary user's case runs.
  user_b="" # already an ordinary user: the case runs as this user
  echo "  (not root: the root case is skipped)"
fi
dir_b=$(mktemp -d /tmp/transitd-startup-user.XXXXXX)
tmps+=("$dir_b")
clone_b=$dir_b/transitd
clones+=("$clone_b")
copy_checkout "$clone_b"
chmod 700 "$dir_b"
[ -z "$user_b" ] || chown -R "$user_b:" "$dir_b"
make_run "user ${user_b:-$(id -un)}" "$user_b" "$dir_b" "$clone_b" $((port_base + 10))
services "user ${user_b:-$(id -un)}" "$user_b" "$dir_b" "$clone_b" $((port_base + 10)) in-place

echo "== start-up from a private folder: ok ($((SECONDS - t0)) s)"
