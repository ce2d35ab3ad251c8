-- What the wrk scripts of this folder share, loaded with
--   local bench = dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "bench.lua")
-- wrk runs a script once in its main Lua state (setup, done) and once in
-- each thread's (init, request, response): counters live in the threads and
-- are added up in done().
local M = {}
local threads = {}

-- Install as setup(): numbers the threads 1..n (the global tid of each).
function M.setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

-- A random sequence of the thread's own.
function M.seed()
  math.randomseed(os.time() + 7919 * (tid or 0))
end

-- The thread's share of a file that bench/app.py wrote: with BENCH_THREADS
-- = n, thread i takes lines i, i + n, i + 2n, ... each parsed by parse
-- (nil: skipped).
function M.lines(env, parse)
  local n = tonumber(os.getenv("BENCH_THREADS") or "1")
  local path = os.getenv(env)
  local f = assert(io.open(path, "r"), "cannot open " .. env .. " " .. tostring(path))
  local out, i = {}, 0
  for line in f:lines() do
    if i % n == (tid or 1) - 1 then
      out[#out + 1] = parse(line)
    end
    i = i + 1
  end
  f:close()
  assert(#out > 0, "no lines of " .. env .. " for thread " .. tostring(tid))
  return out
end

local pos = 0

-- The next of the thread's lines, from the first again after the last
-- (counted in the global wrapped, which done() adds up: those requests are
-- replays, and the file was too short for the run).
function M.next_line(list)
  pos = pos + 1
  if pos > #list then
    pos = 1
    wrapped = (wrapped or 0) + 1
  end
  return list[pos]
end

-- The sum over the threads of each named counter.
function M.totals(names)
  local t = {}
  for _, n in ipairs(names) do t[n] = 0 end
  for _, th in ipairs(threads) do
    for _, n in ipairs(names) do t[n] = t[n] + (th:get(n) or 0) end
  end
  return t
end

function M.thread_count()
  return #threads
end

-- The line bench/app.py reads: "BENCH requests= seconds= rps= p50_ms=
-- p95_ms= p99_ms= non2xx= sock_errors=" and then extra, "name=value ..."
-- already formatted (wrk --latency prints no p95, hence this line).
function M.report(summary, latency, extra)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "BENCH requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p95_ms=%.3f p99_ms=%.3f non2xx=%d sock_errors=%d%s\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout, extra and extra ~= "" and " " .. extra or ""))
end

-- Seconds the run lasted.
function M.seconds(summary)
  return summary.duration / 1e6
end

return M
