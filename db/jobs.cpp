#include "db/jobs.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <tuple>
#include <utility>

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

std::optional<core::Millis> opt_int(const Row& s, int i) {
  if (s.is_null(i)) return std::nullopt;
  return s.int64(i);
}

JobRow job_from(const Row& s) {
  JobRow j;
  j.id = s.int64(0);
  j.kind = s.text(1);
  j.state = s.text(2);
  j.args_json = s.text(3);
  j.attempt = s.int32(4);
  j.max_attempts = s.int32(5);
  j.priority = s.int32(6);
  j.run_at = s.int64(7);
  j.created_at = s.int64(8);
  j.attempted_at = opt_int(s, 9);
  j.lease_until = opt_int(s, 10);
  j.finished_at = opt_int(s, 11);
  j.errors_json = s.text(12);
  if (!s.is_null(13)) j.unique_key = s.text(13);
  j.timeout_ms = opt_int(s, 14);
  if (!s.is_null(15)) j.serial_key = s.text(15);
  return j;
}

}  // namespace

void upsert_job_kind(Tx& tx, const std::string& kind, int max_attempts,
                     std::optional<core::Millis> timeout_ms) {
  auto q = tx.conn().query(Sql::kUpsertJobKind);
  q.bind_all(kind, max_attempts, timeout_ms);
  q.exec();
}

std::optional<std::int64_t> stage_job(Tx& tx, const NewJob& job, core::Millis now) {
  auto q = tx.conn().query(Sql::kStageJob);
  q.bind_all(job.kind, job.args_json, job.max_attempts, job.priority, job.run_at.value_or(now), now,
             job.unique_key, job.timeout_ms, job.serial_key);
  if (!q.step()) return std::nullopt;
  const std::int64_t id = q.int64(0);
  q.step();  // finish the statement
  tx.wake_on_commit();
  tx.announce_jobs();
  return id;
}

bool any_runnable_job_of_kinds(Conn& conn, const std::vector<std::string>& kinds,
                               core::Millis now) {
  auto q = conn.query(Sql::kAnyRunnableOfKinds);
  q.bind_all(now, kinds);
  return q.step() && q.int32(0) != 0;
}

bool any_runnable_job(Conn& conn, core::Millis now) {
  auto q = conn.query(Sql::kAnyRunnable);
  q.bind(1, static_cast<std::int64_t>(now));
  return q.step() && q.int32(0) != 0;
}

namespace {

std::vector<JobRow> claim_with(Stmt& q, int limit, core::Millis now, core::Millis lease_until) {
  q.bind_all(now, lease_until, limit);
  std::vector<JobRow> out;
  while (q.step()) out.push_back(job_from(q));
  // RETURNING yields rows in the order the UPDATE visited them (rowid), not
  // in claim order: put them back in claim order, which is the run order.
  std::sort(out.begin(), out.end(), [](const JobRow& a, const JobRow& b) {
    return std::tie(a.priority, a.run_at, a.id) < std::tie(b.priority, b.run_at, b.id);
  });
  return out;
}

}  // namespace

std::vector<JobRow> claim_jobs(Tx& tx, int limit, core::Millis now, core::Millis lease_until) {
  auto q = tx.conn().query(Sql::kClaimJobs);
  return claim_with(q, limit, now, lease_until);
}

std::vector<JobRow> claim_jobs_of_kinds(Tx& tx, const std::vector<std::string>& kinds, int limit,
                                        core::Millis now, core::Millis lease_until) {
  auto q = tx.conn().query(Sql::kClaimJobsOfKinds);
  q.bind(4, kinds);
  return claim_with(q, limit, now, lease_until);
}

std::vector<JobRow> runnable_jobs_of_kinds(Tx& tx, const std::vector<std::string>& kinds, int limit,
                                           core::Millis now) {
  auto q = tx.conn().query(Sql::kRunnableOfKinds);
  q.bind_all(now, kinds, limit);
  return q.all(job_from);
}

namespace {

// Sql::kCompleteJob and Sql::kCompleteUnclaimed share their parameters (?1 id, ?2
// attempt, ?3 now), as do Sql::kFailJob and Sql::kFailUnclaimed (?1 id, ?2 attempt,
// ?3 message, ?4 now, ?5 retry_at, ?6 discard).
bool complete_with(Tx& tx, Sql sql, std::int64_t id, int attempt, core::Millis now) {
  auto q = tx.conn().query(sql);
  q.bind_all(id, attempt, now);
  return q.exec() == 1;
}

bool fail_with(Tx& tx, Sql sql, std::int64_t id, int attempt, const std::string& message,
               core::Millis now, core::Millis retry_at, bool discard) {
  auto q = tx.conn().query(sql);
  q.bind_all(id, attempt, message, now, retry_at, discard ? 1 : 0);
  return q.exec() == 1;
}

}  // namespace

bool complete_unclaimed_job(Tx& tx, std::int64_t id, int attempt, core::Millis now) {
  return complete_with(tx, Sql::kCompleteUnclaimed, id, attempt, now);
}

std::vector<std::int64_t> complete_unclaimed_jobs(
    Tx& tx, const std::vector<std::pair<std::int64_t, int>>& attempts, core::Millis now) {
  if (attempts.empty()) return {};
  std::string pairs = "{";  // {"<id>": attempt, ...}
  for (const auto& [id, attempt] : attempts) {
    if (pairs.size() > 1) pairs += ',';
    pairs += '"' + std::to_string(id) + "\":" + std::to_string(attempt);
  }
  pairs += '}';
  auto q = tx.conn().query(Sql::kCompleteUnclaimedMany);
  q.bind_all(pairs, now);
  return q.all([](const Row& r) { return r.int64(0); });
}

