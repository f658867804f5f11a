#include "db/stats.h"

#include <filesystem>

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

constexpr char kCountJobs[] =
    "SELECT kind, state, count(*) FROM jobs GROUP BY kind, state ORDER BY kind, state";
constexpr char kCountUsers[] = "SELECT count(*) FROM users";
constexpr char kCountUserActions[] = "SELECT count(*) FROM user_actions";
constexpr char kCountMessages[] = "SELECT count(*) FROM mailbox";
constexpr char kLatestUserActions[] =
    "SELECT a.id, a.user_id, u.email, a.action, a.created_at FROM user_actions a "
    "JOIN users u ON u.id = a.user_id ORDER BY a.id DESC LIMIT ?1";
constexpr char kUserVersion[] = "PRAGMA user_version";

std::int64_t scalar(Conn& conn, const char* sql) {
  auto q = conn.query(sql);
  return q->executeStep() ? q->getColumn(0).getInt64() : 0;
}

}  // namespace

std::vector<JobCount> count_jobs(Conn& conn) {
  auto q = conn.query(kCountJobs);
  std::vector<JobCount> out;
  while (q->executeStep()) {
    out.push_back(
        {q->getColumn(0).getString(), q->getColumn(1).getString(), q->getColumn(2).getInt64()});
  }
  return out;
}

Counts count_all(Conn& conn) {
  Counts c;
  c.users = scalar(conn, kCountUsers);
  c.user_actions = scalar(conn, kCountUserActions);
  c.messages = scalar(conn, kCountMessages);
  c.jobs = count_jobs(conn);
  return c;
}

std::vector<AuditRow> latest_user_actions(Conn& conn, int limit) {
  auto q = conn.query(kLatestUserActions);
  q->bind(1, limit);
  std::vector<AuditRow> out;
  while (q->executeStep()) {
    out.push_back({q->getColumn(0).getInt64(), q->getColumn(1).getInt64(),
                   q->getColumn(2).getString(), q->getColumn(3).getString(),
                   q->getColumn(4).getInt64()});
  }
  return out;
}

core::Result<int> peek_schema_version(const std::string& path) {
  if (!std::filesystem::exists(path)) return 0;
  try {
    SQLite::Database sqlite(path, SQLite::OPEN_READONLY);
    SQLite::Statement q(sqlite, kUserVersion);
    sqlite.exec("SELECT count(*) FROM sqlite_schema");  // proves it is a database
    return q.executeStep() ? q.getColumn(0).getInt() : 0;
  } catch (const std::exception& e) {
    return core::Status::invalid(path + " is not a readable SQLite database: " + e.what());
  }
}

}  // namespace db
