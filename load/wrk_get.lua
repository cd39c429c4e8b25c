-- wrk script: GETs the URL with one Authorization header per request, cycling through the
-- lines of a file (one header value per line), each thread starting at its own share.
-- Usage: wrk -t T -s load/wrk_get.lua URL -- HEADERS_FILE T   (an empty file: no header)
-- Prints the same one-line JSON summary as load/wrk_bodies.lua.
local thread_count = 0
local values = {}
local position = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(values, line) end
  end
  local share = math.floor(#values / tonumber(args[2] or "1"))
  position = (id or 0) * share
  wrk.method = "GET"
end

function request()
  if #values == 0 then return wrk.format(nil, nil, nil, nil) end
  position = position + 1
  local headers = {}
  headers["Authorization"] = values[(position - 1) % #values + 1]
  return wrk.format(nil, nil, headers, nil)
end

function done(summary, latency, requests)
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