bool fail_unclaimed_job(Tx& tx, std::int64_t id, int attempt, const std::string& message,
                        core::Millis now, core::Millis retry_at, bool discard) {
  return fail_with(tx, Sql::kFailUnclaimed, id, attempt, message, now, retry_at, discard);
}

bool complete_job(Tx& tx, std::int64_t id, int attempt, core::Millis now) {
  return complete_with(tx, Sql::kCompleteJob, id, attempt, now);
}

bool fail_job(Tx& tx, std::int64_t id, int attempt, const std::string& message, core::Millis now,
              core::Millis retry_at, bool discard) {
  return fail_with(tx, Sql::kFailJob, id, attempt, message, now, retry_at, discard);
}

int rescue_jobs(Tx& tx, core::Millis now, core::Millis lease_cutoff) {
  auto q = tx.conn().query(Sql::kRescueJobs);
  q.bind_all(now, lease_cutoff);
  return q.exec();
}

bool heartbeat_job(Tx& tx, std::int64_t id, int attempt, core::Millis lease_until) {
  auto q = tx.conn().query(Sql::kHeartbeatJob);
  q.bind_all(id, attempt, lease_until);
  return q.exec() == 1;
}

bool release_job(Tx& tx, std::int64_t id, int attempt) {
  auto q = tx.conn().query(Sql::kReleaseJob);
  q.bind_all(id, attempt);
  return q.exec() == 1;
}

bool any_expired_lease(Conn& conn, core::Millis lease_cutoff) {
  auto q = conn.query(Sql::kAnyExpiredLease);
  q.bind(1, static_cast<std::int64_t>(lease_cutoff));
  return q.step() && q.int32(0) != 0;
}

bool any_finished_before(Conn& conn, core::Millis cutoff) {
  auto q = conn.query(Sql::kAnyFinishedBefore);
  q.bind(1, static_cast<std::int64_t>(cutoff));
  return q.step() && q.int32(0) != 0;
}

int delete_finished_before(Tx& tx, core::Millis cutoff, int limit) {
  auto q = tx.conn().query(Sql::kDeleteFinishedBefore);
  q.bind_all(cutoff, limit);
  return q.exec();
}

namespace {

std::optional<JobRow> transition_job(Tx& tx, Sql sql, std::int64_t id, core::Millis now) {
  auto q = tx.conn().query(sql);
  q.bind_all(id, now);
  if (!q.step()) return std::nullopt;
  JobRow row = job_from(q);
  q.step();  // finish the statement
  return row;
}

}  // namespace

std::optional<JobRow> retry_job(Tx& tx, std::int64_t id, core::Millis now) {
  return transition_job(tx, Sql::kRetryJob, id, now);
}

std::optional<JobRow> cancel_job(Tx& tx, std::int64_t id, core::Millis now) {
  return transition_job(tx, Sql::kCancelJob, id, now);
}

std::optional<JobRow> find_job(Conn& conn, std::int64_t id) {
  auto q = conn.query(Sql::kFindJob);
  q.bind(1, id);
  return q.one(job_from);
}

std::vector<JobRow> list_jobs(Conn& conn, const JobFilter& filter) {
  auto q = conn.query(Sql::kListJobs);
  q.bind_all(filter.state, filter.kind, filter.limit);
  return q.all(job_from);
}

std::vector<JobRow> list_jobs_page(Conn& conn, const JobFilter& filter,
                                   std::optional<std::int64_t> before) {
  const std::int64_t below = before.value_or(std::numeric_limits<std::int64_t>::max());
  if (!filter.state && !filter.kind) {
    auto q = conn.query(Sql::kListJobsPage);
    q.bind_all(below, filter.limit);
    return q.all(job_from);
  }
  // One filter: the newest `limit` of each (state, kind) pair it covers, each
  // an index walk that stops after `limit` rows, merged newest first. Six
  // states, and the kinds of one state read by a loose index scan: a page
  // reads at most (pairs x limit) rows whatever the table holds.
  std::vector<std::pair<std::string, std::string>> pairs;  // (state, kind)
  if (filter.state && filter.kind) {
    pairs.emplace_back(*filter.state, *filter.kind);
  } else if (filter.state) {
    auto kinds = conn.query(Sql::kJobKindsInState);
    kinds.bind(1, *filter.state);
    for (auto& kind : kinds.all([](const Row& r) { return r.text(0); })) {
      pairs.emplace_back(*filter.state, std::move(kind));
    }
  } else {  // the six states of jobs/job_state.h
    for (const char* state :
         {"available", "running", "retryable", "completed", "discarded", "cancelled"}) {
      pairs.emplace_back(state, *filter.kind);
    }
  }
  std::vector<JobRow> out;
  for (const auto& [state, kind] : pairs) {
    auto q = conn.query(Sql::kListJobsPageOfStateKind);
    q.bind_all(state, kind, below, filter.limit);
    auto rows = q.all(job_from);
    out.insert(out.end(), std::make_move_iterator(rows.begin()),
               std::make_move_iterator(rows.end()));
  }
  std::sort(out.begin(), out.end(), [](const JobRow& a, const JobRow& b) { return a.id > b.id; });
  if (out.size() > static_cast<std::size_t>(filter.limit)) out.resize(filter.limit);
  return out;
}

bool retry_job_in_state(Tx& tx, std::int64_t id, const std::string& state, core::Millis now) {
  auto q = tx.conn().query(Sql::kRetryJobInState);
  q.bind_all(id, state, now);
  return q.exec() == 1;
}

int retry_jobs_in_state(Tx& tx, const std::string& state, const std::optional<std::string>& kind,
                        core::Millis now) {
  auto q = tx.conn().query(Sql::kRetryJobsInState);
  q.bind_all(state, kind, now);
  return q.exec();
}

}  // namespace db
