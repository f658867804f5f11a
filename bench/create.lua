-- PUT /users/{new email}: every request creates a user (3 inserts + a job).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
request = function()
  return wrk.format("PUT", "/users/c" .. next_unique() .. "%40bench.io", {["Content-Length"] = "0"})
end
