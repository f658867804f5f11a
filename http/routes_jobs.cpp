// Jobs and the mailbox: reads of the queue and of the effects jobs deliver.
#include <charconv>
#include <variant>

#include "http/routes.h"
#include "http/views.h"
#include "jobs/job_state.h"
#include "services/email.h"

namespace app {
namespace {

Reply invalid_parameter(const std::string& detail) {
  return problem(422, "invalid-parameter", "Invalid parameter", detail);
}

// The most ids one bulk retry may name (the "all of a kind" form has no cap:
// it is one UPDATE).
constexpr std::size_t kMaxBulkIds = 1000;

// The body of POST /jobs/retry, or the 422 that refuses it.
std::variant<services::BulkRetry, Reply> parse_bulk_retry(const httplib::Request& req) {
  JsonBody body = parse_json_object(req);
  if (body.error) return *body.error;
  services::BulkRetry out;
  const auto& v = body.value;
  if (!v.contains("state") || !v["state"].is_string() ||
      (v["state"] != "discarded" && v["state"] != "cancelled")) {
    return invalid_parameter("\"state\" must be \"discarded\" or \"cancelled\"");
  }
  out.state = v["state"].get<std::string>();
  if (v.contains("kind") && !v["kind"].is_null()) {
    if (!v["kind"].is_string() || v["kind"].get<std::string>().empty()) {
      return invalid_parameter("\"kind\" must be a non-empty string");
    }
    out.kind = v["kind"].get<std::string>();
  }
  if (v.contains("ids") && !v["ids"].is_null()) {
    const auto& ids = v["ids"];
    if (!ids.is_array() || ids.empty() || ids.size() > kMaxBulkIds) {
      return invalid_parameter("\"ids\" must be an array of 1 to " + std::to_string(kMaxBulkIds) +
                               " job ids");
    }
    for (const auto& id : ids) {
      if (!id.is_number_integer() || id.get<std::int64_t>() < 1) {
        return invalid_parameter("every item of \"ids\" must be a positive integer");
      }
      out.ids.push_back(id.get<std::int64_t>());
    }
  }
  return out;
}

std::optional<std::int64_t> parse_before(const std::string& text) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < 1) return std::nullopt;
  return v;
}

}  // namespace

void register_job_routes(Router& router, Context& ctx) {
  router.get(R"(/jobs)", [&ctx](const httplib::Request& req) {
    db::JobFilter filter;
    if (req.has_param("state") && !req.get_param_value("state").empty()) {
      const std::string state = req.get_param_value("state");
      if (!jobs::parse_job_state(state)) {
        return invalid_parameter(
            "state must be one of available, running, retryable, completed, discarded, "
            "cancelled");
      }
      filter.state = state;
    }
    if (req.has_param("kind") && !req.get_param_value("kind").empty()) {
      filter.kind = req.get_param_value("kind");
    }
    if (req.has_param("limit")) {
      const std::string text = req.get_param_value("limit");
      int limit = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), limit);
      if (ec != std::errc() || p != text.data() + text.size() || limit < 1 || limit > 1000) {
        return invalid_parameter("limit must be an integer from 1 to 1000");
      }
      filter.limit = limit;
    }
    // Keyset pagination: ?before=<id> lists the jobs older than that id;
    // "next_before" (absent on the last page) is the value for the next one.
    std::optional<std::int64_t> before;
    if (req.has_param("before")) {
      before = parse_before(req.get_param_value("before"));
      if (!before) return invalid_parameter("before must be a positive job id");
    }
    auto page = ctx.jobs_admin.page(filter, before);
    if (!page) return problem_for(page.status());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& j : page->jobs) out.push_back(job_json(j));
    nlohmann::json body = {{"jobs", out}};
    if (page->next_before) body["next_before"] = *page->next_before;
    return json_reply(200, body);
  });
  // Bulk retry: every job named (or every job in the state, of the kind)
  // moves back to available in one transaction, or none does.
  router.post(R"(/jobs/retry)", [&ctx](const httplib::Request& req, WriteContext& w) {
    auto parsed = parse_bulk_retry(req);
    if (auto* refused = std::get_if<Reply>(&parsed)) return *refused;
    const auto& request = std::get<services::BulkRetry>(parsed);
    return w.transact([&](db::Tx& tx) -> core::Result<Reply> {
      auto moved = ctx.jobs_admin.retry_many(tx, request);
      if (moved) return json_reply(200, {{"retried", *moved}});
      if (moved.status().code() == core::Code::kConflict) {
        return problem(409, "invalid-transition", "Invalid transition", moved.status().message());
      }
      return refusal_or_failure(moved.status());
    });
  });
  router.get(R"(/jobs/([^/]+))", [&ctx](const httplib::Request& req) {
    auto id = parse_id(req.matches[1].str());
    if (!id) return problem(404, "not-found", "Not found", "no such job");
    auto job = ctx.jobs_admin.get(*id);
    if (!job) return problem_for(job.status());
    return json_reply(200, job_json(*job));
  });
  // Retry and cancel: each one conditional UPDATE; a job in another state is
  // a 409 naming that state. Nothing else is written.
  auto transition = [&ctx](const httplib::Request& req, WriteContext& w, bool retry) {
    auto id = parse_id(req.matches[1].str());
    if (!id) return problem(404, "not-found", "Not found", "no such job");
    return w.transact([&](db::Tx& tx) -> core::Result<Reply> {
      auto job = retry ? ctx.jobs_admin.retry(tx, *id) : ctx.jobs_admin.cancel(tx, *id);
      if (job) return json_reply(200, job_json(*job));
      if (job.status().code() == core::Code::kConflict) {
        return problem(409, "invalid-transition", "Invalid transition", job.status().message());
      }
      return refusal_or_failure(job.status());
    });
  };
  router.post(R"(/jobs/([^/]+)/retry)", [transition](const httplib::Request& req, WriteContext& w) {
    return transition(req, w, true);
  });
  router.post(R"(/jobs/([^/]+)/cancel)",
              [transition](const httplib::Request& req, WriteContext& w) {
                return transition(req, w, false);
              });
  router.get(R"(/mailbox)", [&ctx](const httplib::Request& req) {
    if (!req.has_param("to") || req.get_param_value("to").empty()) {
      return invalid_parameter("the to query parameter is required");
    }
    const std::string raw = req.get_param_value("to");
    // Addresses are stored normalized; accept the spelling a client used.
    const std::string to = services::normalize_email(raw).value_or(raw);
    auto messages = ctx.jobs_admin.mailbox(to);
    if (!messages) return problem_for(messages.status());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : *messages) out.push_back(message_json(m));
    return json_reply(200, {{"messages", out}});
  });
}

}  // namespace app
