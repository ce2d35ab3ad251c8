#!/usr/bin/env bash
# Runs every libFuzzer harness (build/fuzz/fuzz_*) for FUZZ_SECONDS each,
# from its seed corpus in tests/fuzz/corpus/<name> (read only) plus what it
# found before in build/fuzz/corpus/<name>; prints executions per second and
# the coverage reached (libFuzzer's edges "cov" and features "ft"). A crash,
# a leak, a sanitizer report or a timeout fails the run and leaves the input
# in build/fuzz/artifacts/. `make fuzz` (60 s each); `make test` (a few s).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
mkdir -p build/fuzz/artifacts
printf '%-12s %6s %10s %9s %6s %6s %7s\n' harness seconds execs execs/s cov ft corpus
status=0
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  bin=build/fuzz/$name
  short=${name#fuzz_}
  work=build/fuzz/corpus/$name
  log=build/fuzz/$name.log
  mkdir -p "$work"
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build/fuzz/artifacts/$name-" "$work" "tests/fuzz/corpus/$name" >"$log" 2>&1; then
    echo "$name FAILED: see $log and build/fuzz/artifacts/" >&2
    tail -30 "$log" >&2
    status=1
    continue
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  time_s=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p' <<<"$done_line")
  printf '%-12s %6s %10s %9s %6s %6s %7s\n' "$short" "$seconds" "$execs" "$time_s" "${cov:-?}" "${ft:-?}" "${corp:-?}"
done
exit $status
