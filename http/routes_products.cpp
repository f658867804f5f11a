// Products: create, read, and the approve transition (services/product_state.h).
#include "http/routes.h"
#include "http/views.h"
#include "services/email.h"

namespace app {
namespace {

Reply invalid_name(const std::string& detail) {
  return problem(422, "invalid-name", "Invalid product name", detail);
}

Reply invalid_owner_email(const std::string& detail) {
  return problem(422, "invalid-email", "Invalid email address", detail);
}

Reply no_such_product() {
  return problem(404, "not-found", "Not found", "no such product");
}

}  // namespace

void register_product_routes(Router& router, Context& ctx) {
  // Validation first (it writes nothing), then one write transaction that
  // inserts the product and its creation audit row.
  router.post(R"(/products)", [&ctx](const httplib::Request& req, WriteContext& w) {
    JsonBody body = parse_json_object(req);
    if (body.error) return *body.error;
    auto name_it = body.value.find("name");
    if (name_it == body.value.end() || !name_it->is_string()) {
      return invalid_name("the body must have a \"name\" string");
    }
    auto name = services::normalize_product_name(name_it->get<std::string>());
    if (!name) return invalid_name(name.status().message());
    auto email_it = body.value.find("owner_email");
    if (email_it == body.value.end() || !email_it->is_string()) {
      return invalid_owner_email("the body must have an \"owner_email\" string");
    }
    auto email = services::normalize_email(email_it->get<std::string>());
    if (!email) {
      return invalid_owner_email(
          "owner_email is not a valid email address: ASCII, at most 254 characters, one '@', a "
          "local part of 1-64 printable characters without spaces, and a domain of "
          "dot-separated labels");
    }
    return w.transact([&](db::Tx& tx) {
      auto product = ctx.products.create(tx, *name, *email);
      return json_reply(201, product_json(product))
          .header("Location", "/products/" + std::to_string(product.row.id));
    });
  });
  router.get(R"(/products/([^/]+))", [&ctx](const httplib::Request& req) {
    auto id = parse_id(req.matches[1].str());
    if (!id) return no_such_product();
    auto product = ctx.products.get(*id);
    if (!product) return problem_for(product.status());
    return json_reply(200, product_json(*product));
  });
  // pending -> published. A product in any other state is a 409 naming that
  // state, and the phase has written nothing (so committing it is harmless).
  router.post(R"(/products/([^/]+)/approve)", [&ctx](const httplib::Request& req, WriteContext& w) {
    auto id = parse_id(req.matches[1].str());
    if (!id) return no_such_product();
    return w.transact([&](db::Tx& tx) -> core::Result<Reply> {
      auto product = ctx.products.approve(tx, *id);
      if (product) return json_reply(200, product_json(*product));
      if (product.status().code() == core::Code::kConflict) {
        return problem(409, "invalid-transition", "Invalid transition", product.status().message());
      }
      return refusal_or_failure(product.status());
    });
  });
}

}  // namespace app
