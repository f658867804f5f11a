-- Shared by every wrk workload in bench/: a per-thread id and per-run prefix
-- so that every request is unique, and a one-line JSON summary that
-- bench/run.py parses (wrk's own text output has no p99.9).
local next_id = 1
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

run_id = os.getenv("BENCH_RUN") or tostring(os.time())
seq = 0

function next_unique()
  seq = seq + 1
  return run_id .. "-" .. tostring(tid) .. "-" .. tostring(seq)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"socket_errors":%d,"non2xx":%d,' ..
    '"p50_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
