// Users: the idempotent create-or-get (three spellings) and its reads.
#include "http/routes.h"
#include "http/views.h"
#include "services/email.h"

namespace app {
namespace {

Reply invalid_email(const std::string& raw) {
  const std::string shown = raw.size() > 300 ? raw.substr(0, 300) + "..." : raw;
  return problem(422, "invalid-email", "Invalid email address",
                 "'" + shown +
                     "' is not a valid email address: ASCII, at most 254 characters, one '@', "
                     "a local part of 1-64 printable characters without spaces, and a domain "
                     "of dot-separated labels");
}

// Create-or-get. Without an Idempotency-Key, an existing user is answered
// from a read connection without taking the write lock; a new one (or any
// keyed request) goes through one write transaction, which alone decides
// "created" by INSERT ... ON CONFLICT DO NOTHING, so concurrent creates of
// one email make exactly one user.
Reply create_or_get(Context& ctx, WriteContext& w, const std::string& raw) {
  auto email = services::normalize_email(raw);
  if (!email) return invalid_email(raw);
  if (!w.has_idempotency_key()) {
    auto found = ctx.users.find_by_email(*email);
    if (!found) return problem_for(found.status());
    if (*found) return json_reply(200, user_json(**found));
  }
  return w.transact([&](db::Tx& tx) {
    auto r = ctx.users.create_or_get(tx, *email);
    Reply reply = json_reply(r.created ? 201 : 200, user_json(r.user));
    if (r.created) reply.header("Location", "/users/" + std::to_string(r.user.id));
    return reply;
  });
}

}  // namespace

void register_user_routes(Router& router, Context& ctx) {
  // The route owns one segment (any bytes, CR/LF included: they must reach
  // the email check, 422) or, as a decoded %2F may put a '/' in the local
  // part, several segments that end in "@domain". So /users/1/ is no email
  // route (404), and /users/x@example.com/actions is not either (405, GET).
  router.put(R"(/users/([^/]+|[\s\S]+@[^/@]+))",
             [&ctx](const httplib::Request& req, WriteContext& w) {
               return create_or_get(ctx, w, req.matches[1].str());
             });
  router.put(R"(/users)", [&ctx](const httplib::Request& req, WriteContext& w) {
    if (!req.has_param("email")) {
      return problem(422, "invalid-email", "Invalid email address",
                     "the email query parameter is required");
    }
    return create_or_get(ctx, w, req.get_param_value("email"));
  });
  router.post(R"(/api/users)", [&ctx](const httplib::Request& req, WriteContext& w) {
    JsonBody body = parse_json_object(req);
    if (body.error) return *body.error;
    auto it = body.value.find("email");
    if (it == body.value.end() || !it->is_string()) {
      return problem(422, "invalid-email", "Invalid email address",
                     "the body must have an \"email\" string");
    }
    return create_or_get(ctx, w, it->get<std::string>());
  });
  router.get(R"(/users/([^/]+))", [&ctx](const httplib::Request& req) {
    auto id = parse_id(req.matches[1].str());
    if (!id) return problem(404, "not-found", "Not found", "no such user");
    auto user = ctx.users.get(*id);
    if (!user) return problem_for(user.status());
    return json_reply(200, user_json(*user));
  });
  router.get(R"(/users/([^/]+)/actions)", [&ctx](const httplib::Request& req) {
    auto id = parse_id(req.matches[1].str());
    if (!id) return problem(404, "not-found", "Not found", "no such user");
    auto actions = ctx.users.actions(*id);
    if (!actions) return problem_for(actions.status());
    nlohmann::json list = nlohmann::json::array();
    for (const auto& a : *actions) list.push_back(user_action_json(a));
    return json_reply(200, {{"actions", list}});
  });
}

}  // namespace app
