// jobs::Executor: runs attempts, the one execution path of the runner
// (jobs/runner.h), for claimed and unclaimed jobs alike.
//
// Every attempt goes the same way: decode the row (its handler, its
// arguments; bad JSON or an unknown kind is a failure), `perform` if the
// kind has one (outside any transaction), then `apply` and the completion in
// one transaction, then the observer. A failure is recorded by the rule
// discards(): retryable with backoff, or discarded (do_not_retry(), or the
// last attempt). What differs is only where the transaction comes from:
//
// - A claimed attempt (run_claimed) opens its own write for apply +
//   complete, fenced by the attempt it claimed: once the claim was lost
//   (timed out, rescued after its lease expired) the completion matches no
//   row and the apply is rolled back. Its failure write is fenced the same
//   way. While it runs it is registered in the in-flight table the
//   heartbeat reads (deadline from the kind's or job's timeout).
// - An unclaimed attempt (run_unclaimed: kinds with no `perform`) runs
//   inside a transaction the batch completer opened (jobs/batch_completer.h),
//   each job in its own nested savepoint: the transaction is the attempt.
//
// Threads: run_claimed() from any number of workers at once; run_unclaimed()
// on whichever thread runs the batch completer's phase; in_flight() and
// mark_timed_out() from the heartbeat. set_observer() before any of them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "db/jobs.h"
#include "jobs/backoff.h"
#include "jobs/handler.h"

namespace jobs {

// Observes each attempt (metrics, logs). Called on the thread that ran the
// attempt (a worker, the batch completer, the database's writer thread for
// the follow-up, or run_once()'s caller) after the attempt's transaction
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

// A claimed attempt the heartbeat keeps alive, or fails at its deadline.
struct InFlight {
  int attempt = 0;
  int max_attempts = 0;
  core::Millis timeout_ms = 0;  // 0 = none
  core::Millis deadline = 0;    // clock time; 0 = none
  bool timed_out = false;
};

class Executor {
 public:
  // `test_delay_ms`: the --test-job-delay seam (jobs/runner.h RunnerOptions).
  Executor(db::Database& db, const Registry& registry, const core::Clock& clock, Backoff backoff,
           core::Millis test_delay_ms);

  void set_observer(std::function<void(const AttemptEvent&)> observer) {
    observer_ = std::move(observer);
  }

  // One claimed attempt, start to end (row.attempt is the claimed attempt).
  void run_claimed(const db::JobRow& row, core::Millis claimed_at);

  // The attempts of `rows` (runnable, unclaimed) inside `tx`, each in its own
  // savepoint: available|retryable -> completed as attempt + 1, or the
  // failure recorded. Observed after `tx` commits.
  void run_unclaimed(db::Tx& tx, const std::vector<db::JobRow>& rows, core::Millis now);

  // Claimed attempts running now, by job id (a copy), skipping timed-out ones.
  std::vector<std::pair<std::int64_t, InFlight>> in_flight() const;
  // The nearest deadline of a running attempt not yet timed out (0: none).
  core::Millis nearest_deadline() const;
  // The heartbeat failed these attempts at their deadline: their late
  // completion is fenced out, and they are no longer heartbeated.
  void mark_timed_out(const std::vector<std::int64_t>& ids);

  const Backoff& backoff() const noexcept { return backoff_; }

 private:
  // The row as the handler sees it, with `attempt`; a non-ok status when it
  // cannot run (unknown kind, args not JSON).
  struct Decoded {
    Job job;
    const Handler* handler = nullptr;
    core::Status status = core::Status::ok();
  };
  Decoded decode(const db::JobRow& row, int attempt) const;

  db::Database& db_;
  const Registry& registry_;
  const core::Clock& clock_;
  const Backoff backoff_;
  const core::Millis test_delay_ms_;
  std::function<void(const AttemptEvent&)> observer_;

  mutable std::mutex mu_;
  std::map<std::int64_t, InFlight> in_flight_;  // guarded by mu_
};

// Whether a failed attempt ends the job (discarded) rather than retrying it.
[[nodiscard]] bool discards(const core::Status& failure, int attempt, int max_attempts) noexcept;

}  // namespace jobs
