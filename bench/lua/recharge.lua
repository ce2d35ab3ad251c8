-- Point-of-sale recharges for wrk: POST /api/v1/cards/recharge of one amount
-- on a random card, as a recharge-point terminal (an operator) sends them.
--   BENCH_TOKEN    operator access token
--   BENCH_CARD_LO, BENCH_CARD_HI   card ids to draw from (uniformly at random)
--   BENCH_AMOUNT   COP per recharge (1,000-500,000)
-- done() prints the BENCH summary line with p95 and the count of each answer.
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + 7919 * (tid or 0))
  local token = os.getenv("BENCH_TOKEN") or ""
  lo = tonumber(os.getenv("BENCH_CARD_LO"))
  hi = tonumber(os.getenv("BENCH_CARD_HI"))
  amount = tonumber(os.getenv("BENCH_AMOUNT") or "20000")
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
  ok, c4xx, c5xx = 0, 0, 0
end

function request()
  return wrk.format("POST", "/api/v1/cards/recharge", headers,
    string.format('{"card_id":%d,"amount":%d}', math.random(lo, hi), amount))
end

function response(status, hdrs, body)
  if status == 201 then ok = ok + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else c4xx = c4xx + 1 end
end

function done(summary, latency, requests)
  local t = { ok = 0, c4xx = 0, c5xx = 0 }
  for _, th in ipairs(threads) do
    for n, _ in pairs(t) do t[n] = t[n] + (th:get(n) or 0) end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f non2xx=%d sock_errors=%d" ..
    " ok=%d ok_per_s=%.1f s4xx=%d s5xx=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout,
    t.ok, t.ok / secs, t.c4xx, t.c5xx))
end
