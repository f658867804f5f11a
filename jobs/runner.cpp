#include "jobs/runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "core/log.h"
#include "db/jobs.h"

namespace jobs {
namespace {

// The handler's `apply`, if it has one, inside `tx`: the one path both the
// claimed and the unclaimed jobs take. A nlohmann::json::exception is bad
// arguments, which no retry can fix.
core::Status apply_effect(const Handler& handler, const Job& job, db::Tx& tx, core::Millis now) {
  if (!handler.apply) return core::Status::ok();
  try {
    return handler.apply(job, tx, now);
  } catch (const nlohmann::json::exception& e) {
    return do_not_retry(std::string("bad args: ") + e.what());
  }
}

// Whether a failed attempt ends the job (discarded) rather than retrying it.
bool discards(const core::Status& failure, int attempt, int max_attempts) noexcept {
  return !is_retryable(failure) || attempt >= max_attempts;
}

}  // namespace

core::Millis Backoff::jittered_delay_ms(int attempt) const {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  return delay_ms(attempt, unit(rng));
}

Runner::Runner(db::Database& db, const Registry& registry, const core::Clock& clock,
               RunnerOptions options)
    : db_(db),
      registry_(registry),
      clock_(clock),
      options_(options),
      backoff_{options.backoff_base_ms, options.backoff_cap_ms} {
  registry_.for_each([&](const std::string& kind, const KindOptions&) {
    (registry_.find(kind)->perform ? claimed_kinds_ : unclaimed_kinds_).push_back(kind);
  });
}

Runner::~Runner() {
  stop();
  {
    std::lock_guard lock(mu_);
    workers_exit_ = true;
  }
  work_cv_.notify_all();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
}

void Runner::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
    stopped_ = false;
    workers_exit_ = false;
    beats_exit_ = false;
  }
  // Group commit: the writer runs unclaimed jobs right after the COMMIT that
  // made them visible; the producer then only polls for them (retries whose
  // time has come, rows staged by another process).
  follow_up_ = db_.set_follow_up([this](db::Tx& tx) { return run_unclaimed(tx, nullptr); });
  producer_ = std::thread([this] { produce(); });
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { work(); });
  }
  heartbeat_ = std::thread([this] { beat(); });
}

void Runner::notify() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
    commit_woken_ = true;
  }
  produce_cv_.notify_one();
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
  produce_cv_.notify_all();
  if (producer_.joinable()) producer_.join();
  if (follow_up_) {
    (void)db_.set_follow_up(nullptr);  // returns once the writer no longer runs it
    follow_up_ = false;
  }

  std::vector<Claimed> unstarted;
  {
    std::lock_guard lock(mu_);
    unstarted.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.end()));
    queue_.clear();
    busy_ -= static_cast<int>(unstarted.size());
  }
  release(unstarted);

  bool drained = false;
  {
    std::unique_lock lock(mu_);
    drained = idle_cv_.wait_for(lock, std::chrono::milliseconds(options_.shutdown_timeout_ms),
                                [&] { return busy_ == 0; });
    if (!drained) {
      core::log::warn("jobs_still_running", {{"count", busy_},
                                             {"detail",
                                              "past --shutdown-timeout; rescued once "
                                              "their lease expires"}});
    }
    beats_exit_ = true;
    stopped_ = true;
    if (drained) workers_exit_ = true;
  }
  beat_cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
  if (drained) {
    work_cv_.notify_all();
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
    workers_.clear();
  }
}

core::Result<bool> Runner::any_runnable(const std::vector<std::string>& kinds, core::Millis now) {
  if (kinds.empty()) return false;  // no such kinds registered: nothing to read
  // A read: an idle runner polls without taking the write lock.
  bool runnable = false;
  core::Status st = db_.read([&](db::Conn& c) {
    runnable = db::any_runnable_job_of_kinds(c, kinds, now);
    return core::Status::ok();
  });
  if (!st) return st;
  return runnable;
}

