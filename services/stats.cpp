#include "services/stats.h"

namespace services {
namespace {

template <class T, class Fn>
core::Result<T> read(db::Database& db, Fn&& fn) {
  T out{};
  core::Status st = db.read([&](db::Conn& c) {
    out = fn(c);
    return core::Status::ok();
  });
  if (!st) return st;
  return out;
}

}  // namespace

core::Result<db::Counts> Stats::counts() const {
  return read<db::Counts>(db_, [](db::Conn& c) { return db::count_all(c); });
}

core::Result<std::vector<db::JobCount>> Stats::job_counts() const {
  return read<std::vector<db::JobCount>>(db_, [](db::Conn& c) { return db::count_jobs(c); });
}

core::Result<std::vector<db::AuditRow>> Stats::latest_audit(int limit) const {
  return read<std::vector<db::AuditRow>>(
      db_, [limit](db::Conn& c) { return db::latest_user_actions(c, limit); });
}

core::Result<std::vector<db::MessageRow>> Stats::latest_messages(int limit) const {
  return read<std::vector<db::MessageRow>>(
      db_, [limit](db::Conn& c) { return db::latest_messages(c, limit); });
}

}  // namespace services
