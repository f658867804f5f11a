// jobs::Outbox: domain events for the outside world (webhooks).
//
// publish() is called inside the write transaction of the change an event
// describes (user.created, product.published, order.paid) and stages one
// `deliver_webhook` job per configured URL in that same transaction. So an
// event is delivered if and only if its change committed, and a crash between
// commit and delivery only delays it: the job is durable.
//
// Job args: {"url", "event": {"id", "type", "created_at", "data"}, "subject"}.
// `subject` names the entity (e.g. "user:42"); the jobs of one subject and URL
// share a serial key, so they are delivered one at a time, in order
// (workers/webhooks.h says exactly what ordering that gives).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"

namespace db {
class Tx;
}

namespace jobs {

// One POST of one event to one URL (jobs/outbox.h stages it). `subject`
// names the entity ("user:42"); the event is {"id", "type", "created_at",
// "data"}, sent as the body.
struct DeliverWebhook {
  static constexpr char kKind[] = "deliver_webhook";
  std::string url;
  nlohmann::json event;
  std::string subject;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(DeliverWebhook, url, event, subject)

inline constexpr const char* kDeliverWebhook = DeliverWebhook::kKind;

class Outbox {
 public:
  explicit Outbox(std::vector<std::string> webhook_urls) : urls_(std::move(webhook_urls)) {}

  // Thread-safe (const). A no-op when no webhook URL is configured.
  void publish(db::Tx& tx, const std::string& type, const std::string& subject,
               const nlohmann::json& data, core::Millis now) const;

  bool enabled() const noexcept { return !urls_.empty(); }

 private:
  std::vector<std::string> urls_;
};

}  // namespace jobs
