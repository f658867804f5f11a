// A new route, as README.md ("Adding a route") shows it: the build compiles
// this file with the project's warnings as errors, and tests/docs_test.cpp
// checks that the README quotes it verbatim.
#include <string>

#include "http/routes.h"
#include "http/views.h"
#include "services/orders.h"

namespace example {

// In one of the register_*_routes functions (http/routes_*.cpp; the list is
// http/routes.h), which the server calls once at start-up.
void register_ship_route(app::Router& router, app::Context& ctx) {
  // A write route (post, put, del): its handler gets a WriteContext, the only
  // way a route writes. It parses and validates first, and writes nothing
  // when the input is bad.
  router.post(R"(/orders/(\d+)/ship)", [&ctx](const httplib::Request& req, app::WriteContext& w) {
    const std::string& digits = req.matches[1];
    if (digits.size() > 18) return app::problem_for(core::Status::not_found("no such order"));
    const std::int64_t id = std::stoll(digits);
    // One atomic phase: one write transaction holding the change, its audit
    // row and staged jobs (the service's), and, when the client sent an
    // Idempotency-Key, the stored reply, which a retry gets replayed.
    return w.transact([&](db::Tx& tx) -> core::Result<app::Reply> {
      const core::Status shipped = services::ship_order(tx, id, ctx.clock.now_ms());
      // A refusal (not found, a state that cannot ship) is the request's
      // answer, stored like a success; a failure (busy, disk full) rolls
      // back and a retry runs afresh.
      if (!shipped) return app::refusal_or_failure(shipped);
      return app::json_reply(200, {{"id", id}, {"state", "ready_to_ship"}});
    });
  });
}

}  // namespace example
