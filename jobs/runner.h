// jobs::Runner: the in-process job runner: a producer that claims, a pool of
// workers that run handlers, and a heartbeat that keeps their leases.
//
// It reads through its own pooled connections and claims with its own write
// transactions, so it can only ever act on staged rows that have committed: a
// request's transaction that is still open (or rolled back) is invisible to
// it. A request that staged a job wakes it at once through the database's
// commit listener (notify()); a poll every `poll_interval_ms` is the safety
// net for rows staged by anyone else (another process, the sqlite3 CLI) and
// for retries whose run_at has come.
//
// A claimed job's attempt (kinds with a `perform`): claimed in a batch by one UPDATE ... RETURNING
// (lease `lease_ms`, attempt + 1), then `perform` outside any transaction, then `apply` + complete
// in one transaction (exactly-once effect in this database). A failure appends the error and makes
// the job retryable at now + backoff, or discarded at max_attempts (at once for do_not_retry()).
// Every write about a claimed job is fenced by its attempt number, so once an attempt lost its
// claim (timed out, or rescued after its lease expired) nothing it does afterwards is written: its
// apply is rolled back.
//
// While a handler runs, the heartbeat extends its lease every lease/3 and
// fails it once it exceeds its kind's (or job's) timeout. A handler cannot be
// interrupted: a timed-out one keeps its worker until it returns, and what it
// returns is ignored.
//
// Unclaimed jobs: a job whose handler has no `perform` (its whole effect is
// an `apply` in this database) needs nothing outside a transaction, so it is
// never claimed. One write transaction reads up to complete_batch runnable
// such jobs and, for each inside its own nested savepoint (db::Tx::nested),
// runs its apply and marks it completed (available|retryable -> completed,
// attempt + 1) or, when it fails, rolls back only its own effect and records
// the failure (retryable with backoff, or discarded). The transaction is the
// attempt: a crash before COMMIT leaves the job as it was, never `running`,
// so nothing needs a lease, a heartbeat or a rescue, and a crash does not use
// up an attempt. One commit (one fsync) serves the whole batch. In group
// commit mode start() installs this phase as the database's follow-up
// (db::Database::set_follow_up): the writer thread runs it first in the
// transaction right after any COMMIT that staged jobs, so a fresh job starts
// without a thread hand-off; the producer still polls for retries whose
// time has come. Jobs with a `perform` are claimed as above. A job whose
// kind no handler is registered for is neither claimed nor run: it stays
// `available` until a binary that knows its kind runs it.
//
// Threads: start() launches the producer, `workers` worker threads and the
// heartbeat thread. run_once() and heartbeat_once() run one pass on the
// calling thread; tests call them directly on a runner that was not
// start()ed. notify() and stop() are thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "db/jobs.h"
#include "jobs/backoff.h"
#include "jobs/handler.h"

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

// Observes each attempt (metrics, logs). Called on the thread that ran the
// attempt (a worker, the producer, the database's writer thread for the
// follow-up, or run_once()'s caller) after the attempt's transaction
// committed, so it must be thread-safe and quick.
struct AttemptEvent {
  const Job* job = nullptr;
  bool ok = false;
  std::string error;
  // Start of the attempt (claim, or the unclaimed transaction) - created_at:
  // staged-to-start, meaningful for the first attempt only.
  core::Millis commit_to_start_ms = 0;
  std::int64_t duration_us = 0;
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
    observer_ = std::move(observer);
  }

  // Starts the producer, the workers and the heartbeat.
  void start();
  // Wakes the producer: a commit staged a job.
  void notify();
  // Graceful shutdown: stops claiming, gives back claimed jobs no worker has
  // started (their attempt undone), waits up to shutdown_timeout_ms for the
  // running ones, then stops heartbeating. A handler still running then is
  // left `running`, to be rescued; its worker is joined by the destructor.
  // Idempotent.
  void stop();
  // True once stop() began.
  bool stopping() const;

  // One pass on the calling thread: claims up to `batch` jobs and runs them.
  // Returns how many jobs were attempted.
  core::Result<int> run_once();

  // One heartbeat: extends the lease of every job in hand (running or
  // claimed and waiting for a worker), and fails those past their timeout.
  // Returns how many leases were extended.
  core::Result<int> heartbeat_once();

  const RunnerOptions& options() const noexcept { return options_; }

 private:
  struct Claimed {
    db::JobRow row;
    core::Millis claimed_at = 0;
  };
  struct InFlight {
    int attempt = 0;
    int max_attempts = 0;
    core::Millis timeout_ms = 0;  // 0 = none
    core::Millis deadline = 0;    // clock time; 0 = none
    bool timed_out = false;
  };

  // True when a job of one of `kinds` is runnable; a read.
  core::Result<bool> any_runnable(const std::vector<std::string>& kinds, core::Millis now);
  core::Result<std::vector<db::JobRow>> claim(int limit, core::Millis now);
  // One transaction of unclaimed jobs (a read first: none runnable, no write).
  // Returns how many were attempted.
  core::Result<int> apply_unclaimed();
  // The phase itself; `count` (may be null) gets how many jobs it attempted.
  core::Status run_unclaimed(db::Tx& tx, int* count);
  void produce();
  void work();
  void beat();
  void run_job(const db::JobRow& row, core::Millis claimed_at);
  void release(const std::vector<Claimed>& unstarted);

  db::Database& db_;
  const Registry& registry_;
  const core::Clock& clock_;
  const RunnerOptions options_;
  const Backoff backoff_;
  std::vector<std::string> unclaimed_kinds_;  // registered kinds without `perform`
  std::vector<std::string> claimed_kinds_;    // registered kinds with `perform`
  bool follow_up_ = false;                    // start() installed run_unclaimed as the follow-up
  std::function<void(const AttemptEvent&)> observer_;

  mutable std::mutex mu_;
  std::condition_variable produce_cv_;  // woken_, stopping_, capacity
  std::condition_variable work_cv_;     // queue_, workers_exit_
  std::condition_variable idle_cv_;     // busy_ reached 0
  std::condition_variable beat_cv_;     // beats_exit_
  bool woken_ = false;                  // guarded by mu_
  bool commit_woken_ = false;           // guarded by mu_: notify() since the last pass
  bool stopping_ = false;               // guarded by mu_
  bool stopped_ = false;                // guarded by mu_: stop() finished
  bool workers_exit_ = false;           // guarded by mu_
  bool beats_exit_ = false;             // guarded by mu_
  std::deque<Claimed> queue_;           // guarded by mu_: claimed, not started
  int busy_ = 0;                        // guarded by mu_: claimed and not finished

  std::mutex inflight_mu_;
  std::map<std::int64_t, InFlight> inflight_;  // guarded by inflight_mu_: handlers running

  std::thread producer_;
  std::thread heartbeat_;
  std::vector<std::thread> workers_;
};

}  // namespace jobs
