-- Rail bookings for wrk: POST /api/v1/rail/bookings of one seat of a class on
-- a random run of a list, paid from one card.
--   BENCH_TOKEN  access token (the rider owning the card, or an admin)
--   BENCH_RUNS   run ids, comma separated
--   BENCH_CARD   card to pay from; or BENCH_CARD_LO and BENCH_CARD_HI for a
--                random card per booking (an admin's token is then needed)
--   BENCH_CLASS  "standard" (default) or "first"
-- done() prints the BENCH line (bench.lua) and the count of each answer.
local bench = dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "bench.lua")
setup = bench.setup

function init(args)
  bench.seed()
  local token = os.getenv("BENCH_TOKEN") or ""
  runs = {}
  for id in string.gmatch(os.getenv("BENCH_RUNS") or "", "%d+") do
    runs[#runs + 1] = tonumber(id)
  end
  card = tonumber(os.getenv("BENCH_CARD") or "")
  lo = tonumber(os.getenv("BENCH_CARD_LO") or "")
  hi = tonumber(os.getenv("BENCH_CARD_HI") or "")
  class = os.getenv("BENCH_CLASS") or "standard"
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
  ok, c402, c409, c422, c4xx, c5xx = 0, 0, 0, 0, 0, 0
end

function request()
  local c = card or math.random(lo, hi)
  return wrk.format("POST", "/api/v1/rail/bookings", headers,
    string.format('{"run_id":%d,"card_id":%d,"seat_count":1,"class":"%s"}',
      runs[math.random(1, #runs)], c, class))
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then ok = ok + 1
  elseif status == 402 then c402 = c402 + 1
  elseif status == 409 then c409 = c409 + 1
  elseif status == 422 then c422 = c422 + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else c4xx = c4xx + 1 end
end

function done(summary, latency, requests)
  local t = bench.totals({ "ok", "c402", "c409", "c422", "c4xx", "c5xx" })
  bench.report(summary, latency, string.format("ok=%d ok_per_s=%.1f s402=%d s409=%d s422=%d s4xx=%d s5xx=%d",
    t.ok, t.ok / bench.seconds(summary), t.c402, t.c409, t.c422, t.c4xx, t.c5xx))
end
