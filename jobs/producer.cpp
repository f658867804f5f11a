#include "jobs/producer.h"

#include <algorithm>
#include <chrono>
#include <iterator>

#include "core/log.h"

namespace jobs {

core::Result<bool> any_runnable(db::Database& db, const std::vector<std::string>& kinds,
                                core::Millis now) {
  if (kinds.empty()) return false;  // no such kinds registered: nothing to read
  bool runnable = false;
  core::Status st = db.read([&](db::Conn& c) {
    runnable = db::any_runnable_job_of_kinds(c, kinds, now);
    return core::Status::ok();
  });
  if (!st) return st;
  return runnable;
}

Producer::Producer(db::Database& db, const core::Clock& clock, std::vector<std::string> kinds,
                   ProducerOptions options)
    : db_(db), clock_(clock), kinds_(std::move(kinds)), options_(options) {}

Producer::~Producer() {
  (void)stop();
}

void Producer::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
    closed_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void Producer::notify() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  produce_cv_.notify_one();
}

std::vector<Claimed> Producer::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  produce_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  std::vector<Claimed> unstarted(std::make_move_iterator(queue_.begin()),
                                 std::make_move_iterator(queue_.end()));
  queue_.clear();
  busy_ -= static_cast<int>(unstarted.size());
  return unstarted;
}

core::Result<std::vector<db::JobRow>> Producer::claim(int limit, core::Millis now) {
  std::vector<db::JobRow> claimed;
  auto runnable = any_runnable(db_, kinds_, now);
  if (!runnable) return runnable.status();
  if (!*runnable) return claimed;
  core::Status st = db_.write([&](db::Tx& tx) {
    claimed = db::claim_jobs_of_kinds(tx, kinds_, limit, now, now + options_.lease_ms);
    return core::Status::ok();
  });
  if (!st) return st;
  return claimed;
}

void Producer::release(const std::vector<Claimed>& unstarted) {
  if (unstarted.empty()) return;
  core::Status st = db_.write([&](db::Tx& tx) {
    for (const auto& c : unstarted) db::release_job(tx, c.row.id, c.row.attempt);
    return core::Status::ok();
  });
  (void)st;  // if this fails, the leases expire and the rescuer takes the jobs back
}

void Producer::loop() {
  const int workers = std::max(1, options_.workers);
  for (;;) {
    {
      std::unique_lock lock(mu_);
      // Queued jobs are heartbeated like running ones.
      produce_cv_.wait(lock,
                       [&] { return stopping_ || static_cast<int>(queue_.size()) < workers; });
      if (stopping_) return;
      woken_ = false;
    }
    const core::Millis now = clock_.now_ms();
    auto claimed = claim(options_.batch, now);
    const int n = claimed ? static_cast<int>(claimed->size()) : 0;
    if (n > 0) {
      {
        std::lock_guard lock(mu_);
        for (auto& row : *claimed) queue_.push_back(Claimed{std::move(row), now});
        busy_ += n;
      }
      work_cv_.notify_all();
    }
    if (claimed && n == options_.batch) continue;  // more may be waiting
    if (!claimed) {
      core::log::warn("jobs_claim_failed", {{"code", core::code_name(claimed.status().code())},
                                            {"error", claimed.status().message()}});
    }
    std::unique_lock lock(mu_);
    produce_cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms),
                         [&] { return woken_ || stopping_; });
  }
}

std::optional<Claimed> Producer::take() {
  std::unique_lock lock(mu_);
  work_cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
  if (queue_.empty()) return std::nullopt;
  Claimed next = std::move(queue_.front());
  queue_.pop_front();
  return next;
}

void Producer::done() {
  {
    std::lock_guard lock(mu_);
    --busy_;
    // A finished job may unblock the next of its serial key: look again.
    woken_ = true;
  }
  produce_cv_.notify_one();
  idle_cv_.notify_all();
}

int Producer::wait_idle(core::Millis timeout_ms) {
  std::unique_lock lock(mu_);
  idle_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return busy_ == 0; });
  return busy_;
}

void Producer::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  work_cv_.notify_all();
}

std::vector<std::pair<std::int64_t, int>> Producer::queued() const {
  std::vector<std::pair<std::int64_t, int>> out;
  std::lock_guard lock(mu_);
  for (const auto& c : queue_) out.emplace_back(c.row.id, c.row.attempt);
  return out;
}

}  // namespace jobs
