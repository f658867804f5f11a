#include "jobs/rescuer.h"

#include <cstdio>

#include "db/jobs.h"

namespace jobs {

core::Result<int> Rescuer::run_once() {
  const core::Millis now = clock_.now_ms();
  bool expired = false;
  core::Status st = db_.read([&](db::Conn& c) {
    expired = db::any_expired_lease(c, now);
    return core::Status::ok();
  });
  if (!st) return st;
  if (!expired) return 0;
  int rescued = 0;
  st = db_.write([&](db::Tx& tx) {
    rescued = db::rescue_jobs(tx, now, now);
    return core::Status::ok();
  });
  if (!st) return st;
  return rescued;
}

void Rescuer::start() {
  loop_.start(options_.interval_ms, [this] {
    auto rescued = run_once();
    if (!rescued) {
      std::fprintf(stderr, "rescuer: %s\n", rescued.status().message().c_str());
    } else if (*rescued > 0) {
      std::fprintf(stderr, "rescuer: %d job(s) with an expired lease returned to the queue\n",
                   *rescued);
    }
  });
}

}  // namespace jobs
