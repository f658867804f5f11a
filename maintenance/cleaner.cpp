#include "maintenance/cleaner.h"

#include "db/jobs.h"

namespace maintenance {

core::Result<int> Cleaner::run_once() {
  const core::Millis cutoff = clock_.now_ms() - options_.retention_ms;
  bool any = false;
  core::Status st = db_.read([&](db::Conn& c) {
    any = db::any_finished_before(c, cutoff);
    return core::Status::ok();
  });
  if (!st) return st;
  int total = 0;
  while (any) {
    int deleted = 0;
    st = db_.write([&](db::Tx& tx) {
      deleted = db::delete_finished_before(tx, cutoff, options_.batch);
      return core::Status::ok();
    });
    if (!st) return st;
    total += deleted;
    any = deleted == options_.batch;  // a full batch: there may be more
  }
  return total;
}

}  // namespace maintenance
