#include "maintenance/rescuer.h"

#include "core/log.h"
#include "db/jobs.h"

namespace maintenance {

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

core::Status Rescuer::pass() {
  auto rescued = run_once();
  if (!rescued) return rescued.status();
  if (*rescued > 0)
    core::log::warn("jobs_rescued", {{"count", *rescued}, {"reason", "lease expired"}});
  return core::Status::ok();
}

}  // namespace maintenance
