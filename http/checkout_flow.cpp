#include "http/checkout_flow.h"

#include "http/idempotency.h"
#include "http/views.h"

namespace app {

workflow::StoredResponse CheckoutReplies::paid(const services::Order& order) const {
  Reply reply = json_reply(201, order_json(order));
  reply.header("Location", "/orders/" + std::to_string(order.id));
  return to_stored(reply);
}

workflow::StoredResponse CheckoutReplies::declined(const services::Order& order) const {
  return to_stored(problem(402, "payment-declined", "Payment declined",
                           "the payment gateway declined the payment; order " +
                               std::to_string(order.id) + " is payment_failed"));
}

workflow::StoredResponse CheckoutReplies::charge_mismatch(const services::Order& order,
                                                          const std::string& why) const {
  return to_stored(
      problem(502, "payment-charge-mismatch", "Payment not made for this order",
              why + "; order " + std::to_string(order.id) + " is payment_failed and was not paid"));
}

Reply CheckoutFlow::start(WriteContext& w, const services::CheckoutRequest& request) {
  const KeyRef& ref = *w.key();
  workflow::CheckoutResult done = workflow_.start(ref, request, w.attempts());
  w.set_answer(done.answer);
  if (done.key) return reply_for(*done.key, ref);  // answered by itself
  if (done.response) {
    return done.answer == workflow::KeyAnswer::kReplay ? replay(*done.response)
                                                       : from_stored(*done.response);
  }
  if (done.gateway_unavailable) {
    return problem(503, "payment-gateway-unavailable", "Payment gateway unavailable",
                   "the payment gateway did not confirm the charge (" + done.failure.message() +
                       "); order " + std::to_string(done.order_id) +
                       " is kept: retry with the same Idempotency-Key, the payment is charged "
                       "at most once")
        .header("Retry-After", "1");
  }
  if (done.broken_key) {
    return problem(500, "internal", "Internal error", done.failure.message());
  }
  return problem_for(done.failure);
}

}  // namespace app
