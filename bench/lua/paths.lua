-- GETs cycling through several paths, for wrk (each connection takes the
-- next path of the list with each request).
--   BENCH_PATHS  paths, comma separated
--   BENCH_TOKEN  access token (unset: none)
-- done() prints the BENCH summary line, as get.lua.
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "/", "[^,]+") do
  paths[#paths + 1] = p
end
local token = os.getenv("BENCH_TOKEN")
local headers = {}
if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
local reqs = {}
local i = 0

-- Requests are made in init(): wrk sets the Host header only then, and an
-- HTTP/1.1 request without one is answered 400.
function init(args)
  for n, p in ipairs(paths) do reqs[n] = wrk.format("GET", p, headers) end
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f non2xx=%d sock_errors=%d max_ms=%.3f\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout, latency.max / 1000))
end
