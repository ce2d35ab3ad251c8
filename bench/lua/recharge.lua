-- Point-of-sale recharges for wrk: POST /api/v1/cards/recharge of one amount
-- on a random card, as a recharge-point terminal (an operator) sends them.
--   BENCH_TOKEN    operator access token
--   BENCH_CARD_LO, BENCH_CARD_HI   card ids to draw from (uniformly at random)
--   BENCH_AMOUNT   COP per recharge (1,000-500,000)
--   BENCH_PREFER   a Prefer header ("respond-async": the command is queued, 202)
-- done() prints the BENCH line (bench.lua) and the count of each answer.
local bench = dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "bench.lua")
setup = bench.setup

function init(args)
  bench.seed()
  local token = os.getenv("BENCH_TOKEN") or ""
  lo = tonumber(os.getenv("BENCH_CARD_LO"))
  hi = tonumber(os.getenv("BENCH_CARD_HI"))
  amount = tonumber(os.getenv("BENCH_AMOUNT") or "20000")
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
  if os.getenv("BENCH_PREFER") then headers["Prefer"] = os.getenv("BENCH_PREFER") end
  ok, c4xx, c5xx = 0, 0, 0
end

function request()
  return wrk.format("POST", "/api/v1/cards/recharge", headers,
    string.format('{"card_id":%d,"amount":%d}', math.random(lo, hi), amount))
end

function response(status, hdrs, body)
  if status == 201 or status == 202 then
    ok = ok + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else c4xx = c4xx + 1 end
end

function done(summary, latency, requests)
  local t = bench.totals({ "ok", "c4xx", "c5xx" })
  bench.report(summary, latency, string.format("ok=%d ok_per_s=%.1f s4xx=%d s5xx=%d",
    t.ok, t.ok / bench.seconds(summary), t.c4xx, t.c5xx))
end
