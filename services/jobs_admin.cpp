#include "services/jobs_admin.h"

#include <algorithm>
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

core::Result<int> JobsAdmin::retry_many(db::Tx& tx, const BulkRetry& request) const {
  const core::Millis now = clock_.now_ms();
  if (request.ids.empty()) return db::retry_jobs_in_state(tx, request.state, request.kind, now);
  // An id named twice is retried once.
  std::vector<std::int64_t> ids = request.ids;
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (std::int64_t id : ids) {
    auto job = db::find_job(tx.conn(), id);
    if (!job) return core::Status::not_found("no job with id " + std::to_string(id));
    if (job->state != request.state) {
      return core::Status::conflict("job " + std::to_string(id) + " is " + job->state + ", not " +
                                    request.state + "; nothing was retried");
    }
    if (request.kind && job->kind != *request.kind) {
      return core::Status::conflict("job " + std::to_string(id) + " is a " + job->kind +
                                    " job, not " + *request.kind + "; nothing was retried");
    }
  }
  int moved = 0;
  for (std::int64_t id : ids) {
    if (!db::retry_job_in_state(tx, id, request.state, now)) {
      return core::Status::busy("job " + std::to_string(id) + " changed state during the retry");
    }
    ++moved;
  }
  return moved;
}

core::Result<JobsPage> JobsAdmin::page(const db::JobFilter& filter,
                                       std::optional<std::int64_t> before) const {
  JobsPage out;
  core::Status st = db_.read([&](db::Conn& c) {
    out.jobs = db::list_jobs_page(c, filter, before);
    return core::Status::ok();
  });
  if (!st) return st;
  if (static_cast<int>(out.jobs.size()) == filter.limit && !out.jobs.empty()) {
    out.next_before = out.jobs.back().id;
  }
  return out;
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
