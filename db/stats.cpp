#include "db/stats.h"

#include "db/conn.h"
#include "db/database.h"

namespace db {
namespace {

std::int64_t scalar(Conn& conn, Sql sql) {
  auto q = conn.query(sql);
  return q.step() ? q.int64(0) : 0;
}

}  // namespace

std::vector<JobCount> count_jobs(Conn& conn) {
  auto q = conn.query(Sql::kCountJobs);
  std::vector<JobCount> out;
  while (q.step()) {
    out.push_back({q.text(0), q.text(1), q.int64(2)});
  }
  return out;
}

Counts count_all(Conn& conn) {
  Counts c;
  c.users = scalar(conn, Sql::kCountUsers);
  c.user_actions = scalar(conn, Sql::kCountUserActions);
  c.messages = scalar(conn, Sql::kCountMessages);
  c.jobs = count_jobs(conn);
  return c;
}

std::vector<AuditRow> latest_user_actions(Conn& conn, int limit) {
  auto q = conn.query(Sql::kLatestUserActions);
  q.bind(1, limit);
  std::vector<AuditRow> out;
  while (q.step()) {
    out.push_back({q.int64(0), q.int64(1), q.text(2), q.text(3), q.int64(4)});
  }
  return out;
}

}  // namespace db
