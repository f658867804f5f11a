#include "db/jobs.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

#define AC_JOB_COLUMNS                                                                         \
  "id, kind, state, args, attempt, max_attempts, priority, run_at, created_at, attempted_at, " \
  "lease_until, finished_at, errors, unique_key"

constexpr char kStageJob[] =
    "INSERT INTO jobs (kind, args, max_attempts, priority, run_at, created_at, unique_key) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL "
    "AND state NOT IN ('completed','discarded','cancelled') DO NOTHING RETURNING id";
constexpr char kAnyRunnable[] =
    "SELECT EXISTS (SELECT 1 FROM jobs WHERE state IN ('available','retryable') AND run_at <= ?1)";
constexpr char kClaimJobs[] =
    "UPDATE jobs SET state = 'running', attempt = attempt + 1, attempted_at = ?1, "
    "lease_until = ?2 "
    "WHERE id IN (SELECT id FROM jobs WHERE state IN ('available','retryable') AND run_at <= ?1 "
    "ORDER BY priority, run_at, id LIMIT ?3) "
    "RETURNING " AC_JOB_COLUMNS;
constexpr char kCompleteJob[] =
    "UPDATE jobs SET state = 'completed', finished_at = ?3, lease_until = NULL "
    "WHERE id = ?1 AND state = 'running' AND attempt = ?2";
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
  return j;
}

void bind_opt(SQLite::Statement& s, int i, const std::optional<std::string>& v) {
  if (v) {
    s.bind(i, *v);
  } else {
    s.bind(i);
  }
}

}  // namespace

std::optional<std::int64_t> stage_job(Tx& tx, const NewJob& job, core::Millis now) {
  auto q = tx.conn().query(kStageJob);
  q->bind(1, job.kind);
  q->bind(2, job.args_json);
  q->bind(3, job.max_attempts);
  q->bind(4, job.priority);
  q->bind(5, static_cast<std::int64_t>(job.run_at.value_or(now)));
  q->bind(6, static_cast<std::int64_t>(now));
  bind_opt(*q, 7, job.unique_key);
  if (!q->executeStep()) return std::nullopt;
  const std::int64_t id = q->getColumn(0).getInt64();
  q->executeStep();  // finish the statement
  tx.note_job_staged();
  return id;
}

bool any_runnable_job(Conn& conn, core::Millis now) {
  auto q = conn.query(kAnyRunnable);
  q->bind(1, static_cast<std::int64_t>(now));
  return q->executeStep() && q->getColumn(0).getInt() != 0;
}

std::vector<JobRow> claim_jobs(Tx& tx, int limit, core::Millis now, core::Millis lease_until) {
  auto q = tx.conn().query(kClaimJobs);
  q->bind(1, static_cast<std::int64_t>(now));
  q->bind(2, static_cast<std::int64_t>(lease_until));
  q->bind(3, limit);
  std::vector<JobRow> out;
  while (q->executeStep()) out.push_back(job_from(*q));
  return out;
}

bool complete_job(Tx& tx, std::int64_t id, int attempt, core::Millis now) {
  auto q = tx.conn().query(kCompleteJob);
  q->bind(1, id);
  q->bind(2, attempt);
  q->bind(3, static_cast<std::int64_t>(now));
  return q->exec() == 1;
}

bool fail_job(Tx& tx, std::int64_t id, int attempt, const std::string& message, core::Millis now,
              core::Millis retry_at, bool discard) {
  auto q = tx.conn().query(kFailJob);
  q->bind(1, id);
  q->bind(2, attempt);
  q->bindNoCopy(3, message);
  q->bind(4, static_cast<std::int64_t>(now));
  q->bind(5, static_cast<std::int64_t>(retry_at));
  q->bind(6, discard ? 1 : 0);
  return q->exec() == 1;
}

int rescue_jobs(Tx& tx, core::Millis now, core::Millis lease_cutoff) {
  auto q = tx.conn().query(kRescueJobs);
  q->bind(1, static_cast<std::int64_t>(now));
  q->bind(2, static_cast<std::int64_t>(lease_cutoff));
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
