// jobs::Runner: the in-process job runner, in River's roles, each in its own
// file:
//
// - the producer (jobs/producer.h) claims runnable jobs with a lease and
//   hands them to the workers; it runs nothing itself;
// - `workers` threads take each claimed job and run it through the executor
//   (jobs/executor.h), the one execution path: perform outside any
//   transaction, then apply + complete in one transaction fenced by the
//   claimed attempt; a failure retries with backoff or discards;
// - the batch completer (jobs/batch_completer.h) runs the jobs whose kind
//   has no `perform` unclaimed, many per transaction, through the same
//   executor;
// - the heartbeat (jobs/heartbeat.h) extends the leases of the jobs in hand
//   every lease/3 and fails the attempts past their timeout.
//
// It reads through its own pooled connections and claims with its own write
// transactions, so it can only ever act on staged rows that have committed: a
// request's transaction that is still open (or rolled back) is invisible to
// it. A request that staged a job wakes it at once through the database's
// commit listener (notify()); a poll every `poll_interval_ms` is the safety
// net for rows staged by anyone else (another process, the sqlite3 CLI) and
// for retries whose run_at has come. A job whose kind no handler is
// registered for is neither claimed nor run: it stays `available` until a
// binary that knows its kind runs it. Expired leases are rescued by the
// rescuer (maintenance/rescuer.h), never here.
//
// Threads: start() launches the producer, the batch completer, `workers`
// worker threads and the heartbeat. run_once() and heartbeat_once() run one
// pass on the calling thread; tests call them directly on a runner that was
// not start()ed. notify() and stop() are thread-safe.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "jobs/batch_completer.h"
#include "jobs/executor.h"
#include "jobs/handler.h"
#include "jobs/heartbeat.h"
#include "jobs/producer.h"

namespace jobs {

struct RunnerOptions {
  // Jobs claimed per UPDATE ... RETURNING, when fewer than `workers` wait.
  int batch = 256;
  // Unclaimed jobs (no `perform`) run and completed in one transaction,
  // each in its own nested savepoint.
  int complete_batch = 256;
  int workers = 1;                // threads running handlers after start()
  core::Millis lease_ms = 30000;  // a claim's lease; heartbeats renew it every lease/3
  core::Millis poll_interval_ms = 1000;
  core::Millis backoff_base_ms = 1000;  // retry n waits base * 2^(n-1), jittered, capped
  core::Millis backoff_cap_ms = 3600000;
  // stop() waits this long for running handlers, then leaves them to be
  // rescued by any process's rescuer once their lease expires.
  core::Millis shutdown_timeout_ms = 10000;

  // Test seam (--test-job-delay): each claimed attempt sleeps this long
  // after its claim, so a crash test can catch jobs running. 0 in
  // production. Unclaimed jobs never sleep (their attempt is a transaction).
  core::Millis test_delay_ms = 0;
};

class Runner {
 public:
  Runner(db::Database& db, const Registry& registry, const core::Clock& clock,
         RunnerOptions options);
  ~Runner();  // stop(), then joins workers still running a handler
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Set before start().
  void set_observer(std::function<void(const AttemptEvent&)> observer) {
    executor_.set_observer(std::move(observer));
  }

  // Starts the producer, the batch completer, the workers and the heartbeat.
  void start();
  // A commit staged a job: wakes the producer and the batch completer.
  void notify();
  // Graceful shutdown: stops claiming, gives back claimed jobs no worker has
  // started (their attempt undone), waits up to shutdown_timeout_ms for the
  // running ones, then stops heartbeating. A handler still running then is
  // left `running`, to be rescued; its worker is joined by the destructor.
  // Idempotent.
  void stop();
  // True once stop() began.
  bool stopping() const;

  // One pass on the calling thread: one batch of unclaimed jobs, then claims
  // up to `batch` jobs and runs them. Returns how many jobs were attempted.
  core::Result<int> run_once();

  // One heartbeat (jobs/heartbeat.h). Returns how many leases were extended.
  core::Result<int> heartbeat_once() { return heartbeat_.beat_once(); }

  const RunnerOptions& options() const noexcept { return options_; }

 private:
  void work();

  const RunnerOptions options_;
  const core::Clock& clock_;
  Executor executor_;
  Producer producer_;
  BatchCompleter completer_;
  Heartbeat heartbeat_;

  mutable std::mutex mu_;
  bool stopping_ = false;  // guarded by mu_
  bool stopped_ = false;   // guarded by mu_: stop() finished
  std::vector<std::thread> workers_;
};

}  // namespace jobs
