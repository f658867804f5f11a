// jobs::Runner: the in-process job runner.
//
// It reads through its own pooled connections and claims with its own write
// transactions, so it can only ever act on staged rows that have committed: a
// request's transaction that is still open (or rolled back) is invisible to
// it. A request that staged a job wakes it at once through the database's
// commit listener (notify()); a poll every `poll_interval_ms` is the safety
// net for rows staged by anyone else (another process, the sqlite3 CLI).
//
// One pass (run_once) claims up to `batch` runnable jobs in one
// UPDATE ... RETURNING, then for each: `perform` outside any transaction,
// then `apply` + complete in one transaction (exactly-once effect). A failure
// records the error and makes the job retryable with exponential backoff and
// jitter, or discarded at max_attempts.
//
// Threads: start() launches one thread that loops run_once(); run_once() may
// also be called directly (tests), but not concurrently with that thread.
// notify() and stop() are thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "db/jobs.h"
#include "jobs/handler.h"

namespace jobs {

struct RunnerOptions {
  int batch = 16;                 // jobs claimed per UPDATE ... RETURNING
  core::Millis lease_ms = 30000;  // a claim's lease
  core::Millis poll_interval_ms = 1000;
  core::Millis backoff_base_ms = 1000;  // retry n waits base * 2^(n-1), jittered, capped
  core::Millis backoff_cap_ms = 3600000;
  // Test seam (--test-job-delay): each attempt sleeps this long after its
  // claim, so a crash test can catch jobs running. 0 in production.
  core::Millis test_delay_ms = 0;
};

// Observes each attempt (metrics, logs). Called on the runner's thread.
struct AttemptEvent {
  const Job* job = nullptr;
  bool ok = false;
  std::string error;
  core::Millis commit_to_start_ms = 0;  // claim time - created_at (first attempt only meaningful)
  std::int64_t duration_us = 0;
};

class Runner {
 public:
  Runner(db::Database& db, const Registry& registry, const core::Clock& clock,
         RunnerOptions options);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  void set_observer(std::function<void(const AttemptEvent&)> observer) {
    observer_ = std::move(observer);
  }

  // Starts the runner thread.
  void start();
  // Wakes the runner: a commit staged a job.
  void notify();
  // Stops claiming, lets the job in hand finish, joins. A job still running
  // after `timeout` is left to be rescued by the next start.
  void stop();

  // One pass: claim a batch and run it. Returns how many jobs were attempted.
  core::Result<int> run_once();

  // Returns running jobs whose lease ended to retryable (or discarded at
  // max_attempts). With `all_running`, every running job is rescued: safe
  // only when no other runner is alive (see RunnerLock).
  core::Result<int> rescue(bool all_running);

 private:
  void loop();
  void run_job(const db::JobRow& row, core::Millis claimed_at);
  core::Millis retry_delay_ms(int attempt) const;

  db::Database& db_;
  const Registry& registry_;
  const core::Clock& clock_;
  const RunnerOptions options_;
  std::function<void(const AttemptEvent&)> observer_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;     // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

// An advisory lock (flock) on "<db path>-runner.lock" held for the life of the
// process. The kernel drops it when the process dies, even by kill -9, so the
// process holding it knows that every job left `running` belongs to a runner
// that is gone and can be rescued at once instead of after its lease.
class RunnerLock {
 public:
  // Returns an unlocked RunnerLock (held() == false) when another process holds it.
  static RunnerLock acquire(const std::string& db_path);
  RunnerLock(RunnerLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunnerLock& operator=(RunnerLock&&) = delete;
  RunnerLock(const RunnerLock&) = delete;
  ~RunnerLock();
  bool held() const noexcept { return fd_ >= 0; }

 private:
  explicit RunnerLock(int fd) noexcept : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace jobs
