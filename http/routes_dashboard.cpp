// The built-in dashboard (GET /, its CSS and JS, embedded in the binary) and
// the small JSON reads it polls: /api/stats, /api/audit, /api/messages,
// /api/throughput.
// Everything here only reads; the page's buttons call the public API.
#include <charconv>

#include "core/metrics.h"
#include "core/time_format.h"
#include "http/assets.h"
#include "http/routes.h"
#include "http/stats_view.h"
#include "http/throughput.h"
#include "http/views.h"

namespace app {
namespace {

// The page loads nothing from elsewhere, and says so to the browser.
constexpr char kCsp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

Reply asset(std::string_view body, const char* content_type) {
  Reply reply;
  reply.body = std::string(body);
  reply.content_type = content_type;
  reply.header("Cache-Control", "no-cache");
  reply.header("Content-Security-Policy", kCsp);
  reply.header("X-Content-Type-Options", "nosniff");
  return reply;
}

// ?limit=1..1000, default `fallback`; nullopt when present and invalid.
std::optional<int> parse_limit(const httplib::Request& req, int fallback) {
  if (!req.has_param("limit")) return fallback;
  const std::string text = req.get_param_value("limit");
  int limit = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
  if (ec != std::errc() || p != text.data() + text.size() || limit < 1 || limit > 1000) {
    return std::nullopt;
  }
  return limit;
}

Reply invalid_limit() {
  return problem(422, "invalid-parameter", "Invalid parameter",
                 "limit must be an integer from 1 to 1000");
}

nlohmann::json stats_json(const db::Counts& counts, const db::DbCounters& c) {
  nlohmann::json out = counts_json(counts);
  out["transactions"] = {{"write_transactions", c.write_tx.load()},
                         {"attempts", c.tx_attempts.load()},
                         {"busy_retries", c.busy_retries.load()},
                         {"busy_exhausted", c.busy_exhausted.load()},
                         {"commits", c.commits.load()},
                         {"rollbacks", c.rollbacks.load()}};
  out["idempotent_replays"] = core::metrics::idempotent_replays().value();
  out["version"] = AFTERCOMMIT_VERSION;
  return out;
}

}  // namespace

void register_dashboard_routes(Router& router, Context& ctx) {
  router.get(R"(/)", [](const httplib::Request&) {
    return asset(assets::dashboard_html(), "text/html; charset=utf-8");
  });
  router.get(R"(/dashboard\.css)", [](const httplib::Request&) {
    return asset(assets::dashboard_css(), "text/css; charset=utf-8");
  });
  router.get(R"(/dashboard\.js)", [](const httplib::Request&) {
    return asset(assets::dashboard_js(), "text/javascript; charset=utf-8");
  });
  router.get(R"(/api/stats)", [&ctx](const httplib::Request&) {
    auto counts = ctx.stats.counts();
    if (!counts) return problem_for(counts.status());
    return json_reply(200, stats_json(*counts, ctx.db.counters()));
  });
  router.get(R"(/api/audit)", [&ctx](const httplib::Request& req) {
    auto limit = parse_limit(req, 20);
    if (!limit) return invalid_limit();
    auto rows = ctx.stats.latest_audit(*limit);
    if (!rows) return problem_for(rows.status());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& a : *rows) {
      list.push_back({{"id", a.id},
                      {"user_id", a.user_id},
                      {"email", a.email},
                      {"action", a.action},
                      {"created_at", core::format_rfc3339_ms(a.created_at)}});
    }
    return json_reply(200, {{"actions", list}});
  });
  // The last ?seconds= (1..900, default 900) seconds of the throughput ring.
  router.get(R"(/api/throughput)", [](const httplib::Request& req) {
    int seconds = ThroughputRing::kSeconds;
    if (req.has_param("seconds")) {
      const std::string text = req.get_param_value("seconds");
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
      if (ec != std::errc() || p != text.data() + text.size() || seconds < 1 ||
          seconds > ThroughputRing::kSeconds) {
        return problem(422, "invalid-parameter", "Invalid parameter",
                       "seconds must be an integer from 1 to 900");
      }
    }
    return json_reply(200, throughput().snapshot(core::SystemClock().now_ms(), seconds));
  });
  router.get(R"(/api/messages)", [&ctx](const httplib::Request& req) {
    auto limit = parse_limit(req, 20);
    if (!limit) return invalid_limit();
    auto rows = ctx.stats.latest_messages(*limit);
    if (!rows) return problem_for(rows.status());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& m : *rows) list.push_back(message_json(m));
    return json_reply(200, {{"messages", list}});
  });
}

}  // namespace app
