// Reads of the job queue and the mailbox for the API.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "db/jobs.h"
#include "db/mailbox.h"

namespace services {

// POST /jobs/retry: which jobs to move back to available.
struct BulkRetry {
  std::string state;                // "discarded" or "cancelled"
  std::optional<std::string> kind;  // only jobs of this kind
  std::vector<std::int64_t> ids;    // only these jobs (empty: every match)
};

// One page of the jobs list and where the next one starts.
struct JobsPage {
  std::vector<db::JobRow> jobs;
  std::optional<std::int64_t> next_before;  // nullopt on the last page
};

class JobsAdmin {
 public:
  JobsAdmin(db::Database& db, const core::Clock& clock) : db_(db), clock_(clock) {}

  // Atomic phases, run inside the caller's write transaction. When they
  // refuse, they have written nothing.
  // discarded|cancelled -> available. kNotFound, or kConflict naming the
  // current state when the job cannot be retried.
  core::Result<db::JobRow> retry(db::Tx& tx, std::int64_t id) const;
  // available|retryable -> cancelled. kNotFound, or kConflict naming the state.
  core::Result<db::JobRow> cancel(db::Tx& tx, std::int64_t id) const;
  // Bulk retry, all or nothing: with ids, each must name a job in
  // `request.state` (and of `request.kind`, when set), else kNotFound or
  // kConflict naming the first that does not, checked before anything is
  // written. Returns how many jobs moved. A job that changed state between
  // the check and its update (another node) fails the phase with kBusy, so
  // the transaction rolls back rather than commit a partial retry.
  core::Result<int> retry_many(db::Tx& tx, const BulkRetry& request) const;

  core::Result<db::JobRow> get(std::int64_t id) const;  // kNotFound when absent
  core::Result<std::vector<db::JobRow>> list(const db::JobFilter& filter) const;
  // Keyset pagination over list(): the page of jobs with ids below `before`.
  core::Result<JobsPage> page(const db::JobFilter& filter,
                              std::optional<std::int64_t> before) const;
  core::Result<std::vector<db::MessageRow>> mailbox(const std::string& to) const;

 private:
  core::Result<db::JobRow> transition(db::Tx& tx, std::int64_t id, const char* verb,
                                      std::optional<db::JobRow> (*apply)(db::Tx&, std::int64_t,
                                                                         core::Millis)) const;

  db::Database& db_;
  const core::Clock& clock_;
};

}  // namespace services
