// maintenance::Service: one background service the Supervisor runs every
// interval (River's maintenance services: the rescuer, the cleaner; here also
// the key reaper, the scheduled backups and the checkout completer).
//
// A service does its work in passes. A pass is self-contained and may run at
// any time, also in several processes serving one database at once: each
// write it makes is one short transaction that re-checks its own condition
// (docs/RELIABILITY.md "Across processes"). Tests call pass() (or the
// service's own run_once()) directly instead of starting the supervisor.
#pragma once

#include <string_view>

#include "core/clock.h"
#include "core/status.h"

namespace maintenance {

class Service {
 public:
  virtual ~Service() = default;

  // A short stable name ("rescuer", "cleaner" ...): the log lines' `service`
  // field and the name Supervisor::wait_for_passes takes.
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;

  // Time between the end of one pass and the start of the next, in ms (> 0).
  [[nodiscard]] virtual core::Millis interval_ms() const noexcept = 0;

  // One pass. Runs on the service's supervisor thread (or a test's thread),
  // never concurrently with itself. A failure is returned, not thrown; the
  // supervisor logs it and runs the next pass on time. What a pass did is
  // logged by the service itself, through core::log.
  [[nodiscard]] virtual core::Status pass() = 0;

  // Whether only the leader among the processes serving the database runs
  // it (db/leader.h): work every process could do, safely, but that one
  // process does for all. Services that act on their own process or file
  // (scheduled backups) return false.
  [[nodiscard]] virtual bool leader_only() const noexcept { return false; }

  // Asks a pass in progress to end early (a backup copy stops at its next
  // step). Final: a pass that begins after it (its thread had woken just
  // before the supervisor stopped the schedule) should end early too. Called
  // from the supervisor's owner thread just before it joins the service's
  // thread; must be thread-safe and never block.
  virtual void cancel() noexcept {}
};

}  // namespace maintenance
