-- Tap-in / tap-out pairs for wrk, as an operator's validator would send them.
--   BENCH_TOKEN    operator access token
--   BENCH_CARD_LO, BENCH_CARD_HI   card ids to draw from (uniformly at random)
--   BENCH_ROUTE, BENCH_BOARD, BENCH_ALIGHT   route, boarding stop, alighting stop
-- Each wrk thread keeps a queue of the trips it has opened (trip ids parsed
-- from 201 answers to POST /trips/start). request() ends the oldest open trip
-- when there is one, otherwise starts a trip on a random card. A response is
-- told apart by its body: a started trip says "in_progress", an ended one
-- "completed", a problem names its path in "instance".
local bench = dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "bench.lua")
setup = bench.setup

function init(args)
  bench.seed()
  local token = os.getenv("BENCH_TOKEN") or ""
  lo = tonumber(os.getenv("BENCH_CARD_LO"))
  hi = tonumber(os.getenv("BENCH_CARD_HI"))
  route = tonumber(os.getenv("BENCH_ROUTE"))
  board = tonumber(os.getenv("BENCH_BOARD"))
  alight = tonumber(os.getenv("BENCH_ALIGHT"))
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token }
  queue, qhead, qtail = {}, 1, 0
  -- counters read by done(): starts and ends by outcome
  start_ok, start_402, start_409, start_4xx, start_5xx = 0, 0, 0, 0, 0
  end_ok, end_404, end_4xx, end_5xx = 0, 0, 0, 0
  unknown = 0
end

function request()
  if qhead <= qtail then
    local id = queue[qhead]
    queue[qhead] = nil
    qhead = qhead + 1
    return wrk.format("POST", "/api/v1/trips/end", headers,
      string.format('{"trip_id":%d,"disembarking_station_id":%d}', id, alight))
  end
  return wrk.format("POST", "/api/v1/trips/start", headers,
    string.format('{"card_id":%d,"route_id":%d,"boarding_station_id":%d}', math.random(lo, hi), route, board))
end

function response(status, hdrs, body)
  if status == 201 then
    local id = string.match(body, '"trip_id"%s*:%s*(%d+)')
    if id then
      qtail = qtail + 1
      queue[qtail] = tonumber(id)
    end
    start_ok = start_ok + 1
  elseif status == 200 then
    end_ok = end_ok + 1
  elseif string.find(body, "/trips/start", 1, true) then
    if status == 402 then start_402 = start_402 + 1
    elseif status == 409 then start_409 = start_409 + 1
    elseif status >= 500 then start_5xx = start_5xx + 1
    else start_4xx = start_4xx + 1 end
  elseif string.find(body, "/trips/end", 1, true) then
    if status == 404 then end_404 = end_404 + 1
    elseif status >= 500 then end_5xx = end_5xx + 1
    else end_4xx = end_4xx + 1 end
  else
    unknown = unknown + 1
  end
end

function done(summary, latency, requests)
  local t = bench.totals({ "start_ok", "start_402", "start_409", "start_4xx", "start_5xx",
                           "end_ok", "end_404", "end_4xx", "end_5xx", "unknown", "qhead", "qtail" })
  bench.report(summary, latency, string.format(
    "pairs_per_s=%.1f start_ok=%d end_ok=%d start_402=%d start_409=%d start_4xx=%d start_5xx=%d" ..
    " end_404=%d end_4xx=%d end_5xx=%d unknown=%d left_open=%d",
    t.start_ok / bench.seconds(summary), t.start_ok, t.end_ok, t.start_402, t.start_409, t.start_4xx,
    t.start_5xx, t.end_404, t.end_4xx, t.end_5xx, t.unknown, t.qtail - t.qhead + bench.thread_count()))
end
