// maintenance::Supervisor: owns the threads of the background services.
//
// Services are added in start order and stopped in reverse: a service added
// later may rely on one added earlier running. Each runs on its own
// core::Periodic thread, its first pass one interval after start(). A failed
// pass is logged (event `service_failed`, with `service`, `code` and `error`)
// and the service goes on; nothing a service does can stop the server.
//
// Leadership: a service that is leader_only() runs its pass only while the
// leader lock (db/leader.h) given to the constructor is held; otherwise the
// pass is skipped (and not counted). A change of leadership is logged once
// (`leader_elected` / `leader_lost`). Without a lock every service runs.
// An elector thread asks the lock every elect_interval_ms as well, so that
// leadership is kept and taken over on time whatever the services' intervals.
//
// Threads: add(), start() and stop() from one owner thread; the services'
// passes on their own threads. wait_for_passes() from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "core/periodic.h"
#include "db/leader.h"
#include "maintenance/service.h"

namespace maintenance {

class Supervisor {
 public:
  // `leader` (not owned; may be null: every service runs) must outlive stop().
  // With a lock, an elector thread asks it every `elect_interval_ms` besides
  // the services' own passes: the leader renews its lease even when every
  // leader-only service sleeps for longer than the lease lasts, and a
  // follower takes over within about one interval after the lease lapsed
  // rather than at its next service pass (which may be minutes away).
  explicit Supervisor(db::LeaderLock* leader = nullptr, core::Millis elect_interval_ms = 1000)
      : leader_(leader), elect_interval_ms_(elect_interval_ms) {}
  ~Supervisor() { stop(); }
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Adds `service` (not owned; must outlive the supervisor's stop()). Only
  // before start().
  void add(Service& service);

  // Starts every service's thread, in the order added. Once: a second
  // call, or one after stop(), does nothing (cancel() is final for a
  // service).
  void start();

  // Stops every service's schedule, then cancels and joins each service in
  // the reverse order; a pass in progress finishes (or ends early on
  // cancel()) first. A pass whose thread had already woken when stop() began
  // may still begin, even after its service's cancel(): cancel() is final
  // (service.h), so such a pass ends early too. Idempotent.
  void stop();

  // Test seam, instead of polling for a pass's effect: blocks until the
  // service named `name` has completed `count` passes in total since
  // construction (successful or not), or `timeout` passes. Returns whether it
  // did. A name nobody added returns false at once.
  [[nodiscard]] bool wait_for_passes(std::string_view name, std::uint64_t count,
                                     std::chrono::milliseconds timeout);

  // Passes completed by `name` so far (0 for an unknown name).
  [[nodiscard]] std::uint64_t passes(std::string_view name) const;

  // Whether this process led at its last look (true without a lock).
  [[nodiscard]] bool leading() const;

 private:
  struct Entry {
    Service* service = nullptr;
    core::Periodic loop;
    std::uint64_t passes = 0;  // guarded by Supervisor::mu_
  };
  void run_pass(Entry& entry);
  // Asks the lock; logs a change. Any service thread.
  bool lead();

  db::LeaderLock* const leader_;
  const core::Millis elect_interval_ms_;
  core::Periodic elector_;  // runs lead() while a leader lock is given

  std::vector<std::unique_ptr<Entry>> entries_;  // changed only by add(), before start()
  enum class State { kNew, kRunning, kStopped };
  State state_ = State::kNew;  // owner thread only
  mutable std::mutex mu_;
  std::condition_variable passed_;
  bool leading_ = false;  // guarded by mu_: the lock's answer at the last look
};

}  // namespace maintenance
