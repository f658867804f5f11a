#include "jobs/heartbeat.h"

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "db/jobs.h"

namespace jobs {

Heartbeat::Heartbeat(db::Database& db, const core::Clock& clock, Executor& executor,
                     std::function<std::vector<std::pair<std::int64_t, int>>()> queued,
                     core::Millis lease_ms)
    : db_(db),
      clock_(clock),
      executor_(executor),
      queued_(std::move(queued)),
      lease_ms_(lease_ms) {}

void Heartbeat::start() {
  {
    std::lock_guard lock(mu_);
    exit_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void Heartbeat::stop() {
  {
    std::lock_guard lock(mu_);
    exit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Heartbeat::loop() {
  const auto period = std::chrono::milliseconds(std::max<core::Millis>(1, lease_ms_ / 3));
  for (;;) {
    auto wait = period;
    // Wake early for the nearest timeout, so a hung handler is failed on time.
    if (const core::Millis deadline = executor_.nearest_deadline(); deadline > 0) {
      wait = std::min(
          wait, std::chrono::milliseconds(std::max<core::Millis>(10, deadline - clock_.now_ms())));
    }
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, wait, [&] { return exit_; })) return;
    }
    auto beaten = beat_once();
    if (!beaten) {
      core::log::warn("jobs_heartbeat_failed", {{"code", core::code_name(beaten.status().code())},
                                                {"error", beaten.status().message()}});
    }
  }
}

core::Result<int> Heartbeat::beat_once() {
  const core::Millis now = clock_.now_ms();
  std::vector<std::pair<std::int64_t, InFlight>> jobs;
  for (const auto& [id, attempt] : queued_()) jobs.emplace_back(id, InFlight{attempt});
  for (auto& running : executor_.in_flight()) jobs.push_back(std::move(running));
  if (jobs.empty()) return 0;
  int extended = 0;
  std::vector<std::int64_t> timed_out;
  const Backoff& backoff = executor_.backoff();
  core::Status st = db_.write([&](db::Tx& tx) {
    extended = 0;
    timed_out.clear();
    for (const auto& [id, f] : jobs) {
      if (f.deadline > 0 && now >= f.deadline) {
        db::fail_job(tx, id, f.attempt, "timed out after " + std::to_string(f.timeout_ms) + " ms",
                     now, now + backoff.jittered_delay_ms(f.attempt), f.attempt >= f.max_attempts);
        timed_out.push_back(id);
      } else if (db::heartbeat_job(tx, id, f.attempt, now + lease_ms_)) {
        ++extended;
      }
    }
    return core::Status::ok();
  });
  if (!st) return st;
  executor_.mark_timed_out(timed_out);
  return extended;
}

}  // namespace jobs
