#include "db/jobs.h"

#include <algorithm>
#include <tuple>

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

#define AC_JOB_COLUMNS                                                                         \
  "id, kind, state, args, attempt, max_attempts, priority, run_at, created_at, attempted_at, " \
  "lease_until, finished_at, errors, unique_key, timeout_ms, serial_key"

// A runnable row `j`: its run_at has come and no older job of its serial key
// is unfinished (the jobs_serial index answers that).
#define AC_RUNNABLE                                                                        \
  "j.state IN ('available','retryable') AND j.run_at <= ?1 AND (j.serial_key IS NULL OR "  \
  "NOT EXISTS (SELECT 1 FROM jobs AS e WHERE e.serial_key = j.serial_key AND e.id < j.id " \
  "AND e.state IN ('available','running','retryable')))"

constexpr char kUpsertJobKind[] =
    "INSERT INTO job_kinds (kind, max_attempts, timeout_ms) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (kind) DO UPDATE SET max_attempts = excluded.max_attempts, "
    "timeout_ms = excluded.timeout_ms";
constexpr char kStageJob[] =
    "INSERT INTO jobs (kind, args, max_attempts, priority, run_at, created_at, unique_key, "
    "timeout_ms, serial_key) "
    "VALUES (?1, ?2, "
    "coalesce(?3, (SELECT max_attempts FROM job_kinds WHERE kind = ?1), 5), ?4, ?5, ?6, ?7, "
    "coalesce(?8, (SELECT timeout_ms FROM job_kinds WHERE kind = ?1)), ?9) "
    "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL "
    "AND state NOT IN ('completed','discarded','cancelled') DO NOTHING RETURNING id";
constexpr char kAnyRunnable[] = "SELECT EXISTS (SELECT 1 FROM jobs AS j WHERE " AC_RUNNABLE ")";
constexpr char kAnyRunnableOfKinds[] = "SELECT EXISTS (SELECT 1 FROM jobs AS j WHERE " AC_RUNNABLE
                                       " AND j.kind IN (SELECT value FROM json_each(?2)))";
// INDEXED BY: without it the planner picks jobs_by_state_kind and sorts every
// runnable row to take the first few (59 ms per claim with 100k queued,
// against 0.2 ms walking jobs_claimable, which is already in claim order).
constexpr char kClaimJobs[] =
    "UPDATE jobs SET state = 'running', attempt = attempt + 1, attempted_at = ?1, "
    "lease_until = ?2 "
    "WHERE id IN (SELECT j.id FROM jobs AS j INDEXED BY jobs_claimable WHERE " AC_RUNNABLE
    " ORDER BY j.priority, j.run_at, j.id LIMIT ?3) "
    "RETURNING " AC_JOB_COLUMNS;
// The same for some kinds only (the runner's claimed kinds, those with work
// outside the database). No INDEXED BY: the planner looks up each kind in
// jobs_by_state_kind and sorts only those rows, not every queued job.
constexpr char kClaimJobsOfKinds[] =
    "UPDATE jobs SET state = 'running', attempt = attempt + 1, attempted_at = ?1, "
    "lease_until = ?2 "
    "WHERE id IN (SELECT j.id FROM jobs AS j WHERE " AC_RUNNABLE
    " AND j.kind IN (SELECT value FROM json_each(?4))"
    " ORDER BY j.priority, j.run_at, j.id LIMIT ?3) "
    "RETURNING " AC_JOB_COLUMNS;
// Unclaimed jobs: read, run and finished inside one write transaction.
constexpr char kRunnableOfKinds[] =
    "SELECT " AC_JOB_COLUMNS " FROM jobs AS j INDEXED BY jobs_claimable WHERE " AC_RUNNABLE
    " AND j.kind IN (SELECT value FROM json_each(?2)) "
    "ORDER BY j.priority, j.run_at, j.id LIMIT ?3";
constexpr char kCompleteUnclaimed[] =
    "UPDATE jobs SET state = 'completed', attempt = ?2, attempted_at = ?3, finished_at = ?3 "
    "WHERE id = ?1 AND state IN ('available','retryable') AND attempt = ?2 - 1";
constexpr char kFailUnclaimed[] =
    "UPDATE jobs SET attempt = ?2, attempted_at = ?4, "
    "state = CASE WHEN ?6 THEN 'discarded' ELSE 'retryable' END, "
    "run_at = CASE WHEN ?6 THEN run_at ELSE ?5 END, "
    "finished_at = CASE WHEN ?6 THEN ?4 ELSE NULL END, "
    "errors = json_insert(errors, '$[#]', json_object('attempt', ?2, 'at', ?4, 'message', ?3)) "
    "WHERE id = ?1 AND state IN ('available','retryable') AND attempt = ?2 - 1";
