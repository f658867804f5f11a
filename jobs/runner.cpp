#include "jobs/runner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <random>
#include <thread>

#include "db/jobs.h"

namespace jobs {

Runner::Runner(db::Database& db, const Registry& registry, const core::Clock& clock,
               RunnerOptions options)
    : db_(db), registry_(registry), clock_(clock), options_(options) {}

Runner::~Runner() {
  stop();
}

void Runner::start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { loop(); });
}

void Runner::notify() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void Runner::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Runner::loop() {
  core::Millis next_rescue_at = 0;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      woken_ = false;
    }
    // Leases that ended while this process runs are rescued here too, not
    // only at the next start: a completion that met a full disk or another
    // process's write lock could not even record its failure, and its job
    // would otherwise stay `running` until a restart.
    const core::Millis now = clock_.now_ms();
    if (now >= next_rescue_at) {
      (void)rescue(/*all_running=*/false);  // on failure, the next pass tries again
      next_rescue_at = now + std::max(options_.poll_interval_ms, options_.lease_ms / 2);
    }
    auto ran = run_once();
    if (ran && *ran > 0) continue;  // more may be waiting
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms),
                 [&] { return woken_ || stopping_; });
  }
}

core::Result<int> Runner::run_once() {
  const core::Millis now = clock_.now_ms();
  bool runnable = false;
  core::Status st = db_.read([&](db::Conn& c) {
    runnable = db::any_runnable_job(c, now);
    return core::Status::ok();
  });
  if (!st) return st;
  if (!runnable) return 0;

  std::vector<db::JobRow> claimed;
  st = db_.write([&](db::Tx& tx) {
    claimed = db::claim_jobs(tx, options_.batch, now, now + options_.lease_ms);
    return core::Status::ok();
  });
  if (!st) return st;
  for (const auto& row : claimed) {
    {
      std::lock_guard lock(mu_);
      // On shutdown, leave the rest of the batch for the rescue at next start.
      if (stopping_) break;
    }
    run_job(row, now);
  }
  return static_cast<int>(claimed.size());
}

core::Millis Runner::retry_delay_ms(int attempt) const {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const int shift = std::clamp(attempt - 1, 0, 30);
  const double base = std::min<double>(
      static_cast<double>(options_.backoff_cap_ms),
      static_cast<double>(options_.backoff_base_ms) * static_cast<double>(1LL << shift));
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  return static_cast<core::Millis>(base * jitter(rng));
}

void Runner::run_job(const db::JobRow& row, core::Millis claimed_at) {
  const std::int64_t started_us = core::monotonic_us();
  if (options_.test_delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(options_.test_delay_ms));
  }
  Job job{row.id, row.kind, row.attempt, row.max_attempts, {}, row.created_at};
  core::Status st = core::Status::ok();
  const Handler* handler = registry_.find(row.kind);
  if (handler == nullptr) {
    st = core::Status::invalid("no handler registered for kind '" + row.kind + "'");
  } else {
    job.args = nlohmann::json::parse(row.args_json, nullptr, /*allow_exceptions=*/false);
    if (job.args.is_discarded()) st = core::Status::invalid("args are not valid JSON");
  }
  // perform: outside any transaction. Exceptions from handlers are failures.
  if (st && handler->perform) {
    try {
      st = handler->perform(job);
    } catch (const std::exception& e) {
      st = core::Status::internal(std::string("handler threw: ") + e.what());
    }
  }
  // apply + complete in one transaction: both or neither.
  bool claim_lost = false;
  if (st) {
    st = db_.write([&](db::Tx& tx) {
      const core::Millis now = clock_.now_ms();
      if (handler->apply) {
        core::Status applied = core::Status::ok();
        try {
          applied = handler->apply(job, tx, now);
        } catch (const nlohmann::json::exception& e) {
          applied = core::Status::invalid(std::string("bad args: ") + e.what());
        }
        if (!applied) return applied;
      }
      if (!db::complete_job(tx, job.id, job.attempt, now)) {
        // The claim was lost (rescued and taken again): roll the effect back.
        claim_lost = true;
        return core::Status::conflict("claim of attempt " + std::to_string(job.attempt) +
                                      " was lost");
      }
      return core::Status::ok();
    });
  }
  if (!st && !claim_lost) {
    const core::Millis now = clock_.now_ms();
    const bool discard = job.attempt >= row.max_attempts;
    const core::Millis retry_at = now + retry_delay_ms(job.attempt);
    core::Status failed = db_.write([&](db::Tx& tx) {
      db::fail_job(tx, job.id, job.attempt, st.message(), now, retry_at, discard);
      return core::Status::ok();
    });
    (void)failed;  // if even this fails, the lease expires and the rescuer retries the job
  }
  if (observer_) {
    observer_(AttemptEvent{&job, st.is_ok(), st.message(), claimed_at - row.created_at,
                           core::monotonic_us() - started_us});
  }
}

core::Result<int> Runner::rescue(bool all_running) {
  const core::Millis now = clock_.now_ms();
  const core::Millis cutoff = all_running ? std::numeric_limits<core::Millis>::max() : now;
  int rescued = 0;
  core::Status st = db_.write([&](db::Tx& tx) {
    rescued = db::rescue_jobs(tx, now, cutoff);
    return core::Status::ok();
  });
  if (!st) return st;
  return rescued;
}

RunnerLock RunnerLock::acquire(const std::string& db_path) {
  const std::string path = db_path + "-runner.lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return RunnerLock(-1);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return RunnerLock(-1);
  }
  return RunnerLock(fd);
}

RunnerLock::~RunnerLock() {
  if (fd_ >= 0) ::close(fd_);  // closing drops the flock
}

}  // namespace jobs