core::Result<std::vector<db::JobRow>> Runner::claim(int limit, core::Millis now) {
  std::vector<db::JobRow> claimed;
  auto runnable = any_runnable(claimed_kinds_, now);
  if (!runnable) return runnable.status();
  if (!*runnable) return claimed;
  core::Status st = db_.write([&](db::Tx& tx) {
    claimed = db::claim_jobs_of_kinds(tx, claimed_kinds_, limit, now, now + options_.lease_ms);
    return core::Status::ok();
  });
  if (!st) return st;
  return claimed;
}

core::Result<int> Runner::apply_unclaimed() {
  auto runnable = any_runnable(unclaimed_kinds_, clock_.now_ms());
  if (!runnable) return runnable.status();
  if (!*runnable) return 0;
  int count = 0;
  core::Status st = db_.write([&](db::Tx& tx) { return run_unclaimed(tx, &count); });
  if (!st) return st;
  return count;
}

core::Status Runner::run_unclaimed(db::Tx& tx, int* count) {
  const std::int64_t started_us = core::monotonic_us();
  const core::Millis now = clock_.now_ms();
  const int limit = std::max(1, options_.complete_batch);
  const std::vector<db::JobRow> rows = db::runnable_jobs_of_kinds(tx, unclaimed_kinds_, limit, now);
  if (count != nullptr) *count = static_cast<int>(rows.size());
  if (rows.empty()) return core::Status::ok();
  struct Outcome {
    Job job;
    core::Status status;
  };
  auto outcomes = std::make_shared<std::vector<Outcome>>();
  outcomes->reserve(rows.size());
  for (const db::JobRow& row : rows) {
    const int attempt = row.attempt + 1;
    Outcome o{Job{row.id, row.kind, attempt, row.max_attempts, {}, row.created_at},
              core::Status::ok()};
    const Handler* handler = registry_.find(row.kind);
    o.job.args = nlohmann::json::parse(row.args_json, nullptr, /*allow_exceptions=*/false);
    if (o.job.args.is_discarded()) {
      o.status = do_not_retry("args are not valid JSON");
    } else {
      o.status = tx.nested([&] {
        if (handler != nullptr) {
          if (core::Status applied = apply_effect(*handler, o.job, tx, now); !applied) {
            return applied;
          }
        }
        if (!db::complete_unclaimed_job(tx, row.id, attempt, now)) {
          return core::Status::conflict("job " + std::to_string(row.id) + " changed while it ran");
        }
        return core::Status::ok();
      });
    }
    if (!o.status) {
      db::fail_unclaimed_job(tx, row.id, attempt, o.status.message(), now,
                             now + backoff_.jittered_delay_ms(attempt),
                             discards(o.status, attempt, row.max_attempts));
    }
    outcomes->push_back(std::move(o));
  }
  // A full batch: more may be waiting. Group mode runs the follow-up again
  // after this COMMIT; the producer's loop goes round at once.
  if (static_cast<int>(rows.size()) == limit) tx.wake_on_commit();
  if (observer_) {
    tx.after_commit([this, outcomes, now, started_us] {
      const std::int64_t duration_us = core::monotonic_us() - started_us;
      for (const Outcome& o : *outcomes) {
        observer_(AttemptEvent{&o.job, o.status.is_ok(), o.status.message(), now - o.job.created_at,
                               duration_us});
      }
    });
  }
  return core::Status::ok();
}

