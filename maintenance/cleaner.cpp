#include "jobs/cleaner.h"

#include <cstdio>

#include "db/jobs.h"

namespace jobs {

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

void Cleaner::start() {
  loop_.start(options_.interval_ms, [this] {
    auto deleted = run_once();
    if (!deleted) std::fprintf(stderr, "cleaner: %s\n", deleted.status().message().c_str());
  });
}

}  // namespace jobs
