// Users and their audit log (user_actions). Functions throw inside db/ and
// are called only from within Database::write / Database::read, which
// translate failures into Status.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"

namespace db {

class Conn;
class Tx;

struct UserRow {
  std::int64_t id = 0;
  std::string email;
  core::Millis created_at = 0;
};

struct UserActionRow {
  std::int64_t id = 0;
  std::int64_t user_id = 0;
  std::string action;
  core::Millis created_at = 0;
};

// Inserts the user unless the (normalized) email exists: one
// INSERT ... ON CONFLICT DO NOTHING, never check-then-insert. nullopt when it
// existed.
std::optional<UserRow> insert_user_if_absent(Tx& tx, const std::string& email, core::Millis now);
std::optional<UserRow> find_user_by_email(Conn& conn, const std::string& email);
std::optional<UserRow> find_user(Conn& conn, std::int64_t id);

// The audit row. Pipelined (Stmt::exec_pipelined): a failure (no such user)
// may surface at the phase's next statement or its end.
void insert_user_action(Tx& tx, std::int64_t user_id, const std::string& action, core::Millis now);
// Oldest first.
std::vector<UserActionRow> list_user_actions(Conn& conn, std::int64_t user_id);
std::int64_t count_users(Conn& conn);

}  // namespace db
