#include "http/throughput.h"

#include <algorithm>
#include <cmath>

namespace app {
namespace {

constexpr double kFirstBucketUs = 10.0;
constexpr double kGrowth = 1.25;

int bucket_of(std::int64_t duration_us) {
  if (duration_us <= kFirstBucketUs) return 0;
  const double i =
      std::ceil(std::log(static_cast<double>(duration_us) / kFirstBucketUs) / std::log(kGrowth));
  return std::min(ThroughputRing::kBuckets - 1, static_cast<int>(i));
}

std::int64_t second_of(core::Millis now) {
  return now / 1000;
}

// The upper bound (ms) of the bucket where the q-quantile of `hist` falls,
// or null when it is empty.
nlohmann::json quantile_ms(const std::array<std::uint32_t, ThroughputRing::kBuckets>& hist,
                           std::uint64_t count, double q) {
  if (count == 0) return nullptr;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count)));
  std::uint64_t seen = 0;
  for (int i = 0; i < ThroughputRing::kBuckets; ++i) {
    seen += hist[i];
    if (seen >= std::max<std::uint64_t>(rank, 1)) {
      // Two decimals are plenty for a chart and keep the body small.
      return std::round(ThroughputRing::bucket_upper_us(i) / 10.0) / 100.0;
    }
  }
  return std::round(ThroughputRing::bucket_upper_us(ThroughputRing::kBuckets - 1) / 10.0) / 100.0;
}

}  // namespace

double ThroughputRing::bucket_upper_us(int i) {
  return kFirstBucketUs * std::pow(kGrowth, i);
}

ThroughputRing::Slot& ThroughputRing::slot_for(std::int64_t second) {
  Slot& s = slots_[static_cast<std::size_t>(second % kSeconds)];
  if (s.second != second) s = Slot{second};
  return s;
}

void ThroughputRing::record_request(core::Millis now, std::int64_t duration_us) {
  const int bucket = bucket_of(duration_us);
  std::lock_guard lock(mu_);
  Slot& s = slot_for(second_of(now));
  ++s.requests;
  ++s.latency[static_cast<std::size_t>(bucket)];
}

void ThroughputRing::record_job(core::Millis now, bool ok) {
  std::lock_guard lock(mu_);
  Slot& s = slot_for(second_of(now));
  ++(ok ? s.completed : s.failed);
}

nlohmann::json ThroughputRing::snapshot(core::Millis now, int seconds) const {
  seconds = std::clamp(seconds, 1, kSeconds);
  const std::int64_t last = second_of(now);
  const std::int64_t first = last - seconds + 1;
  nlohmann::json completed = nlohmann::json::array(), failed = nlohmann::json::array(),
                 requests = nlohmann::json::array(), p50 = nlohmann::json::array(),
                 p99 = nlohmann::json::array();
  std::array<std::uint32_t, kBuckets> all{};
  std::uint64_t total_completed = 0, total_failed = 0, total_requests = 0;
  {
    std::lock_guard lock(mu_);
    for (std::int64_t sec = first; sec <= last; ++sec) {
      const Slot& s = slots_[static_cast<std::size_t>(((sec % kSeconds) + kSeconds) % kSeconds)];
      if (s.second != sec) {  // nothing happened that second, or it was overwritten
        for (auto* a : {&completed, &failed, &requests}) a->push_back(0);
        p50.push_back(nullptr);
        p99.push_back(nullptr);
        continue;
      }
      completed.push_back(s.completed);
      failed.push_back(s.failed);
      requests.push_back(s.requests);
      p50.push_back(quantile_ms(s.latency, s.requests, 0.50));
      p99.push_back(quantile_ms(s.latency, s.requests, 0.99));
      total_completed += s.completed;
      total_failed += s.failed;
      total_requests += s.requests;
      for (int i = 0; i < kBuckets; ++i) all[i] += s.latency[i];
    }
  }
  return {{"start", first},
          {"step_s", 1},
          {"completed", completed},
          {"failed", failed},
          {"requests", requests},
          {"p50_ms", p50},
          {"p99_ms", p99},
          {"totals",
           {{"completed", total_completed},
            {"failed", total_failed},
            {"requests", total_requests},
            {"p50_ms", quantile_ms(all, total_requests, 0.50)},
            {"p99_ms", quantile_ms(all, total_requests, 0.99)}}}};
}

ThroughputRing& throughput() {
  static ThroughputRing ring;
  return ring;
}

}  // namespace app
