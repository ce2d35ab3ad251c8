#!/usr/bin/env bash
# `make bench`: transitd against nginx returning a body of the same size, on
# loopback, plus a pgbench commit ceiling. Everything it starts lives under
# .run/bench/ (fresh each run) and is stopped again on exit, by PID.
#
#   BENCH_DURATION     seconds per measured wrk run (8); each run follows a 2 s warm-up
#   BENCH_CONNECTIONS  connection counts to try ("50 256 1000 10000")
#   BENCH_IDLE         idle keep-alive connections to hold while timing fresh
#                      connections (10000; 0 skips)
#   BENCH_STALL_RUNS   after the table, this many consecutive runs at 1,000
#                      connections on the cached read, counting stalls (0)
#   BENCH_STATION_ID   station to read (default: the lowest active station id)
#   BENCH_PG_PORT, BENCH_REDIS_PORT, BENCH_APP_PORT, BENCH_NGINX_PORT
#                      17432, 17379, 18100, 18101
#   WORKERS, IO_THREADS are passed through to transitd when set.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

duration=${BENCH_DURATION:-8}
connections=${BENCH_CONNECTIONS:-50 256 1000 10000}
idle=${BENCH_IDLE:-10000}
stall_runs=${BENCH_STALL_RUNS:-0}
threads=2
warmup=2
pg_port=${BENCH_PG_PORT:-17432}
redis_port=${BENCH_REDIS_PORT:-17379}
app_port=${BENCH_APP_PORT:-18100}
nginx_port=${BENCH_NGINX_PORT:-18101}
run=$root/.run/bench

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

