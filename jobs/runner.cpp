#include "jobs/runner.h"

#include <algorithm>

#include "core/log.h"

namespace jobs {
namespace {

// The registered kinds with a `perform` (claimed) or without (unclaimed).
std::vector<std::string> kinds_where(const Registry& registry, bool with_perform) {
  std::vector<std::string> kinds;
  registry.for_each([&](const std::string& kind, const KindOptions&) {
    if (static_cast<bool>(registry.find(kind)->perform) == with_perform) kinds.push_back(kind);
  });
  return kinds;
}

}  // namespace

Runner::Runner(db::Database& db, const Registry& registry, const core::Clock& clock,
               RunnerOptions options)
    : options_(options),
      clock_(clock),
      executor_(db, registry, clock, Backoff{options.backoff_base_ms, options.backoff_cap_ms},
                options.test_delay_ms),
      producer_(db, clock, kinds_where(registry, true),
                ProducerOptions{options.batch, std::max(1, options.workers), options.lease_ms,
                                options.poll_interval_ms}),
      completer_(db, clock, executor_, kinds_where(registry, false), options.complete_batch,
                 options.poll_interval_ms),
      heartbeat_(
          db, clock, executor_, [this] { return producer_.queued(); }, options.lease_ms) {}

Runner::~Runner() {
  stop();
  producer_.close();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

void Runner::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
    stopped_ = false;
  }
  completer_.start();
  producer_.start();
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { work(); });
  }
  heartbeat_.start();
}

void Runner::notify() {
  producer_.notify();
  completer_.notify();
}

bool Runner::stopping() const {
  std::lock_guard lock(mu_);
  return stopping_;
}

void Runner::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopping_ = true;
  }
  producer_.release(producer_.stop());
  completer_.stop();

  const int still_running = producer_.wait_idle(options_.shutdown_timeout_ms);
  if (still_running > 0) {
    core::log::warn("jobs_still_running",
                    {{"count", still_running},
                     {"detail", "past --shutdown-timeout; rescued once their lease expires"}});
  }
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  heartbeat_.stop();
  if (still_running == 0) {
    producer_.close();
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
    workers_.clear();
  }
}

void Runner::work() {
  while (auto claimed = producer_.take()) {
    executor_.run_claimed(claimed->row, claimed->claimed_at);
    producer_.done();
  }
}

core::Result<int> Runner::run_once() {
  auto applied = completer_.apply_once();
  if (!applied) return applied.status();
  const core::Millis now = clock_.now_ms();
  auto claimed = producer_.claim(options_.batch, now);
  if (!claimed) return claimed.status();
  std::vector<Claimed> unstarted;
  for (const auto& row : *claimed) {
    if (stopping()) {
      // On shutdown, give the rest of the batch back.
      unstarted.push_back(Claimed{row, now});
      continue;
    }
    executor_.run_claimed(row, now);
  }
  producer_.release(unstarted);
  return *applied + static_cast<int>(claimed->size() - unstarted.size());
}

}  // namespace jobs
