#include "jobs/outbox.h"

#include <cstdio>
#include <random>

#include "core/time_format.h"
#include "db/jobs.h"
#include "jobs/args.h"

namespace jobs {
namespace {

// 128 random bits: event ids are unique without coordination, so receivers
// can deduplicate by them (they are also sent as the Idempotency-Key).
std::string new_event_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, "evt_%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace

void Outbox::publish(db::Tx& tx, const std::string& type, const std::string& subject,
                     const nlohmann::json& data, core::Millis now) const {
  if (urls_.empty()) return;
  const nlohmann::json event = {{"id", new_event_id()},
                                {"type", type},
                                {"created_at", core::format_rfc3339_ms(now)},
                                {"data", data}};
  for (const auto& url : urls_) {
    // One subject's events to one URL are delivered one at a time, in order.
    StageOptions options;
    options.serial_key = "webhook " + url + " " + subject;
    (void)stage(tx, DeliverWebhook{url, event, subject}, now, std::move(options));
  }
}

}  // namespace jobs
