#include "app/router.h"

#include <algorithm>

#include "app/openapi.h"
#include "app/request_scope.h"

namespace app {

Reply WriteContext::transact(const Phase& phase) {
  Reply reply;
  db::TxStats stats;
  core::Status st = db_.write(
      [&](db::Tx& tx) {
        reply = phase(tx);
        if (reply.status >= 500)
          return core::Status::internal("phase answered " + std::to_string(reply.status));
        return core::Status::ok();
      },
      &stats);
  request_scope().tx_attempts += stats.attempts;
  if (!st) {
    if (reply.status >= 500) return reply;
    return problem_for(st);
  }
  return reply;
}

void Router::get(const std::string& pattern, ReadHandler handler) {
  routes_.push_back({"GET", pattern, std::regex(pattern)});
  server_.Get(pattern, [h = std::move(handler), label = route_label("GET", pattern)](
                           const httplib::Request& req, httplib::Response& res) {
    request_scope().route = label;
    // Refused by the server's pre-routing hook (app/request_scope.h).
    if (const auto& refusal = request_scope().refusal) return send(res, *refusal);
    send(res, h(req));
  });
}

void Router::post(const std::string& pattern, WriteHandler handler) {
  add_write("POST", pattern, std::move(handler));
}
void Router::put(const std::string& pattern, WriteHandler handler) {
  add_write("PUT", pattern, std::move(handler));
}
void Router::del(const std::string& pattern, WriteHandler handler) {
  add_write("DELETE", pattern, std::move(handler));
}

void Router::add_write(const std::string& method, const std::string& pattern,
                       WriteHandler handler) {
  routes_.push_back({method, pattern, std::regex(pattern)});
  auto fn = [this, h = std::move(handler), label = route_label(method, pattern)](
                const httplib::Request& req, httplib::Response& res) {
    request_scope().route = label;  // for the log line and metrics
    // Refused by the server's pre-routing hook (app/request_scope.h).
    if (const auto& refusal = request_scope().refusal) return send(res, *refusal);
    if (write_layer_) {
      send(res, write_layer_(req, h, db_));
    } else {
      WriteContext ctx(db_, req);
      send(res, h(req, ctx));
    }
  };
  if (method == "POST") server_.Post(pattern, fn);
  if (method == "PUT") server_.Put(pattern, fn);
  if (method == "DELETE") server_.Delete(pattern, fn);
}

std::vector<std::string> Router::allowed_methods(const std::string& path) const {
  std::vector<std::string> out;
  for (const auto& r : routes_) {
    if (std::regex_match(path, r.re) && std::find(out.begin(), out.end(), r.method) == out.end()) {
      out.push_back(r.method);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : routes_) out.emplace_back(r.method, r.pattern);
  return out;
}

}  // namespace app
