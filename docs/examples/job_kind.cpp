// A new job kind, as README.md ("Adding a job kind") shows it: the build
// compiles this file with the project's warnings as errors, and
// tests/docs_test.cpp checks that the README quotes it verbatim.
#include <nlohmann/json.hpp>

#include "db/database.h"
#include "jobs/args.h"
#include "services/orders.h"

namespace example {

// The kind: its name and its arguments, one struct used by the stager and
// the handler alike.
struct ShipOrder {
  static constexpr char kKind[] = "ship_order";
  std::int64_t order_id = 0;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(ShipOrder, order_id)

// The handler. An effect in this database is an `apply`: it runs in the
// transaction that completes the job, so it happens once.
core::Status ship(const ShipOrder& args, const jobs::Job&, db::Tx& tx, core::Millis now) {
  // An error is retried with backoff; jobs::do_not_retry("...") would
  // discard the job at once.
  return services::ship_order(tx, args.order_id, now);
}

// The registration, in jobs::register_builtin_handlers().
void register_kind(jobs::Registry& registry) {
  jobs::KindOptions options;  // unset fields keep their defaults
  options.max_attempts = 3;
  options.timeout_ms = 5000;
  registry.add(ShipOrder::kKind, jobs::apply<ShipOrder>(ship), options);
}

// Staging, where the change happens: in the same transaction as the change.
void stage_shipping(db::Tx& tx, std::int64_t order_id, core::Millis now) {
  jobs::stage(tx, ShipOrder{order_id}, now);  // nullopt only when a unique_key is taken
}

}  // namespace example
