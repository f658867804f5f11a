// Operations: health, Prometheus metrics and the API description.
#include "http/assets.h"
#include "http/metrics.h"
#include "http/routes.h"

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
  router.get(R"(/metrics)", [&ctx](const httplib::Request&) {
    Reply reply;
    reply.body = render_metrics(ctx);
    reply.content_type = kMetricsContentType;
    return reply;
  });
  router.get(R"(/openapi.json)", [](const httplib::Request&) {
    Reply reply;
    reply.body = std::string(assets::openapi_json());
    return reply;
  });
}

}  // namespace app
