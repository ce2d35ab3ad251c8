-- POSTs read from a file that bench/app.py wrote, each sent once: tap-ins
-- of cards that have no open trip, tap-outs of open trips, cancellations of
-- confirmed bookings (requests that can succeed only once).
--   BENCH_LINES    file, one request a line: "<path>\t<JSON body>" (body may be empty)
--   BENCH_THREADS  wrk's -t: thread i sends lines i, i + n, i + 2n, ...
--   BENCH_TOKEN    access token
-- A thread that runs out of lines starts them again ("wrapped": those answers
-- are 4xx, and the file was too short for the run).
local bench = dofile(string.match(debug.getinfo(1, "S").source, "^@(.-)[^/]*$") .. "bench.lua")
setup = bench.setup

function init(args)
  lines = bench.lines("BENCH_LINES", function(line)
    local p, body = string.match(line, "^([^\t]+)\t?(.*)$")
    return { path = p, body = body }
  end)
  headers = { ["Content-Type"] = "application/json",
              ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "") }
  wrapped = 0
  ok, c4xx, c5xx = 0, 0, 0
end

function request()
  local l = bench.next_line(lines)
  return wrk.format("POST", l.path, headers, l.body)
end

function response(status, hdrs, body)
  if status >= 200 and status < 300 then ok = ok + 1
  elseif status >= 500 then c5xx = c5xx + 1
  else c4xx = c4xx + 1 end
end

function done(summary, latency, requests)
  local t = bench.totals({ "ok", "c4xx", "c5xx", "wrapped" })
  bench.report(summary, latency, string.format("ok=%d ok_per_s=%.1f s4xx=%d s5xx=%d wrapped=%d",
    t.ok, t.ok / bench.seconds(summary), t.c4xx, t.c5xx, t.wrapped))
end
