// workflow::Completer: drives idempotency keys abandoned mid-way to `finished`
// (rocket-rides-atomic's completer).
//
// A key is abandoned when it belongs to the checkout workflow
// (idempotency_keys.workflow), is not finished, nobody touched it for
// `after_ms` (--completer-after), and its lock is free or older than the lock
// timeout: its client gave up after a 503, or the process died between
// phases. run_once() resumes each such checkout at its recovery point through
// CheckoutWorkflow::resume, exactly as the client's own retry would: the gateway
// idempotency key makes the charge happen at most once, and whoever finishes
// first stores the response the other replays.
//
// Threads: the maintenance::Supervisor runs pass() every `interval_ms` on its
// own thread; tests call run_once() directly (with a ManualClock), not
// concurrently.
#pragma once

#include "core/clock.h"
#include "db/database.h"
#include "maintenance/service.h"
#include "workflow/checkout.h"

namespace workflow {

struct CompleterOptions {
  core::Millis after_ms = 5 * 60 * 1000;
  core::Millis lock_timeout_ms = 90'000;
  core::Millis interval_ms = 10'000;
  int batch = 32;
};

class Completer final : public maintenance::Service {
 public:
  Completer(db::Database& db, const CheckoutWorkflow& flow, const core::Clock& clock,
            CompleterOptions options)
      : db_(db), flow_(flow), clock_(clock), options_(options) {}

  std::string_view name() const noexcept override { return "completer"; }
  core::Millis interval_ms() const noexcept override { return options_.interval_ms; }
  bool leader_only() const noexcept override { return true; }
  core::Status pass() override { return run_once().status(); }

  // One pass: returns how many keys it finished.
  core::Result<int> run_once();

 private:
  db::Database& db_;
  const CheckoutWorkflow& flow_;
  const core::Clock& clock_;
  const CompleterOptions options_;
};

}  // namespace workflow