void Runner::produce() {
  const int workers = std::max(1, options_.workers);
  for (;;) {
    int want = 0;
    {
      std::unique_lock lock(mu_);
      // Claim a whole batch once fewer jobs wait than there are workers, so
      // that one claim transaction serves many jobs and no worker starves.
      // Queued jobs are heartbeated like running ones.
      produce_cv_.wait(lock,
                       [&] { return stopping_ || static_cast<int>(queue_.size()) < workers; });
      if (stopping_) return;
      want = options_.batch;
      woken_ = false;
    }
    bool by_commit = false;
    {
      std::lock_guard lock(mu_);
      by_commit = commit_woken_;
      commit_woken_ = false;
    }
    // Unclaimed jobs: in group mode the writer's follow-up already runs the
    // ones a commit made visible, so only a poll looks for them here.
    int applied = 0;
    if (!(follow_up_ && by_commit)) {
      auto ran = apply_unclaimed();
      if (ran) {
        applied = *ran;
      } else {
        core::log::warn("jobs_apply_failed", {{"code", core::code_name(ran.status().code())},
                                              {"error", ran.status().message()}});
      }
    }
    const core::Millis now = clock_.now_ms();
    auto claimed = claim(want, now);
    const int n = claimed ? static_cast<int>(claimed->size()) : 0;
    if (n > 0) {
      {
        std::lock_guard lock(mu_);
        for (auto& row : *claimed) queue_.push_back(Claimed{std::move(row), now});
        busy_ += n;
      }
      work_cv_.notify_all();
    }
    if ((claimed && n == want) || applied >= std::max(1, options_.complete_batch)) {
      continue;  // more may be waiting
    }
    if (!claimed)
      core::log::warn("jobs_claim_failed", {{"code", core::code_name(claimed.status().code())},
                                            {"error", claimed.status().message()}});
    std::unique_lock lock(mu_);
    produce_cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms),
                         [&] { return woken_ || stopping_; });
  }
}

void Runner::work() {
  for (;;) {
    std::vector<Claimed> batch;
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return workers_exit_ || !queue_.empty(); });
      if (queue_.empty()) return;
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    run_job(batch.front().row, batch.front().claimed_at);
    {
      std::lock_guard lock(mu_);
      busy_ -= static_cast<int>(batch.size());
      // A finished job may unblock the next of its serial key: look again.
      woken_ = true;
    }
    produce_cv_.notify_one();
    idle_cv_.notify_all();
  }
}

void Runner::beat() {
  const auto period = std::chrono::milliseconds(std::max<core::Millis>(1, options_.lease_ms / 3));
  for (;;) {
    auto wait = period;
    {
      // Wake early for the nearest timeout, so a hung handler is failed on time.
      std::lock_guard lock(inflight_mu_);
      const core::Millis now = clock_.now_ms();
      for (const auto& [id, f] : inflight_) {
        if (f.deadline > 0 && !f.timed_out) {
          wait = std::min(wait,
                          std::chrono::milliseconds(std::max<core::Millis>(10, f.deadline - now)));
        }
      }
    }
    {
      std::unique_lock lock(mu_);
      if (beat_cv_.wait_for(lock, wait, [&] { return beats_exit_; })) return;
    }
    auto beaten = heartbeat_once();
    if (!beaten) {
      core::log::warn("jobs_heartbeat_failed", {{"code", core::code_name(beaten.status().code())},
                                                {"error", beaten.status().message()}});
    }
  }
}

core::Result<int> Runner::heartbeat_once() {
  const core::Millis now = clock_.now_ms();
  std::vector<std::pair<std::int64_t, InFlight>> jobs;
  {
    std::lock_guard lock(mu_);  // claimed, waiting for a worker: keep their leases too
    for (const auto& c : queue_) jobs.emplace_back(c.row.id, InFlight{c.row.attempt});
  }
  {
    std::lock_guard lock(inflight_mu_);
    for (const auto& [id, f] : inflight_) {
      if (!f.timed_out) jobs.emplace_back(id, f);
    }
  }
  if (jobs.empty()) return 0;
  int extended = 0;
  std::vector<std::int64_t> timed_out;
  core::Status st = db_.write([&](db::Tx& tx) {
    extended = 0;
    timed_out.clear();
    for (const auto& [id, f] : jobs) {
      if (f.deadline > 0 && now >= f.deadline) {
        db::fail_job(tx, id, f.attempt, "timed out after " + std::to_string(f.timeout_ms) + " ms",
                     now, now + backoff_.jittered_delay_ms(f.attempt), f.attempt >= f.max_attempts);
        timed_out.push_back(id);
      } else if (db::heartbeat_job(tx, id, f.attempt, now + options_.lease_ms)) {
        ++extended;
      }
    }
    return core::Status::ok();
  });
  if (!st) return st;
  std::lock_guard lock(inflight_mu_);
  for (std::int64_t id : timed_out) {
    auto it = inflight_.find(id);
    if (it != inflight_.end()) it->second.timed_out = true;
  }
  return extended;
}

