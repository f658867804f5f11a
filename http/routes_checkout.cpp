// Checkout and orders. POST /checkout needs an Idempotency-Key: its phases
// and recovery points live on the key record (http/checkout_flow.h).
#include "http/idempotency.h"
#include "http/routes.h"
#include "http/views.h"
#include "services/checkout.h"

namespace app {

void register_checkout_routes(Router& router, Context& ctx) {
  router.post(R"(/checkout)", [&ctx](const httplib::Request& req, WriteContext& w) {
    if (!w.has_idempotency_key()) {
      return problem(400, "idempotency-key-required", "Idempotency-Key required",
                     "POST /checkout needs an Idempotency-Key header (1-255 visible ASCII "
                     "characters), so that a retry never charges twice");
    }
    JsonBody body = parse_json_object(req);
    if (body.error) return *body.error;
    services::CheckoutRequest request;
    if (auto bad = services::validate_checkout(body.value, &request)) {
      return problem(422, bad->slug,
                     bad->slug == "invalid-email" ? "Invalid email address" : "Invalid checkout",
                     bad->detail);
    }
    return ctx.checkout_flow.start(w, request);
  });
  router.get(R"(/orders/([^/]+))", [&ctx](const httplib::Request& req) {
    auto id = parse_id(req.matches[1].str());
    if (!id) return problem(404, "not-found", "Not found", "no such order");
    auto order = ctx.checkout.get(*id);
    if (!order) return problem_for(order.status());
    return json_reply(200, order_json(*order));
  });
}

}  // namespace app