constexpr char kCompleteJob[] =
    "UPDATE jobs SET state = 'completed', finished_at = ?3, lease_until = NULL "
    "WHERE id = ?1 AND state = 'running' AND attempt = ?2";
constexpr char kHeartbeatJob[] =
    "UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND state = 'running' AND attempt = ?2";
constexpr char kReleaseJob[] =
    "UPDATE jobs SET state = CASE WHEN attempt > 1 THEN 'retryable' ELSE 'available' END, "
    "attempt = attempt - 1, lease_until = NULL "
    "WHERE id = ?1 AND state = 'running' AND attempt = ?2";
constexpr char kAnyExpiredLease[] =
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE state = 'running' AND lease_until < ?1)";
constexpr char kAnyFinishedBefore[] =
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1)";
constexpr char kDeleteFinishedBefore[] =
    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE finished_at IS NOT NULL "
    "AND finished_at < ?1 LIMIT ?2)";
constexpr char kFailJob[] =
    "UPDATE jobs SET state = CASE WHEN ?6 THEN 'discarded' ELSE 'retryable' END, "
    "run_at = CASE WHEN ?6 THEN run_at ELSE ?5 END, "
    "finished_at = CASE WHEN ?6 THEN ?4 ELSE NULL END, lease_until = NULL, "
    "errors = json_insert(errors, '$[#]', json_object('attempt', ?2, 'at', ?4, 'message', ?3)) "
    "WHERE id = ?1 AND state = 'running' AND attempt = ?2";
constexpr char kRescueJobs[] =
    "UPDATE jobs SET "
    "state = CASE WHEN attempt >= max_attempts THEN 'discarded' ELSE 'retryable' END, "
    "finished_at = CASE WHEN attempt >= max_attempts THEN ?1 ELSE NULL END, "
    "run_at = ?1, lease_until = NULL, "
    "errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'at', ?1, 'message', "
    "'lease expired: the runner stopped before finishing this attempt')) "
    "WHERE state = 'running' AND lease_until < ?2";
constexpr char kRetryJob[] =
    "UPDATE jobs SET state = 'available', run_at = ?2, finished_at = NULL, lease_until = NULL, "
    "max_attempts = max(max_attempts, attempt + 1) "
    "WHERE id = ?1 AND state IN ('discarded','cancelled') RETURNING " AC_JOB_COLUMNS;
constexpr char kCancelJob[] =
    "UPDATE jobs SET state = 'cancelled', finished_at = ?2 "
    "WHERE id = ?1 AND state IN ('available','retryable') RETURNING " AC_JOB_COLUMNS;
constexpr char kFindJob[] = "SELECT " AC_JOB_COLUMNS " FROM jobs WHERE id = ?1";
constexpr char kListJobs[] = "SELECT " AC_JOB_COLUMNS
                             " FROM jobs WHERE (?1 IS NULL OR state = ?1) "
                             "AND (?2 IS NULL OR kind = ?2) ORDER BY id DESC LIMIT ?3";

#undef AC_JOB_COLUMNS
#undef AC_RUNNABLE

std::optional<core::Millis> opt_int(SQLite::Statement& s, int i) {
  if (s.isColumnNull(i)) return std::nullopt;
  return s.getColumn(i).getInt64();
}

JobRow job_from(SQLite::Statement& s) {
  JobRow j;
  j.id = s.getColumn(0).getInt64();
  j.kind = s.getColumn(1).getString();
  j.state = s.getColumn(2).getString();
  j.args_json = s.getColumn(3).getString();
  j.attempt = s.getColumn(4).getInt();
  j.max_attempts = s.getColumn(5).getInt();
  j.priority = s.getColumn(6).getInt();
  j.run_at = s.getColumn(7).getInt64();
  j.created_at = s.getColumn(8).getInt64();
  j.attempted_at = opt_int(s, 9);
  j.lease_until = opt_int(s, 10);
  j.finished_at = opt_int(s, 11);
  j.errors_json = s.getColumn(12).getString();
  if (!s.isColumnNull(13)) j.unique_key = s.getColumn(13).getString();
  j.timeout_ms = opt_int(s, 14);
  if (!s.isColumnNull(15)) j.serial_key = s.getColumn(15).getString();
  return j;
}

