// Jobs and the mailbox: reads of the queue and of the effects jobs deliver.
#include <charconv>

#include "http/routes.h"
#include "http/views.h"
#include "jobs/job_state.h"
#include "services/email.h"

namespace app {
namespace {

Reply invalid_parameter(const std::string& detail) {
  return problem(422, "invalid-parameter", "Invalid parameter", detail);
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
    auto list = ctx.jobs_admin.list(filter);
    if (!list) return problem_for(list.status());
    nlohmann::json out = nlohmann::json::array();
    for (const auto& j : *list) out.push_back(job_json(j));
    return json_reply(200, {{"jobs", out}});
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
