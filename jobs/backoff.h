// jobs::Backoff: how long a failed job waits before its next attempt.
//
// Attempt n (1-based) waits base * 2^(n-1), capped at `cap`, then scaled by a
// random factor in [0.75, 1.25) and capped again, so jobs that failed
// together (a receiver that was down) do not all come back in the same
// millisecond. The jitter is an argument so that tests pin it.
#pragma once

#include <algorithm>

#include "core/clock.h"

namespace jobs {

struct Backoff {
  core::Millis base_ms = 1000;
  core::Millis cap_ms = 3600000;

  // `unit` is a uniform random number in [0, 1).
  constexpr core::Millis delay_ms(int attempt, double unit) const noexcept {
    const int shift = std::clamp(attempt - 1, 0, 40);
    double d = static_cast<double>(base_ms);
    for (int i = 0; i < shift && d < static_cast<double>(cap_ms); ++i) d *= 2;
    d = std::min(d, static_cast<double>(cap_ms)) * (0.75 + 0.5 * std::clamp(unit, 0.0, 1.0));
    return std::min(cap_ms, static_cast<core::Millis>(d));
  }

  // delay_ms with a thread-local random source.
  core::Millis jittered_delay_ms(int attempt) const;
};

}  // namespace jobs
