#include "maintenance/key_reaper.h"

#include "db/idempotency.h"

namespace maintenance {

core::Result<int> KeyReaper::run_once() {
  const core::Millis cutoff = clock_.now_ms() - options_.ttl_ms;
  int total = 0;
  for (;;) {
    int reaped = 0;
    core::Status st = db_.write([&](db::Tx& tx) {
      reaped = db::reap_keys(tx, cutoff, options_.batch);
      return core::Status::ok();
    });
    if (!st) return st;
    total += reaped;
    if (reaped < options_.batch) return total;
  }
}

}  // namespace maintenance
