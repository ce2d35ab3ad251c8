-- Payment provider webhook deliveries for wrk: POST /api/v1/payments/webhook,
-- each a signed event read from a file that bench/app.py wrote (signing in
-- Lua would make wrk the bottleneck).
--   BENCH_DELIVERIES  file, one delivery a line: "<Payment-Signature>\t<JSON body>"
--   BENCH_THREADS     wrk's -t: thread i sends lines i, i + n, i + 2n, ...
-- Each line is sent once; a thread that runs out starts its lines again
-- (counted as "wrapped": those are replays). A 200 is told apart by its
-- body: "credited" (this delivery moved the money) or "no-effect".
local bench = dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "bench.lua")
setup = bench.setup

function init(args)
  deliveries = bench.lines("BENCH_DELIVERIES", function(line)
    local sig, body = string.match(line, "^([^\t]+)\t(.+)$")
    return { sig = sig, body = body }
  end)
  wrapped = 0
  credited, no_effect, other200, c401, c4xx, c5xx = 0, 0, 0, 0, 0, 0
end

function request()
  local d = bench.next_line(deliveries)
  return wrk.format("POST", "/api/v1/payments/webhook",
    { ["Content-Type"] = "application/json", ["Payment-Signature"] = d.sig }, d.body)
end

function response(status, hdrs, body)
  if status == 200 then
    if string.find(body, '"credited"', 1, true) then credited = credited + 1
    elseif string.find(body, '"no-effect"', 1, true) then no_effect = no_effect + 1
    else other200 = other200 + 1 end
  elseif status == 401 then c401 = c401 + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else c4xx = c4xx + 1 end
end

function done(summary, latency, requests)
  local t = bench.totals({ "credited", "no_effect", "other200", "c401", "c4xx", "c5xx", "wrapped" })
  local secs = bench.seconds(summary)
  local ok = t.credited + t.no_effect + t.other200
  bench.report(summary, latency, string.format(
    "ok=%d ok_per_s=%.1f credited=%d credited_per_s=%.1f no_effect=%d other200=%d s401=%d s4xx=%d s5xx=%d" ..
    " wrapped=%d", ok, ok / secs, t.credited, t.credited / secs, t.no_effect, t.other200, t.c401, t.c4xx,
    t.c5xx, t.wrapped))
end
