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

  core::Result<db::JobRow> get(std::int64_t id) const;  // kNotFound when absent
  core::Result<std::vector<db::JobRow>> list(const db::JobFilter& filter) const;
  core::Result<std::vector<db::MessageRow>> mailbox(const std::string& to) const;

 private:
  core::Result<db::JobRow> transition(db::Tx& tx, std::int64_t id, const char* verb,
                                      std::optional<db::JobRow> (*apply)(db::Tx&, std::int64_t,
                                                                         core::Millis)) const;

  db::Database& db_;
  const core::Clock& clock_;
};

}  // namespace services
