// Read-only summaries for /metrics, /api/stats, the dashboard and
// `aftercommit stats`: counts and the latest rows. Each runs on a read
// connection (Database::read), so a scrape never takes the write lock.
//
// Costs: the job counts are one GROUP BY over the (state, kind, id) index,
// linear in the number of jobs kept; the cleaner's retention bounds it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/mailbox.h"

namespace db {

class Conn;

struct JobCount {
  std::string kind;
  std::string state;
  std::int64_t count = 0;
};

struct Counts {
  std::int64_t users = 0;
  std::int64_t user_actions = 0;
  std::int64_t messages = 0;
  std::vector<JobCount> jobs;  // by kind, then state; only combinations that exist
};

// An audit row with the email of its user, for the dashboard's feed.
struct AuditRow {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string email;
  std::string action;
  core::Millis created_at = 0;
};

std::vector<JobCount> count_jobs(Conn& conn);
Counts count_all(Conn& conn);
// Newest first, at most `limit`.
std::vector<AuditRow> latest_user_actions(Conn& conn, int limit);

}  // namespace db
