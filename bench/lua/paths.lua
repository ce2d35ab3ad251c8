-- GETs cycling through several paths, for wrk (each connection takes the
-- next path of the list with each request).
--   BENCH_PATHS  paths, comma separated
--   BENCH_TOKEN  access token (unset: none)
-- done() prints the BENCH line (bench.lua) and the slowest answer.
local bench = dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "bench.lua")
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
  bench.report(summary, latency, string.format("max_ms=%.3f", latency.max / 1000))
end
