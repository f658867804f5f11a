#include "db/users.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

UserRow user_from(const Row& s) {
  return UserRow{s.int64(0), s.text(1), s.int64(2)};
}

std::optional<UserRow> one_user(Stmt& q) {
  return q.one(user_from);
}

}  // namespace

std::optional<UserRow> insert_user_if_absent(Tx& tx, const std::string& email, core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertUser);
  q.bind_all(email, now);
  auto row = one_user(q);
  // Step to SQLITE_DONE so the INSERT ... RETURNING statement is finished.
  if (row) q.step();
  return row;
}

std::optional<UserRow> find_user_by_email(Conn& conn, const std::string& email) {
  auto q = conn.query(Sql::kFindUserByEmail);
  q.bind(1, email);
  return one_user(q);
}

std::optional<UserRow> find_user(Conn& conn, std::int64_t id) {
  auto q = conn.query(Sql::kFindUser);
  q.bind(1, id);
  return one_user(q);
}

void insert_user_action(Tx& tx, std::int64_t user_id, const std::string& action, core::Millis now) {
  auto q = tx.conn().query(Sql::kInsertUserAction);
  q.bind_all(user_id, action, now);
  q.exec_pipelined();
}

std::vector<UserActionRow> list_user_actions(Conn& conn, std::int64_t user_id) {
  auto q = conn.query(Sql::kListUserActions);
  q.bind(1, user_id);
  std::vector<UserActionRow> out;
  while (q.step()) {
    out.push_back({q.int64(0), q.int64(1), q.text(2), q.int64(3)});
  }
  return out;
}

std::int64_t count_users(Conn& conn) {
  auto q = conn.query(Sql::kCountUsers);
  q.step();
  return q.int64(0);
}

}  // namespace db
