#include "workflow/completer.h"

#include "core/log.h"
#include "db/idempotency.h"

namespace workflow {

core::Result<int> Completer::run_once() {
  const core::Millis now = clock_.now_ms();
  std::vector<db::IdempotencyKeyRow> abandoned;
  core::Status st = db_.read([&](db::Conn& c) {
    // Only checkout leaves keys unfinished; single-phase writes commit theirs
    // finished.
    abandoned = db::list_abandoned_keys(c, kCheckout, now - options_.after_ms,
                                        now - options_.lock_timeout_ms, options_.batch);
    return core::Status::ok();
  });
  if (!st) return st;
  int finished = 0;
  for (const auto& key : abandoned) {
    auto done = flow_.resume(key.id);
    if (!done) {
      core::log::warn("completer_failed", {{"key_id", key.id},
                                           {"code", core::code_name(done.status().code())},
                                           {"error", done.status().message()}});
      continue;
    }
    if (*done) ++finished;
  }
  return finished;
}

}  // namespace workflow
