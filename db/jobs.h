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

// A job to stage. Unset options take the kind's defaults (the job_kinds
// table the Registry fills at start-up: upsert_job_kind), else the built-in
// ones: 5 attempts, no timeout of its own.
struct NewJob {
  std::string kind;
  std::string args_json = "{}";
  std::optional<int> max_attempts;     // default: the kind's, else 5
  int priority = 0;                    // lower runs first
  std::optional<core::Millis> run_at;  // default: now; later = a scheduled job
  // While a job with this key is unfinished, staging another is a no-op.
  std::optional<std::string> unique_key;
  std::optional<core::Millis> timeout_ms;  // default: the kind's
  // Jobs sharing a serial key run one at a time, in staging (id) order: a job
  // is not claimed while an older job with its key is unfinished.
  std::optional<std::string> serial_key;
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
  std::optional<core::Millis> timeout_ms;
  std::optional<std::string> serial_key;
};

// Records a kind's defaults for stage_job (INSERT ... ON CONFLICT DO UPDATE).
void upsert_job_kind(Tx& tx, const std::string& kind, int max_attempts,
                     std::optional<core::Millis> timeout_ms);

// Inserts the job in `tx` (the caller's business transaction) and marks the
// transaction as having staged a job, so the runner is woken after COMMIT.
// Returns the new id, or nullopt when a job with the same unique_key is not
// finished yet (INSERT ... ON CONFLICT DO NOTHING).
std::optional<std::int64_t> stage_job(Tx& tx, const NewJob& job, core::Millis now);

// True when some job is runnable at `now`. A plain read: it takes no write
// lock, so an idle runner polls without disturbing writers.
bool any_runnable_job(Conn& conn, core::Millis now);
// The same for the kinds in `kinds` only.
bool any_runnable_job_of_kinds(Conn& conn, const std::vector<std::string>& kinds, core::Millis now);

// Claims up to `limit` runnable jobs in claim order (priority, run_at, id):
// state running, attempt + 1, lease until `lease_until`. One UPDATE ...
// RETURNING statement. A job whose serial key has an older unfinished job is
// skipped.
std::vector<JobRow> claim_jobs(Tx& tx, int limit, core::Millis now, core::Millis lease_until);
// claim_jobs for the kinds in `kinds` only.
std::vector<JobRow> claim_jobs_of_kinds(Tx& tx, const std::vector<std::string>& kinds, int limit,
                                        core::Millis now, core::Millis lease_until);
// Unclaimed jobs (kinds whose whole effect is in this database): up to
// `limit` runnable jobs of the kinds in `kinds`, in claim
// order, read inside the write transaction that will run and finish them.
// No claim, no lease: the transaction is the attempt, so a crash before its
// COMMIT leaves the job untouched rather than `running`.
std::vector<JobRow> runnable_jobs_of_kinds(Tx& tx, const std::vector<std::string>& kinds, int limit,
                                           core::Millis now);
// available|retryable -> completed as attempt `attempt` (the row's attempt +
// 1), attempted and finished at `now`. False when the row is no longer that
// job in that state.
bool complete_unclaimed_job(Tx& tx, std::int64_t id, int attempt, core::Millis now);
// complete_unclaimed_job for many jobs in one statement (one round trip on
// PostgreSQL, where one per job bounded the drain): each (id, attempt) as
// there. Returns the ids it completed, in no particular order; a job missing
// from them is no longer that job in that state.
std::vector<std::int64_t> complete_unclaimed_jobs(
    Tx& tx, const std::vector<std::pair<std::int64_t, int>>& attempts, core::Millis now);
// available|retryable -> retryable at `retry_at` (or discarded when
// `discard`) as attempt `attempt`, with the error appended.
bool fail_unclaimed_job(Tx& tx, std::int64_t id, int attempt, const std::string& message,
                        core::Millis now, core::Millis retry_at, bool discard);

// running -> completed, fenced by attempt. False when the claim was lost.
bool complete_job(Tx& tx, std::int64_t id, int attempt, core::Millis now);

// Extends a running job's lease, fenced by attempt. False when the claim was
// lost, or (PostgreSQL) another transaction holds the row locked: it is
// skipped rather than waited for (db/pg/sql.cpp, kHeartbeatJob).
bool heartbeat_job(Tx& tx, std::int64_t id, int attempt, core::Millis lease_until);

// Gives back a claim whose handler never started (shutdown): running ->
// available (or retryable after earlier attempts) with the attempt undone.
// Fenced by attempt.
bool release_job(Tx& tx, std::int64_t id, int attempt);

// running -> retryable at `retry_at` (or discarded when `discard`), with the
// error appended to errors. Fenced by attempt.
bool fail_job(Tx& tx, std::int64_t id, int attempt, const std::string& message, core::Millis now,
              core::Millis retry_at, bool discard);

// running -> retryable (or discarded at max_attempts) for every running job
// whose lease ended before `lease_cutoff`. Returns how many were rescued.
int rescue_jobs(Tx& tx, core::Millis now, core::Millis lease_cutoff);
// True when some running job's lease ended before `lease_cutoff` (a read).
bool any_expired_lease(Conn& conn, core::Millis lease_cutoff);

// The cleaner: true when some finished job finished before `cutoff` (a read);
// deletes up to `limit` of them and returns how many.
bool any_finished_before(Conn& conn, core::Millis cutoff);
int delete_finished_before(Tx& tx, core::Millis cutoff, int limit);

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

// One page of list_jobs, keyset-paginated: the newest `filter.limit` jobs
// with an id below `before` (nullopt: from the newest). The next page starts
// before the last id returned; pages stay consistent while jobs are staged.
std::vector<JobRow> list_jobs_page(Conn& conn, const JobFilter& filter,
                                   std::optional<std::int64_t> before);

// Bulk retry, for one atomic phase. retry_job_in_state: `state` -> available
// for job `id` (the retry_job transition), false when the job is not in
// `state`. retry_jobs_in_state: every job in `state` (of `kind`, when set);
// returns how many moved.
bool retry_job_in_state(Tx& tx, std::int64_t id, const std::string& state, core::Millis now);
int retry_jobs_in_state(Tx& tx, const std::string& state, const std::optional<std::string>& kind,
                        core::Millis now);

}  // namespace db
