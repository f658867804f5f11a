// services::PaymentGateway: the HTTP client checkout charges through.
//
// Speaks the gateway protocol of API.md (the fake one in http/fake_gateway.h
// serves it): POST {base}/v1/charges {"amount_cents", "token"} with an
// Idempotency-Key. 201 {"id"} is a charge, 402 a decline; anything else, a
// connection failure or no answer within the timeout is kFailed: the caller
// cannot know whether the charge happened, so it must retry with the SAME
// idempotency key, which the gateway answers with the first outcome.
//
// Thread-safe: every call opens its own connection. Only plain http:// URLs
// (this cpp-httplib build has no TLS).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/clock.h"

namespace services {

enum class ChargeOutcome { kSucceeded, kDeclined, kFailed };

struct ChargeResult {
  ChargeOutcome outcome = ChargeOutcome::kFailed;
  std::string charge_id;  // when kSucceeded
  std::string detail;     // why, when kDeclined or kFailed
  // What the gateway says the charge is, when its answer says it (the fake
  // gateway does; the protocol's minimum is {"id"}): checkout pays an order
  // only with a charge of that order's amount, made under its own key.
  std::optional<std::int64_t> amount_cents;
  std::optional<std::string> idempotency_key;
};

class PaymentGateway {
 public:
  // `base_url` like "http://127.0.0.1:9000"; empty = no gateway configured
  // (every charge is kFailed). `timeout_ms` bounds connect, send and receive.
  // An https:// gateway's certificate is verified against `ca_file` (PEM; empty:
  // the system store) and the host name (services::verify_tls_peer).
  PaymentGateway(std::string base_url, core::Millis timeout_ms, std::string ca_file = {})
      : base_url_(std::move(base_url)), timeout_ms_(timeout_ms), ca_file_(std::move(ca_file)) {}

  ChargeResult charge(std::int64_t amount_cents, const std::string& token,
                      const std::string& idempotency_key) const;

  const std::string& base_url() const noexcept { return base_url_; }

 private:
  std::string base_url_;
  core::Millis timeout_ms_;
  std::string ca_file_;
};

}  // namespace services
