// A new job kind, as README.md ("Adding a job kind") shows it: the build
// compiles this file with the project's warnings as errors, and
// tests/docs_test.cpp checks that the README quotes it verbatim.
#include <nlohmann/json.hpp>

#include "db/database.h"
#include "db/jobs.h"
#include "db/orders.h"
#include "jobs/handler.h"

namespace example {

// args {"order_id"} -> the order becomes ready_to_ship. An effect in this
// database: an `apply`, run in the transaction that completes the job.
core::Status prepare_for_shipping(const jobs::Job& job, db::Tx& tx, core::Millis now) {
  // A missing or mistyped "order_id" throws nlohmann::json::exception: bad
  // args, so the job is discarded at once.
  const auto order_id = job.args.at("order_id").get<std::int64_t>();
  if (!db::mark_order_ready_to_ship(tx, order_id, now)) {
    // Retried with backoff; jobs::do_not_retry("...") would discard it.
    return core::Status::conflict("order " + std::to_string(order_id) + " is not paid");
  }
  return core::Status::ok();
}

// The registration, in jobs::register_builtin_handlers().
void register_kind(jobs::Registry& registry) {
  jobs::KindOptions options;  // unset fields keep their defaults
  options.max_attempts = 3;
  options.timeout_ms = 5000;
  registry.add("prepare_for_shipping", jobs::Handler{nullptr, prepare_for_shipping}, options);
}

// Staging, where the change happens: in the same transaction as the change.
void stage_shipping(db::Tx& tx, std::int64_t order_id, core::Millis now) {
  db::NewJob job;
  job.kind = "prepare_for_shipping";
  job.args_json = nlohmann::json{{"order_id", order_id}}.dump();
  db::stage_job(tx, job, now);  // nullopt only when job.unique_key is taken
}

}  // namespace example
