-- Payment provider webhook deliveries for wrk: POST /api/v1/payments/webhook,
-- each a signed event read from a file that bench/app.py wrote (signing in
-- Lua would make wrk the bottleneck).
--   BENCH_DELIVERIES  file, one delivery a line: "<Payment-Signature>\t<JSON body>"
--   BENCH_THREADS     wrk's -t: thread i sends lines i, i + n, i + 2n, ...
-- Each line is sent once; a thread that runs out starts its lines again
-- (counted as "wrapped": those are replays). A 200 is told apart by its
-- body: "credited" (this delivery moved the money) or "no-effect".
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  local path = os.getenv("BENCH_DELIVERIES")
  local f = assert(io.open(path, "r"), "cannot open BENCH_DELIVERIES " .. tostring(path))
  deliveries = {}
  local i = 0
  for line in f:lines() do
    if i % n == (tid or 1) - 1 then
      local sig, body = string.match(line, "^([^\t]+)\t(.+)$")
      deliveries[#deliveries + 1] = { sig = sig, body = body }
    end
    i = i + 1
  end
  f:close()
  assert(#deliveries > 0, "no deliveries for thread " .. tostring(tid))
  pos, wrapped = 0, 0
  credited, no_effect, other200, c401, c4xx, c5xx = 0, 0, 0, 0, 0, 0
end

function request()
  pos = pos + 1
  if pos > #deliveries then
    pos = 1
    wrapped = wrapped + 1
  end
  local d = deliveries[pos]
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
  local t = { credited = 0, no_effect = 0, other200 = 0, c401 = 0, c4xx = 0, c5xx = 0, wrapped = 0 }
  for _, th in ipairs(threads) do
    for n, _ in pairs(t) do t[n] = t[n] + (th:get(n) or 0) end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f non2xx=%d sock_errors=%d" ..
    " ok=%d ok_per_s=%.1f credited=%d credited_per_s=%.1f no_effect=%d other200=%d s401=%d s4xx=%d s5xx=%d" ..
    " wrapped=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout,
    t.credited + t.no_effect + t.other200, (t.credited + t.no_effect + t.other200) / secs,
    t.credited, t.credited / secs, t.no_effect, t.other200, t.c401, t.c4xx, t.c5xx, t.wrapped))
end
