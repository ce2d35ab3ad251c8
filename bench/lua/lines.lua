-- POSTs read from a file that bench/app.py wrote, each sent once: tap-ins
-- of cards that have no open trip, tap-outs of open trips, cancellations of
-- confirmed bookings (requests that can succeed only once).
--   BENCH_LINES    file, one request a line: "<path>\t<JSON body>" (body may be empty)
--   BENCH_THREADS  wrk's -t: thread i sends lines i, i + n, i + 2n, ...
--   BENCH_TOKEN    access token
-- A thread that runs out of lines starts them again ("wrapped": those answers
-- are 4xx, and the file was too short for the run).
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  local path = os.getenv("BENCH_LINES")
  local f = assert(io.open(path, "r"), "cannot open BENCH_LINES " .. tostring(path))
  lines = {}
  local i = 0
  for line in f:lines() do
    if i % n == (tid or 1) - 1 then
      local p, body = string.match(line, "^([^\t]+)\t?(.*)$")
      lines[#lines + 1] = { path = p, body = body }
    end
    i = i + 1
  end
  f:close()
  assert(#lines > 0, "no lines for thread " .. tostring(tid))
  headers = { ["Content-Type"] = "application/json",
              ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "") }
  pos, wrapped = 0, 0
  ok, c4xx, c5xx = 0, 0, 0
end

function request()
  pos = pos + 1
  if pos > #lines then
    pos = 1
    wrapped = wrapped + 1
  end
  local l = lines[pos]
  return wrk.format("POST", l.path, headers, l.body)
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then ok = ok + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else c4xx = c4xx + 1 end
end

function done(summary, latency, requests)
  local t = { ok = 0, c4xx = 0, c5xx = 0, wrapped = 0 }
  for _, th in ipairs(threads) do
    for n, _ in pairs(t) do t[n] = t[n] + (th:get(n) or 0) end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f non2xx=%d sock_errors=%d" ..
    " ok=%d ok_per_s=%.1f s4xx=%d s5xx=%d wrapped=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout,
    t.ok, t.ok / secs, t.c4xx, t.c5xx, t.wrapped))
end
