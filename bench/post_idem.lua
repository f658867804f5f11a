-- POST /api/users with a fresh Idempotency-Key and a new email each time.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
request = function()
  local u = next_unique()
  return wrk.format("POST", "/api/users",
                    {["Content-Type"] = "application/json", ["Idempotency-Key"] = "k-" .. u},
                    '{"email":"p' .. u .. '@bench.io"}')
end