[[ $duration =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be a whole number of seconds (got '$duration')"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
bash scripts/bootstrap.sh --bench || note "scripts/bootstrap.sh --bench failed; checking the tools anyway"
for tool in wrk nginx pgbench psql curl redis-server; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "$tool is not installed (bash scripts/bootstrap.sh --bench installs wrk, nginx-light and pgbench)"
done
make -s all
source scripts/services.sh
source bench/lib.sh

# ---- helpers -------------------------------------------------------------

# port_busy PORT: something listens on it, or holds it as the local end of a
# connection, TIME-WAIT included. A port in Linux's ephemeral range
# (32768-60999) can be a client connection's local port, which blocks a
# server's bind even with SO_REUSEADDR; the defaults sit below that range.
port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  command -v ss >/dev/null 2>&1 || return 1
  [ -n "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]
}

# wait_port_free PORT: up to 70 s (a TIME-WAIT lasts 60 s), or fail.
wait_port_free() {
  local p=$1 i
  for ((i = 0; i < 140; i++)); do
    port_busy "$p" || return 0
    [ "$i" -eq 0 ] && note "127.0.0.1:$p is in use; waiting for it to be released"
    sleep 0.5
  done
  die "port 127.0.0.1:$p is still in use (ss -tanp '( sport = :$p )' shows by what)"
}

psql_q() { psql -h 127.0.0.1 -p "$pg_port" -U transitd -v ON_ERROR_STOP=1 -qtA "$@"; }

# ---- start from scratch --------------------------------------------------

# A previous run that was killed hard may have left its servers up in this
# folder: stop those (they are this script's by construction), then wipe it.
if [ -f "$run/pg/postmaster.pid" ]; then
  note "stopping a PostgreSQL left running in $run/pg by an earlier run"
  pg_stop "$run/pg"
fi
if [ -f "$run/redis/redis.pid" ] &&
   grep -q "redis-server" "/proc/$(cat "$run/redis/redis.pid")/cmdline" 2>/dev/null &&
   [ "$(readlink "/proc/$(cat "$run/redis/redis.pid")/cwd")" = "$run/redis" ]; then
  note "stopping a Redis left running in $run/redis by an earlier run"
  redis_stop "$run/redis"
fi
for p in $app_port $nginx_port; do
  port_busy "$p" && die "port 127.0.0.1:$p is in use (ss -tanp '( sport = :$p )' shows by what)"
done
rm -rf "$run"
mkdir -p "$run/nginx"

started_pg="" started_redis="" app_pid="" nginx_pid="" probe=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  [ -n "$probe" ] && kill "$probe" 2>/dev/null
  [ -n "$app_pid" ] && stop_pid "$app_pid" transitd
  [ -n "$nginx_pid" ] && stop_pid "$nginx_pid" nginx
  [ -n "$started_redis" ] && redis_stop "$run/redis"
  [ -n "$started_pg" ] && pg_stop "$run/pg"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- services ------------------------------------------------------------

# The port can be taken between the check and the bind: retry a few times.
started_pg=1
for attempt in 1 2 3; do
  wait_port_free "$pg_port"
  pg_start "$run/pg" "$pg_port" && break
  [ "$attempt" -eq 3 ] && { tail -5 "$run/pg/server.log" >&2; die "PostgreSQL did not start on 127.0.0.1:$pg_port"; }
  note "PostgreSQL did not start on 127.0.0.1:$pg_port (attempt $attempt); retrying"
done
started_redis=1
for attempt in 1 2 3; do
  wait_port_free "$redis_port"
  redis_start "$run/redis" "$redis_port" && break
  [ "$attempt" -eq 3 ] && die "Redis did not start on 127.0.0.1:$redis_port"
  note "Redis did not start on 127.0.0.1:$redis_port (attempt $attempt); retrying"
done

export DATABASE_URL="postgresql://transitd@127.0.0.1:$pg_port/transitd"
export REDIS_URL="redis://127.0.0.1:$redis_port"
export JWT_SECRET
JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
export PAYMENT_WEBHOOK_SECRET
PAYMENT_WEBHOOK_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n/+=' | head -c 48)
# Every client here is 127.0.0.1: the per-address cap would stop at 1,024.
export PORT=$app_port BIND=127.0.0.1 LOG_LEVEL=warn MAX_CONNECTIONS_PER_CLIENT=0

build/transitd migrate >"$run/migrate.log" 2>&1 || { cat "$run/migrate.log" >&2; die "transitd migrate failed"; }

# The demo network (db/seed/demo_*.sql, compiled into the binary).
if compgen -G "db/seed/demo_*.sql" >/dev/null; then
  build/transitd seed --demo >"$run/seed.log" 2>&1 || { cat "$run/seed.log" >&2; die "transitd seed --demo failed"; }
else
  note "no db/seed/demo_*.sql: nothing to seed"
fi
seeded=""
station_id=${BENCH_STATION_ID:-$(psql_q -d transitd -c "SELECT min(station_id) FROM stations WHERE is_active")}
if [ -n "$station_id" ]; then
  seeded=1
else
  note "no stations in the database: the cached read uses /api/v1/localities instead"
fi

build/transitd serve >"$run/transitd.log" 2>&1 &
app_pid=$!
wait_http "http://127.0.0.1:$app_port/health" 30 "$app_pid" ||
  { tail -20 "$run/transitd.log" >&2; die "transitd did not answer /health on 127.0.0.1:$app_port"; }

# The cached read: one station (or the localities list without the seed).
if [ -n "$seeded" ]; then
  read_path=/api/v1/stations/$station_id
  read_name="transitd station $station_id"
else
  read_path=/api/v1/localities
  read_name="transitd localities"
fi
app=http://127.0.0.1:$app_port
for i in 1 2 3; do
  code=$(curl -sS -o "$run/read.body" -D "$run/read.headers" -w '%{http_code}' "$app$read_path")
  [ "$code" = 200 ] || die "GET $read_path answered $code: $(head -c 300 "$run/read.body")"
done
grep -qi '^x-cache: *HIT' "$run/read.headers" ||
  note "GET $read_path is not a cache HIT after warming ($(grep -i '^x-cache' "$run/read.headers" | tr -d '\r'))"

# Body sizes nginx must match. /health carries uptime_s, so its size can
# grow by a byte while the benchmark runs (10 s, 100 s).
health_size=$(curl -sS -o /dev/null -w '%{size_download}' "$app/health")
read_size=$(curl -sS -o /dev/null -w '%{size_download}' "$app$read_path")

# ---- nginx ---------------------------------------------------------------

ngx=$run/nginx
nginx_conf "$ngx" "$nginx_port" "    location = /health-size  { return 200 '$(body "$health_size")'; }
    location = /station-size { return 200 '$(body "$read_size")'; }
    location /               { return 200 '$(body "$health_size")'; }"
nginx -t -q -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" ||
  die "nginx rejected $ngx/nginx.conf"
nginx -p "$ngx" -c "$ngx/nginx.conf" -e "$ngx/error.log" &
nginx_pid=$!
ngx_url=http://127.0.0.1:$nginx_port
wait_http "$ngx_url/health-size" 15 "$nginx_pid" ||
  { cat "$ngx/error.log" >&2; die "nginx did not answer on 127.0.0.1:$nginx_port"; }
got=$(curl -sS -o /dev/null -w '%{size_download}' "$ngx_url/station-size")
[ "$got" = "$read_size" ] || die "nginx /station-size is $got bytes, expected $read_size"

# ---- wrk -----------------------------------------------------------------

# counters: transitd's Redis failures, cache bypasses and cache misses so far,
# from /metrics (0 when a counter is not there).
counters() {
  curl -sS --max-time 2 "$app/metrics" 2>/dev/null | awk '
    $1 == "transitd_redis_failures_total" { f = $2 }
    /^transitd_cache_requests_total\{/ && /result="bypass"/ { b += $2 }
    /^transitd_cache_requests_total\{/ && /result="miss"/ { m += $2 }
    END { printf "%d %d %d\n", f, b, m }'
}

# bench_one NAME CONNS URL: warm-up, measured run; sets rps p99 errs.
bench_one() {
  local name=$1 c=$2 url=$3 out slug before="" after
  slug=$(echo "$name-$c" | tr -c 'a-zA-Z0-9\n-' '-')
  out=$run/wrk-$slug.txt
  wrk -t"$threads" -c"$c" -d"${warmup}s" "$url" >/dev/null 2>&1 || true
  probe=""
  if [[ $url == "$app"* ]]; then
    before=$(counters)
    # Half-way through: transitd's CPU over one second, one /health on a new
    # connection and the queue gauges. An idle transitd under load is stalled.
    (
      sleep $((duration > 2 ? duration / 2 - 1 : 0))
      t0=$(awk '{print $14 + $15}' "/proc/$app_pid/stat")
      sleep 1
      t1=$(awk '{print $14 + $15}' "/proc/$app_pid/stat")
      echo "mid-run cpu: $(( (t1 - t0) * 100 / $(getconf CLK_TCK) ))%"
      curl -sS -o /dev/null --max-time 3 -w 'mid-run /health: %{http_code} in %{time_total}s\n' "$app/health"
      curl -sS --max-time 3 "$app/metrics" |
        grep -E '^transitd_(job_queue_depth|workers_busy|inflight_requests|redis_breaker_state) '
    ) >"$out.mid" 2>&1 &
    probe=$!
  fi
  wrk -t"$threads" -c"$c" -d"${duration}s" --latency "$url" >"$out" 2>&1 ||
    die "wrk failed against $url: $(tail -3 "$out")"
  [ -n "$probe" ] && { wait "$probe" 2>/dev/null || true; }
  probe=""
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  local non2xx sock
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  sock=$(awk '/Socket errors:/ {gsub(",", ""); print "conn " $4 " read " $6 " write " $8 " timeout " $10}' "$out")
  errs=""
  [ -n "$non2xx" ] && errs="non-2xx $non2xx"
  [ -n "$sock" ] && errs="${errs:+$errs; }$sock"
  if [ -n "$before" ]; then
    kill -0 "$app_pid" 2>/dev/null || die "transitd exited during the run against $url; see $run/transitd.log"
    after=$(counters)
    read -r f0 b0 m0 <<<"$before"
    read -r f1 b1 m1 <<<"$after"
    (( f1 > f0 )) && errs="${errs:+$errs; }redis failures $((f1 - f0))"
    (( b1 > b0 )) && errs="${errs:+$errs; }cache bypass $((b1 - b0))"
    (( m1 > m0 )) && errs="${errs:+$errs; }cache miss $((m1 - m0))"
    grep -q 'mid-run /health: 200 in 0\.' "$out.mid" ||
      errs="${errs:+$errs; }slow mid-run /health: $(sed -n 's/^mid-run .health: //p' "$out.mid")"
    local cpu
    cpu=$(sed -n 's/^mid-run cpu: \([0-9]*\)%/\1/p' "$out.mid")
    [ -n "$cpu" ] && [ "$cpu" -lt 5 ] &&
      errs="${errs:+$errs; }STALLED: transitd at ${cpu}% CPU mid-run (see $out.mid)"
  fi
  [ -n "$errs" ] || errs="-"
  [ -n "$rps" ] || die "could not read wrk's output in $out"
}

rows=()
row() { rows+=("$(printf '%-28s %6s %8s %9s %7s %7s %s' "$@")"); }

# ms VALUE: wrk's latency (e.g. 950.00us, 8.93ms, 1.20s) in milliseconds.
ms() {
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0;
                         else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

# pair NAME CONNS NGINX_URL APP_URL LABEL: nginx, then transitd, with ratios.
pair() {
  local name=$1 c=$2 nurl=$3 aurl=$4 label=$5 n_rps n_p99 tp lat
  bench_one "nginx $name" "$c" "$nurl"
  n_rps=$rps n_p99=$p99
  row "nginx $label" "$c" "$rps" "$p99" "" "" "$errs"
  curl -sS -o /dev/null "$aurl"
  bench_one "transitd $name" "$c" "$aurl"
  tp=$(awk -v a="$rps" -v b="$n_rps" 'BEGIN {printf "%.2fx", a / b}')
  lat=$(awk -v a="$(ms "$p99")" -v b="$(ms "$n_p99")" 'BEGIN {printf "%.2fx", a / b}')
  row "transitd $label" "$c" "$rps" "$p99" "$tp" "$lat" "$errs"
}

# wrk and nginx need a descriptor per connection.
ulimit -n "$(ulimit -Hn)"
for c in $connections; do
  pair health "$c" "$ngx_url/health-size" "$app/health" "/health (${health_size} B)"
  pair station "$c" "$ngx_url/station-size" "$app$read_path" "${read_path#/api/v1} (${read_size} B)"
done

# Parked clients: $idle idle keep-alive connections held open while requests
# on fresh connections are timed, against nginx and then transitd.
idle_rows=()
if [ "$idle" -gt 0 ]; then
  idle_rows+=("nginx    $(/usr/bin/python3 bench/idle.py "$ngx_url/health-size" "$idle" 1000)")
  idle_rows+=("transitd $(/usr/bin/python3 bench/idle.py "$app/health" "$idle" 1000 "$app_pid")")
fi

# Stalls: consecutive runs at 1,000 connections on the cached read; a run
# is a stall when it serves less than a tenth of the median or transitd's
# CPU drops under 5 % half-way (bench_one flags that).
stall_line=""
if [ "$stall_runs" -gt 0 ]; then
  all=() stalls=0
  for ((i = 1; i <= stall_runs; i++)); do
    bench_one "stall" 1000 "$app$read_path"
    all+=("$rps")
    [[ $errs == *STALLED* || $errs == *"read "[1-9]* ]] && stalls=$((stalls + 1))
    echo "stall run $i/$stall_runs: $rps req/s p99 $p99 $errs" >>"$run/stall.txt"
  done
  median=$(printf '%s\n' "${all[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
  low=$(printf '%s\n' "${all[@]}" | awk -v m="$median" '$1 < m / 10 {n++} END {print n + 0}')
  min=$(printf '%s\n' "${all[@]}" | sort -n | head -1)
  stall_line="$stall_runs runs of ${duration}s at 1000 connections on $read_path: $((stalls > low ? stalls : low)) stalls; req/s min $min, median $median ($run/stall.txt)"
fi

# ---- pgbench: the commit ceiling of this PostgreSQL on this machine ------

psql_q -d postgres -c "CREATE DATABASE pgbench"
pgbench -h 127.0.0.1 -p "$pg_port" -U transitd -i -s 10 -q pgbench >"$run/pgbench-init.log" 2>&1 ||
  { cat "$run/pgbench-init.log" >&2; die "pgbench -i failed"; }
pgbench -h 127.0.0.1 -p "$pg_port" -U transitd -c 16 -j 2 -T "$duration" -N pgbench >"$run/pgbench.txt" 2>&1 ||
  { cat "$run/pgbench.txt" >&2; die "pgbench failed"; }
pg_tps=$(awk '/^tps = / {printf "%.0f", $3; exit}' "$run/pgbench.txt")
pg_lat=$(awk '/^latency average/ {print $4 " " $5}' "$run/pgbench.txt")

# ---- report --------------------------------------------------------------

app_rss=$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$app_pid/status" 2>/dev/null || echo "?")
alive="yes"
kill -0 "$app_pid" 2>/dev/null || alive="NO (see $run/transitd.log)"
log_lines=$(grep -c . "$run/transitd.log" || true)

{
  echo "transitd bench  $(date -u '+%Y-%m-%d %H:%M:%S UTC')  $(nproc) cores  wrk -t$threads -d${duration}s (after ${warmup}s warm-up)"
  echo "transitd: WORKERS=${WORKERS:-default} IO_THREADS=${IO_THREADS:-default} LOG_LEVEL=warn; nginx $(nginx -v 2>&1 | sed 's/.*\///')"
  echo "load average before the run: $load_before (other work on the machine skews the numbers)"
  echo
  echo "targets: throughput >= 0.80x nginx, p99 <= 2.00x nginx's"
  printf '%-28s %6s %8s %9s %7s %7s %s\n' scenario conns req/s p99 req/s× p99× "errors / cache"
  printf '%s\n' "${rows[@]}"
  echo
  if [ ${#idle_rows[@]} -gt 0 ]; then
    echo "$idle idle keep-alive connections held; 1000 requests on fresh connections (target transitd p99 <= 5 ms):"
    printf '  %s\n' "${idle_rows[@]}"
    echo
  fi
  [ -n "$stall_line" ] && { echo "$stall_line"; echo; }
  echo "pgbench -c 16 -j 2 -T $duration -N (simple-update, scale 10): $pg_tps tps, latency average $pg_lat"
  echo
  echo "transitd after the run: alive $alive, RSS $app_rss, $log_lines log lines at warn+ ($run/transitd.log)"
  if [ "$log_lines" -gt 0 ]; then
    sed -E 's/.*"msg":"([^"]*)".*"path":"([^"]*)".*"error":"([^"]*)".*/\1 \2: \3/; t
            s/.*"msg":"([^"]*)".*/\1/' "$run/transitd.log" | sort | uniq -c | sort -rn | head -5 |
      sed 's/^ */  /'
  fi
  [ -z "$seeded" ] && echo "note: no stations were seeded; the cached read is /api/v1/localities"
  true
} | tee "$run/last.txt"