void bind_opt(SQLite::Statement& s, int i, const std::optional<std::string>& v) {
  if (v) {
    s.bind(i, *v);
  } else {
    s.bind(i);
  }
}

void bind_opt(SQLite::Statement& s, int i, const std::optional<std::int64_t>& v) {
  if (v) {
    s.bind(i, *v);
  } else {
    s.bind(i);
  }
}

}  // namespace

void upsert_job_kind(Tx& tx, const std::string& kind, int max_attempts,
                     std::optional<core::Millis> timeout_ms) {
  auto q = tx.conn().query(kUpsertJobKind);
  q->bind(1, kind);
  q->bind(2, max_attempts);
  bind_opt(*q, 3, timeout_ms);
  q->exec();
}

std::optional<std::int64_t> stage_job(Tx& tx, const NewJob& job, core::Millis now) {
  auto q = tx.conn().query(kStageJob);
  q->bind(1, job.kind);
  q->bind(2, job.args_json);
  if (job.max_attempts) {
    q->bind(3, *job.max_attempts);
  } else {
    q->bind(3);
  }
  q->bind(4, job.priority);
  q->bind(5, static_cast<std::int64_t>(job.run_at.value_or(now)));
  q->bind(6, static_cast<std::int64_t>(now));
  bind_opt(*q, 7, job.unique_key);
  bind_opt(*q, 8, job.timeout_ms);
  bind_opt(*q, 9, job.serial_key);
  if (!q->executeStep()) return std::nullopt;
  const std::int64_t id = q->getColumn(0).getInt64();
  q->executeStep();  // finish the statement
  tx.note_job_staged();
  return id;
}

bool any_runnable_job_of_kinds(Conn& conn, const std::string& kinds_json, core::Millis now) {
  auto q = conn.query(kAnyRunnableOfKinds);
  q->bind(1, static_cast<std::int64_t>(now));
  q->bindNoCopy(2, kinds_json);
  return q->executeStep() && q->getColumn(0).getInt() != 0;
}

bool any_runnable_job(Conn& conn, core::Millis now) {
  auto q = conn.query(kAnyRunnable);
  q->bind(1, static_cast<std::int64_t>(now));
  return q->executeStep() && q->getColumn(0).getInt() != 0;
}

namespace {

std::vector<JobRow> claim_with(Conn::Query& q, int limit, core::Millis now,
                               core::Millis lease_until) {
  q->bind(1, static_cast<std::int64_t>(now));
  q->bind(2, static_cast<std::int64_t>(lease_until));
  q->bind(3, limit);
  std::vector<JobRow> out;
  while (q->executeStep()) out.push_back(job_from(*q));
  // RETURNING yields rows in the order the UPDATE visited them (rowid), not
  // in claim order: put them back in claim order, which is the run order.
  std::sort(out.begin(), out.end(), [](const JobRow& a, const JobRow& b) {
    return std::tie(a.priority, a.run_at, a.id) < std::tie(b.priority, b.run_at, b.id);
  });
  return out;
}

}  // namespace

std::vector<JobRow> claim_jobs(Tx& tx, int limit, core::Millis now, core::Millis lease_until) {
  auto q = tx.conn().query(kClaimJobs);
  return claim_with(q, limit, now, lease_until);
}

std::vector<JobRow> claim_jobs_of_kinds(Tx& tx, const std::string& kinds_json, int limit,
                                        core::Millis now, core::Millis lease_until) {
  auto q = tx.conn().query(kClaimJobsOfKinds);
  q->bindNoCopy(4, kinds_json);
  return claim_with(q, limit, now, lease_until);
}

std::vector<JobRow> runnable_jobs_of_kinds(Tx& tx, const std::string& kinds_json, int limit,
                                           core::Millis now) {
  auto q = tx.conn().query(kRunnableOfKinds);
  q->bind(1, static_cast<std::int64_t>(now));
  q->bindNoCopy(2, kinds_json);
  q->bind(3, limit);
  std::vector<JobRow> out;
  while (q->executeStep()) out.push_back(job_from(*q));
  return out;
}

