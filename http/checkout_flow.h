// app::CheckoutFlow: the HTTP half of POST /checkout. The phases, the
// recovery points and the loop over them are workflow::CheckoutWorkflow
// (workflow/checkout.h); what lives here is what only HTTP knows:
// - the responses phase 3 stores (201 with the order and its Location; 402
//   /problems/payment-declined; 502 /problems/payment-charge-mismatch),
//   rendered once and stored byte for byte, so the completer stores exactly
//   what the client would have got;
// - the replies for the answers that are not stored: a key that answered by
//   itself (replay, 422, 409), the gateway unavailable (503
//   /problems/payment-gateway-unavailable with Retry-After), a failure.
//
// Thread-safe: all state is in the database.
#pragma once

#include <string>

#include "core/clock.h"
#include "db/database.h"
#include "http/http.h"
#include "http/router.h"
#include "services/checkout.h"
#include "workflow/checkout.h"

namespace app {

using CheckoutFlowOptions = workflow::CheckoutOptions;

// The stored checkout answers, as HTTP replies.
class CheckoutReplies final : public workflow::CheckoutResponses {
 public:
  workflow::StoredResponse paid(const services::Order& order) const override;
  workflow::StoredResponse declined(const services::Order& order) const override;
  workflow::StoredResponse charge_mismatch(const services::Order& order,
                                           const std::string& why) const override;
};

class CheckoutFlow {
 public:
  CheckoutFlow(db::Database& db, const core::Clock& clock, const services::Checkout& checkout,
               CheckoutFlowOptions options)
      : workflow_(db, clock, checkout, replies_, std::move(options)) {}

  // Runs or resumes the checkout of the request's key (w.key(): already
  // validated and checked by the idempotency layer's fast path) and returns
  // the reply; what the key answered goes to w.set_answer.
  Reply start(WriteContext& w, const services::CheckoutRequest& request);

  // The workflow itself, for the completer.
  const workflow::CheckoutWorkflow& workflow() const noexcept { return workflow_; }

 private:
  const CheckoutReplies replies_;
  const workflow::CheckoutWorkflow workflow_;
};

}  // namespace app
