// The `deliver_webhook` job kind: POSTs one domain event to one URL.
//
// jobs::Outbox stages one job per event and configured URL, in the
// transaction of the change. The handler (a `perform`: it runs outside any
// transaction) POSTs the event as JSON {"id", "type", "created_at", "data"}
// with:
//   Idempotency-Key: <event id>              the same on every attempt
//   Aftercommit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
// A 2xx answer completes the job. A network error, a timeout, a 408, a 429,
// a 5xx (or any other answer but a 4xx) fails the attempt and the job is
// retried with backoff; any other 4xx discards it at once: the receiver
// refuses the event for good.
//
// Delivery is at-least-once (a receiver that answered after our timeout, or
// whose answer was lost in a crash, gets the event again): receivers
// deduplicate by the Idempotency-Key.
//
// Ordering: the events of one subject (e.g. "user:42") to one URL are
// delivered one at a time, in the order they were staged (a serial key per
// URL and subject). A later event waits while an earlier one is being
// retried, and is delivered after an earlier one that was discarded (or
// cancelled). Events of different subjects are not ordered.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "jobs/handler.h"
#include "jobs/outbox.h"

namespace jobs {

struct WebhookOptions {
  std::string secret;               // HMAC key (--webhook-secret)
  core::Millis timeout_ms = 10000;  // connect, send and receive, each (--webhook-timeout)
  int max_attempts = 8;
  std::string ca_file;  // --ca-file: trusted CAs for https:// URLs (empty: the system store)
};

// "t=<unix_seconds>,v1=<hex HMAC-SHA256(secret, "<unix_seconds>.<body>")>".
std::string webhook_signature(const std::string& secret, std::int64_t unix_seconds,
                              const std::string& body);

// Registers `deliver_webhook`. `clock` (for the signature time) must outlive
// the registry. The kind's timeout covers the three network timeouts.
void register_webhook_handler(Registry& registry, const core::Clock& clock, WebhookOptions options);

}  // namespace jobs
