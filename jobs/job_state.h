// Job states and their transitions.
//
//                 stage (in the business transaction)
//                              |
//                              v
//   retry (API) ------> +-------------+ <------------------------------+
//   (discarded,         |  available  |                                |
//    cancelled)         +-------------+                                |
//                         |        | cancel (API)                      |
//                   claim |        v                                   |
//                 (runner)|   +-----------+                            |
//                         |   | cancelled |  final                     |
//                         v   +-----------+                            |
//                   +---------+        ^ cancel (API)                  |
//     +------------ | running | ----+  |                               |
//     |             +---------+     |  |                               |
//     | complete       |  fail,     |  |  claim when run_at <= now     |
//     | (runner, in    |  timeout   |  |  (runner)                     |
//     |  the effect's  v  or rescue |  |                               |
//     |  transaction) +-----------+ |  |                               |
//     |               | retryable |-+--+-------------------------------+
//     v               +-----------+ |
//  +-----------+                    | fail, timeout or rescue at max_attempts,
//  | completed |  final             v or a do_not_retry() failure
//  +-----------+               +-----------+
//                              | discarded |  final (retry via the API)
//                              +-----------+
//
// Kinds with only an `apply` are never claimed: the one transaction that runs
// such a job is its attempt (a crash before its COMMIT leaves it untouched).
//
//   available ----+-- apply + complete, one transaction --> completed
//   retryable ----+
//   (run_at come) +-- apply failed (its effect rolled back) --> retryable
//                                                  (backoff), or discarded
//
// Who moves a job out of each state:
// - available: the runner (claim; for kinds with only an `apply`, the one
//   transaction that runs and completes or fails it, unclaimed) or the API
//   (cancel).
// - running: the runner that holds the claim (complete, fail; its heartbeat
//   on a timeout) — fenced by the attempt number — or the rescuer once the
//   lease expired. On shutdown, a claim no worker started is given back
//   (release: running -> available/retryable, its attempt undone).
// - retryable: the runner (claim, or run unclaimed, when run_at has come) or
//   the API (cancel).
// - completed: nobody; the cleaner deletes it after the retention period.
// - discarded, cancelled: the API (retry -> available), or the cleaner.
#pragma once

#include <optional>
#include <string_view>

#include "core/state_machine.h"

namespace jobs {

enum class JobState { kAvailable, kRunning, kRetryable, kCompleted, kDiscarded, kCancelled };

// The stored names (the schema's CHECK and the API's `state`).
inline constexpr core::Named<JobState> kJobStateNames[] = {
    {JobState::kAvailable, "available"}, {JobState::kRunning, "running"},
    {JobState::kRetryable, "retryable"}, {JobState::kCompleted, "completed"},
    {JobState::kDiscarded, "discarded"}, {JobState::kCancelled, "cancelled"},
};

constexpr std::string_view to_string(JobState s) noexcept {
  return core::name_of(kJobStateNames, s);
}

constexpr std::optional<JobState> parse_job_state(std::string_view s) noexcept {
  return core::value_named(kJobStateNames, s);
}

constexpr bool is_final(JobState s) noexcept {
  return s == JobState::kCompleted || s == JobState::kDiscarded || s == JobState::kCancelled;
}

}  // namespace jobs
