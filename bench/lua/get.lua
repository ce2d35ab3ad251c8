-- A plain GET load for wrk, with an optional bearer token and a summary line.
--   BENCH_TOKEN  access token sent as "Authorization: Bearer ..." (unset: none)
-- No request() or response() callback: wrk sends its prebuilt request and
-- parses nothing into Lua, so the client costs as little CPU as it can.
-- done() prints one line that bench/app.py reads:
--   BENCH requests=N seconds=S rps=R p50_ms= p95_ms= p99_ms= non2xx= sock_errors=
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f non2xx=%d sock_errors=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
