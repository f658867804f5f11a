// maintenance::Rescuer: returns jobs whose runner is gone to the queue.
//
// A running job whose lease ended (its runner died, hung, or lost its
// heartbeats) becomes retryable at once, or discarded when it had used its
// max_attempts, with "lease expired" appended to its errors. The attempt it
// was claimed with is thereby fenced out: if that runner was only slow, its
// late completion changes nothing.
//
// The lease is the only evidence that a runner is gone: several processes may
// serve one database, so no process-local fact (a lock it holds, its own
// start-up) says another one's running jobs are orphans. Rescuing only
// expired leases makes every process's rescuer safe to run at once: each
// rescue is one fenced UPDATE, and a live runner's heartbeat keeps its
// leases out of reach (docs/RELIABILITY.md "Across processes").
//
// run_once() reads first and takes the write lock only when some lease has
// expired. The Supervisor runs it every `interval_ms` (pass(), which logs
// `jobs_rescued`); App also runs it once at start-up.
#pragma once

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "maintenance/service.h"

namespace maintenance {

struct RescuerOptions {
  core::Millis interval_ms = 5000;
};

class Rescuer final : public Service {
 public:
  Rescuer(db::Database& db, const core::Clock& clock, RescuerOptions options = {})
      : db_(db), clock_(clock), options_(options) {}

  // Rescues running jobs whose lease ended before now; returns how many.
  core::Result<int> run_once();

  std::string_view name() const noexcept override { return "rescuer"; }
  core::Millis interval_ms() const noexcept override { return options_.interval_ms; }
  bool leader_only() const noexcept override { return true; }
  core::Status pass() override;

 private:
  db::Database& db_;
  const core::Clock& clock_;
  const RescuerOptions options_;
};

}  // namespace maintenance
