// The users service: the idempotent create-or-get and its reads.
//
// create_or_get is one atomic phase: inside the caller's write transaction it
// inserts the user (INSERT ... ON CONFLICT DO NOTHING), and only when that
// inserted a row, the `created` audit row and the staged send_welcome_email
// job (and a user.created event for webhooks, when configured). All commit
// together or not at all; an existing user writes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "db/users.h"
#include "jobs/outbox.h"

namespace services {

using User = db::UserRow;
using UserAction = db::UserActionRow;

struct CreateOrGet {
  User user;
  bool created = false;
};

class Users {
 public:
  Users(db::Database& db, const core::Clock& clock, const jobs::Outbox& outbox)
      : db_(db), clock_(clock), outbox_(outbox) {}

  // `email` must be normalized (services::normalize_email).
  CreateOrGet create_or_get(db::Tx& tx, const std::string& email) const;

  // Plain reads on a read connection; no write lock.
  core::Result<std::optional<User>> find_by_email(const std::string& email) const;
  core::Result<User> get(std::int64_t id) const;  // kNotFound when absent
  // Oldest first; kNotFound when the user does not exist.
  core::Result<std::vector<UserAction>> actions(std::int64_t user_id) const;

 private:
  db::Database& db_;
  const core::Clock& clock_;
  const jobs::Outbox& outbox_;
};

}  // namespace services
