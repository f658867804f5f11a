#include "services/jobs_admin.h"

#include <optional>

namespace services {

core::Result<db::JobRow> JobsAdmin::transition(
    db::Tx& tx, std::int64_t id, const char* verb,
    std::optional<db::JobRow> (*apply)(db::Tx&, std::int64_t, core::Millis)) const {
  if (auto moved = apply(tx, id, clock_.now_ms())) return std::move(*moved);
  auto current = db::find_job(tx.conn(), id);
  if (!current) return core::Status::not_found("no job with id " + std::to_string(id));
  return core::Status::conflict("job " + std::to_string(id) + " is " + current->state +
                                " and cannot be " + verb);
}

core::Result<db::JobRow> JobsAdmin::retry(db::Tx& tx, std::int64_t id) const {
  return transition(tx, id, "retried (only discarded or cancelled jobs can)", db::retry_job);
}

core::Result<db::JobRow> JobsAdmin::cancel(db::Tx& tx, std::int64_t id) const {
  return transition(tx, id, "cancelled (only available or retryable jobs can)", db::cancel_job);
}

core::Result<db::JobRow> JobsAdmin::get(std::int64_t id) const {
  std::optional<db::JobRow> job;
  core::Status st = db_.read([&](db::Conn& c) {
    job = db::find_job(c, id);
    return core::Status::ok();
  });
  if (!st) return st;
  if (!job) return core::Status::not_found("no job with id " + std::to_string(id));
  return std::move(*job);
}

core::Result<std::vector<db::JobRow>> JobsAdmin::list(const db::JobFilter& filter) const {
  std::vector<db::JobRow> out;
  core::Status st = db_.read([&](db::Conn& c) {
    out = db::list_jobs(c, filter);
    return core::Status::ok();
  });
  if (!st) return st;
  return out;
}

core::Result<std::vector<db::MessageRow>> JobsAdmin::mailbox(const std::string& to) const {
  std::vector<db::MessageRow> out;
  core::Status st = db_.read([&](db::Conn& c) {
    out = db::list_messages(c, to);
    return core::Status::ok();
  });
  if (!st) return st;
  return out;
}

}  // namespace services
