// The dashboard's throughput panel: what happened in each of the last 15
// minutes' seconds, kept in memory in a fixed-size ring (no external
// service, nothing written to disk).
//
// One slot per wall-clock second, kSeconds slots: the slot of second s is
// s % kSeconds, and a slot still holding an older second is cleared when
// that second comes round again, so memory is fixed (about 250 KB) however
// long the process runs. Each slot counts the jobs completed and failed
// (one per attempt, as aftercommit_job_attempts_total counts them), the
// requests answered, and a log-scale histogram of their latency, from which
// p50 and p99 are read (bucket upper bounds: at most 25 % above the true
// value).
//
// The process has one ring, throughput(), fed by the same hooks as
// /metrics (record_request, record_job_attempt); like core::metrics its
// values are process-wide. Times are passed in, so a test drives the ring
// with a clock of its own.
//
// Threads: every method is thread-safe. One mutex guards the slots: the
// critical section is a few increments, once per request and per job
// attempt, far below what the request itself locks and allocates.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"

namespace app {

class ThroughputRing {
 public:
  static constexpr int kSeconds = 15 * 60;
  static constexpr int kBuckets = 64;  // 10 us * 1.25^i, i < 64: up to about 12.8 s

  void record_request(core::Millis now, std::int64_t duration_us);
  void record_job(core::Millis now, bool ok);

  // The `seconds` seconds before and including the one of `now`, oldest
  // first (1..kSeconds), as
  //   {"start": <unix second of the first>, "step_s": 1,
  //    "completed": [n, ...], "failed": [...], "requests": [...],
  //    "p50_ms": [x or null, ...], "p99_ms": [...],
  //    "totals": {"completed", "failed", "requests", "p50_ms", "p99_ms"}}
  // A second without requests has null latencies; "totals" covers the whole
  // window.
  nlohmann::json snapshot(core::Millis now, int seconds = kSeconds) const;

  // The upper bound, in microseconds, of latency bucket `i` (the last one
  // also holds everything slower).
  static double bucket_upper_us(int i);

 private:
  struct Slot {
    std::int64_t second = -1;  // the unix second this slot holds, -1 never used
    std::uint32_t completed = 0;
    std::uint32_t failed = 0;
    std::uint32_t requests = 0;
    std::array<std::uint32_t, kBuckets> latency{};
  };
  Slot& slot_for(std::int64_t second);  // mu_ held

  mutable std::mutex mu_;
  std::array<Slot, kSeconds> slots_;  // guarded by mu_
};

// The process's ring.
ThroughputRing& throughput();

}  // namespace app
