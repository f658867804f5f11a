// services::Stats: read-only summaries of the database for /metrics,
// /api/stats, the dashboard and `aftercommit stats`. Plain reads on a read
// connection: they never take the write lock.
#pragma once

#include <vector>

#include "core/status.h"
#include "db/database.h"
#include "db/stats.h"

namespace services {

class Stats {
 public:
  explicit Stats(db::Database& db) : db_(db) {}

  core::Result<db::Counts> counts() const;
  core::Result<std::vector<db::JobCount>> job_counts() const;
  // Newest first; `limit` 1..1000.
  core::Result<std::vector<db::AuditRow>> latest_audit(int limit) const;
  core::Result<std::vector<db::MessageRow>> latest_messages(int limit) const;

 private:
  db::Database& db_;
};

}  // namespace services