core::Result<int> Runner::run_once() {
  auto applied = apply_unclaimed();
  if (!applied) return applied.status();
  const core::Millis now = clock_.now_ms();
  auto claimed = claim(options_.batch, now);
  if (!claimed) return claimed.status();
  std::vector<Claimed> unstarted;
  for (const auto& row : *claimed) {
    if (stopping()) {
      // On shutdown, give the rest of the batch back.
      unstarted.push_back(Claimed{row, now});
      continue;
    }
    run_job(row, now);
  }
  release(unstarted);
  return *applied + static_cast<int>(claimed->size() - unstarted.size());
}

void Runner::release(const std::vector<Claimed>& unstarted) {
  if (unstarted.empty()) return;
  core::Status st = db_.write([&](db::Tx& tx) {
    for (const auto& c : unstarted) db::release_job(tx, c.row.id, c.row.attempt);
    return core::Status::ok();
  });
  // If this fails, the leases expire and the rescuer takes the jobs back.
  (void)st;
}

void Runner::run_job(const db::JobRow& row, core::Millis claimed_at) {
  const std::int64_t started_us = core::monotonic_us();
  if (options_.test_delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.test_delay_ms));
  }
  Job job{row.id, row.kind, row.attempt, row.max_attempts, {}, row.created_at};
  core::Status st = core::Status::ok();
  const Handler* handler = registry_.find(row.kind);
  const KindOptions* kind = registry_.options(row.kind);
  if (handler == nullptr) {
    st = core::Status::internal("no handler registered for kind '" + row.kind + "'");
  } else {
    job.args = nlohmann::json::parse(row.args_json, nullptr, /*allow_exceptions=*/false);
    if (job.args.is_discarded()) st = do_not_retry("args are not valid JSON");
  }
  const core::Millis timeout_ms = row.timeout_ms.value_or(kind ? kind->timeout_ms : 0);
  {
    std::lock_guard lock(inflight_mu_);
    inflight_[job.id] = InFlight{job.attempt, row.max_attempts, timeout_ms,
                                 timeout_ms > 0 ? clock_.now_ms() + timeout_ms : 0, false};
  }
  // perform: outside any transaction. Exceptions from handlers are failures.
  if (st && handler->perform) {
    try {
      st = handler->perform(job);
    } catch (const nlohmann::json::exception& e) {
      st = do_not_retry(std::string("bad args: ") + e.what());
    } catch (const std::exception& e) {
      st = core::Status::internal(std::string("handler threw: ") + e.what());
    }
  }
  // apply + complete in one transaction: both or neither.
  bool claim_lost = false;
  if (st) {
    st = db_.write([&](db::Tx& tx) {
      const core::Millis now = clock_.now_ms();
      if (core::Status applied = apply_effect(*handler, job, tx, now); !applied) return applied;
      if (!db::complete_job(tx, job.id, job.attempt, now)) {
        // The claim was lost (timed out, or rescued and maybe taken again):
        // roll the effect back.
        claim_lost = true;
        return core::Status::conflict("claim of attempt " + std::to_string(job.attempt) +
                                      " was lost");
      }
      return core::Status::ok();
    });
  }
  if (!st && !claim_lost) {
    const core::Millis now = clock_.now_ms();
    const bool discard = discards(st, job.attempt, row.max_attempts);
    const core::Millis retry_at = now + backoff_.jittered_delay_ms(job.attempt);
    core::Status failed = db_.write([&](db::Tx& tx) {
      // Fenced: refused when the attempt timed out or was rescued meanwhile.
      db::fail_job(tx, job.id, job.attempt, st.message(), now, retry_at, discard);
      return core::Status::ok();
    });
    (void)failed;  // if even this fails, the lease expires and the rescuer retries the job
  }
  {
    std::lock_guard lock(inflight_mu_);
    inflight_.erase(job.id);
  }
  if (observer_) {
    observer_(AttemptEvent{&job, st.is_ok(), st.message(), claimed_at - row.created_at,
                           core::monotonic_us() - started_us});
  }
}

}  // namespace jobs
