# Helpers of bench/run.sh (which defines note and die).

# wait_http URL SECONDS PID: until URL answers 200, or fail if PID has exited.
wait_http() {
  local url=$1 secs=$2 pid=${3:-} i
  for ((i = 0; i < secs * 20; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    sleep 0.05
  done
  return 1
}

# stop_pid PID NAME [SECONDS]: TERM, wait (15 s), then KILL. Only PIDs the caller started.
stop_pid() {
  local pid=$1 secs=${3:-15} i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    note "$2 (pid $pid) did not stop in $secs s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# body BYTES: a body of that many bytes, for nginx to return.
body() { head -c "$1" /dev/zero | tr '\0' 'x'; }

# nginx_conf DIR PORT LOCATIONS: writes DIR/nginx.conf from bench/nginx.conf.in,
# a private nginx (no daemon, logs, pid and temp files under DIR) serving
# LOCATIONS on 127.0.0.1:PORT.
nginx_conf() {
  local dir=$1 port=$2 locations=$3 user_line="" conf
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  conf=$(<"$(dirname "${BASH_SOURCE[0]}")/nginx.conf.in")
  conf=${conf//@USER@/"$user_line"}
  conf=${conf//@DIR@/"$dir"}
  conf=${conf//@PORT@/"$port"}
  printf '%s\n' "${conf//@LOCATIONS@/"$locations"}" >"$dir/nginx.conf"
}
