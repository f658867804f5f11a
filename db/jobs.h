// Staged jobs: the queue table and the statements the runner and the API use.
//
// Job states and who moves a job out of each are drawn in jobs/job_state.h;
// this file only stores them. Every transition of a claimed job is fenced by
// the attempt number it was claimed with (WHERE id = ? AND state = 'running'
// AND attempt = ?), so a late finish of an attempt that was rescued in the
// meantime changes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace db {

class Conn;
class Tx;

struct NewJob {
  std::string kind;
  std::string args_json = "{}";
  int max_attempts = 5;
  int priority = 0;
  std::optional<core::Millis> run_at;  // default: now
  std::optional<std::string> unique_key;
};

struct JobRow {
  std::int64_t id = 0;
  std::string kind;
  std::string state;
  std::string args_json;
  int attempt = 0;
  int max_attempts = 0;
  int priority = 0;
  core::Millis run_at = 0;
  core::Millis created_at = 0;
  std::optional<core::Millis> attempted_at;
  std::optional<core::Millis> lease_until;
  std::optional<core::Millis> finished_at;
  std::string errors_json;  // [{"attempt": n, "at": epoch_ms, "message": "..."}]
  std::optional<std::string> unique_key;
};

// Inserts the job in `tx` (the caller's business transaction) and marks the
// transaction as having staged a job, so the runner is woken after COMMIT.
// Returns the new id, or nullopt when a job with the same unique_key is not
// finished yet (INSERT ... ON CONFLICT DO NOTHING).
std::optional<std::int64_t> stage_job(Tx& tx, const NewJob& job, core::Millis now);

// True when some job is runnable at `now`. A plain read: it takes no write
// lock, so an idle runner polls without disturbing writers.
bool any_runnable_job(Conn& conn, core::Millis now);

// Claims up to `limit` runnable jobs in claim order (priority, run_at, id):
// state running, attempt + 1, lease until `lease_until`. One UPDATE ...
// RETURNING statement.
std::vector<JobRow> claim_jobs(Tx& tx, int limit, core::Millis now, core::Millis lease_until);

// running -> completed, fenced by attempt. False when the claim was lost.
bool complete_job(Tx& tx, std::int64_t id, int attempt, core::Millis now);

// running -> retryable at `retry_at` (or discarded when `discard`), with the
// error appended to errors. Fenced by attempt.
bool fail_job(Tx& tx, std::int64_t id, int attempt, const std::string& message, core::Millis now,
              core::Millis retry_at, bool discard);

// running -> retryable (or discarded at max_attempts) for every running job
// whose lease ended before `lease_cutoff`. Returns how many were rescued.
int rescue_jobs(Tx& tx, core::Millis now, core::Millis lease_cutoff);

// API transitions. Each is one conditional UPDATE ... RETURNING: nullopt when
// the job is not in a state the transition leaves from (or does not exist).
// retry: discarded|cancelled -> available (run now; one more attempt is
// allowed when the job had used them all). cancel: available|retryable ->
// cancelled.
std::optional<JobRow> retry_job(Tx& tx, std::int64_t id, core::Millis now);
std::optional<JobRow> cancel_job(Tx& tx, std::int64_t id, core::Millis now);

struct JobFilter {
  std::optional<std::string> state;
  std::optional<std::string> kind;
  int limit = 100;
};

std::optional<JobRow> find_job(Conn& conn, std::int64_t id);
// Newest first.
std::vector<JobRow> list_jobs(Conn& conn, const JobFilter& filter);

}  // namespace db