namespace {

// kCompleteJob and kCompleteUnclaimed share their parameters (?1 id, ?2
// attempt, ?3 now), as do kFailJob and kFailUnclaimed (?1 id, ?2 attempt,
// ?3 message, ?4 now, ?5 retry_at, ?6 discard).
bool complete_with(Tx& tx, const char* sql, std::int64_t id, int attempt, core::Millis now) {
  auto q = tx.conn().query(sql);
  q->bind(1, id);
  q->bind(2, attempt);
  q->bind(3, static_cast<std::int64_t>(now));
  return q->exec() == 1;
}

bool fail_with(Tx& tx, const char* sql, std::int64_t id, int attempt, const std::string& message,
               core::Millis now, core::Millis retry_at, bool discard) {
  auto q = tx.conn().query(sql);
  q->bind(1, id);
  q->bind(2, attempt);
  q->bindNoCopy(3, message);
  q->bind(4, static_cast<std::int64_t>(now));
  q->bind(5, static_cast<std::int64_t>(retry_at));
  q->bind(6, discard ? 1 : 0);
  return q->exec() == 1;
}

}  // namespace

bool complete_unclaimed_job(Tx& tx, std::int64_t id, int attempt, core::Millis now) {
  return complete_with(tx, kCompleteUnclaimed, id, attempt, now);
}

bool fail_unclaimed_job(Tx& tx, std::int64_t id, int attempt, const std::string& message,
                        core::Millis now, core::Millis retry_at, bool discard) {
  return fail_with(tx, kFailUnclaimed, id, attempt, message, now, retry_at, discard);
}

bool complete_job(Tx& tx, std::int64_t id, int attempt, core::Millis now) {
  return complete_with(tx, kCompleteJob, id, attempt, now);
}

bool fail_job(Tx& tx, std::int64_t id, int attempt, const std::string& message, core::Millis now,
              core::Millis retry_at, bool discard) {
  return fail_with(tx, kFailJob, id, attempt, message, now, retry_at, discard);
}

int rescue_jobs(Tx& tx, core::Millis now, core::Millis lease_cutoff) {
  auto q = tx.conn().query(kRescueJobs);
  q->bind(1, static_cast<std::int64_t>(now));
  q->bind(2, static_cast<std::int64_t>(lease_cutoff));
  return q->exec();
}

bool heartbeat_job(Tx& tx, std::int64_t id, int attempt, core::Millis lease_until) {
  auto q = tx.conn().query(kHeartbeatJob);
  q->bind(1, id);
  q->bind(2, attempt);
  q->bind(3, static_cast<std::int64_t>(lease_until));
  return q->exec() == 1;
}

bool release_job(Tx& tx, std::int64_t id, int attempt) {
  auto q = tx.conn().query(kReleaseJob);
  q->bind(1, id);
  q->bind(2, attempt);
  return q->exec() == 1;
}

bool any_expired_lease(Conn& conn, core::Millis lease_cutoff) {
  auto q = conn.query(kAnyExpiredLease);
  q->bind(1, static_cast<std::int64_t>(lease_cutoff));
  return q->executeStep() && q->getColumn(0).getInt() != 0;
}

bool any_finished_before(Conn& conn, core::Millis cutoff) {
  auto q = conn.query(kAnyFinishedBefore);
  q->bind(1, static_cast<std::int64_t>(cutoff));
  return q->executeStep() && q->getColumn(0).getInt() != 0;
}

int delete_finished_before(Tx& tx, core::Millis cutoff, int limit) {
  auto q = tx.conn().query(kDeleteFinishedBefore);
  q->bind(1, static_cast<std::int64_t>(cutoff));
  q->bind(2, limit);
  return q->exec();
}

namespace {

std::optional<JobRow> transition(Tx& tx, const char* sql, std::int64_t id, core::Millis now) {
  auto q = tx.conn().query(sql);
  q->bind(1, id);
  q->bind(2, static_cast<std::int64_t>(now));
  if (!q->executeStep()) return std::nullopt;
  JobRow row = job_from(*q);
  q->executeStep();  // finish the statement
  return row;
}

}  // namespace

std::optional<JobRow> retry_job(Tx& tx, std::int64_t id, core::Millis now) {
  return transition(tx, kRetryJob, id, now);
}

std::optional<JobRow> cancel_job(Tx& tx, std::int64_t id, core::Millis now) {
  return transition(tx, kCancelJob, id, now);
}

std::optional<JobRow> find_job(Conn& conn, std::int64_t id) {
  auto q = conn.query(kFindJob);
  q->bind(1, id);
  if (!q->executeStep()) return std::nullopt;
  return job_from(*q);
}

std::vector<JobRow> list_jobs(Conn& conn, const JobFilter& filter) {
  auto q = conn.query(kListJobs);
  bind_opt(*q, 1, filter.state);
  bind_opt(*q, 2, filter.kind);
  q->bind(3, filter.limit);
  std::vector<JobRow> out;
  while (q->executeStep()) out.push_back(job_from(*q));
  return out;
}

}  // namespace db
