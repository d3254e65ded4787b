-- wrk script: POST one JSON body (BENCH_BODY_FILE) to the URL, with optional headers, and
-- print a JSON summary on the last line. With BENCH_UNIQUE set, every request replaces the
-- placeholder "@KEY@" in the body by a key unique across threads and runs (idempotency keys),
-- and "@CLIENT@" by the next of BENCH_CLIENTS (comma-separated ids), round robin. A body file
-- holding several bodies, one per line, is a mix: the requests take them in turn.

local body_file = os.getenv("BENCH_BODY_FILE")
local f = assert(io.open(body_file, "r"))
local templates = {}
for line in f:lines() do
  if line ~= "" then
    templates[#templates + 1] = line
  end
end
f:close()
local template = templates[1]

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local unique = os.getenv("BENCH_UNIQUE")
local run_id = os.getenv("BENCH_RUN_ID") or "run"
local clients = {}
for id in string.gmatch(os.getenv("BENCH_CLIENTS") or "", "[^,]+") do
  clients[#clients + 1] = id
end

local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  threads[#threads + 1] = thread
end

function init(args)
  counter = 0
  if not unique or unique == "" then
    wrk.body = template
  end
end

function request()
  if not unique or unique == "" then
    return wrk.format()
  end
  counter = counter + 1
  local key = run_id .. "-" .. thread_id .. "-" .. counter
  local body = string.gsub(templates[(counter % #templates) + 1], "@KEY@", key)
  if #clients > 0 then
    local client = clients[((counter * 7 + thread_id) % #clients) + 1]
    body = string.gsub(body, "@CLIENT@", client)
  end
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '\nBENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
