-- GET /healthz: raw HTTP through the same server (a trivial read).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
request = function()
  return wrk.format("GET", "/healthz")
end
