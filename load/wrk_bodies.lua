-- wrk script: POSTs the bodies of a file (one JSON body per line), each thread starting at its
-- own share of the file, so every request carries a distinct pre-generated token.
-- Usage: wrk -t T -s load/wrk_bodies.lua URL -- BODIES_FILE T   (headers with -H)
-- Prints a one-line JSON summary at the end for load/run_benchmarks.py.
local thread_count = 0
local bodies = {}
local position = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(bodies, line) end
  end
  local share = math.floor(#bodies / tonumber(args[2] or "1"))
  position = (id or 0) * share
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  position = position + 1
  return wrk.format(nil, nil, nil, bodies[(position - 1) % #bodies + 1])
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
