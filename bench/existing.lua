-- PUT /users/{existing email}: create-or-get of one of 1,000 seeded users.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local n = 0
request = function()
  n = n + 1
  return wrk.format("PUT", "/users/seed" .. tostring((n * 7 + tid) % 1000) .. "%40bench.io",
                    {["Content-Length"] = "0"})
end
