#include "db/users.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

constexpr char kInsertUser[] =
    "INSERT INTO users (email, created_at) VALUES (?1, ?2) "
    "ON CONFLICT (email) DO NOTHING RETURNING id, email, created_at";
constexpr char kFindUserByEmail[] = "SELECT id, email, created_at FROM users WHERE email = ?1";
constexpr char kFindUser[] = "SELECT id, email, created_at FROM users WHERE id = ?1";
constexpr char kInsertUserAction[] =
    "INSERT INTO user_actions (user_id, action, created_at) VALUES (?1, ?2, ?3)";
constexpr char kListUserActions[] =
    "SELECT id, user_id, action, created_at FROM user_actions WHERE user_id = ?1 ORDER BY id";
constexpr char kCountUsers[] = "SELECT count(*) FROM users";

UserRow user_from(SQLite::Statement& s) {
  return UserRow{s.getColumn(0).getInt64(), s.getColumn(1).getString(), s.getColumn(2).getInt64()};
}

std::optional<UserRow> one_user(Conn::Query& q) {
  if (!q->executeStep()) return std::nullopt;
  return user_from(*q);
}

}  // namespace

std::optional<UserRow> insert_user_if_absent(Tx& tx, const std::string& email, core::Millis now) {
  auto q = tx.conn().query(kInsertUser);
  q->bindNoCopy(1, email);
  q->bind(2, static_cast<std::int64_t>(now));
  auto row = one_user(q);
  // Step to SQLITE_DONE so the INSERT ... RETURNING statement is finished.
  if (row) q->executeStep();
  return row;
}

std::optional<UserRow> find_user_by_email(Conn& conn, const std::string& email) {
  auto q = conn.query(kFindUserByEmail);
  q->bindNoCopy(1, email);
  return one_user(q);
}

std::optional<UserRow> find_user(Conn& conn, std::int64_t id) {
  auto q = conn.query(kFindUser);
  q->bind(1, id);
  return one_user(q);
}

std::int64_t insert_user_action(Tx& tx, std::int64_t user_id, const std::string& action,
                                core::Millis now) {
  auto q = tx.conn().query(kInsertUserAction);
  q->bind(1, user_id);
  q->bindNoCopy(2, action);
  q->bind(3, static_cast<std::int64_t>(now));
  q->exec();
  return tx.conn().sqlite().getLastInsertRowid();
}

std::vector<UserActionRow> list_user_actions(Conn& conn, std::int64_t user_id) {
  auto q = conn.query(kListUserActions);
  q->bind(1, user_id);
  std::vector<UserActionRow> out;
  while (q->executeStep()) {
    out.push_back({q->getColumn(0).getInt64(), q->getColumn(1).getInt64(),
                   q->getColumn(2).getString(), q->getColumn(3).getInt64()});
  }
  return out;
}

std::int64_t count_users(Conn& conn) {
  auto q = conn.query(kCountUsers);
  q->executeStep();
  return q->getColumn(0).getInt64();
}

}  // namespace db
