-- A plain GET load for wrk, with an optional bearer token and a summary line.
--   BENCH_TOKEN  access token sent as "Authorization: Bearer ..." (unset: none)
-- No request() or response() callback: wrk sends its prebuilt request and
-- parses nothing into Lua, so the client costs as little CPU as it can.
-- done() prints the BENCH line (bench.lua).
local bench = dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "bench.lua")
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

function done(summary, latency, requests)
  bench.report(summary, latency)
end
