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

# nginx_conf DIR PORT LOCATIONS: writes DIR/nginx.conf, a private nginx (no
# daemon, logs, pid and temp files under DIR) serving LOCATIONS on 127.0.0.1:PORT.
nginx_conf() {
  local dir=$1 port=$2 locations=$3 user_line=""
  [ "$(id -u)" -eq 0 ] && user_line="user root;"
  cat >"$dir/nginx.conf" <<CONF
$user_line
daemon off;
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile 40000;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  default_type application/json;
  server {
    listen 127.0.0.1:$port;
$locations
  }
}
CONF
}
