#include "jobs/batch_completer.h"

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "db/jobs.h"
#include "jobs/producer.h"

namespace jobs {

BatchCompleter::BatchCompleter(db::Database& db, const core::Clock& clock, Executor& executor,
                               std::vector<std::string> kinds, int batch,
                               core::Millis poll_interval_ms)
    : db_(db),
      clock_(clock),
      executor_(executor),
      kinds_(std::move(kinds)),
      batch_(std::max(1, batch)),
      poll_interval_ms_(poll_interval_ms) {}

void BatchCompleter::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  follow_up_ = db_.set_follow_up([this](db::Tx& tx) { return phase(tx, nullptr); });
  thread_ = std::thread([this] { loop(); });
}

void BatchCompleter::notify() {
  if (follow_up_) return;  // the writer runs them right after that commit
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void BatchCompleter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (follow_up_) {
    (void)db_.set_follow_up(nullptr);  // returns once the writer no longer runs it
    follow_up_ = false;
  }
}

core::Result<int> BatchCompleter::apply_once() {
  auto runnable = any_runnable(db_, kinds_, clock_.now_ms());
  if (!runnable) return runnable.status();
  if (!*runnable) return 0;
  int count = 0;
  core::Status st = db_.write([&](db::Tx& tx) { return phase(tx, &count); });
  if (!st) return st;
  return count;
}

core::Status BatchCompleter::phase(db::Tx& tx, int* count) {
  const core::Millis now = clock_.now_ms();
  const std::vector<db::JobRow> rows = db::runnable_jobs_of_kinds(tx, kinds_, batch_, now);
  if (count != nullptr) *count = static_cast<int>(rows.size());
  executor_.run_unclaimed(tx, rows, now);
  // A full batch: more may be waiting. Group mode runs the follow-up again
  // after this COMMIT; the loop goes round at once.
  if (static_cast<int>(rows.size()) == batch_) tx.wake_on_commit();
  return core::Status::ok();
}

void BatchCompleter::loop() {
  for (;;) {
    auto ran = apply_once();
    if (!ran) {
      core::log::warn("jobs_apply_failed", {{"code", core::code_name(ran.status().code())},
                                            {"error", ran.status().message()}});
    }
    std::unique_lock lock(mu_);
    if (stopping_) return;
    if (ran && *ran >= batch_) continue;  // more may be waiting
    cv_.wait_for(lock, std::chrono::milliseconds(poll_interval_ms_),
                 [&] { return woken_ || stopping_; });
    if (stopping_) return;
    woken_ = false;
  }
}

}  // namespace jobs
