-- POST /api/users repeating one finished Idempotency-Key: every answer is a replay.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
request = function()
  return wrk.format("POST", "/api/users",
                    {["Content-Type"] = "application/json", ["Idempotency-Key"] = "bench-replay"},
                    '{"email":"replay@bench.io"}')
end
