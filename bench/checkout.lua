-- POST /checkout with a fresh key against the fake gateway (tok_visa).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
request = function()
  local u = next_unique()
  return wrk.format("POST", "/checkout",
                    {["Content-Type"] = "application/json", ["Idempotency-Key"] = "co-" .. u},
                    '{"email":"buyer@bench.io","phone":"+15555550100","payment_token":"tok_visa",' ..
                    '"items":[{"sku":"A-1","quantity":2,"unit_price_cents":1250}]}')
end
