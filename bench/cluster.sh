#!/usr/bin/env bash
# `make bench-cluster`: one transitd instance against two behind HAProxy, on
# the cluster of scripts/cluster.sh (a primary, a streaming replica, Redis),
# all on this machine's cores with wrk. Two reads:
#   cached   GET /api/v1/stations/1, answered from the near-cache;
#   fills    GET /api/v1/stations?limit=&locality= over 2,000 variants while
#            the family is dropped from Redis every 50 ms, so most requests
#            fill from PostgreSQL: the primary or the replica.
# For the fills it reports how many the replica served, and the statements
# each PostgreSQL ran (pg_stat_database). BENCH_DURATION (8) seconds per run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
duration=${BENCH_DURATION:-8}
conns=${BENCH_CONNECTIONS:-256}
export CLUSTER_DIR=$root/.run/bench-cluster CLUSTER_PORT_BASE=${BENCH_CLUSTER_PORT_BASE:-17450}
export PORT=$((CLUSTER_PORT_BASE + 6)) LOG_LEVEL=warn RATE_LIMIT_PER_MINUTE=0
base=$CLUSTER_PORT_BASE
front=http://127.0.0.1:$PORT single=http://127.0.0.1:$((base + 3))

note() { echo "bench: $*" >&2; }
die() { note "$*"; exit 1; }
bash scripts/bootstrap.sh --bench
source scripts/services.sh
bash scripts/cluster.sh down >/dev/null 2>&1 || true
pg_wipe "$CLUSTER_DIR/pg-replica"
pg_wipe "$CLUSTER_DIR/pg-primary"
rm -rf "$CLUSTER_DIR"
dropper=""
trap '[ -n "$dropper" ] && kill "$dropper" 2>/dev/null; bash scripts/cluster.sh down >/dev/null 2>&1' EXIT
bash scripts/cluster.sh up >/dev/null || die "the cluster did not start"
ulimit -n "$(ulimit -Hn)"

cat >"$CLUSTER_DIR/fills.lua" <<'LUA'
request = function()
  return wrk.format("GET", string.format("/api/v1/stations?limit=%d&locality=%d",
                                         math.random(1, 100), math.random(1, 20)))
end
LUA

metric() { # URL NAME-PREFIX: the sum of the matching samples
  curl -sS "$1/metrics" | awk -v p="$2" 'index($0, p) == 1 {n += $NF} END {print n + 0}'
}
statements() { # PORT: transactions committed in the transitd database
  psql -h 127.0.0.1 -p "$1" -U transitd -d transitd -tAc \
    "SELECT xact_commit FROM pg_stat_database WHERE datname = 'transitd'"
}

rows=()
run() { # NAME URL [SCRIPT]
  local name=$1 url=$2 script=${3:-} out=$CLUSTER_DIR/wrk-$1.txt r0 r1 p0 p1 q0 q1
  wrk -t2 -c"$conns" -d2s ${script:+-s "$script"} "$url" >/dev/null 2>&1 || true
  r0=$(( $(metric "$single" 'transitd_db_reads_total{pool="replica"') +
         $(metric "http://127.0.0.1:$((base + 4))" 'transitd_db_reads_total{pool="replica"') ))
  p0=$(statements "$base") q0=$(statements $((base + 1)))
  wrk -t2 -c"$conns" -d"${duration}s" --latency ${script:+-s "$script"} "$url" >"$out" 2>&1
  r1=$(( $(metric "$single" 'transitd_db_reads_total{pool="replica"') +
         $(metric "http://127.0.0.1:$((base + 4))" 'transitd_db_reads_total{pool="replica"') ))
  p1=$(statements "$base") q1=$(statements $((base + 1)))
  rows+=("$(printf '%-34s %9s %9s %14s %12s %12s' "$name" \
    "$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")" "$(awk '$1 == "99%" {print $2}' "$out")" \
    "$((r1 - r0))" "$((p1 - p0))" "$((q1 - q0))")")
}

run "cached, one instance" "$single/api/v1/stations/1"
run "cached, two behind HAProxy" "$front/api/v1/stations/1"
( while true; do redis-cli -p $((base + 2)) UNLINK transitd:stations >/dev/null; sleep 0.05; done ) &
dropper=$!
run "fills, one instance" "$single/" "$CLUSTER_DIR/fills.lua"
run "fills, two behind HAProxy" "$front/" "$CLUSTER_DIR/fills.lua"

{
  echo "transitd cluster bench  $(date -u '+%Y-%m-%d %H:%M:%S UTC')  $(nproc) cores  wrk -t2 -c$conns -d${duration}s"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  printf '%-34s %9s %9s %14s %12s %12s\n' scenario req/s p99 "replica fills" "primary xact" "replica xact"
  printf '%s\n' "${rows[@]}"
} | tee "$CLUSTER_DIR/last.txt"
