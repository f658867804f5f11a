// jobs::BatchCompleter: runs the unclaimed jobs, those whose kind has no
// `perform` (their whole effect is an `apply` in this database), many per
// transaction.
//
// Such a job needs nothing outside a transaction, so it is never claimed:
// one write transaction reads up to `batch` runnable ones and the executor
// runs each inside its own nested savepoint (jobs/executor.h). The
// transaction is the attempt: a crash before COMMIT leaves the jobs as they
// were, never `running`, so nothing needs a lease, a heartbeat or a rescue,
// and a crash does not use up an attempt. One commit (one fsync) serves the
// whole batch.
//
// In group commit mode start() installs phase() as the database's follow-up
// (db::Database::set_follow_up): the writer thread runs it first in the
// transaction right after any COMMIT that asked for a wake-up, so a fresh
// job starts without a thread hand-off. Its own loop then only polls
// (retries whose time has come, rows staged by another process); in
// per-request mode notify() wakes it after such a commit.
//
// Threads: start()/stop() from the runner's owner; the loop on its own
// thread; phase() on the writer thread; apply_once() on any thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "jobs/executor.h"

namespace jobs {

class BatchCompleter {
 public:
  BatchCompleter(db::Database& db, const core::Clock& clock, Executor& executor,
                 std::vector<std::string> kinds, int batch, core::Millis poll_interval_ms);
  ~BatchCompleter() { stop(); }
  BatchCompleter(const BatchCompleter&) = delete;
  BatchCompleter& operator=(const BatchCompleter&) = delete;

  void start();
  // A commit asked for a wake-up; ignored while the follow-up runs them.
  void notify();
  // Stops the loop and removes the follow-up (returns once the writer can no
  // longer run it). Idempotent.
  void stop();

  // One transaction of unclaimed jobs (a read first: none runnable, no
  // write). Returns how many were attempted.
  [[nodiscard]] core::Result<int> apply_once();

 private:
  // The transaction's work; `count` (may be null) gets how many it attempted.
  core::Status phase(db::Tx& tx, int* count);
  void loop();

  db::Database& db_;
  const core::Clock& clock_;
  Executor& executor_;
  const std::vector<std::string> kinds_;
  const int batch_;
  const core::Millis poll_interval_ms_;
  bool follow_up_ = false;  // owner thread: start() installed phase() as the follow-up

  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;     // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace jobs
