// Operations: health.
#include "app/routes.h"

namespace app {

void register_ops_routes(Router& router, Context& ctx) {
  router.get(R"(/healthz)", [&ctx](const httplib::Request&) {
    core::Status st = ctx.db.ping();
    if (!st) {
      return problem(503, "unavailable", "Service unavailable", "the database does not answer")
          .header("Retry-After", "1");
    }
    return json_reply(200, {{"status", "ok"}});
  });
}

}  // namespace app
