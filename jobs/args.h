// Typed job kinds (River's JobArgs): one struct per kind carries its kind
// name and its arguments, and the stager and the handler use the same struct,
// so a field cannot be written under one name and read under another.
//
//   struct ShipOrder {
//     static constexpr char kKind[] = "ship_order";
//     std::int64_t order_id = 0;
//   };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ShipOrder, order_id)
//
//   jobs::stage(tx, ShipOrder{order_id}, now);                       // where the change happens
//   registry.add(ShipOrder::kKind, jobs::apply<ShipOrder>(ship));    // the handler
//
// The arguments are stored as the JSON object nlohmann's macros write (keys
// sorted). Reading a job whose stored arguments lack a field or hold one of
// the wrong type throws nlohmann::json::exception, which the runner treats
// as bad arguments: the job is discarded at once, since no retry can fix it.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/status.h"
#include "db/jobs.h"
#include "jobs/handler.h"

namespace jobs {

template <class T>
concept JobArgs = requires(const T& args, nlohmann::json& out) {
  { T::kKind } -> std::convertible_to<std::string_view>;
  nlohmann::to_json(out, args);
};

// How one staged job differs from its kind's defaults (db::NewJob says each).
struct StageOptions {
  std::optional<int> max_attempts;
  int priority = 0;
  std::optional<core::Millis> run_at;
  std::optional<std::string> unique_key;
  std::optional<core::Millis> timeout_ms;
  std::optional<std::string> serial_key;
};

// Stages one job of kind Args::kKind inside `tx`, so it exists if and only if
// the transaction commits. Returns its id, or nullopt when `unique_key` names
// an unfinished job (then nothing is staged).
template <JobArgs Args>
std::optional<std::int64_t> stage(db::Tx& tx, const Args& args, core::Millis now,
                                  StageOptions options = {}) {
  db::NewJob job;
  job.kind = Args::kKind;
  job.args_json = nlohmann::json(args).dump();
  job.max_attempts = options.max_attempts;
  job.priority = options.priority;
  job.run_at = options.run_at;
  job.unique_key = std::move(options.unique_key);
  job.timeout_ms = options.timeout_ms;
  job.serial_key = std::move(options.serial_key);
  return db::stage_job(tx, job, now);
}

// A handler whose effect is in this database: `fn(args, job, tx, now)` runs
// in the transaction that completes the job.
template <JobArgs Args, class Fn>
Handler apply(Fn fn) {
  return Handler{nullptr, [fn = std::move(fn)](const Job& job, db::Tx& tx, core::Millis now) {
                   return fn(job.args.get<Args>(), job, tx, now);
                 }};
}

// A handler whose effect is outside (a network call): `fn(args, job)` runs
// outside any transaction and must tolerate running twice.
template <JobArgs Args, class Fn>
Handler perform(Fn fn) {
  return Handler{[fn = std::move(fn)](const Job& job) { return fn(job.args.get<Args>(), job); },
                 nullptr};
}

}  // namespace jobs
