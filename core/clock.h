// Clock: the one source of "now" for services, the runner and the reapers.
//
// Production uses SystemClock; tests inject ManualClock and move time by hand,
// so backoff, leases and retention are tested without sleeping. Times are
// milliseconds since the Unix epoch (UTC), which is also how they are stored.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace core {

using Millis = std::int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  // Thread-safe.
  virtual Millis now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  Millis now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Millis start) : now_(start) {}
  Millis now_ms() const override { return now_.load(); }
  void set(Millis t) { now_.store(t); }
  void advance(Millis d) { now_.fetch_add(d); }

 private:
  std::atomic<Millis> now_;
};

// The process-wide monotonic clock in microseconds, for durations only.
inline std::int64_t monotonic_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace core
