// core::Periodic: a thread that calls a function every `interval` until
// stopped. The background loops (the job rescuer and cleaner, the
// idempotency completer and key reaper) are run() = this around their
// run_once(), which tests call directly instead.
//
// Threads: start() and stop() from one owner thread; `fn` runs on the
// periodic thread only. stop() wakes the thread at once and joins it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "core/clock.h"

namespace core {

class Periodic {
 public:
  Periodic() = default;
  ~Periodic() { stop(); }
  Periodic(const Periodic&) = delete;
  Periodic& operator=(const Periodic&) = delete;

  // Starts the thread; `fn` first runs after one interval. A thread already
  // running is stopped first, so start() twice never leaks a joinable thread.
  void start(core::Millis interval_ms, std::function<void()> fn) {
    stop();
    {
      std::lock_guard lock(mu_);
      stopping_ = false;
    }
    thread_ = std::thread([this, interval_ms, fn = std::move(fn)] {
      for (;;) {
        {
          std::unique_lock lock(mu_);
          if (cv_.wait_for(lock, std::chrono::milliseconds(interval_ms),
                           [&] { return stopping_; })) {
            return;
          }
        }
        fn();
      }
    });
  }

  // Wakes the thread and joins it; a call to fn in progress finishes first.
  void stop() {
    request_stop();
    if (thread_.joinable()) thread_.join();
  }

  // Asks the thread to end without waiting for it: no call to fn begins
  // after this returns, except one whose interval had already elapsed (the
  // thread was between its wait and the call). stop() then joins it.
  void request_stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace core
