// Reads of the job queue and the mailbox for the API.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "db/database.h"
#include "db/jobs.h"
#include "db/mailbox.h"

namespace services {

class JobsAdmin {
 public:
  explicit JobsAdmin(db::Database& db) : db_(db) {}

  core::Result<db::JobRow> get(std::int64_t id) const;  // kNotFound when absent
  core::Result<std::vector<db::JobRow>> list(const db::JobFilter& filter) const;
  core::Result<std::vector<db::MessageRow>> mailbox(const std::string& to) const;

 private:
  db::Database& db_;
};

}  // namespace services
