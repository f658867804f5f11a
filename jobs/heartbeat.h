// jobs::Heartbeat: keeps the leases of the jobs this runner holds, and fails
// the attempts that ran past their timeout.
//
// Every lease/3 (earlier when an attempt's deadline comes first) one write
// transaction extends the lease of every job in hand: those running (the
// executor's in-flight table) and those claimed and waiting for a worker.
// Each extension is fenced by the attempt it claimed, so a lease already
// rescued is not taken back. An attempt past its deadline is failed instead
// (retryable with backoff, or discarded on its last attempt), and its late
// completion is then fenced out. A heartbeat is a write: it must commit
// within two thirds of a lease, or a live job may be rescued
// (docs/RELIABILITY.md, "Heartbeat").
//
// Threads: start() runs the loop on its own thread until stop();
// beat_once() runs one pass on the calling thread (tests, a runner that was
// not started).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "jobs/executor.h"

namespace jobs {

class Heartbeat {
 public:
  // `queued` lists the jobs claimed and not yet started (id, claimed attempt).
  Heartbeat(db::Database& db, const core::Clock& clock, Executor& executor,
            std::function<std::vector<std::pair<std::int64_t, int>>()> queued,
            core::Millis lease_ms);
  ~Heartbeat() { stop(); }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  void start();
  void stop();  // idempotent; joins the loop

  // One pass. Returns how many leases were extended.
  core::Result<int> beat_once();

 private:
  void loop();

  db::Database& db_;
  const core::Clock& clock_;
  Executor& executor_;
  const std::function<std::vector<std::pair<std::int64_t, int>>()> queued_;
  const core::Millis lease_ms_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool exit_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace jobs
